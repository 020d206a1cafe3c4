"""`costflow demo` with every cloud and a Kubernetes cluster (issues 16 part 6, 13 part 6).

Runs the command as `make demo` does (no --provider), with small exports, once for the module.
What it prints and the report it writes are checked against plain SQL over the warehouse's
tables (not through costflow's query builder) and the run's own reconciliation.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costflow import cli
from costflow.demo import CLUSTER, IDLE


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cwd = tmp_path_factory.mktemp("demo-all")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            assert cli.main(["-q", "demo", "--rows", "300"]) == 0
    con = duckdb.connect(str(cwd / ".costflow" / "warehouse.duckdb"), read_only=True)
    return {"cwd": cwd, "text": out.getvalue(), "con": con}


def _cents(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def _section(text: str, title: str) -> list[list[str]]:
    """The rows of the printed table whose title starts with ``title`` (split on 2+ spaces)."""
    lines = text.split(title, 1)[1].splitlines()[3:]
    rows = []
    for line in lines:
        if line.startswith("---"):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_all_three_clouds_load_in_one_reconciled_run_and_one_table(demo: dict[str, Any]) -> None:
    (report,) = (demo["cwd"] / ".costflow" / "runs").glob("*.json")
    slices = json.loads(report.read_text())["slices"]
    assert {s["provider"] for s in slices} == {"aws", "gcp", "azure"}
    assert all(s["difference"] == "0" and s["reconciled"] for s in slices)
    expected = {(p, c): _cents(v) for p, c, v in demo["con"].execute(
        "SELECT ProviderName, BillingCurrency, SUM(BilledCost) FROM "
        "cost_analytics.cost_line_items GROUP BY ALL").fetchall()}
    shown = {(r[0], r[1]): r[2] for r in _section(demo["text"], "Every cloud in one table")}
    assert shown == expected and {"AWS", "Google Cloud", "Microsoft"} <= {p for p, _ in shown}
    for dir_ in ("aws", "gcp", "azure", "k8s"):
        assert (demo["cwd"] / "exports" / dir_).is_dir()


def test_the_cluster_splits_every_node_charge_and_the_namespaces_add_up(
        demo: dict[str, Any]) -> None:
    con, text = demo["con"], demo["text"]
    nodes = re.search(r"EC2 instances of the AWS bill \(([^)]*)\)", text).group(1).split(", ")
    month = ("ChargePeriodStart >= TIMESTAMP '2023-11-01' AND ChargePeriodStart < "
             "TIMESTAMP '2023-12-01'")
    marks = ", ".join("?" for _ in nodes)
    (charges,) = con.execute(
        f"SELECT COUNT(*) FROM cost_analytics.cost_line_items WHERE ResourceId IN ({marks}) "
        f"AND {month}", nodes).fetchone()
    (origins,) = con.execute(
        f"SELECT COUNT(DISTINCT (x_RunId, x_SourceUri, x_SourceRowNumber)) FROM "
        f"cost_analytics.cost_allocations WHERE ResourceId IN ({marks})", nodes).fetchone()
    assert charges == origins > 0
    per_namespace = {ns or IDLE: v for ns, v in con.execute(
        "SELECT json_extract_string(AllocatedTags, '$.\"k8s:namespace\"'), SUM(BilledCost) "
        "FROM cost_analytics.cost_allocations WHERE x_AllocationCluster = ? GROUP BY 1",
        [CLUSTER]).fetchall()}
    shown = {r[0]: r[2] for r in _section(text, f"Cluster {CLUSTER} by namespace")}
    assert shown == {ns: _cents(v) for ns, v in per_namespace.items()}
    assert len(shown) > 2 and IDLE in shown
    assert "the same to the last decimal" in text
    v12, v13 = (dict(con.execute(f"SELECT BillingCurrency, SUM(BilledCost) FROM "
                                 f"cost_analytics.{view} GROUP BY 1").fetchall())
                for view in ("focus_v1_2", "focus_v1_3"))
    assert v12 == v13


def test_the_demo_ends_with_a_report_showing_namespaces(demo: dict[str, Any]) -> None:
    last = demo["text"].splitlines()[-1]
    match = re.fullmatch(r"cost report: (\S+) \(open it in a browser; .*\)", last)
    assert match, last
    page = Path(match.group(1))
    assert page == demo["cwd"] / "cost-report.html"
    html = page.read_text()
    for chart in ("chart-daily-USD", "chart-daily-EUR", "chart-namespaces"):
        assert f'data-chart="{chart}"' in html
    per_namespace = {ns or IDLE: v for ns, v in demo["con"].execute(
        "SELECT json_extract_string(AllocatedTags, '$.\"k8s:namespace\"'), SUM(BilledCost) "
        "FROM cost_analytics.cost_allocations GROUP BY 1").fetchall()}
    cells = re.findall(r'data-exact="([^"]+)" data-namespace="([^"]+)"', html)
    assert {ns: Decimal(exact) for exact, ns in cells} == per_namespace
    assert len(cells) == len(per_namespace)
