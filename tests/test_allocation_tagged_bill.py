"""Allocation on a generated bill that is re-ingested and carries EKS cluster tags (issue 13).

The bill is a generated AWS CUR (one month, 400 rows) whose cluster resources are tagged the
way EKS tags them (`costflow.usage.openshift.samples.eks_tags`): three instances that are the
cluster's nodes and two resources (a NAT gateway and a database) that are the cluster's but no
node's. It is ingested once through the real pipeline, the cluster's usage payload is loaded,
and each test works on a copy. Expected splits are computed here from the generator's rows.

Part 1 (automatic re-allocation): re-ingesting the month gives its rows a new x_RunId, so the
allocation names charges that are gone; `costflow ingest` re-runs it (or, `--no-allocate`, says
it is stale), a sync does it once after its loads. Part 2: `--cluster-tag` splits the cluster's
tagged charges that match no node or volume among namespaces by usage.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

from costflow import cli
from costflow.allocation import run as allocation_run
from costflow.allocation import shared, split
from costflow.allocation.refresh import refresh
from costflow.allocation.run import allocate
from costflow.allocation.shared import SHARED_METHOD, ClusterTag
from costflow.allocation.usage import load_usage
from costflow.config import CostflowConfig
from costflow.errors import ReconciliationError
from costflow.providers.aws.samples.cur import generate_cur
from costflow.usage.openshift.samples.cluster import Node, Volume, write_cluster
from costflow.usage.openshift.samples.eks_tags import tag_cluster_resources
from costflow.warehouse import connect

START, END = date(2023, 10, 1), date(2023, 11, 1)
KEY = ("x_RunId", "x_SourceUri", "x_SourceRowNumber")
UNIT = Fraction(1, 10**18)
TAG = "aws:eks:cluster-name=prod-eks"
SPLIT = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity",
         "ConsumedQuantity")
TOTALS = ("SELECT BillingCurrency, SUM(BilledCost) AS b, SUM(EffectiveCost) AS e, "
          "SUM(ListCost) AS l FROM cost_analytics.{view} GROUP BY 1 ORDER BY 1")


def _pick(cur: Path) -> tuple[list[str], list[str]]:
    """The three instances with the most charged hours (the nodes) and one NAT gateway and
    one database (cluster-shared), read from the generated CSV."""
    hours: Counter = Counter()
    others: dict[str, set[str]] = {":natgateway/": set(), ":db:": set()}
    with cur.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rid = row["lineItem/ResourceId"]
            if rid.startswith("i-") and Decimal(row["lineItem/UnblendedCost"] or 0) > 0:
                hours[rid] += 1
            for kind, found in others.items():
                if kind in rid:
                    found.add(rid)
    nodes = sorted(hours, key=lambda r: (-hours[r], r))[:3]
    return nodes, [min(found) for found in others.values()]


@pytest.fixture(scope="module")
def bill(tmp_path_factory):
    where = tmp_path_factory.mktemp("tagged-bill")
    cur = where / "cur.csv"
    generate_cur(cur, 400, month="2023-10")
    nodes, common = _pick(cur)
    tagged = tag_cluster_resources(cur, "prod-eks", [*nodes, *common])
    assert set(tagged) == {*nodes, *common} and len(common) == 2
    from costflow.pipelines.ingest import run

    argv = _argv(cur, where)
    assert run(argv)["status"] == "succeeded"
    cluster = write_cluster(where / "ocp.tar.gz", "prod-eks",
                            [Node(f"node-{i}", rid, 4 * (i + 1), 16) for i, rid in
                             enumerate(nodes)], datetime(2023, 10, 1, tzinfo=UTC), 31 * 24,
                            volumes=(Volume("pv-data", "data", "payments", 100, "vol-none"),))
    wh = connect(f"duckdb:///{where}/w.duckdb")
    load_usage(wh, str(cluster.path))
    wh.close()
    return where, cur, nodes, common, tagged, cluster


def _argv(cur: Path, where: Path) -> list[str]:
    return [f"--source={cur}", f"--warehouse=duckdb:///{where}/w.duckdb",
            f"--staging_dir={where}/staging", f"--report_dir={where}/runs"]


@pytest.fixture
def wh(bill, tmp_path):
    where, *_ = bill
    for name in ("w.duckdb", "w.duckdb.wal"):
        if (where / name).exists():
            shutil.copyfile(where / name, tmp_path / name)
    warehouse = connect(f"duckdb:///{tmp_path}/w.duckdb")
    yield warehouse
    warehouse.close()


def _rows(wh, sql, params=None):
    return wh.query(sql, params).to_pylist()


def _content(wh):
    """The split, without what a rerun or a re-ingest renames (run ids, times, row numbers)."""
    skip = {"x_AllocationRunId", "x_AllocatedAt", "x_RunId", "x_IngestedAt"}
    return sorted(tuple(str(v) for k, v in r.items() if k not in skip)
                  for r in _rows(wh, "SELECT * FROM cost_analytics.cost_allocations"))


def _conserved(wh):
    """Every origin charge equals the sum of its split rows, column by column, and every split
    row's origin is in cost_line_items (no stale rows left)."""
    charges = {tuple(r[k] for k in KEY): r for r in _rows(
        wh, "SELECT * FROM cost_analytics.cost_line_items WHERE ChargePeriodStart >= "
            "'2023-10-01' AND ChargePeriodStart < '2023-11-01'")}
    parts = defaultdict(list)
    for r in _rows(wh, "SELECT * FROM cost_analytics.cost_allocations"):
        parts[tuple(r[k] for k in KEY)].append(r)
    assert parts and set(parts) <= set(charges)
    for origin, rows in parts.items():
        for column in SPLIT:
            charge = charges[origin][column]
            assert (None if charge is None else sum(r[column] for r in rows)) == charge
    return len(parts), sum(len(v) for v in parts.values())


def test_a_reingest_is_reallocated_by_ingest_and_left_stale_with_no_allocate(bill, wh, tmp_path,
                                                                             capsys):
    _, cur, _, common, tagged, _ = bill
    first = allocate(wh, "prod-eks", START, END, cluster_tags=[ClusterTag.parse(TAG)])
    assert first.shared_charges == sum(tagged[r] for r in common) > 1
    split_before = _content(wh)
    v12 = _rows(wh, TOTALS.format(view="focus_v1_2"))
    argv = ["ingest", *_argv(cur, tmp_path)]
    # Re-ingesting the month without re-allocation: the split's origins are gone.
    assert cli.main([*argv, "--no-allocate"]) == 0
    out = capsys.readouterr().out
    n = first.rows_written
    assert ("allocation: stale (re-allocation is off): cluster prod-eks [2023-10-01, "
            f"2023-11-01): {n} of its {n} split row(s) name charges that were replaced") in out
    assert "costflow allocate --cluster prod-eks --from 2023-10-01 --to 2023-11-01" in out
    # What focus_v1_3 shows then (the behaviour before this change, too): the right totals,
    # but no split at all; the stale rows are hidden, never added to the new unsplit rows.
    assert _rows(wh, TOTALS.format(view="focus_v1_3")) == v12
    count = "SELECT COUNT(*) AS n FROM cost_analytics.{view}"
    assert _rows(wh, count.format(view="focus_v1_3")) == _rows(wh, count.format(
        view="focus_v1_2"))
    # A plain ingest (the default) re-allocates: the split is back, equal, and conserved.
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert ("allocation: re-allocated cluster prod-eks [2023-10-01, 2023-11-01) after the bill "
            f"changed: {first.charges_split} charge(s) split into {n} row(s)") in out
    assert _rows(wh, TOTALS.format(view="focus_v1_3")) == v12
    assert _rows(wh, TOTALS.format(view="focus_v1_2")) == v12
    origins, split_rows = _conserved(wh)
    assert (origins, split_rows) == (first.charges_split, first.rows_written)
    (n13,), (n12,) = (_rows(wh, count.format(view=v))[0].values()
                      for v in ("focus_v1_3", "focus_v1_2"))
    assert n13 == n12 - origins + split_rows
    assert _content(wh) == split_before  # the same split, cluster-shared charges included


def test_a_period_that_cannot_be_reallocated_is_said_and_hidden(bill, wh):
    allocate(wh, "prod-eks", START, END)
    con = duckdb.connect(str(wh.path))
    con.execute("UPDATE cost_analytics.cost_line_items SET x_RunId = 'restated'")  # a re-ingest
    con.execute("DELETE FROM cost_analytics.k8s_usage")
    con.close()
    done = refresh(wh, ["restated"])
    assert not done.ok and not done.done
    (line,) = done.lines()
    assert line.startswith("allocation: NOT re-allocated: cluster prod-eks [2023-10-01, "
                           "2023-11-01)") and "k8s_usage holds no usage" in line
    assert _rows(wh, TOTALS.format(view="focus_v1_3")) == _rows(wh, TOTALS.format(
        view="focus_v1_2"))
    assert refresh(wh, ["restated"], enabled=False).lines()[0].startswith(
        "allocation: stale (re-allocation is off)")


def test_an_unrelated_load_leaves_the_split_alone(bill, wh):
    allocate(wh, "prod-eks", START, END)
    assert refresh(wh, ["a-run-that-loaded-nothing"]).stale == []
    # A load whose charges start inside the period re-allocates it (identical result).
    (run_id,) = _rows(wh, "SELECT DISTINCT x_RunId AS r FROM cost_analytics.cost_line_items")
    before = _content(wh)
    again = refresh(wh, [run_id["r"]])
    assert [(a.cluster, a.start, a.end) for a in again.done] == [("prod-eks", START, END)]
    assert _content(wh) == before


def test_usage_loaded_before_its_bill_is_allocated_after_the_ingest(bill, wh, tmp_path):
    # A second cluster whose nodes are on no bill: its usage is left alone (no invented cost).
    other = write_cluster(tmp_path / "gke.tar.gz", "gke-prod", [Node("gke-n1", "gce-123", 4, 16)],
                          datetime(2023, 10, 2, tzinfo=UTC), 24)
    load_usage(wh, str(other.path))
    (run_id,) = _rows(wh, "SELECT DISTINCT x_RunId AS r FROM cost_analytics.cost_line_items")
    listed = refresh(wh, [run_id["r"]], enabled=False)
    assert listed.lines() == [
        "allocation: not allocated (re-allocation is off): cluster prod-eks [2023-10-01, "
        "2023-11-01): its usage was loaded before these charges of its nodes and was never "
        "allocated; focus_v1_3 shows those charges unsplit until `costflow allocate --cluster "
        "prod-eks --from 2023-10-01 --to 2023-11-01`"]
    assert _rows(wh, "SELECT COUNT(*) AS n FROM cost_analytics.cost_allocations")[0]["n"] == 0
    done = refresh(wh, [run_id["r"]])
    (line,) = done.lines()
    assert line.startswith("allocation: allocated cluster prod-eks [2023-10-01, 2023-11-01) for "
                           "the first time (its usage was loaded before these charges): ")
    assert [a.cluster for a in done.done] == ["prod-eks"] and done.done[0].charges_split > 0
    _conserved(wh)
    assert refresh(wh, [run_id["r"]]).done[0].start == START  # now a re-allocation, not new
    assert _rows(wh, "SELECT COUNT(*) AS n FROM cost_analytics.cost_allocations WHERE "
                     "x_AllocationCluster = 'gke-prod'")[0]["n"] == 0


def test_bigquery_warehouse_is_skipped_without_failing_the_ingest():
    from costflow.commands.allocate import after_ingest

    report = {"warehouse": "bigquery://my-project/costs", "run_id": "20261203T000000Z-abcdef01"}
    lines, status = after_ingest(report, enabled=True)
    assert status == 0 and lines == [
        "allocation: skipped: bigquery://my-project/costs is not a DuckDB warehouse; Kubernetes "
        "allocation is stored in DuckDB only in this version, so nothing was re-allocated."]
    assert report["allocation"]["skipped"]


def test_sync_children_leave_it_to_the_sync_which_reallocates_once(bill, wh):
    from costflow.sync.allocation import reallocate_after_sync
    from costflow.sync.child import ingest_command
    from costflow.sync.plan import SyncItem
    from costflow.sync.runner import SyncResult
    from costflow.sync.summary import render_summary

    item = SyncItem(tenant="t", account="a", provider="aws", source="s", uri="s3://b/p",
                    argv=("--source=s3://b/p",), credentials=None, account_name=None,
                    schedule="0 6 * * *")
    assert "--no-allocate" in ingest_command(item, "duckdb:///w.duckdb", "local:///s", "r-1")
    allocate(wh, "prod-eks", START, END)
    con = duckdb.connect(str(wh.path))
    con.execute("UPDATE cost_analytics.cost_line_items SET x_RunId = 'restated'")
    con.close()
    url = f"duckdb:///{wh.path}"
    off = CostflowConfig.model_validate({"allocation": {"after_ingest": False}})
    listed, error = reallocate_after_sync(off, url, ["restated"])
    assert error is None and listed is not None and not listed.done and listed.stale
    assert reallocate_after_sync(CostflowConfig(), url, []) == (None, None)
    done, error = reallocate_after_sync(CostflowConfig(), url, ["restated"])
    assert error is None and done is not None and len(done.done) == 1
    _conserved(wh)
    result = SyncResult(url, "local:///m", datetime.now(UTC), False, False, 1, allocation=done)
    text = render_summary(result)
    assert "allocation: re-allocated cluster prod-eks [2023-10-01, 2023-11-01)" in text
    assert json.loads(render_summary(result, "json"))["allocation"]["reallocated"][0][
        "cluster"] == "prod-eks"


# --- part 2: cluster-shared charges found by the cluster's tag --------------------------------


def _expected(cluster, charge):
    """Namespace shares of a shared charge from the generator's pod rows (exact)."""
    s, e = charge["ChargePeriodStart"], charge["ChargePeriodEnd"]
    priced: dict[str, Fraction] = defaultdict(Fraction)
    for r in cluster.pod_rows:
        if r["interval_start"] >= s and r["interval_end"] <= e:
            cpu = max(r["pod_request_cpu_core_seconds"], r["pod_usage_cpu_core_seconds"])
            mem = max(r["pod_request_memory_byte_seconds"], r["pod_usage_memory_byte_seconds"])
            priced[r["namespace"]] += (Fraction(cpu) * Fraction("0.031611")
                                       + Fraction(mem) / 1024**3 * Fraction("0.004237"))
    total = sum(priced.values())
    return {ns: v / total for ns, v in priced.items()}


def test_cluster_tagged_charges_are_split_among_namespaces(bill, wh, tmp_path, capsys):
    _, _, nodes, common, tagged, cluster = bill
    v12 = _rows(wh, TOTALS.format(view="focus_v1_2"))
    url = f"duckdb:///{tmp_path}/w.duckdb"
    assert cli.main(["allocate", "--cluster", "prod-eks", "--from", "2023-10-01", "--to",
                     "2023-11-01", "--cluster-tag", TAG, "--warehouse", url]) == 0
    out = capsys.readouterr().out
    shared_rows = sum(tagged[r] for r in common)  # the generator's truth
    assert (f"{shared_rows} cluster-shared charge(s) (tagged {TAG}, no node or volume) split among "
            "namespaces by usage.") in out
    rows = _rows(wh, "SELECT * FROM cost_analytics.cost_allocations")
    by_method = defaultdict(set)
    for r in rows:
        by_method[r["AllocatedMethodId"]].add(r["ResourceId"])
    assert by_method[SHARED_METHOD] == set(common)  # tagged, no node: shared
    assert by_method[split.NODE_METHOD] == set(nodes)  # tagged nodes stay node charges
    charges = {tuple(r[k] for k in KEY): r for r in _rows(
        wh, "SELECT * FROM cost_analytics.cost_line_items WHERE ResourceId IN UNNEST(@ids)",
        {"ids": common})}
    parts = defaultdict(list)
    for r in rows:
        if r["AllocatedMethodId"] == SHARED_METHOD:
            parts[tuple(r[k] for k in KEY)].append(r)
    assert set(parts) == set(charges)
    for origin, charge in charges.items():
        expected = _expected(cluster, charge)
        got = {json.loads(p["AllocatedTags"])["k8s:namespace"]: p for p in parts[origin]}
        assert set(got) == set(expected) and len(got) > 1
        for column in SPLIT:
            value = charge[column]
            assert (None if value is None else sum(p[column] for p in got.values())) == value
        for ns, p in got.items():
            assert abs(Fraction(p["EffectiveCost"]) - Fraction(charge["EffectiveCost"])
                       * expected[ns]) < UNIT, ns
            details = json.loads(p["AllocatedMethodDetails"])
            assert details["cluster_tags"] == [TAG] and p["x_AllocationKind"] == "workload"
            assert p["AllocatedResourceId"] == f"prod-eks/{ns}/__shared__"
    assert _rows(wh, TOTALS.format(view="focus_v1_2")) == v12
    assert _rows(wh, TOTALS.format(view="focus_v1_3")) == v12
    _conserved(wh)


def test_shared_charges_need_the_tag_given_exactly(bill, wh):
    _, _, _, common, tagged, _ = bill
    assert allocate(wh, "prod-eks", START, END).shared_charges == 0  # never guessed
    other = allocate(wh, "prod-eks", START, END,
                     cluster_tags=[ClusterTag.parse("aws:eks:cluster-name=staging-eks")])
    assert other.shared_charges == 0
    owned = allocate(wh, "prod-eks", START, END,
                     cluster_tags=[ClusterTag.parse("kubernetes.io/cluster/prod-eks=owned")])
    assert owned.shared_charges == sum(tagged[r] for r in common) > 1
    assert cli.main(["allocate", "--cluster", "prod-eks", "--from", "2023-10-01", "--to",
                     "2023-11-01", "--cluster-tag", "aws:eks:cluster-name",
                     "--warehouse", f"duckdb:///{wh.path}"]) == 2


def test_a_shared_split_that_does_not_add_up_is_refused(bill, wh, monkeypatch):
    allocate(wh, "prod-eks", START, END, cluster_tags=[ClusterTag.parse(TAG)])
    before = _content(wh)
    real = allocation_run._split_rows

    def one_unit_more(charge, portions, *args):
        rows = real(charge, portions, *args)
        if portions[0].details.get("method") == shared.SHARED_METHOD:
            rows[0]["BilledCost"] += Decimal("1E-18")
        return rows

    monkeypatch.setattr(allocation_run, "_split_rows", one_unit_more)
    with pytest.raises(ReconciliationError, match="do not equal the sum of their split"):
        allocate(wh, "prod-eks", START, END, cluster_tags=[ClusterTag.parse(TAG)])
    assert _content(wh) == before  # rolled back
