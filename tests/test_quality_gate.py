"""The data-quality gate: the GX suite rendered from the schema, planted violations per rule,
the gate in a real ingest (hard rejects with previous data intact, soft warns), the HTML report,
and the post-load assertions on DuckDB (real) and BigQuery (recording fake client)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot

from costflow.errors import CostflowError
from costflow.quality import html_report
from costflow.quality.assertions import assertion_files, run_assertions
from costflow.quality.expectations import HARD, SOFT, build_checks
from costflow.quality.gate import QualityGate
from costflow.schemas.focus import COST_LINE_ITEMS, SERVICE_SUBCATEGORIES
from costflow.schemas.render import arrow_schema
from costflow.warehouse import connect
from tests.test_bigquery_warehouse import FakeBigQueryClient, warehouse

ROW_SCHEMA = arrow_schema(COST_LINE_ITEMS)


def test_suite_is_rendered_from_the_schema() -> None:
    checks = {c.name: c for c in build_checks()}
    required = {c.name for c in COST_LINE_ITEMS if not c.nullable}
    assert {n.split(":", 1)[1] for n in checks if n.startswith("not_null:")} == required
    assert checks["allowed_values:ChargeClass"].kwargs["value_set"] == ["Correction"]
    assert checks["allowed_values:ChargeCategory"].kwargs["value_set"] == [
        "Usage", "Purchase", "Tax", "Credit", "Adjustment"]
    pairs = checks["subcategory_in_category"].kwargs["value_set"]
    assert len(pairs) == sum(len(s) for s in SERVICE_SUBCATEGORIES.values())
    assert checks["null_without_commitment:CommitmentDiscountStatus"].kwargs["row_condition"] \
        == "CommitmentDiscountId.isnull()"
    assert {c.severity for c in checks.values()} == {HARD, SOFT}
    assert checks["sign:Credit"].severity == SOFT and checks["period_order:ChargePeriodEnd"
                                                              ].severity == HARD
    # A FOCUS export has no x_ columns: the suite shrinks to the columns present.
    focus_only = build_checks([c.name for c in COST_LINE_ITEMS if not c.is_extension])
    assert not any("x_" in c.name for c in focus_only)


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory) -> pa.Table:
    """The real AWS sample, ingested, as a table in the staged row schema."""
    from tests.conftest import Ingest, require_shared

    sample = require_shared("samples/aws/cur_legacy_anonymous.csv")
    tmp = tmp_path_factory.mktemp("clean")
    Ingest(tmp)(sample)
    wh = connect(f"duckdb:///{tmp}/w.duckdb")
    try:
        got = wh.query("SELECT * FROM cost_analytics.cost_line_items ORDER BY x_SourceRowNumber")
    finally:
        wh.close()
    return pa.table({f.name: got.column(f.name).cast(f.type) for f in ROW_SCHEMA}).cast(
        ROW_SCHEMA)


def _plant(table: pa.Table, where: pa.Array, **values: object) -> pa.Table:
    for name, value in values.items():
        column = table.column(name)
        scalar = pa.scalar(value, type=column.type)
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.if_else(where, scalar, column))
    return table


def _first(table: pa.Table, **equal: str) -> pa.Array:
    mask = pa.array([True] * table.num_rows)
    for name, value in equal.items():
        mask = pc.and_(mask, pc.fill_null(pc.equal(table.column(name), value), False))
    first = pc.index(mask, True).as_py()
    assert first >= 0, equal
    return pa.array([i == first for i in range(table.num_rows)])


@pytest.fixture(scope="module")
def gate() -> QualityGate:
    return QualityGate()


def test_the_real_sample_passes_every_hard_check(gate, clean_rows) -> None:
    (quality,) = gate.validate_table(clean_rows).values()
    assert quality.hard_failures == []
    assert quality.outcomes["not_null:BilledCost"].evaluated == 1281


PLANTS = [
    # (check that must fail, rows to pick, values to plant)
    ("not_null:BilledCost", {}, {"BilledCost": None}),
    ("allowed_values:ChargeCategory", {}, {"ChargeCategory": "Refund"}),
    ("allowed_values:ChargeClass", {}, {"ChargeClass": "Rebill"}),
    ("subcategory_in_category", {}, {"ServiceSubcategory": "Virtual Machines",
                                      "ServiceCategory": "Storage"}),
    ("period_order:ChargePeriodEnd", {}, {"ChargePeriodEnd": pa.scalar(
        0, pa.timestamp("us", tz="UTC")).as_py()}),
    ("null_without_commitment:CommitmentDiscountType", {}, {
        "CommitmentDiscountType": "Savings Plan", "CommitmentDiscountId": None}),
    ("set_with_commitment:CommitmentDiscountCategory", {}, {
        "CommitmentDiscountId": "arn:aws:savingsplans::123412340534:savingsplan/x",
        "CommitmentDiscountType": "Savings Plan", "CommitmentDiscountCategory": None}),
    ("non_negative:ListUnitPrice", {"ChargeCategory": "Usage"},
     {"ListUnitPrice": Decimal("-0.000000001")}),
    ("null_on_tax:PricingQuantity", {"ChargeCategory": "Tax"}, {"PricingQuantity": Decimal(1)}),
    ("frequency:Purchase", {}, {"ChargeCategory": "Purchase", "ChargeFrequency": "Usage-Based"}),
]


@pytest.mark.parametrize(("check", "pick", "values"), PLANTS, ids=[p[0] for p in PLANTS])
def test_each_hard_rule_catches_its_planted_violation(gate, clean_rows, check, pick,
                                                      values) -> None:
    where = _first(clean_rows, **pick)
    planted = _plant(clean_rows, where, **values)
    (quality,) = gate.validate_table(planted).values()
    failed = {o.check.name: o for o in quality.hard_failures}
    assert check in failed, sorted(failed)
    outcome = failed[check]
    assert outcome.failed == 1
    row = pc.index(where, True).as_py()
    assert outcome.samples[0]["x_SourceRowNumber"] == clean_rows.column(
        "x_SourceRowNumber")[row].as_py()


def test_soft_sign_rule_only_warns(gate, clean_rows) -> None:
    planted = _plant(clean_rows, _first(clean_rows, ChargeCategory="Usage"),
                     ChargeCategory="Credit", BilledCost=Decimal("0.25"))
    (quality,) = gate.validate_table(planted).values()
    assert [o.check.name for o in quality.soft_failures] == ["sign:Credit"]
    assert quality.hard_failures == []


def _copy_with(sample: Path, out: Path, change) -> Path:
    with open(sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    change(rows[0], rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return out


SLICE_SQL = ("SELECT COUNT(*) AS n, SUM(BilledCost) AS billed FROM "
             "cost_analytics.cost_line_items")


@pytest.mark.needs_shared
def test_hard_failure_rejects_the_slice_and_keeps_previous_data(tmp_path, cur_sample,
                                                                 ingest, cur_sample_loaded) -> None:
    report = cur_sample_loaded  # one ingest of the sample, in this test's warehouse (a copy)
    assert report["status"] == "succeeded"
    assert [a["ok"] for a in report["quality"]["assertions"]] == [True, True, True]
    page = Path(report["quality_report"]).read_text()
    assert "Reconciliation per slice" in page and "not_null:BilledCost" in page
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    before = wh.query(SLICE_SQL).to_pylist()

    def negative_public_rate(header, rows):
        rate, kind = header.index("pricing/publicOnDemandRate"), header.index(
            "lineItem/LineItemType")
        target = next(r for r in rows[1:] if r[kind] == "Usage" and r[rate])
        target[rate] = "-0.5"

    bad = _copy_with(cur_sample, tmp_path / "negative-rate.csv", negative_public_rate)
    with pytest.raises(CostflowError) as info:
        ingest(bad)
    message = str(info.value)
    assert "aws/123412340534/2023-11 rejected" in message
    assert "non_negative:ListUnitPrice" in message and str(bad) in message
    assert wh.query(SLICE_SQL).to_pylist() == before
    ledger = wh.query("SELECT status FROM cost_analytics.load_runs ORDER BY started_at")
    assert ledger.column("status").to_pylist() == ["succeeded", "failed"]
    failed_page = sorted((tmp_path / "runs").glob("*.html"))
    assert any("rejected" in p.read_text() for p in failed_page)


@pytest.mark.needs_shared
def test_soft_failure_loads_with_a_warning(tmp_path, cur_sample, ingest) -> None:
    def unknown_service(header, rows):
        code, name = header.index("lineItem/ProductCode"), header.index("product/ProductName")
        rows[3][code], rows[3][name] = "AmazonBrandNewService", "Amazon Brand New Service"

    report = ingest(_copy_with(cur_sample, tmp_path / "new-service.csv", unknown_service))
    assert report["status"] == "succeeded"
    assert report["totals"]["rows_loaded"] == 1281
    (warning,) = [w for w in report["warnings"] if "service_mapped" in w]
    assert "1 row(s) fail soft check service_mapped" in warning and "row 3" in warning


@pytest.mark.needs_shared
def test_assertions_find_a_duplicated_source_row_on_duckdb(tmp_path, cur_sample_loaded) -> None:
    report = cur_sample_loaded  # one ingest of the sample, in this test's warehouse (a copy)
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    with wh.connection() as con:
        con.execute("INSERT INTO cost_analytics.cost_line_items SELECT * FROM "
                    "cost_analytics.cost_line_items WHERE x_SourceRowNumber = 7")
    results = {r.name: r for r in run_assertions(wh, report["run_id"])}
    assert results["assert_unique_source_row_per_slice"].failing_rows == 1
    assert results["assert_unique_source_row_per_slice"].samples[0]["copies"] == 2
    # The copy also breaks the slice's reconciliation; dead letters are untouched.
    assert results["assert_reconciliation_per_slice"].failing_rows == 1
    assert results["assert_no_orphan_dead_letters"].ok


def test_assertions_are_sent_to_bigquery_as_parameterized_bigquery_sql() -> None:
    client = FakeBigQueryClient()
    results = run_assertions(warehouse(client), "run-7")
    assert [r.name for r in results] == [f.split("/")[1][:-4] for f in assertion_files()]
    assert len(results) == 3 and all(r.ok for r in results)
    for _, sql, bound in client.of("query"):
        sqlglot.parse_one(sql, read="bigquery")
        assert "cost_analytics" not in sql and "`acme-finops-prod`.`billing`" in sql
        if "load_runs" in sql:  # orphans are looked for across every run
            assert bound == {}
        else:
            assert bound["run_id"]["parameterValue"] == {"value": "run-7"}


def test_html_report_escapes_and_shows_reconciliation() -> None:
    report = {"run_id": "r<1>", "status": "failed", "warehouse": "duckdb:///w", "started_at": "t",
              "finished_at": None, "error": "<script>x</script>", "warnings": ["w&1"],
              "slices": [{"slice": "aws/1/2023-11", "rows_read": 2, "rows_loaded": 2,
                          "rows_dead_lettered": 0, "source_basis": "1.5", "billed_cost": "1.5",
                          "warehouse_billed_cost": None, "dead_lettered_cost": "0",
                          "difference": "0", "reconciled": None}],
              "quality": {}}
    page = html_report.render(report)
    assert "<script>" not in page and "&lt;script&gt;" in page and "r&lt;1&gt;" in page
    assert "aws/1/2023-11" in page and "w&amp;1" in page
