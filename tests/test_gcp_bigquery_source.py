"""The ``bq://`` GCP billing export source: its SQL, the BigQuery client path, the Beam read,
and incremental loads with late rows.

No BigQuery emulator works offline, so: the source SQL runs for real, transpiled by sqlglot, on
a DuckDB table with the export's nesting (STRUCTs, LISTs of STRUCTs) built from the fixture rows
of `costflow.providers.gcp.samples.billing` (the ``bq+duckdb://`` source); the BigQuery client path
runs
against the recording `FakeBigQueryClient` of test_bigquery_warehouse (which refuses SQL
BigQuery would not parse and parameters the SQL does not use); the Beam read is checked by its
configuration, and its row-to-batch step on rows shaped like the Storage API's.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from apache_beam.io.gcp.bigquery import ReadFromBigQuery

from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.gcp import bigquery_export as bs
from costflow.providers.gcp.samples import billing as gs
from costflow.sources.contract import PlanRequest
from costflow.warehouse import connect
from tests.test_bigquery_warehouse import FakeBigQueryClient, FakeJob

GCP_REQUEST = PlanRequest("gcp", None, CATALOG)  # a planner call restricted to gcp
ANY_REQUEST = PlanRequest(None, None, CATALOG)

TABLE = "billing.gcp_billing_export_resource_v1_01338E_BE3FD6_363B4C"
WEB_OR_DATA = {"web-prod", "data-lake"}


def build_export(path: Path, rows: list[dict[str, Any]]) -> str:
    """A local DuckDB 'export table' with BigQuery's types and nesting; returns its URI."""
    parquet = gs.write_parquet(rows, path.with_suffix(".parquet"))
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS billing")
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM read_parquet(?)",
                    [str(parquet)])
    finally:
        con.close()
    return f"bq+duckdb://{path}?table={TABLE}"


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    parquet = gs.write_parquet(rows, path.with_name("late.parquet"))
    con = duckdb.connect(str(path))
    try:
        con.execute(f"INSERT INTO {TABLE} SELECT * FROM read_parquet(?)", [str(parquet)])
    finally:
        con.close()


def slices_of(plan) -> dict[tuple[str, str], int]:
    return {(f.billing_account_id, f.invoice_month): f.row_count for f in plan.files}


def count(rows, month: str, projects: set[str] | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        if r["invoice"]["month"] != month:
            continue
        if projects is not None and (r["project"] or {}).get("id") not in projects:
            continue
        out[r["billing_account_id"]] = out.get(r["billing_account_id"], 0) + 1
    return out


@pytest.fixture
def export(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "export.duckdb"
    return path, build_export(path, gs.fixture_rows())


# --- the SQL, on DuckDB ------------------------------------------------------------------------

def test_one_requested_day_selects_its_whole_invoice_months(export) -> None:
    _, uri = export
    plan = bs.plan_export(f"{uri}&start=2026-10-05&end=2026-10-06", GCP_REQUEST)
    rows = gs.fixture_rows()
    # Every October row of both accounts: also the Oct 1 fee and tax and September's
    # correction appended to the October invoice, though their usage is not on Oct 5.
    assert slices_of(plan) == {(a, "202610"): n for a, n in count(rows, "202610").items()}
    assert slices_of(plan)[(gs.USD_ACCOUNT, "202610")] == 13
    first, batch = next(bs.read_local(plan.files[0], CATALOG))
    assert first == 1 and batch.num_rows == 13
    assert "costflow_row_number" not in batch.schema.names


def test_usage_invoiced_next_month_brings_that_month_in(export) -> None:
    _, uri = export
    plan = bs.plan_export(f"{uri}&start=2026-10-01&end=2026-11-02", GCP_REQUEST)
    assert set(slices_of(plan)) == {(gs.USD_ACCOUNT, "202610"), (gs.EUR_ACCOUNT, "202610"),
                                    (gs.USD_ACCOUNT, "202611")}


def test_authorized_projects_filter_rows_and_slices(export) -> None:
    _, uri = export
    rows = gs.fixture_rows()
    plan = bs.plan_export(f"{uri}&start=2026-10-01&end=2026-11-01"
                          "&authorized_project=web-prod&authorized_project=data-lake", GCP_REQUEST)
    # The EUR account has only eu-shop-prod rows; support (no project) drops out. October's
    # last Pacific hour is on November's invoice, so that month comes in too.
    assert slices_of(plan) == {
        (gs.USD_ACCOUNT, month): count(rows, month, WEB_OR_DATA)[gs.USD_ACCOUNT]
        for month in ("202610", "202611")}
    source = plan.files[0]
    read = [b for _, b in bs.read_local(source, CATALOG)]
    projects = {p["id"] for b in read for p in b.column("project").to_pylist()}
    assert projects == WEB_OR_DATA
    assert source.uri.endswith("&authorized_project=data-lake&authorized_project=web-prod")


def test_exported_since_reaches_months_outside_the_usage_window(export) -> None:
    _, uri = export
    window = f"{uri}&start=2026-12-01&end=2026-12-02"
    assert bs.plan_export(window, GCP_REQUEST).files == []
    # The late November-invoice row was exported 2026-11-02 22:00 UTC; usage ends before Dec 2.
    plan = bs.plan_export(f"{window}&exported_since=2026-11-02T12:00:00Z", GCP_REQUEST)
    assert set(slices_of(plan)) == {(gs.USD_ACCOUNT, "202611")}


def test_bad_uris_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="PROJECT.DATASET.TABLE"):
        bs.parse_uri("bq://just-a-table")
    with pytest.raises(ConfigError, match="--end must be after --start"):
        bs.parse_uri("bq://p.d.gcp_billing_export_v1_X?start=2026-10-02&end=2026-10-01")
    with pytest.raises(ConfigError, match="letters, digits"):
        bs.parse_uri("bq://p.d.t`; DROP TABLE x")
    with pytest.raises(ConfigError, match="--format"):
        bs.source_format_of(bs.parse_uri("bq://p.d.my_view"), None)


def test_default_window_is_previous_and_current_month() -> None:
    spec = bs.parse_uri("bq://p.d.gcp_billing_export_v1_X", today=date(2026, 11, 3))
    # Pacific days: PDT (UTC-7) on Oct 1, PST (UTC-8) after Nov 1.
    assert (spec.start, spec.end) == (datetime(2026, 10, 1, 7, tzinfo=UTC),
                                      datetime(2026, 11, 4, 8, tzinfo=UTC))
    assert spec.lookback_days == 3 and spec.authorized_projects == ()


def test_window_days_are_google_billing_days_and_timestamps_stay_as_given(export) -> None:
    spec = bs.parse_uri("bq://p.d.gcp_billing_export_v1_X?start=2026-12-01"
                        "&end=2026-12-02T06:30:00Z")
    assert (spec.start, spec.end) == (datetime(2026, 12, 1, 8, tzinfo=UTC),
                                      datetime(2026, 12, 2, 6, 30, tzinfo=UTC))
    # The last October hour in Pacific time (Nov 1 05:00 UTC, invoiced in November) is in
    # October's days, so a window of October days touches November's invoice month too.
    _, uri = export
    plan = bs.plan_export(f"{uri}&start=2026-10-31&end=2026-11-01", GCP_REQUEST)
    assert (gs.USD_ACCOUNT, "202611") in slices_of(plan)


# --- the BigQuery client path ------------------------------------------------------------------

@dataclass
class QueryJobWithDestination(FakeJob):
    destination: Any = None


def test_bigquery_backend_binds_typed_parameters_and_reads_the_real_table() -> None:
    uri = ("bq://my-project.billing_export.gcp_billing_export_resource_v1_XXXXXX"
           "?start=2026-10-01&end=2026-11-01&authorized_project=web-prod"
           "&authorized_project=data-lake")
    high = datetime(2026, 11, 1, 12, tzinfo=UTC)
    client = FakeBigQueryClient({
        "touched_slices": FakeJob(rows=[{"billing_account_id": gs.USD_ACCOUNT,
                                         "invoice_month": "202610", "row_count": 8,
                                         "max_export_time": high}]),
        "export_rows": QueryJobWithDestination(destination=SimpleNamespace(
            project="my-project", dataset_id="_0123abc", table_id="anon_42"))})
    backend = bs.BigQueryBackend(client)
    plan = bs.plan_export(uri, ANY_REQUEST, backend=backend)
    (source,) = plan.files
    assert source.source_format == "gcp_billing_export_resource_v1"
    assert source.delivery_id == "rows=8;max_export_time=2026-11-01T12:00:00+00:00"
    sql, bound = client.query_labelled("touched_slices")
    assert "`my-project`.`billing_export`.`gcp_billing_export_resource_v1_XXXXXX`" in sql
    assert "billing_export.gcp_billing_export " not in sql  # the placeholder is gone
    assert bound["authorized_projects"] == {
        "name": "authorized_projects", "parameterType": {"type": "ARRAY", "arrayType": {
            "type": "STRING"}}, "parameterValue": {"arrayValues": [
                {"value": "data-lake"}, {"value": "web-prod"}]}}
    assert bound["exported_since"]["parameterType"] == {"type": "TIMESTAMP"}
    assert bound["exported_since"]["parameterValue"].get("value") is None
    assert bound["start_time"]["parameterValue"]["value"] == "2026-10-01 07:00:00+00:00"

    transform = bs.beam_read(source, backend=backend)
    _, rows_bound = client.query_labelled("export_rows")
    assert rows_bound == bound  # the same window, so the same months
    bs.beam_read(source, backend=backend)  # a second slice of the run: no second query
    assert len(client.of("query")) == 2
    read = transform.read_transform()
    assert isinstance(read, ReadFromBigQuery)
    assert read.method == ReadFromBigQuery.Method.DIRECT_READ
    assert read._kwargs["table"] == "my-project:_0123abc.anon_42"
    assert read._kwargs["row_restriction"] == (
        f'billing_account_id = "{gs.USD_ACCOUNT}" AND invoice.month = "202610"')
    assert read.use_native_datetime is True


def test_an_empty_project_list_binds_an_empty_string_array() -> None:
    client = FakeBigQueryClient({"touched_slices": FakeJob(rows=[])})
    plan = bs.plan_export("bq://p.d.gcp_billing_export_v1_X?start=2026-10-01&end=2026-10-02",
                          GCP_REQUEST, backend=bs.BigQueryBackend(client))
    assert plan.files == [] and plan.empty_files
    _, bound = client.query_labelled("touched_slices")
    assert bound["authorized_projects"]["parameterType"] == {"type": "ARRAY",
                                                             "arrayType": {"type": "STRING"}}
    assert bound["authorized_projects"]["parameterValue"]["arrayValues"] == []


def test_rows_become_numbered_batches_and_gaps_are_refused(export) -> None:
    _, uri = export
    (source, _) = bs.plan_export(f"{uri}&start=2026-10-05&end=2026-10-06", GCP_REQUEST).files
    records = gs.typed_records(gs.fixture_rows()[:3])
    rows = [{**r, "costflow_row_number": n} for n, r in zip((3, 1, 2), records, strict=True)]
    (out,) = bs.RowsToBatch(source).process((0, rows))
    assert out.first_row == 1 and out.batch.num_rows == 3
    assert out.batch.column("cost").to_pylist() == [records[i]["cost"] for i in (1, 2, 0)]
    with pytest.raises(SourceError, match="not complete"):
        list(bs.RowsToBatch(source).process((0, rows[:1])))


def test_row_restriction_refuses_unchecked_keys(export) -> None:
    _, uri = export
    (source, _) = bs.plan_export(f"{uri}&start=2026-10-05&end=2026-10-06", GCP_REQUEST).files
    bad = copy.copy(source)
    object.__setattr__(bad, "invoice_month", '202610" OR TRUE OR "')
    with pytest.raises(ValueError, match="unchecked"):
        bs.row_restriction(bad)


# --- incremental loads through the pipeline ----------------------------------------------------

def _loaded(tmp: Path) -> dict[tuple[str, str], tuple[int, Decimal]]:
    wh = connect(f"duckdb:///{tmp}/w.duckdb")
    try:
        rows = wh.query("""
            SELECT BillingAccountId AS a, FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) AS m,
                   COUNT(*) AS n, SUM(BilledCost) AS billed
            FROM cost_analytics.cost_line_items GROUP BY 1, 2""").to_pylist()
    finally:
        wh.close()
    return {(r["a"], r["m"]): (r["n"], r["billed"]) for r in rows}


def _high_water(tmp: Path) -> dict[tuple[str, str], datetime]:
    wh = connect(f"duckdb:///{tmp}/w.duckdb")
    try:
        rows = wh.query("""
            SELECT BillingAccountId AS a, FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) AS m,
                   MAX(high_water_export_time) AS hw
            FROM cost_analytics.load_slices GROUP BY 1, 2""").to_pylist()
    finally:
        wh.close()
    return {(r["a"], r["m"]): r["hw"] for r in rows}


def _expected(rows) -> dict[tuple[str, str], tuple[int, Decimal]]:
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["billing_account_id"], r["invoice"]["month"])
        counts[key] = counts.get(key, 0) + 1
    return {k: (counts[k], v) for k, v in gs.truth(rows).items()}


def test_late_rows_reload_their_month_to_exactly_the_union(tmp_path, ingest) -> None:
    path = tmp_path / "export.duckdb"
    first = gs.fixture_rows()
    uri = build_export(path, first) + "&start=2026-10-01&end=2026-11-02"
    report = ingest(uri, provider="gcp")
    assert report["status"] == "succeeded"
    assert _loaded(tmp_path) == _expected(first)
    assert _high_water(tmp_path)[(gs.USD_ACCOUNT, "202610")] == datetime(2026, 11, 1, 12,
                                                                         tzinfo=UTC)

    # Late rows for day Oct 5 appended by a later export, one a byte-identical repeat of an
    # existing row except export_time (identical rows are legitimate: never deduplicated).
    t = datetime(2026, 10, 5, 7, tzinfo=UTC)
    late = [gs.row(start=t, cost=0.194236, cost_at_list=0.21048, export_delay_h=24 * 30),
            gs.row(start=t, service="storage", project=gs.DATA, cost=0.000731,
                   credits=[gs.credit("FREE_TIER", -0.000731, "Free tier", "FreeTier")],
                   export_delay_h=24 * 30)]
    append_rows(path, late)
    report = ingest(uri, provider="gcp")
    assert report["status"] == "succeeded"
    union = first + late
    assert _loaded(tmp_path) == _expected(union)
    assert _loaded(tmp_path)[(gs.USD_ACCOUNT, "202610")][0] == 15
    assert _high_water(tmp_path)[(gs.USD_ACCOUNT, "202610")] == datetime(2026, 11, 4, 8,
                                                                         tzinfo=UTC)

    # Nothing new: every slice has the same rows and high-water, so the run reads nothing.
    report = ingest(uri, provider="gcp")
    assert report["status"] == "skipped"
    assert _loaded(tmp_path) == _expected(union)


def test_incremental_run_without_dates_uses_the_ledger_high_water(tmp_path, ingest) -> None:
    path = tmp_path / "export.duckdb"
    first = gs.fixture_rows()
    base = build_export(path, first)
    assert ingest(base + "&start=2026-10-01&end=2026-11-02",
                  provider="gcp")["status"] == "succeeded"
    # A correction of October usage appended to the October invoice weeks later: its usage is
    # outside a window that starts in December, only its export_time brings October back.
    late = [gs.row(start=datetime(2026, 10, 7, 7, tzinfo=UTC), cost=-0.05, cost_type="adjustment",
                   usage=None, export_delay_h=24 * 29, adjustment={
                       "id": "COR-3001", "description": "Usage correction", "mode":
                       "PARTIAL_CORRECTION", "type": "USAGE_CORRECTION"})]
    append_rows(path, late)
    report = ingest(base + "&start=2026-12-01&end=2026-12-02", provider="gcp",
                    extra=["--lookback_days=3"])
    assert report["status"] == "succeeded"
    assert _loaded(tmp_path) == _expected(first + late)
    # With no lookback re-read and a window that touches nothing, nothing is found.
    assert bs.plan_export(base + "&start=2026-12-01&end=2026-12-02", GCP_REQUEST).files == []


def test_cli_flags_become_pipeline_options_and_the_window() -> None:
    from apache_beam.options.pipeline_options import PipelineOptions

    from costflow.cli import _parser, ingest_argv
    from costflow.pipelines.options import SourceOptions

    source = "bq://my-project.billing_export.gcp_billing_export_resource_v1_XXXXXX"
    args, extra = _parser().parse_known_args([
        "ingest", "--provider", "gcp", "--source", source, "--start", "2026-10-01",
        "--end", "2026-11-01", "--authorized-project", "web-prod",
        "--authorized-project", "data-lake", "--lookback-days", "5"])
    argv = ingest_argv(args, extra)
    assert argv[0] == f"--source={source}?start=2026-10-01&end=2026-11-01"
    options = PipelineOptions(argv).view_as(SourceOptions)
    assert options.authorized_project == ["web-prod", "data-lake"]
    assert options.lookback_days == 5
    resolved = bs.resolve_pattern(options.source[0], {
        "authorized_project": options.authorized_project, "lookback_days": 5}, None)
    spec = bs.parse_uri(resolved)
    assert spec.authorized_projects == ("data-lake", "web-prod")
    assert (spec.start, spec.end, spec.lookback_days) == (
        datetime(2026, 10, 1, 7, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC), 5)


def test_sources_read_by_a_beam_transform_join_the_pipeline(tmp_path, monkeypatch, ingest) -> None:
    """The build() branch for Beam-IO sources (what bq:// slices use), fed here by the local
    reader through beam.Create in place of ReadFromBigQuery."""
    import apache_beam as beam

    from costflow.pipelines import ingest as ingest_module
    from costflow.providers import Catalog
    from costflow.sources.contract import Container, SourceBatch

    def as_transform(source):
        batches = [SourceBatch(source, first, batch)
                   for first, batch in bs.read_local(source, CATALOG)]
        return beam.Create(batches)

    # GCP as declared, but its local export slices read through a Beam transform.
    gcp = CATALOG.provider("gcp")
    containers = tuple(Container(bs.LOCAL, beam_reader=as_transform) if c.name == bs.LOCAL
                       else c for c in gcp.containers)
    catalog = Catalog(tuple(dataclasses.replace(gcp, containers=containers) if p is gcp else p
                            for p in CATALOG.providers))
    monkeypatch.setattr(ingest_module, "CATALOG", catalog)
    rows = gs.fixture_rows()
    uri = build_export(tmp_path / "export.duckdb", rows) + "&start=2026-10-01&end=2026-11-02"
    assert ingest(uri, provider="gcp")["status"] == "succeeded"
    assert _loaded(tmp_path) == _expected(rows)
