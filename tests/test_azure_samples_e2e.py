"""Every real Azure sample under ../shared/samples/azure ingests and reconciles exactly per slice.

The expected totals are computed here independently of the normalizer: the csv module, Decimal,
and the slice rule written out by hand (billing profile, else billing account, else
subscription; billing period from BillingPeriodStartDate, else the usage date's month).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.errors import CostflowError, SourceError
from costflow.pipelines.report import format_summary
from costflow.warehouse import connect
from tests.conftest import require_shared

pytestmark = pytest.mark.needs_shared


def _key(header: str) -> str:
    """``Ressourcengruppe (ResourceGroup)`` -> ``resourcegroup`` (BOM stripped)."""
    text = header.lstrip("\ufeff").strip()
    inner = re.search(r"\(([^()]+)\)\s*$", text)
    return (inner.group(1) if inner else text).strip().lower()


def _month(text: str) -> str:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text.split(" ")[0],
                                     fmt).strftime("%Y-%m")
        except ValueError:
            continue
    raise AssertionError(f"unexpected date {text!r}")


def expected_slices(files: list[Path]) -> dict[tuple[str | None, str], Decimal]:
    """(account, YYYY-MM) -> sum of the cost column over the files' rows."""
    totals: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        names = [_key(h) for h in rows[0]]
        for values in rows[1:]:
            row = dict(zip(names, values, strict=False))

            def first(*keys: str, row: dict = row) -> str | None:
                return next((row[k] for k in keys if row.get(k)), None)

            cost = first("costinbillingcurrency", "pretaxcost", "cost") or "0"
            account = first("billingprofileid", "billingaccountid", "subscriptionid",
                            "subscriptionguid")
            period = first("billingperiodstartdate") or first("date", "usagedatetime")
            totals[(account, _month(period))] += Decimal(cost)
    return dict(totals)


def test_files_without_currency_need_the_users_assertion(ingest) -> None:
    folder = require_shared("samples/azure")
    with pytest.raises(SourceError, match=r"values/MissingBrackets.csv.*no currency column.*"
                                          r"--billing-currency"):
        ingest(folder, provider="azure")


def test_every_sample_file_ingests_and_reconciles_per_slice(tmp_path: Path, ingest) -> None:
    folder = require_shared("samples/azure")
    every = sorted(folder.rglob("*.csv"))
    assert len(every) == 12
    # headersets/BOM.csv holds one row with only a date: a source with rows and none loaded
    # fails a run (it would otherwise "succeed" with nothing in it), so it is tried on its own.
    bom = folder / "headersets" / "BOM.csv"
    with pytest.raises(CostflowError, match=r"BOM.csv: 1 of 1 rows could not be loaded"):
        ingest(bom, provider="azure", tmp=tmp_path / "bom")
    report = ingest(*[p for p in every if p != bom], provider="azure",
                    extra=["--billing_currency=USD"])
    assert report["status"] == "succeeded"
    # The amortized export is paired with its actual twin: never added (BilledCost 0).
    amortized = folder / "ea_amortized_small.csv"
    expected = expected_slices([p for p in every if p not in (amortized, bom)])
    got = {(s["billing_account_id"], s["billing_period_start"][:7]): s
           for s in report["slices"]}
    assert set(got) == set(expected)
    for key, total in expected.items():
        s = got[key]
        assert Decimal(s["source_basis"]) == total, key
        assert Decimal(s["warehouse_billed_cost"]) + Decimal(s["dead_lettered_cost"]) == total
        assert s["reconciled"] is True
    assert expected[("0bd50fdf-c923-4e1e-850c-196dd3dcc123", "2021-02")] == Decimal(
        "16.393506212224391")
    # The no-rows file loads nothing and says so.
    assert report["empty_files"] == [str(folder / "ea_no_rows.csv")]
    assert "ea_no_rows.csv has a header and no rows: nothing to load" in format_summary(report)
    warehouse = connect(f"duckdb:///{tmp_path}/w.duckdb")
    try:
        by_file = {r["uri"]: r for r in warehouse.query(
            "SELECT x_SourceUri AS uri, COUNT(*) AS n, SUM(BilledCost) AS billed, "
            "LOGICAL_AND(x_DataQualityFlags LIKE '%BillingCurrency:asserted_by_user%') AS flagged,"
            " LOGICAL_OR(x_DataQualityFlags LIKE '%BillingCurrency:asserted_by_user%') AS any_flag,"
            " MIN(BillingCurrency) AS cur FROM cost_analytics.cost_line_items GROUP BY 1"
        ).to_pylist()}
        dead = warehouse.query("SELECT x_SourceUri AS uri, ErrorReason AS reason "
                               "FROM cost_analytics.dead_letters").to_pylist()
    finally:
        warehouse.close()
    assert str(folder / "ea_no_rows.csv") not in by_file
    for name in ("values/Template.csv", "values/MissingBrackets.csv"):
        row = by_file[str(folder / name)]
        assert row["flagged"] and row["cur"] == "USD"
    assert by_file[str(folder / "values/Template.csv")]["n"] == 87
    assert not any(r["any_flag"] for uri, r in by_file.items() if "/values/" not in uri)
    assert by_file[str(amortized)]["billed"] == 0
    # Three amortized rows with more than 18 decimal places are dead letters with reasons.
    assert sorted(Path(d["uri"]).name for d in dead) == ["ea_amortized_small.csv"] * 3
    assert any("resourcelocation have no values" in w for w in report["warnings"])


def test_cli_flag_becomes_the_pipeline_option() -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    from costflow.cli import _parser, ingest_argv
    from costflow.pipelines.options import SourceOptions

    args, extra = _parser().parse_known_args(
        ["ingest", "--source", "x.csv", "--billing-currency", "EUR"])
    argv = ingest_argv(args, extra)
    assert PipelineOptions(argv).view_as(SourceOptions).billing_currency == "EUR"


def test_a_malformed_assertion_is_refused(ingest) -> None:
    from costflow.errors import ConfigError

    source = require_shared("samples/azure/values/MissingBrackets.csv")
    with pytest.raises(ConfigError, match="not an ISO 4217 code"):
        ingest(source, provider="azure", extra=["--billing_currency=usd"])
