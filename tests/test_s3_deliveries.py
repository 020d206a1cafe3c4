"""S3 deliveries end to end against moto in server mode (HTTP on 127.0.0.1).

The bucket (tests/aws_bucket.py) is laid out like real deliveries; ingesting it must load each
billing period once, from its current delivery, reconciling exactly; an unchanged delivery is
skipped and says so; a new assembly replaces its month; a local copy gives the same rows; bad
input fails clearly and leaves the previous data intact.
"""

from __future__ import annotations

import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from costflow.errors import CostflowError, SourceError
from costflow.providers.aws import s3 as s3_sources
from costflow.providers.aws.samples import exports as ax
from costflow.providers.aws.samples.cur import generate_cur
from costflow.warehouse import connect
from tests.aws_bucket import BUCKET, LEGACY_PAYER, build_layout, free_port, upload

moto_server = pytest.importorskip("moto.server")

SLICES = """
SELECT x_SourceFormat AS fmt, BillingAccountId AS account,
       FORMAT_TIMESTAMP('%Y-%m-%d', BillingPeriodStart) AS period,
       SUM(BilledCost) AS billed, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2, 3 ORDER BY 2, 3
"""


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1, stopped after the module."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"),
                        (s3_sources.ENDPOINT_ENV, s3_endpoint)):
        monkeypatch.setenv(name, value)
    s3_sources.reset_client()
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []) if _exists(client) \
            else []:
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    layout = build_layout(tmp_path)
    upload(layout.root, client)
    yield client, layout
    s3_sources.reset_client()


def _exists(client) -> bool:
    return any(b["Name"] == BUCKET for b in client.list_buckets().get("Buckets", []))


def _query(tmp_path: Path, sql: str, db: str = "w") -> list[dict]:
    wh = connect(f"duckdb:///{tmp_path}/{db}.duckdb")
    try:
        return wh.query(sql).to_pylist()
    finally:
        wh.close()


def _by_slice(rows: list[dict]) -> dict[tuple[str, str], tuple[Decimal, int]]:
    return {(r["account"], r["period"]): (r["billed"], r["n"]) for r in rows}


def test_bucket_loads_each_period_once_from_its_current_delivery(s3, tmp_path, ingest):
    _, layout = s3
    report = ingest(f"s3://{BUCKET}/cur/", f"s3://{BUCKET}/exports/", provider="aws")
    assert report["status"] == "succeeded"
    got = _by_slice(_query(tmp_path, SLICES))
    assert {k: v[0] for k, v in got.items()} == layout.truth
    assert {k: v[1] for k, v in got.items()} == layout.rows
    formats = {r["account"]: r["fmt"] for r in _query(tmp_path, SLICES)}
    assert formats == {"111111111111": "aws_cur_legacy", "222222222222": "aws_cur2",
                       "333333333333": "aws_focus"}
    assert all(s["reconciled"] is True and s["difference"] == "0" for s in report["slices"])
    sources = report["sources"]
    nov = [s for s in sources if "20231101-20231201" in s["uri"]]
    assert len(nov) == 2 and {s["delivery_id"] for s in nov} == {"cccc-nov-2"}
    assert {s["delivery_id"] for s in sources if "cur2" in s["uri"]} == {"2222-new"}
    assert not any("bbbb-nov-1" in s["uri"] or "1111-old" in s["uri"] for s in sources)
    (ledger,) = _query(tmp_path, "SELECT sources FROM cost_analytics.load_runs")
    assert "cccc-nov-2" in str(ledger["sources"])


def test_unchanged_delivery_is_skipped_and_a_new_assembly_replaces_its_month(s3, tmp_path, ingest):
    client, layout = s3
    source = f"s3://{BUCKET}/cur/"
    assert ingest(source, provider="aws")["status"] == "succeeded"
    before = _query(tmp_path, SLICES)
    again = ingest(source, provider="aws")
    assert again["status"] == "skipped"
    assert "already loaded" in again["warnings"][0]
    assert _query(tmp_path, SLICES) == before
    statuses = _query(tmp_path, "SELECT status FROM cost_analytics.load_runs ORDER BY started_at")
    assert [r["status"] for r in statuses] == ["succeeded", "skipped"]
    # AWS delivers a third assembly of November: only November is replaced, by it.
    info = generate_cur(tmp_path / "nov3.csv.gz", 150, month="2023-11",
                        payer_account=LEGACY_PAYER, seed=9, final=True, linked_accounts=2)
    delivery = ax.write_legacy_delivery(layout.root, "cur/my-report", "2023-11",
                                        "dddd-nov-3", [ax.read_legacy_csv(info.path)],
                                        LEGACY_PAYER)
    for path in [*delivery.files, delivery.manifest]:
        client.put_object(Bucket=BUCKET, Key=path.relative_to(layout.root).as_posix(),
                          Body=path.read_bytes())
    third = ingest(source, provider="aws")
    assert third["status"] == "succeeded"
    got = _by_slice(_query(tmp_path, SLICES))
    assert got[(LEGACY_PAYER, "2023-11-01")] == (info.unblended_total, 150)
    assert got[(LEGACY_PAYER, "2023-10-01")] == _by_slice(before)[(LEGACY_PAYER, "2023-10-01")]


def test_local_copy_of_the_bucket_gives_identical_rows(s3, tmp_path, ingest):
    _, layout = s3
    ingest(f"s3://{BUCKET}/cur/", f"s3://{BUCKET}/exports/", db="remote", provider="aws")
    ingest(str(layout.root / "cur"), str(layout.root / "exports"), db="local", provider="aws")
    content = ("SELECT * EXCEPT (x_SourceUri, x_RunId, x_IngestedAt) "
               "FROM cost_analytics.cost_line_items "
               "ORDER BY BillingAccountId, x_SourceFormat, ChargePeriodStart, x_SourceRowNumber, "
               "BilledCost, x_UsageType, ResourceId")
    remote, local = _query(tmp_path, content, "remote"), _query(tmp_path, content, "local")
    assert len(remote) == sum(layout.rows.values()) and remote == local


def test_manifest_naming_a_missing_file_fails_and_keeps_previous_data(s3, tmp_path, ingest):
    client, layout = s3
    ingest(f"s3://{BUCKET}/cur/", provider="aws")
    before = _query(tmp_path, SLICES)
    client.delete_object(Bucket=BUCKET, Key="cur/my-report/20231101-20231201/cccc-nov-2/"
                                            "my-report-2.csv.gz")
    with pytest.raises(SourceError) as err:
        ingest(f"s3://{BUCKET}/cur/", provider="aws")
    text = str(err.value)
    assert "my-report-Manifest.json" in text and "my-report-2.csv.gz" in text
    assert "not in the bucket" in text
    assert _query(tmp_path, SLICES) == before


def test_corrupt_parquet_fails_naming_the_file_and_keeps_previous_data(s3, tmp_path, ingest):
    client, _ = s3
    ingest(f"s3://{BUCKET}/cur/", provider="aws")
    before = _query(tmp_path, SLICES)
    manifest = json.loads(client.get_object(
        Bucket=BUCKET, Key="exports/cur2/my-export/metadata/BILLING_PERIOD=2023-11/"
                           "my-export-Manifest.json")["Body"].read())
    key = manifest["dataFiles"][0].split(f"{BUCKET}/", 1)[1]
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=body[: len(body) // 2] + b"\0" * 64)
    with pytest.raises(CostflowError) as err:
        ingest(f"s3://{BUCKET}/exports/cur2/", provider="aws")
    assert key.rsplit("/", 1)[-1] in str(err.value) and "Parquet" in str(err.value)
    assert _query(tmp_path, SLICES) == before


def test_unknown_column_set_is_a_clear_error(s3, tmp_path, ingest):
    client, _ = s3
    data = gzip.compress(b"Date,Cost,Account\n2023-11-01,1.0,x\n")
    client.put_object(Bucket=BUCKET, Key="odd/report/data/BILLING_PERIOD=2023-11/odd-00001.csv.gz",
                      Body=data)
    client.put_object(Bucket=BUCKET, Key="odd/report/metadata/BILLING_PERIOD=2023-11/"
                                         "report-Manifest.json",
                      Body=json.dumps({"executionId": "e1"}).encode())
    with pytest.raises(SourceError) as err:
        ingest(f"s3://{BUCKET}/odd/", provider="aws")
    assert "odd-00001.csv.gz" in str(err.value) and "matches no known aws export format" in str(
        err.value)


def test_s3_uri_without_objects_is_a_clear_error(s3, tmp_path, ingest):
    with pytest.raises(SourceError, match="holds no object"):
        ingest(f"s3://{BUCKET}/nothing-here/", provider="aws")


def test_local_copy_without_manifest_still_uses_the_plain_planner(tmp_path, ingest):
    src = tmp_path / "plain"
    src.mkdir()
    info = generate_cur(src / "cur.csv", 120, payer_account=LEGACY_PAYER)
    # Two files, no manifest: both read (distinct parts; a byte-identical copy is refused,
    # tests/test_hostile_sources.py).
    generate_cur(src / "part2.csv", 120, payer_account=LEGACY_PAYER, seed=8)
    report = ingest(str(src), provider="aws")
    assert report["status"] == "succeeded" and report["totals"]["rows_read"] == 240
    shutil.copy(info.path, src / "copy.csv")
    with pytest.raises(SourceError, match="same content"):
        ingest(str(src), provider="aws")
