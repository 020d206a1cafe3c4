"""Cost tables for people: rounded to the currency's minor unit with thousands separators,
largest first, a total per currency; rich on a terminal, plain text in a pipe; JSON and CSV
stay exact and in the warehouse's order.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costflow.cli import main
from costflow.text import money, render_costs
from tests.query_fixture import ROWS, build

COLUMNS = ["service", "BillingCurrency", "cost", "rows"]
ROWS_IN = [
    {"service": "S3", "BillingCurrency": "USD", "cost": Decimal("2.505"), "rows": 1},
    {"service": "EC2", "BillingCurrency": "USD", "cost": Decimal("1234567.8949"), "rows": 1200},
    {"service": "VM", "BillingCurrency": "JPY", "cost": Decimal("98765.5"), "rows": 3},
    {"service": "Lambda", "BillingCurrency": "USD", "cost": Decimal("-0.004"), "rows": 2},
    {"service": "SQL", "BillingCurrency": "KWD", "cost": Decimal("10.00049"), "rows": 1},
]


def test_money_rounds_to_the_minor_unit_half_even_with_separators() -> None:
    assert money(Decimal("1234567.8949"), "USD") == "1,234,567.89"
    assert money(Decimal("2.505"), "USD") == "2.50"        # half-even
    assert money(Decimal("2.515"), "USD") == "2.52"
    assert money(Decimal("98765.5"), "JPY") == "98,766"    # no minor unit
    assert money(Decimal("10.00049"), "KWD") == "10.000"   # three places
    assert money(Decimal("-0.004"), "USD") == "0.00"       # never "-0.00"
    assert money(Decimal("-1234.5"), "EUR") == "-1,234.50"


def test_plain_table_is_sorted_rounded_and_totalled_per_currency() -> None:
    lines = render_costs(ROWS_IN, COLUMNS, "table").splitlines()
    assert lines == [
        "service  BillingCurrency          cost   rows",
        "-------  ---------------  ------------  -----",
        "VM       JPY                    98,766      3",
        "SQL      KWD                    10.000      1",
        "EC2      USD              1,234,567.89  1,200",
        "S3       USD                      2.50      1",
        "Lambda   USD                      0.00      2",
        "-------  ---------------  ------------  -----",
        "total    JPY                    98,766      3",
        "total    KWD                    10.000      1",
        "total    USD              1,234,570.40  1,203",
    ]
    # The USD total is the exact sum, rounded once (not a sum of rounded amounts).
    assert sum(r["cost"] for r in ROWS_IN if r["BillingCurrency"] == "USD") == Decimal(
        "1234570.3959")


def test_json_and_csv_stay_exact_and_unsorted() -> None:
    assert [r["cost"] for r in json.loads(render_costs(ROWS_IN, COLUMNS, "json"))] == [
        "2.505", "1234567.8949", "98765.5", "-0.004", "10.00049"]
    rows = list(csv.DictReader(io.StringIO(render_costs(ROWS_IN, COLUMNS, "csv"))))
    assert [r["cost"] for r in rows] == ["2.505", "1234567.8949", "98765.5", "-0.004",
                                         "10.00049"]


def test_a_daily_table_keeps_the_days_in_order() -> None:
    rows = [{"day": date(2026, 11, d), "service": s, "BillingCurrency": "USD",
             "cost": Decimal(c), "rows": 1}
            for d, s, c in ((2, "A", "1"), (1, "A", "1"), (1, "B", "5"), (2, "B", "0.5"))]
    lines = render_costs(rows, ["day", "service", "BillingCurrency", "cost", "rows"],
                         "table").splitlines()
    assert [line.split()[:2] for line in lines[2:6]] == [
        ["2026-11-01", "B"], ["2026-11-01", "A"], ["2026-11-02", "A"], ["2026-11-02", "B"]]
    assert lines[-1].split() == ["total", "USD", "7.50", "4"]


@pytest.fixture
def url(tmp_path: Path) -> str:
    build(tmp_path / "w.duckdb").close()
    return f"duckdb:///{tmp_path}/w.duckdb"


def _nov_total(currency: str) -> Decimal:
    """Oracle: the fixture's November rows in ``currency``, summed here."""
    return sum((r["BilledCost"] for r in ROWS if r["BillingCurrency"] == currency
                and r["ChargePeriodStart"].month == 11), Decimal(0))


def test_query_costs_on_a_terminal_uses_rich_and_in_a_pipe_plain_text(
        url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["-q", "query", "costs", "--start", "2026-11-01", "--end", "2026-12-01",
            "--group-by", "provider", "--warehouse", url]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert "\x1b[" not in plain and "┃" not in plain
    totals = {line.split()[1]: line.split()[2] for line in plain.splitlines()
              if line.startswith("total")}
    assert totals == {"EUR": money(_nov_total("EUR"), "EUR"),
                      "USD": money(_nov_total("USD"), "USD")}
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(argv) == 0
    drawn = capsys.readouterr().out
    assert "\x1b[" in drawn and "┃" in drawn                # rich: styles and box drawing
    text = re.sub(r"\x1b\[[0-9;]*m", "", drawn)
    assert re.search(r"total\s+│\s+USD\s+│\s+18\.50\s+│\s+5", text), text
    assert main([*argv, "--format", "csv"]) == 0             # exact, whatever stdout is
    rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["provider"]: r["cost"] for r in rows} == {
        "AWS": "12.5", "Google Cloud": "6", "Microsoft": "7"}
