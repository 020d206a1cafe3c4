"""A run's totals are summed per currency, never across currencies.

Two payer accounts billed in different currencies can arrive in one run. The run report, the
printed summary, the ledger's run totals and a sync's note each say the sums per currency; a
single cross-currency number (USD plus EUR) is never shown or stored.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.pipelines.report import RunReport, format_summary
from costflow.reconcile import SliceKey, SliceStats
from costflow.sync.child import parse_outcome
from costflow.warehouse import connect

NOV = datetime(2023, 11, 1, tzinfo=UTC)


def _report() -> RunReport:
    report = RunReport(run_id="r1", started_at=NOV, warehouse="duckdb:///w", sources=[])
    report.add_totals({
        SliceKey("aws", "111111111111", NOV): SliceStats(
            2, 2, 0, Decimal("1.50"), Decimal("1.50"), currencies=frozenset({"USD"})),
        SliceKey("aws", "222222222222", NOV): SliceStats(
            3, 2, 1, Decimal("7.25"), Decimal("7.00"), Decimal("0.25"),
            currencies=frozenset({"EUR"})),
        SliceKey("aws", "333333333333", NOV): SliceStats(
            1, 1, 0, Decimal("2"), Decimal("2"), currencies=frozenset({"USD"})),
    }, {})
    return report


def test_totals_are_per_currency_and_none_across_currencies() -> None:
    totals = _report().to_dict()["totals"]
    assert totals["rows_read"] == 6 and totals["rows_dead_lettered"] == 1
    assert totals["billed_cost"] is None and totals["source_basis"] is None
    assert totals["by_currency"] == {
        "EUR": {"source_basis": "7.25", "billed_cost": "7", "dead_lettered_cost": "0.25"},
        "USD": {"source_basis": "3.5", "billed_cost": "3.5", "dead_lettered_cost": "0"},
    }
    text = format_summary(_report().to_dict())
    assert "EUR: source basis 7.25 = BilledCost 7 + dead-lettered 0.25" in text
    assert "USD: source basis 3.5 = BilledCost 3.5 + dead-lettered 0" in text
    assert "10.5" not in text and "10.75" not in text  # no USD + EUR anywhere


def test_a_sync_note_names_each_currency() -> None:
    report = {**_report().to_dict(), "status": "succeeded"}
    outcome = parse_outcome(0, json.dumps(report), "", "r1")
    assert outcome.note == "3 slice(s), billed 7.00 EUR + 3.50 USD, 1 dead-lettered"
    assert outcome.billed_cost is None


def _in_euros(sample: Path, out: Path) -> Path:
    """The CUR sample as another payer's bill in EUR (account ids and currency changed)."""
    with open(sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    for name, value in (("lineItem/CurrencyCode", "EUR"), ("bill/PayerAccountId", "999999999999")):
        index = header.index(name)
        for row in rows[1:]:
            row[index] = value
    with open(out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return out


@pytest.mark.needs_shared
def test_a_run_of_two_currencies_reports_and_records_each(tmp_path, cur_sample,
                                                          ingest) -> None:
    euros = _in_euros(cur_sample, tmp_path / "eur.csv")
    report = ingest(cur_sample, euros, cli=True)
    assert report["status"] == "succeeded", report.get("error")
    currencies = {s["billing_account_id"]: s["currency"] for s in report["slices"]}
    assert currencies == {"123412340534": "USD", "999999999999": "EUR"}, currencies
    by_currency = report["totals"]["by_currency"]
    assert by_currency["USD"]["billed_cost"] == by_currency["EUR"]["billed_cost"]
    assert report["totals"]["billed_cost"] is None
    page = Path(report["quality_report"]).read_text()
    assert "<th>currency</th>" in page and "EUR</td>" in page and "USD</td>" in page
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    (run,) = wh.query("SELECT billed_cost_total, rows_loaded FROM "
                      "cost_analytics.load_runs").to_pylist()
    assert run == {"billed_cost_total": None, "rows_loaded": 2 * 1281}
