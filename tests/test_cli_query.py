"""`costflow query costs|forecast|recommendations|resources` on the fixture warehouse.

Called through `costflow.cli.main` in-process (the console script itself is covered by
test_cli.py); outputs are compared with the hand-computed totals of tests.query_fixture.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from costflow.cli import main
from tests.query_fixture import AWS_ACCT, build, insert
from tests.test_query_services import history_rows

NOV = ["--start", "2026-11-01", "--end", "2026-12-01"]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "warehouse.duckdb"
    build(path)
    return f"duckdb:///{path}"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_costs_table_keeps_the_old_flags_and_adds_scope(url, capsys) -> None:
    code, out, _ = cli(capsys, "query", "costs", *NOV, "--group-by", "provider",
                       "--filter", "currency=USD", "--warehouse", url)
    assert code == 0
    assert out.splitlines() == [  # rounded to cents for display, largest first, a total
        "provider      BillingCurrency   cost  rows",
        "------------  ---------------  -----  ----",
        "AWS           USD              12.50     3",
        "Google Cloud  USD               6.00     2",
        "------------  ---------------  -----  ----",
        "total         USD              18.50     5",
    ]
    code, out, _ = cli(capsys, "query", "costs", *NOV, "--group-by", "tag:team",
                       "--billing-account", AWS_ACCT, "--format", "csv", "--warehouse", url)
    assert list(csv.reader(io.StringIO(out))) == [
        ["tag:team", "BillingCurrency", "cost", "rows"], ["data", "USD", "2.5", "1"],
        ["web", "USD", "10", "2"]]


def test_costs_json_daily_per_provider(url, capsys) -> None:
    code, out, _ = cli(capsys, "query", "costs", *NOV, "--group-by", "service",
                       "--granularity", "DAILY", "--provider", "gcp", "--format", "json",
                       "--warehouse", url)
    assert json.loads(out) == [
        {"day": "2026-11-03", "service": "Compute Engine", "BillingCurrency": "USD",
         "cost": "4.25", "rows": 1},
        {"day": "2026-11-20", "service": "BigQuery", "BillingCurrency": "USD", "cost": "1.75",
         "rows": 1}]


def test_recommendations_and_resources(url, capsys) -> None:
    code, out, _ = cli(capsys, "query", "recommendations", "--category", "compute",
                       "--format", "json", "--warehouse", url)
    assert [(r["provider"], r["estimated_monthly_savings"]) for r in json.loads(out)] == [
        ("aws", "52.56"), ("gcp", "48.91")]
    code, out, _ = cli(capsys, "query", "resources", "--resource-type", "Virtual Machine",
                       *NOV, "--format", "csv", "--warehouse", url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["provider"], r["currency"], r["cost"]) for r in rows] == [
        ("aws", "USD", "10"), ("azure", "EUR", "7"), ("gcp", "USD", "4.25")]
    code, out, err = cli(capsys, "query", "recommendations", "--category", "gpu",
                         "--warehouse", url)
    assert code == 2 and "unknown recommendation category 'gpu'" in err


def test_forecast_table(tmp_path: Path, capsys) -> None:
    from costflow.warehouse.duckdb_engine import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "f.duckdb")
    warehouse.ensure_schema()
    insert(warehouse, history_rows(84, date(2026, 8, 10)))
    code, out, _ = cli(capsys, "query", "forecast", "--start", "2026-11-02", "--end",
                       "2027-01-01", "--warehouse", f"duckdb:///{tmp_path / 'f.duckdb'}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["start", "end", "currency", "cost", "lower", "upper"]
    assert [line.split()[:3] for line in lines[2:4]] == [
        ["2026-11-02", "2026-12-01", "USD"], ["2026-12-01", "2027-01-01", "USD"]]
    assert any(line.startswith("backtest on the last 14 days") for line in lines)
    code, out, err = cli(capsys, "query", "forecast", "--start", "2026-09-01", "--end",
                         "2026-10-01", "--warehouse", f"duckdb:///{tmp_path / 'f.duckdb'}")
    assert code == 2 and "not enough history" in err
