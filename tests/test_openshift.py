"""OpenShift usage payloads (koku-metrics-operator format): the reader, hostile payloads, and
the atomic replacement of a payload's days in k8s_usage."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from costflow.allocation.usage import load_usage
from costflow.errors import SourceError
from costflow.usage.openshift import open_payload, read_payload
from costflow.usage.openshift.reports import parse_labels
from costflow.usage.openshift.samples.cluster import Node, Volume, write_cluster
from costflow.warehouse import connect

START = datetime(2026, 10, 1, tzinfo=UTC)
NODES = [Node("worker-a", "aws:///us-east-1a/i-0aaa", 4, 16), Node("worker-b", "i-0bbb", 8, 32)]
VOLUMES = (Volume("pvc-1f2e", "db-data", "payments", 50, "vol-0ccc"),)


def _cluster(tmp_path: Path, *, tar: bool = True, hours: int = 6):
    out = tmp_path / ("payload.tar.gz" if tar else "payload")
    return write_cluster(out, "prod-eks", NODES, START, hours, volumes=VOLUMES, tar=tar)


@pytest.mark.parametrize("tar", [True, False], ids=["tar.gz", "directory"])
def test_generated_payload_reads_back_exactly(tmp_path, tar):
    cluster = _cluster(tmp_path, tar=tar)
    with open_payload(cluster.path) as payload:
        assert (payload.cluster_id, payload.uuid) == ("prod-eks", cluster.uuid)
        table = read_payload(payload, START)
    rows = table.to_pylist()
    pods = [r for r in rows if r["kind"] == "pod"]
    storage = [r for r in rows if r["kind"] == "storage"]
    assert len(pods) == len(cluster.pod_rows) == 6 * 2 * 3
    assert len(storage) == len(cluster.storage_rows)
    assert {r["kind"] for r in rows} == {"pod", "storage", "node_labels", "namespace_labels"}
    for column in ("pod_usage_cpu_core_seconds", "pod_request_memory_byte_seconds",
                   "node_capacity_memory_byte_seconds"):
        assert sum(r[column] for r in pods) == sum(r[column] for r in cluster.pod_rows)
    assert sum(r["persistentvolumeclaim_capacity_byte_seconds"] for r in storage) == sum(
        r["persistentvolumeclaim_capacity_byte_seconds"] for r in cluster.storage_rows)
    first, truth = pods[0], cluster.pod_rows[0]
    assert first["interval_start"] == truth["interval_start"] == START
    assert first["resource_id"] == truth["resource_id"]
    assert json.loads(first["labels"]) == parse_labels(truth["pod_labels"])
    assert storage and storage[0]["csi_volume_handle"] == "vol-0ccc"
    assert first["x_SourceUri"].startswith(str(cluster.path) + "!")
    assert [r["x_SourceRowNumber"] for r in pods[:3]] == [1, 2, 3]


def test_labels_are_parsed_like_koku():
    assert parse_labels("label_app:api|label_team:pay|broken|label_url:http://x") == {
        "app": "api", "team": "pay", "url": "http://x"}
    assert parse_labels("") == {}


def test_reingest_replaces_the_payload_days(tmp_path):
    cluster = _cluster(tmp_path)
    warehouse = connect(f"duckdb:///{tmp_path}/w.duckdb")
    first = load_usage(warehouse, str(cluster.path))
    again = load_usage(warehouse, str(cluster.path))
    assert first.rows == again.rows and first.rows["pod"] == 36
    counts = warehouse.query("SELECT kind, COUNT(*) AS n FROM cost_analytics.k8s_usage "
                             "GROUP BY kind").to_pylist()
    assert {r["kind"]: r["n"] for r in counts} == first.rows


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info in members:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


@pytest.mark.parametrize("member, problem", [
    (_file("../evil.csv"), "climbs out"),
    (_file("/tmp/costflow-evil-abs.csv"), "absolute path"),
    (_file("ok/../../evil.csv"), "climbs out"),
], ids=["dotdot", "absolute", "nested-dotdot"])
def test_hostile_tar_paths_are_refused_before_extraction(tmp_path, member, problem):
    payload = _tar(tmp_path / "bad.tar.gz", [_file("manifest.json"), member])
    with pytest.raises(SourceError) as caught, open_payload(payload):
        pass
    assert problem in str(caught.value) and member.name in str(caught.value)
    assert not (tmp_path / "evil.csv").exists()
    assert not Path("/tmp/costflow-evil-abs.csv").exists()


def test_links_in_a_tar_are_refused(tmp_path):
    link = tarfile.TarInfo("manifest.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    payload = _tar(tmp_path / "link.tar.gz", [link])
    with pytest.raises(SourceError, match="is a link"), open_payload(payload):
        pass


def test_payload_without_manifest_is_a_clear_error(tmp_path):
    cluster = _cluster(tmp_path, tar=False)
    (cluster.path / "manifest.json").unlink()
    with pytest.raises(SourceError, match=r"has no manifest\.json"), open_payload(cluster.path):
        pass
    data = (next(cluster.path.glob("*.csv"))).read_bytes()
    payload = _tar(tmp_path / "no-manifest.tar.gz", [_file("report.csv", len(data))], data)
    with pytest.raises(SourceError, match=r"has no manifest\.json"), open_payload(payload):
        pass


def test_manifest_listing_a_missing_file_is_an_error(tmp_path):
    cluster = _cluster(tmp_path, tar=False)
    manifest = json.loads((cluster.path / "manifest.json").read_text())
    manifest["files"].append("gone_openshift_usage_report.9.csv")
    (cluster.path / "manifest.json").write_text(json.dumps(manifest))
    missing = "gone_openshift_usage_report.9.csv.*not in the payload"
    with pytest.raises(SourceError, match=missing), open_payload(cluster.path):
        pass
    manifest.pop("cluster_id")
    (cluster.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SourceError, match="lacks cluster_id"), open_payload(cluster.path):
        pass


def _edit_report(cluster, index: int, old: str, new: str) -> None:
    path = sorted(cluster.path.glob("*_openshift_usage_report.0.csv"))[0]
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    path.write_text("".join(lines))


def test_bad_timestamp_names_file_row_and_column(tmp_path):
    cluster = _cluster(tmp_path, tar=False)
    _edit_report(cluster, 2, "+0000 UTC", "+0200 CEST")  # data row 2, its first timestamp
    with open_payload(cluster.path) as payload, pytest.raises(SourceError) as caught:
        read_payload(payload, START)
    message = str(caught.value)
    assert "row 2" in message and "'report_period_start'" in message
    assert "report.0.csv" in message and "+0000 UTC" in message


def test_bad_number_and_unknown_report_are_refused(tmp_path):
    cluster = _cluster(tmp_path, tar=False)
    truth = cluster.pod_rows[0]
    usage = format(truth["pod_usage_cpu_core_seconds"], "f")
    _edit_report(cluster, 1, f",{usage},", ",0.1234567890123456789,")
    with open_payload(cluster.path) as payload, pytest.raises(SourceError) as caught:
        read_payload(payload, START)
    assert "row 1" in str(caught.value) and "18 decimal places" in str(caught.value)
    cluster2 = _cluster(tmp_path / "two", tar=False)
    path = sorted(cluster2.path.glob("*_openshift_usage_report.1.csv"))[0]
    path.write_text("a,b\n1,2\n")
    with open_payload(cluster2.path) as payload, pytest.raises(SourceError,
                                                              match="not a known usage report"):
        read_payload(payload, START)
