"""`query costs --allocated` and the k8s: dimensions (issue 13, part 5).

The warehouse is the session's generated AWS bill with a generated cluster on its EC2 instances
(`tests.test_allocation`'s `billed` fixture), allocated once by the real `costflow allocate`.
The oracle is independent of the query builder: the rows of both tables read with plain SQL,
the split view rebuilt in Python (a charge some split row names as its origin is replaced by
its split rows) and summed with Decimal per AllocatedTags key.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import defaultdict
from decimal import Decimal

import pytest

from costflow import cli
from costflow.allocation.run import allocate
from costflow.allocation.usage import load_usage
from costflow.errors import ConfigError
from costflow.services.costs import build_query, costs_by_dimension
from costflow.services.tenancy import Tenant
from costflow.warehouse import connect
from tests.test_allocation import END, KEY, START, billed  # noqa: F401  (billed: a fixture)

ARGS = ["--start", str(START), "--end", str(END)]


@pytest.fixture(scope="module")
def allocated(billed, tmp_path_factory):  # noqa: F811
    """The bill with the cluster's week allocated; a path to copy per test is not needed:
    every test here only reads."""
    where, cluster, *_ = billed
    here = tmp_path_factory.mktemp("k8s-query")
    for name in ("w.duckdb", "w.duckdb.wal"):
        if (where / name).exists():
            shutil.copyfile(where / name, here / name)
    url = f"duckdb:///{here}/w.duckdb"
    wh = connect(url)
    load_usage(wh, str(cluster.path))
    done = allocate(wh, "prod-eks", START, END)
    assert done.charges_split > 10
    wh.close()
    return url


def _oracle(url: str, key: str | None, metric: str = "BilledCost",
            keep: dict[str, str] | None = None) -> dict[tuple, Decimal]:
    """Sum of ``metric`` per (AllocatedTags[key], currency) over the split view, in Python."""
    wh = connect(url, reader=True)
    window = (f"ChargePeriodStart >= TIMESTAMP '{START}' AND ChargePeriodStart < "
              f"TIMESTAMP '{END}'")
    lines = wh.query(f"SELECT {', '.join(KEY)}, BillingCurrency, {metric} AS m, AllocatedTags "
                     f"FROM cost_analytics.cost_line_items WHERE {window}").to_pylist()
    splits = wh.query(f"SELECT {', '.join(KEY)}, BillingCurrency, {metric} AS m, AllocatedTags "
                      f"FROM cost_analytics.cost_allocations").to_pylist()
    wh.close()
    origins = {tuple(r[k] for k in KEY) for r in lines}
    split_origins = {tuple(r[k] for k in KEY) for r in splits}
    shown = [r for r in lines if tuple(r[k] for k in KEY) not in split_origins]
    shown += [r for r in splits if tuple(r[k] for k in KEY) in origins]
    out: dict[tuple, Decimal] = defaultdict(Decimal)
    for r in shown:
        tags = json.loads(r["AllocatedTags"]) if r["AllocatedTags"] else {}
        if keep and any(tags.get(k) != v for k, v in keep.items()):
            continue
        out[(tags.get(key) if key else None, r["BillingCurrency"])] += r["m"] or 0
    return dict(out)


def _query(url: str, group_by: list[str], **kwargs) -> dict[tuple, Decimal]:
    wh = connect(url, reader=True)
    try:
        rows = costs_by_dimension(wh, START, END, group_by, **kwargs).to_pylist()
    finally:
        wh.close()
    return {(*(r[g] for g in group_by), r["BillingCurrency"]): r["cost"] for r in rows}


def test_k8s_dimensions_equal_the_oracle_and_totals_are_conserved(allocated):
    for dimension in ("k8s:namespace", "k8s:cluster", "k8s:workload", "k8s:label:team"):
        found = _query(allocated, [dimension], allocated=True)
        assert found == _oracle(allocated, dimension), dimension
    namespaces = {k[0] for k in _query(allocated, ["k8s:namespace"], allocated=True)}
    assert {"payments", None} < namespaces and len(namespaces) > 2
    found = _query(allocated, ["k8s:label:app"], allocated=True,
                   filters={"k8s:namespace": ["payments"]}, metric="EffectiveCost")
    expected = defaultdict(Decimal)
    for (app, cur), cost in _oracle(allocated, "k8s:label:app", "EffectiveCost",
                                    {"k8s:namespace": "payments"}).items():
        expected[(app, cur)] += cost
    assert found == dict(expected) and found
    # Conservation: the split view's total is the bill's, to the last decimal.
    with_split, unsplit = _query(allocated, [], allocated=True), _query(allocated, [])
    assert with_split == unsplit and sum(unsplit.values()) > 0
    split_services = _query(allocated, ["service"], allocated=True)
    assert split_services == _query(allocated, ["service"])


def test_k8s_without_allocated_and_bad_names_are_clear_errors(allocated):
    with pytest.raises(ConfigError, match="add --allocated"):
        build_query(["k8s:namespace"], {}, "BilledCost")
    with pytest.raises(ConfigError, match="add --allocated"):
        build_query(["service"], {"k8s:cluster": ["prod-eks"]}, "BilledCost")
    with pytest.raises(ConfigError, match="unknown dimension 'k8s:pod'"):
        build_query(["k8s:pod"], {}, "BilledCost", allocated=True)
    with pytest.raises(ConfigError, match="names no label"):
        build_query(["k8s:label:"], {}, "BilledCost", allocated=True)
    # A label key is user text: bound as a JSONPath parameter, never part of the SQL.
    sneaky = "app') OR 1=1 --"
    sql, params = build_query([f"k8s:label:{sneaky}"], {}, "BilledCost", allocated=True)
    assert sneaky not in sql and params["tag_path_0"] == f'$."k8s:label:{sneaky}"'
    with pytest.raises(ConfigError, match="not usable"):
        build_query(['k8s:label:a"b'], {}, "BilledCost", allocated=True)


def test_cli_allocated_json_and_error(allocated, capsys):
    assert cli.main(["query", "costs", *ARGS, "--group-by", "k8s:namespace", "--allocated",
                     "--format", "json", "--warehouse", allocated]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["k8s:namespace"], r["BillingCurrency"]): Decimal(r["cost"])
            for r in rows} == _oracle(allocated, "k8s:namespace")
    assert cli.main(["query", "costs", *ARGS, "--group-by", "k8s:namespace",
                     "--warehouse", allocated]) == 2
    assert "add --allocated" in capsys.readouterr().err


def test_mcp_get_costs_allocated(allocated):
    from mcp import Client

    from costflow.services.mcp_server import build_server

    server = build_server(connect(allocated, reader=True), Tenant.unrestricted_owner())

    async def scenario():
        async with Client(server) as client:
            done = await client.call_tool("get_costs", {
                "start_date": str(START), "end_date": str(END), "group_by": ["k8s:namespace"],
                "allocated": True})
            assert not done.is_error, done.content[0].text
            refused = await client.call_tool("get_costs", {
                "start_date": str(START), "end_date": str(END), "group_by": ["k8s:namespace"]})
            schema = await client.call_tool("describe_schema", {})
            values = await client.call_tool("dimension_values", {
                "dimension": "k8s:namespace", "start_date": str(START), "end_date": str(END),
                "allocated": True})
            assert not values.is_error, values.content[0].text
            return (json.loads(done.content[0].text), refused,
                    json.loads(schema.content[0].text), json.loads(values.content[0].text))

    found, refused, schema, values = asyncio.run(scenario())
    oracle = _oracle(allocated, "k8s:namespace")
    assert {(v["value"], v["currency"]): Decimal(v["cost"]) for v in values["values"]} == oracle
    (result,) = found["results"]
    assert {b["values"]["k8s:namespace"]: Decimal(b["cost"]) for b in result["breakdown"]} == {
        ns: cost for (ns, _), cost in _oracle(allocated, "k8s:namespace").items()}
    assert refused.is_error and "allocated=true" in refused.content[0].text
    assert "split" in schema["allocated_vs_unsplit"]
