"""Split cost allocation of a generated cluster on a generated AWS bill (issue 13, part 3).

The bill is the AWS demo's generated CUR (the session's `aws_demo`, ingested through the real
pipeline); the cluster's nodes are EC2 instances of that bill, written as a koku payload and
loaded through the real reader. The expected split is computed here from the generator's own
rows with exact fractions, not from the warehouse's SQL.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import duckdb
import pytest

from costflow import cli
from costflow.allocation import split
from costflow.allocation.run import allocate
from costflow.allocation.usage import load_usage
from costflow.errors import ReconciliationError
from costflow.services.allocation import get_allocation
from costflow.services.tenancy import Tenant
from costflow.usage.openshift.samples.cluster import Node, Volume, write_cluster
from costflow.warehouse import connect

START, END = date(2023, 10, 1), date(2023, 10, 8)
HOURS = 7 * 24
KEY = ("x_RunId", "x_SourceUri", "x_SourceRowNumber")
UNIT = Decimal("1e-18")
GIB = 1024**3


@pytest.fixture(scope="module")
def billed(tmp_path_factory, aws_demo):
    """The demo's generated bill, and a cluster whose nodes are instances on it."""
    where = tmp_path_factory.mktemp("allocation-bill")
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        if (aws_demo.cwd / ".costflow" / name).exists():
            shutil.copyfile(aws_demo.cwd / ".costflow" / name,
                            where / name.replace("warehouse", "w"))
    con = duckdb.connect(str(where / "w.duckdb"), read_only=True)
    week = "ChargePeriodStart >= '2023-10-01' AND ChargePeriodStart < '2023-10-08'"
    instances = [r[0] for r in con.execute(
        f"SELECT ResourceId FROM cost_analytics.cost_line_items WHERE ResourceId LIKE 'i-%' "
        f"AND {week} GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 3").fetchall()]
    (volume,) = con.execute(
        f"SELECT ResourceId FROM cost_analytics.cost_line_items WHERE ResourceId LIKE 'vol-%' "
        f"AND {week} GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1").fetchone()
    con.close()
    nodes = [Node(f"node-{i}", rid if i else f"aws:///us-east-1a/{rid}", 4 * (i + 1), 16 * (i + 1))
             for i, rid in enumerate(instances)] + [Node("ghost", "i-0notinthebill", 2, 8)]
    cluster = write_cluster(where / "ocp-payload.tar.gz", "prod-eks", nodes,
                            datetime(2023, 10, 1, tzinfo=UTC), HOURS,
                            volumes=(Volume("pv-data", "data", "payments", 100, volume),))
    return where, cluster, instances, volume


@pytest.fixture
def warehouse(billed, tmp_path):
    where, *_ = billed
    for name in ("w.duckdb", "w.duckdb.wal"):
        if (where / name).exists():
            shutil.copyfile(where / name, tmp_path / name)
    return connect(f"duckdb:///{tmp_path}/w.duckdb")


def _rows(wh, sql):
    return wh.query(sql).to_pylist()


def _expected_shares(cluster, charge, resource):
    """Exact shares of one charge, from the generator's rows (the documented method)."""
    s, e = charge["ChargePeriodStart"], charge["ChargePeriodEnd"]
    seconds = Fraction(int((e - s).total_seconds()))
    if resource.startswith("vol-"):
        bound = {r["interval_start"] for r in cluster.storage_rows
                 if r["csi_volume_handle"] == resource and s <= r["interval_start"] < e}
        share = Fraction(len(bound) * 3600) / seconds
        return {"pvc:data": share, "__rest__": 1 - share}
    hours = [r for r in cluster.pod_rows if r["resource_id"].rsplit("/", 1)[-1] == resource
             and r["interval_start"] >= s and r["interval_end"] <= e]
    cores, memory = hours[0]["node_capacity_cpu_cores"], hours[0]["node_capacity_memory_bytes"]
    cpu_part = Fraction(cores) * Fraction("0.031611")
    ram_part = Fraction(memory) / GIB * Fraction("0.004237")
    w_cpu, w_mem = cpu_part / (cpu_part + ram_part), ram_part / (cpu_part + ram_part)
    shares: dict[str, Fraction] = defaultdict(Fraction)
    for r in hours:
        app = dict(item.split(":", 1) for item in r["pod_labels"].split("|"))["label_app"]
        cpu = max(r["pod_request_cpu_core_seconds"], r["pod_usage_cpu_core_seconds"])
        mem = max(r["pod_request_memory_byte_seconds"], r["pod_usage_memory_byte_seconds"])
        shares[f"{r['namespace']}/{app}"] += (
            w_cpu * Fraction(cpu) / (Fraction(cores) * seconds)
            + w_mem * Fraction(mem) / (Fraction(memory) * seconds))
    total = sum(shares.values())
    if total > 1:
        shares = {k: v / total for k, v in shares.items()}
    return {**shares, "__rest__": 1 - sum(shares.values())}


def test_every_node_charge_is_split_exactly(billed, warehouse):
    _, cluster, instances, volume = billed
    before = _rows(warehouse, "SELECT BillingCurrency, SUM(BilledCost) AS b, SUM(EffectiveCost) "
                              "AS e, COUNT(*) AS n FROM cost_analytics.focus_v1_2 GROUP BY 1")
    load_usage(warehouse, str(cluster.path))
    result = allocate(warehouse, "prod-eks", START, END)
    assert [n["node"] for n in result.unpriced_nodes] == ["ghost"]  # never given a cost
    assert result.idle_only_charges >= 1  # volume hours no PVC was bound: all unclaimed
    charges = {tuple(r[k] for k in KEY): r for r in _rows(
        warehouse, "SELECT * FROM cost_analytics.cost_line_items WHERE ResourceId IN ("
        + ", ".join(f"'{i}'" for i in [*instances, volume]) + ") AND ChargePeriodStart >= "
        "'2023-10-01' AND ChargePeriodStart < '2023-10-08'")}
    split_rows = _rows(warehouse, "SELECT * FROM cost_analytics.cost_allocations")
    by_origin = defaultdict(list)
    for row in split_rows:
        by_origin[tuple(row[k] for k in KEY)].append(row)
    assert set(by_origin) == set(charges) and len(charges) == result.charges_split > 10
    for origin, charge in charges.items():
        parts = by_origin[origin]
        for column in ("BilledCost", "EffectiveCost", "ListCost", "PricingQuantity"):
            values = [p[column] for p in parts]
            assert (None if charge[column] is None else sum(values)) == charge[column], column
        rest = [p for p in parts if p["x_AllocationKind"] != "workload"]
        assert len(rest) == 1 and rest[0]["AllocatedResourceName"] in ("__idle__",
                                                                         "__unclaimed__")
        expected = _expected_shares(cluster, charge, charge["ResourceId"])
        for p in parts:
            tags = json.loads(p["AllocatedTags"])
            key = ("__rest__" if p["x_AllocationKind"] != "workload" else
                   f"pvc:{p['AllocatedResourceName']}" if "k8s:pvc" in tags
                   else f"{tags['k8s:namespace']}/{tags['k8s:workload']}")
            exact = Fraction(charge["EffectiveCost"]) * expected[key]
            assert abs(Fraction(p["EffectiveCost"]) - exact) < Fraction(UNIT), (key, p)
            for column in ("ChargePeriodStart", "ResourceId", "ServiceName", "SubAccountId"):
                assert p[column] == charge[column]
            assert p["AllocatedMethodId"] in (split.NODE_METHOD, split.VOLUME_METHOD)
            assert json.loads(p["AllocatedMethodDetails"])["method"] == p["AllocatedMethodId"]
    unsplit = _rows(warehouse, "SELECT BillingCurrency, SUM(BilledCost) AS b, SUM(EffectiveCost) "
                               "AS e, COUNT(*) AS n FROM cost_analytics.focus_v1_2 GROUP BY 1")
    assert unsplit == before
    after = _rows(warehouse, "SELECT BillingCurrency, SUM(BilledCost) AS b, SUM(EffectiveCost) "
                             "AS e, COUNT(*) AS n FROM cost_analytics.focus_v1_3 GROUP BY 1")
    assert [(r["b"], r["e"]) for r in after] == [(r["b"], r["e"]) for r in before]
    assert after[0]["n"] == before[0]["n"] - len(charges) + len(split_rows)


def _content(wh):
    return sorted(
        tuple(str(v) for k, v in row.items() if k not in ("x_AllocationRunId", "x_AllocatedAt"))
         for row in _rows(wh, "SELECT * FROM cost_analytics.cost_allocations"))


def test_rerun_is_identical_and_a_broken_split_is_refused(billed, warehouse, monkeypatch):
    _, cluster, *_ = billed
    load_usage(warehouse, str(cluster.path))
    allocate(warehouse, "prod-eks", START, END)
    first = _content(warehouse)
    allocate(warehouse, "prod-eks", START, END)
    assert _content(warehouse) == first
    real = split.apportion

    def off_by_one_unit(amount, shares):
        out = real(amount, shares)
        return [out[0] + UNIT if out and out[0] else out[0], *out[1:]] if out else out

    monkeypatch.setattr(split, "apportion", off_by_one_unit)
    with pytest.raises(ReconciliationError, match="do not equal the sum of their split"):
        allocate(warehouse, "prod-eks", START, END)
    assert _content(warehouse) == first  # rolled back: the previous allocation stays


def test_a_reingested_bill_hides_stale_splits(billed, warehouse):
    _, cluster, *_ = billed
    load_usage(warehouse, str(cluster.path))
    allocate(warehouse, "prod-eks", START, END)
    # What a re-ingest of the month does to the origin rows' lineage: a new run id.
    path = str(warehouse.path)
    con = duckdb.connect(path)
    con.execute("UPDATE cost_analytics.cost_line_items SET x_RunId = 'reingested'")
    con.close()
    v12 = _rows(warehouse, "SELECT SUM(BilledCost) AS b, COUNT(*) AS n FROM "
                           "cost_analytics.focus_v1_2")
    v13 = _rows(warehouse, "SELECT SUM(BilledCost) AS b, COUNT(*) AS n FROM "
                           "cost_analytics.focus_v1_3")
    assert v12 == v13  # the stale split is not shown next to the new unsplit rows


def test_cli_loads_usage_allocates_and_the_service_reads_it(billed, tmp_path, warehouse, capsys):
    _, cluster, *_ = billed
    url = f"duckdb:///{tmp_path}/w.duckdb"
    assert cli.main(["allocate", "--usage", str(cluster.path), "--warehouse", url]) == 0
    out = capsys.readouterr().out
    assert "loaded usage of cluster prod-eks" in out and "unpriced usage: node ghost" in out
    assert "[2023-10-01, 2023-10-08)" in out
    assert cli.main(["allocate", "--cluster", "prod-eks", "--warehouse", url]) == 2
    report = get_allocation(connect(url, reader=True), Tenant.unrestricted_owner(), START, END)
    (summary,) = report.clusters
    total = _rows(warehouse, "SELECT SUM(BilledCost) AS b FROM cost_analytics.cost_allocations")
    assert summary.allocated + summary.idle == total[0]["b"]
    assert summary.idle_share is not None and 0 < summary.idle_share < 1
    assert {w.namespace for w in report.workloads if w.kind == "workload"} <= {
        e.namespace for e in report.efficiency}
    assert all(e.cpu_efficiency is not None for e in report.efficiency)
    nobody = get_allocation(connect(url, reader=True), Tenant.of("t", ["000000000000"]),
                            START, END)
    assert nobody.workloads == [] and nobody.clusters == []


def test_mcp_get_allocation_tool(billed, tmp_path, warehouse):
    import asyncio

    from mcp import Client

    from costflow.services.mcp_server import build_server

    _, cluster, *_ = billed
    load_usage(warehouse, str(cluster.path))
    allocate(warehouse, "prod-eks", START, END)
    server = build_server(connect(f"duckdb:///{tmp_path}/w.duckdb", reader=True),
                          Tenant.unrestricted_owner())

    async def scenario():
        async with Client(server) as client:
            done = await client.call_tool("get_allocation", {
                "start_date": "2023-10-01", "end_date": "2023-10-08", "cluster": "prod-eks",
                "namespace": "payments"})
            assert not done.is_error, done.content[0].text
            return json.loads(done.content[0].text)

    found = asyncio.run(scenario())
    assert found["workloads"] and {w["namespace"] for w in found["workloads"]} == {"payments"}
    (summary,) = found["clusters"]
    assert Decimal(summary["allocated"]) + Decimal(summary["idle"]) == _rows(
        warehouse, "SELECT SUM(BilledCost) AS b FROM cost_analytics.cost_allocations")[0]["b"]


def test_ingest_provider_openshift_entry_point(billed, tmp_path, capsys):
    """What `costflow ingest --provider openshift --source PAYLOAD` runs (see the report)."""
    import argparse

    from costflow.commands.allocate import ingest_openshift

    _, cluster, *_ = billed
    args = argparse.Namespace(source=[str(cluster.path)], provider="openshift", json=True,
                              warehouse=f"duckdb:///{tmp_path}/fresh.duckdb")
    assert ingest_openshift(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"][0]["rows"]["pod"] == len(cluster.pod_rows)
    # An empty warehouse has no bill: every node's usage is unpriced, nothing is invented.
    (done,) = out["allocations"]
    assert done["rows_written"] == 0 and len(done["unpriced_nodes"]) == 4


def test_overcommitted_node_is_scaled_and_remainders_go_deterministically():
    from costflow.allocation.split import Portion, Shares, apportion, scale_to_one

    portions = [Portion((0, "a"), "workload", "c/a", "a", {}, Fraction(2, 3)),
                Portion((0, "b"), "workload", "c/b", "b", {}, Fraction(2, 3))]
    scale_to_one(portions)
    portions.append(Portion((1,), "idle", "c/__idle__/n", "__idle__", {},
                            1 - portions[0].share - portions[1].share))
    shares = Shares.of(portions)
    assert [p.share for p in portions] == [Fraction(1, 2), Fraction(1, 2), 0]
    # 3e-18 split in halves: one unit left over, to the first in order (tie).
    assert apportion(Decimal("3E-18"), shares) == [Decimal("2E-18"), Decimal("1E-18"), 0]
    assert apportion(Decimal("-3E-18"), shares) == [Decimal("-2E-18"), Decimal("-1E-18"), 0]
    assert apportion(None, shares) == [None, None, None]


def test_arn_resource_ids_match_by_suffix_and_two_clusters_cannot_split_one_charge(
        billed, tmp_path, warehouse):
    _, cluster, instances, _ = billed
    con = duckdb.connect(str(warehouse.path))
    con.execute("UPDATE cost_analytics.cost_line_items SET ResourceId = "
                "'arn:aws:ec2:us-east-1:123412340534:instance/' || ResourceId "
                "WHERE ResourceId = ?", [instances[1]])
    con.close()
    load_usage(warehouse, str(cluster.path))
    result = allocate(warehouse, "prod-eks", START, END)
    assert result.matched_by_suffix == [
        f"arn:aws:ec2:us-east-1:123412340534:instance/{instances[1]}"]
    assert _rows(warehouse, "SELECT COUNT(*) AS n FROM cost_analytics.cost_allocations WHERE "
                            f"ResourceId LIKE '%/{instances[1]}'")[0]["n"] > 0
    nodes = [Node("twin", instances[0], 4, 16)]
    twin = write_cluster(tmp_path / "twin.tar.gz", "staging-eks", nodes,
                         datetime(2023, 10, 1, tzinfo=UTC), 24)
    load_usage(warehouse, str(twin.path))
    before = _content(warehouse)
    with pytest.raises(ReconciliationError, match="split by two allocations"):
        allocate(warehouse, "staging-eks", START, END)
    assert _content(warehouse) == before
