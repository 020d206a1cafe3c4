"""The DuckDB warehouse keeps the numbers right: replace, never add; fail, never half-commit."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from costflow.errors import ConfigError, IngestFailed, ReconciliationError
from costflow.reconcile import SliceKey, SliceStats
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.failing_warehouse import FailingDuckDBWarehouse, InjectedFailure
from tests.warehouse_rows import (
    ACCOUNT,
    DEC,
    NOV,
    OTHER_ACCOUNT,
    S3,
    SOURCE,
    cost_row,
    dead_letter,
    expected_for,
    run_start,
    stage,
)

NOV_KEY = SliceKey("aws", ACCOUNT, NOV)
DEC_KEY = SliceKey("aws", ACCOUNT, DEC)
ROWS = ("SELECT * EXCEPT (x_RunId) FROM cost_analytics.cost_line_items "
        "ORDER BY BillingAccountId, BillingPeriodStart, x_SourceUri, x_SourceRowNumber")


def november() -> list[dict]:
    return [cost_row("0.0000000497", row_number=1), cost_row("1.25", row_number=2),
            cost_row("0.023", row_number=3, service=S3)]


def december() -> list[dict]:
    return [cost_row("3.10", period=DEC, row_number=4)]


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path / "state" / "warehouse.duckdb")
    warehouse.ensure_schema()
    return warehouse


def commit(wh: DuckDBWarehouse, directory: Path, run_id: str, rows: list[dict],
           dead: list[dict] = (), expected: dict | None = None, **kw) -> list:
    wh.begin_run(run_start(run_id))
    staged = stage(directory / run_id, run_id, rows, list(dead), **kw)
    return wh.commit_run(staged, expected if expected is not None else expected_for(rows, dead),
                         {"run_id": run_id, "note": "test"})


def ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def one(wh: DuckDBWarehouse, sql: str, **params) -> dict:
    (row,) = wh.query(sql, params).to_pylist()
    return row


def slice_total(wh: DuckDBWarehouse, account: str = ACCOUNT, period=NOV) -> dict:
    return one(wh, "SELECT COUNT(*) AS n, SUM(BilledCost) AS cost "
                   "FROM cost_analytics.cost_line_items "
                   "WHERE BillingAccountId = @a AND BillingPeriodStart = @p", a=account, p=period)


def ledger(wh: DuckDBWarehouse, run_id: str) -> dict:
    return one(wh, "SELECT * FROM cost_analytics.load_runs WHERE run_id = @r", r=run_id)


def no_staging_left(wh: DuckDBWarehouse) -> bool:
    """No staging table or view survives a commit, whatever its outcome (native DuckDB SQL)."""
    with wh.connection() as con:
        (count,) = con.execute("SELECT COUNT(*) FROM information_schema.tables "
                               "WHERE starts_with(table_name, '_staged')").fetchone()
    return count == 0


def test_commit_loads_rows_and_the_ledger_says_succeeded(wh, tmp_path) -> None:
    checks = commit(wh, tmp_path, "run-1", november() + december())

    assert [(c.key, c.ok) for c in checks] == [(NOV_KEY, True), (DEC_KEY, True)]
    assert slice_total(wh) == {"n": 3, "cost": Decimal("1.2730000497")}
    assert slice_total(wh, period=DEC) == {"n": 1, "cost": Decimal("3.10")}
    run = ledger(wh, "run-1")
    assert (run["status"], run["rows_read"], run["rows_loaded"], run["rows_dead_lettered"]) == (
        "succeeded", 4, 4, 0)
    assert run["billed_cost_total"] == Decimal("4.3730000497")
    assert run["source_basis_total"] == Decimal("4.3730000497")
    assert run["error"] is None and run["finished_at"] is not None
    assert json.loads(run["report"]) == {"note": "test", "run_id": "run-1"}
    assert json.loads(run["sources"])[0]["uri"] == SOURCE
    written = wh.query("SELECT BillingPeriodStart, rows_read, rows_loaded, source_basis, "
                       "loaded_billed_cost, dead_lettered_cost FROM cost_analytics.load_slices "
                       "WHERE run_id = 'run-1' ORDER BY BillingPeriodStart").to_pylist()
    assert [tuple(r.values()) for r in written] == [
        (NOV, 3, 3, Decimal("1.2730000497"), Decimal("1.2730000497"), Decimal(0)),
        (DEC, 1, 1, Decimal("3.10"), Decimal("3.10"), Decimal(0)),
    ]
    assert no_staging_left(wh)


def test_the_smallest_cur_cost_survives_exactly(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", [cost_row("0.0000000049700000", row_number=1)])
    table = wh.query("SELECT BilledCost FROM cost_analytics.cost_line_items")
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 18)
    assert table.column("BilledCost").to_pylist() == [Decimal("0.00000000497")]


def test_committing_the_same_content_again_changes_nothing(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", november() + december())
    before = ipc_bytes(wh.query(ROWS))

    commit(wh, tmp_path, "run-2", november() + december())

    assert ipc_bytes(wh.query(ROWS)) == before
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items") == {"n": 4}
    assert wh.query("SELECT DISTINCT x_RunId FROM cost_analytics.cost_line_items"
                    ).column("x_RunId").to_pylist() == ["run-2"]
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.load_slices") == {"n": 4}


def test_a_restated_slice_replaces_and_other_slices_are_untouched(wh, tmp_path) -> None:
    other = [cost_row("7.00", account=OTHER_ACCOUNT, sub_account=OTHER_ACCOUNT, row_number=9)]
    commit(wh, tmp_path, "run-1", november() + december() + other)
    restated = [cost_row("0.0000000512", row_number=1), cost_row("1.30", row_number=2)]

    checks = commit(wh, tmp_path, "run-2", restated)

    assert [c.key for c in checks] == [NOV_KEY]
    assert slice_total(wh) == {"n": 2, "cost": Decimal("1.3000000512")}
    assert slice_total(wh, period=DEC) == {"n": 1, "cost": Decimal("3.10")}
    assert slice_total(wh, account=OTHER_ACCOUNT) == {"n": 1, "cost": Decimal("7.00")}
    runs = wh.query("SELECT BillingAccountId, BillingPeriodStart, x_RunId "
                    "FROM cost_analytics.cost_line_items "
                    "GROUP BY 1, 2, 3 ORDER BY 1, 2").to_pylist()
    assert [tuple(r.values()) for r in runs] == [
        (ACCOUNT, NOV, "run-2"), (ACCOUNT, DEC, "run-1"), (OTHER_ACCOUNT, NOV, "run-1")]


def test_a_slice_that_does_not_reconcile_commits_nothing(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", november() + december())
    before = ipc_bytes(wh.query(ROWS))
    restated = [cost_row("2.00", row_number=1)] + december()
    expected = expected_for(restated)
    expected[NOV_KEY].billed_cost += Decimal("0.000000001")  # the source says a nano-dollar more
    expected[NOV_KEY].source_basis += Decimal("0.000000001")

    with pytest.raises(ReconciliationError) as raised:
        commit(wh, tmp_path, "run-2", restated, expected=expected)

    message = str(raised.value)
    assert "slice aws/123412340534/2023-11" in message
    assert "2023-12" not in message
    assert "source basis 2.000000001 vs warehouse BilledCost 2.000000000000000000" in message
    assert ipc_bytes(wh.query(ROWS)) == before
    run = ledger(wh, "run-2")
    assert run["status"] == "failed" and "aws/123412340534/2023-11" in run["error"]
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.load_slices "
                   "WHERE run_id = 'run-2'") == {"n": 0}
    assert no_staging_left(wh)


def test_staged_rows_of_a_slice_nobody_expected_fail_reconciliation(wh, tmp_path) -> None:
    rows = november() + december()
    with pytest.raises(ReconciliationError, match="slice aws/123412340534/2023-12: .* rows "
                                                  "loaded 1/0"):
        commit(wh, tmp_path, "run-1", rows, expected=expected_for(november()))
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items") == {"n": 0}


@pytest.mark.parametrize("statement", ["stage_rows", "reconcile_slices", "write_load_slices",
                                       "delete_slice_rows", "insert_rows",
                                       "delete_dead_letters", "mark_run_succeeded"])
def test_a_crash_mid_commit_leaves_the_previous_contents(wh, tmp_path, statement) -> None:
    commit(wh, tmp_path, "run-1", november() + december(), [dead_letter("0.5")])
    before = ipc_bytes(wh.query(ROWS))
    crashing = FailingDuckDBWarehouse(wh.path, fail_after=statement)

    with pytest.raises(IngestFailed, match=f"injected failure after statement '{statement}'"
                       ) as raised:
        commit(crashing, tmp_path, "run-2", [cost_row("9.99", row_number=1)])

    assert isinstance(raised.value.__cause__, InjectedFailure)
    assert ipc_bytes(wh.query(ROWS)) == before
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.dead_letters") == {"n": 1}
    run = ledger(wh, "run-2")
    assert run["status"] == "failed" and "rolled back" in run["error"]
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.load_slices "
                   "WHERE run_id = 'run-2'") == {"n": 0}
    assert no_staging_left(wh)


def test_dead_letters_are_replaced_by_slice_and_by_source_uri(wh, tmp_path) -> None:
    elsewhere = "s3://billing-exports/cur/other-export/cur-00001.csv.gz"
    dead = [dead_letter("0.5", row_number=4),
            dead_letter(None, account=None, period=None, row_number=5),
            dead_letter("0.25", account=None, period=None, row_number=6, source_uri=elsewhere)]
    # As the pipeline does: only attributable slices are expected.
    expected = {k: v for k, v in expected_for(november(), dead).items() if k.attributable}
    commit(wh, tmp_path, "run-1", november(), dead, expected=expected,
           source_uris=[SOURCE, elsewhere])
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.dead_letters") == {"n": 3}

    fixed = november() + [cost_row("0.5", row_number=4)]
    commit(wh, tmp_path, "run-2", fixed, source_uris=[SOURCE])

    left = wh.query("SELECT x_SourceUri, x_SourceRowNumber, SourceCost, x_RunId "
                    "FROM cost_analytics.dead_letters").to_pylist()
    assert left == [{"x_SourceUri": elsewhere, "x_SourceRowNumber": 6,
                     "SourceCost": Decimal("0.25"), "x_RunId": "run-1"}]
    assert slice_total(wh) == {"n": 4, "cost": Decimal("1.7730000497")}


def test_a_slice_whose_rows_are_all_dead_lettered_deletes_the_old_rows(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", november() + december())
    dead = [dead_letter("1.25", row_number=1), dead_letter("0.023", row_number=2)]

    checks = commit(wh, tmp_path, "run-2", [], dead)

    assert [(c.key, c.warehouse_rows, c.warehouse_dead_cost) for c in checks] == [
        (NOV_KEY, 0, Decimal("1.273"))]
    assert slice_total(wh) == {"n": 0, "cost": None}
    assert slice_total(wh, period=DEC) == {"n": 1, "cost": Decimal("3.10")}
    assert one(wh, "SELECT COUNT(*) AS n, SUM(SourceCost) AS cost "
                   "FROM cost_analytics.dead_letters") == {"n": 2, "cost": Decimal("1.273")}
    assert one(wh, "SELECT rows_loaded, rows_dead_lettered, dead_lettered_cost "
                   "FROM cost_analytics.load_slices WHERE run_id = 'run-2'") == {
        "rows_loaded": 0, "rows_dead_lettered": 2, "dead_lettered_cost": Decimal("1.273")}


def test_a_staged_file_missing_a_column_is_refused(wh, tmp_path) -> None:
    import pyarrow.parquet as pq

    staged = stage(tmp_path / "run-1", "run-1", november())
    table = pq.read_table(staged.row_files[0]).drop_columns(["Tags"])
    pq.write_table(table, staged.row_files[0])
    wh.begin_run(run_start("run-1"))
    with pytest.raises(IngestFailed, match=r"missing \['Tags'\]"):
        wh.commit_run(staged, expected_for(november()), {})
    assert ledger(wh, "run-1")["status"] == "failed"


def test_two_warehouses_on_one_file_in_one_process(tmp_path) -> None:
    path = tmp_path / "deep" / "dir" / "warehouse.duckdb"
    first, second = DuckDBWarehouse(path), DuckDBWarehouse(path)
    first.ensure_schema()
    commit(first, tmp_path, "run-1", november())
    assert slice_total(second) == {"n": 3, "cost": Decimal("1.2730000497")}
    commit(second, tmp_path, "run-2", december())
    assert slice_total(first, period=DEC) == {"n": 1, "cost": Decimal("3.10")}


def test_in_memory_database_lives_as_long_as_the_object(tmp_path) -> None:
    wh = DuckDBWarehouse(":memory:")
    wh.ensure_schema()
    commit(wh, tmp_path, "run-1", november())
    assert slice_total(wh) == {"n": 3, "cost": Decimal("1.2730000497")}
    wh.close()


def test_query_binds_values_and_keeps_decimals_exact(wh) -> None:
    table = wh.query("SELECT CAST(@x AS BIGNUMERIC) AS x, @s AS s, @d AS d",
                     {"x": Decimal("12345678901234567890.000000000000000001"),
                      "s": "' OR 1=1 --", "d": NOV.date()})
    assert table.schema.field("x").type == pa.decimal128(38, 18)
    assert table.to_pylist() == [{"x": Decimal("12345678901234567890.000000000000000001"),
                                  "s": "' OR 1=1 --", "d": NOV.date()}]


def test_a_run_with_only_unattributable_dead_letters_commits(wh, tmp_path) -> None:
    dead = [dead_letter(None, account=None, period=None, row_number=1)]
    assert commit(wh, tmp_path, "run-1", [], dead, expected={}) == []
    assert ledger(wh, "run-1")["status"] == "succeeded"
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.dead_letters") == {"n": 1}


def test_expected_keys_with_naive_periods_match_utc_rows(wh, tmp_path) -> None:
    expected = {SliceKey("aws", ACCOUNT, NOV.replace(tzinfo=None)): SliceStats(
        rows_read=1, rows_loaded=1, source_basis=Decimal("1.25"), billed_cost=Decimal("1.25"))}
    checks = commit(wh, tmp_path, "run-1", [cost_row("1.25")], expected=expected)
    assert [(c.key, c.ok) for c in checks] == [(NOV_KEY, True)]


def test_connect_resolves_relative_absolute_and_memory_urls(tmp_path, monkeypatch) -> None:
    from costflow.warehouse import connect

    monkeypatch.chdir(tmp_path)
    relative = connect("duckdb:///.costflow/warehouse.duckdb")
    relative.ensure_schema()
    assert (tmp_path / ".costflow" / "warehouse.duckdb").is_file()
    absolute = connect(f"duckdb:///{tmp_path}/abs/wh.duckdb")
    assert isinstance(absolute, DuckDBWarehouse)
    assert absolute.path == tmp_path / "abs" / "wh.duckdb" and absolute.path.is_absolute()
    assert absolute.url == f"duckdb:////{str(tmp_path).lstrip('/')}/abs/wh.duckdb"
    memory = connect("duckdb:///:memory:")
    assert memory.path is None and memory.url == "duckdb:///:memory:"


def test_connect_names_a_bigquery_dataset_without_building_a_client() -> None:
    from costflow.warehouse import connect
    from costflow.warehouse.bigquery_engine import BigQueryWarehouse

    wh = connect("bigquery://acme-finops-prod/cost_analytics")
    assert isinstance(wh, BigQueryWarehouse)
    assert (wh.project, wh.dataset, wh._client) == ("acme-finops-prod", "cost_analytics", None)


@pytest.mark.parametrize("url", [
    "duckdb://relative.duckdb", "duckdb:///", "duckdb:///dir/", "sqlite:///x.db",
    "bigquery://acme-finops-prod", "bigquery://acme-finops-prod/a/b",
    "bigquery:///cost_analytics", "bigquery://acme-finops-prod/ds?x=1",
    "bigquery://Bad_Project/ds", "bigquery://acme-finops-prod/bad-dataset", "",
])
def test_bad_urls_say_what_is_accepted(url: str) -> None:
    from costflow.errors import ConfigError
    from costflow.warehouse import connect

    with pytest.raises(ConfigError) as raised:
        connect(url)
    assert "duckdb:///relative/path.duckdb" in str(raised.value) or "project id" in str(
        raised.value)


def test_resolve_url_prefers_flag_then_environment_then_default(monkeypatch) -> None:
    from costflow.warehouse import DEFAULT_URL, resolve_url

    monkeypatch.delenv("COSTFLOW_WAREHOUSE", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "duckdb:///.costflow/warehouse.duckdb"
    monkeypatch.setenv("COSTFLOW_WAREHOUSE", "bigquery://acme-finops-prod/costs")
    assert resolve_url(None) == "bigquery://acme-finops-prod/costs"
    assert resolve_url("duckdb:///:memory:") == "duckdb:///:memory:"


def test_a_ledger_that_cannot_record_the_failure_does_not_hide_it(wh, tmp_path) -> None:
    class BrokenLedger(DuckDBWarehouse):
        def fail_run(self, run_id, error, report):
            raise OSError("disk full")

    broken = BrokenLedger(wh.path)
    expected = expected_for(november())
    expected[NOV_KEY].rows_loaded += 1
    with pytest.raises(ReconciliationError) as raised:
        commit(broken, tmp_path, "run-1", november(), expected=expected)
    assert raised.value.__notes__ == [
        "The ledger could not record the failure either: disk full"]


def test_a_retried_commit_of_the_same_run_is_idempotent(wh, tmp_path) -> None:
    rows = november() + december()
    staged = stage(tmp_path / "run-1", "run-1", rows)
    wh.begin_run(run_start("run-1"))
    wh.commit_run(staged, expected_for(rows), {})
    before = ipc_bytes(wh.query(ROWS))

    wh.commit_run(staged, expected_for(rows), {"attempt": 2})

    assert ipc_bytes(wh.query(ROWS)) == before
    assert one(wh, "SELECT COUNT(*) AS n FROM cost_analytics.load_slices") == {"n": 2}
    assert json.loads(ledger(wh, "run-1")["report"]) == {"attempt": 2}


def test_a_warehouse_of_an_older_costflow_is_upgraded_in_place(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", november())
    with wh.connection() as con:  # the layout before x_Commitment*, the units and high water
        for table, column in (("cost_line_items", "x_ProviderColumns"),
                              ("cost_line_items", "x_PricingToBillingRate"),
                              ("cost_line_items", "x_ConsumedUnitDescription"),
                              ("cost_line_items", "x_PricingUnitDescription"),
                              ("cost_line_items", "x_ProjectAncestors"),
                              ("cost_line_items", "x_CommitmentCoveredCost"),
                              ("cost_line_items", "x_CommitmentPool"),
                              ("load_slices", "high_water_export_time"),
                              ("load_runs", "heartbeat_at"), ("load_runs", "owner_pid"),
                              ("load_runs", "owner_host")):
            con.execute(f"ALTER TABLE cost_analytics.{table} DROP COLUMN {column}")

    wh.ensure_schema()
    commit(wh, tmp_path, "run-2", december())

    assert slice_total(wh) == {"n": 3, "cost": Decimal("1.2730000497")}  # history kept
    assert slice_total(wh, period=DEC) == {"n": 1, "cost": Decimal("3.10")}
    assert one(wh, "SELECT COUNT(x_CommitmentPool) AS n FROM cost_analytics.cost_line_items"
               ) == {"n": 0}
    assert one(wh, "SELECT run_id, owner_pid FROM cost_analytics.load_runs "
                   "WHERE owner_pid IS NOT NULL") == {"run_id": "run-2", "owner_pid": os.getpid()}


def test_a_table_that_cannot_be_upgraded_in_place_is_refused(wh) -> None:
    with wh.connection() as con:
        con.execute("ALTER TABLE cost_analytics.load_slices RENAME COLUMN rows_read TO n_read")
    with pytest.raises(ConfigError, match=r"load_slices in duckdb:///.*not declared \['n_read'\]"):
        wh.ensure_schema()


def test_a_reused_run_id_is_refused_and_leaves_the_first_run_untouched(wh, tmp_path) -> None:
    commit(wh, tmp_path, "run-1", november())
    before = [wh.query(sql).to_pylist() for sql in (
        "SELECT * FROM cost_analytics.load_runs", "SELECT * FROM cost_analytics.load_slices",
        ROWS)]

    with pytest.raises(ConfigError, match=r"run id 'run-1' is already in the ledger \(a "
                                          r"succeeded run, started 2023-12-03 06:00:00 UTC\)"):
        wh.begin_run(run_start("run-1"))

    assert [wh.query(sql).to_pylist() for sql in (
        "SELECT * FROM cost_analytics.load_runs", "SELECT * FROM cost_analytics.load_slices",
        ROWS)] == before


def test_a_failure_the_ledger_takes_on_the_second_try_is_recorded(wh, tmp_path) -> None:
    class FlakyLedger(DuckDBWarehouse):
        attempts = 0

        def fail_run(self, run_id, error, report):
            FlakyLedger.attempts += 1
            if FlakyLedger.attempts == 1:
                raise OSError("database is locked")
            super().fail_run(run_id, error, report)

    expected = expected_for(november())
    expected[NOV_KEY].rows_loaded += 1
    with pytest.raises(ReconciliationError) as raised:
        commit(FlakyLedger(wh.path), tmp_path, "run-1", november(), expected=expected)
    assert "ledger" not in str(raised.value)
    assert ledger(wh, "run-1")["status"] == "failed" and FlakyLedger.attempts == 2


def test_a_failure_the_ledger_never_takes_is_said_in_the_error(wh, tmp_path) -> None:
    class BrokenLedger(DuckDBWarehouse):
        def fail_run(self, run_id, error, report):
            raise OSError("disk full")

    expected = expected_for(november())
    expected[NOV_KEY].rows_loaded += 1
    with pytest.raises(ReconciliationError) as raised:
        commit(BrokenLedger(wh.path), tmp_path, "run-1", november(), expected=expected)
    assert str(raised.value).endswith(
        "The ledger could not record the failure either (3 attempts; last: disk full): "
        "load_runs shows the run as running until the next ingest or `costflow runs list` "
        "marks it abandoned.")
    assert ledger(wh, "run-1")["status"] == "running"
