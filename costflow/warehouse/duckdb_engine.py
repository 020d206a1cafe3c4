"""The `cost_analytics` dataset in an embedded DuckDB file: the local twin of BigQuery.

It runs the same BigQuery-dialect SQL files as the BigQuery engine, transpiled by
`costflow.warehouse.sqlfiles`. A commit is one DuckDB transaction: the staging names become
views over the staged Parquet files, the reconciliation query is compared with the source's totals
and, only if every slice matches, the slices are replaced. Any error rolls everything back and
the ledger records the run as failed in a separate small transaction.

The file is opened per operation (and closed after), so the pipeline's commit step and the CLI
can both hold a `DuckDBWarehouse` on the same file in one process, and another process can open
the file between operations. ``:memory:`` keeps one database for the life of the object.

    wh = DuckDBWarehouse(".costflow/warehouse.duckdb")
    wh.ensure_schema()
    wh.query("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.reconcile import SliceCheck, SliceKey, SliceStats
from costflow.schemas.columns import TableSpec
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.operational import DEAD_LETTERS, RECOMMENDATIONS
from costflow.schemas.render import ALL_TABLES, DATASET, DUCKDB_TYPES
from costflow.warehouse import commit_params as slices
from costflow.warehouse import migrate, sqlfiles
from costflow.warehouse import recommendation_checks as recommendations
from costflow.warehouse.base import RunStart, StagedRun, Warehouse
from costflow.warehouse.sqlfiles import DuckStatement

DEFAULT_MEMORY_LIMIT = "512MB"
MEMORY = ":memory:"
# Staged Parquet is read in place: inside the commit transaction each staging name is a view
# over the run's files, so a load copies the data once (into the target), not twice. DuckDB
# cannot bind parameters in a view, so the file list is a literal of the pipeline's own staging
# paths, quoted; the column list comes from the declaration, fixing the order.
STAGED: dict[str, TableSpec] = {"stage_rows": COST_LINE_ITEMS, "stage_dead_letters": DEAD_LETTERS}
# Statements of replace_slices.sql that empty BigQuery's staging tables; a view needs none.
VIEW_NEEDS_NO_CLEANING = frozenset({"clean_staged_rows", "clean_staged_dead_letters"})


def staged_view_sql(spec: TableSpec, files: list[str], name: str | None = None) -> str:
    """CREATE VIEW for the staging name of ``spec`` over ``files`` (none: an empty view)."""
    columns = ", ".join(f'"{name}"' for name in spec.names)
    view = f"{DATASET}.{name or slices.STAGING_TABLES[spec.name]}"
    if not files:
        source = f"{DATASET}.{spec.name} LIMIT 0"
    else:
        source = "read_parquet([" + ", ".join(_literal(str(f)) for f in files) + "])"
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {columns} FROM {source}"


def _literal(text: str) -> str:
    if "\x00" in text:
        raise ValueError(f"staged file path contains a NUL byte: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def _config() -> dict[str, str | bool | int | float | list[str]]:
    """Engine settings that keep a load's memory bounded, whatever the input size.

    Without a limit DuckDB may take 80% of the machine's memory for one large insert; with
    insertion order not preserved it streams INSERT ... SELECT from Parquet instead of
    buffering it. Both can be overridden by environment (COSTFLOW_DUCKDB_MEMORY_LIMIT,
    COSTFLOW_DUCKDB_THREADS) for bigger machines.
    """
    return {
        "memory_limit": os.environ.get("COSTFLOW_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
        "threads": os.environ.get("COSTFLOW_DUCKDB_THREADS", str(os.cpu_count() or 2)),
        "preserve_insertion_order": "false",
    }


class DuckDBWarehouse(Warehouse):
    """`Warehouse` on an embedded DuckDB database file.

    Args:
        path: the database file (its parent directory is created), or ``":memory:"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        self._memory = text == MEMORY
        self.path: Path | None = None if self._memory else Path(text)
        self.url = f"duckdb:///{text}"
        self._shared: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation, in UTC, closed afterwards."""
        if self.path is None:
            if self._shared is None:
                self._shared = duckdb.connect(MEMORY)
            con = self._shared.cursor()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), config=_config())
        try:
            con.execute("SET SESSION TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def close(self) -> None:
        """Release the in-memory database (file databases hold no connection between calls)."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def ensure_schema(self) -> None:
        """Run the rendered DuckDB DDL (idempotent); staging is per commit, as views."""
        ddl = resources.files("costflow").joinpath("schemas", "generated", "duckdb_ddl.sql")
        with self.connection() as con:
            self._add_new_columns(con)
            con.execute(ddl.read_text(encoding="utf-8"))
            for staging in slices.STAGING_TABLES.values():  # tables of an earlier layout
                con.execute(f"DROP TABLE IF EXISTS {DATASET}.{staging}")

    def _add_new_columns(self, con: duckdb.DuckDBPyConnection) -> None:
        """Upgrade tables made by an older costflow in place (`costflow.warehouse.migrate`)."""
        for spec in ALL_TABLES:
            existing = [name for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position", [DATASET, spec.name]).fetchall()]
            if not existing:
                continue  # not created yet: the DDL creates it whole
            for column in migrate.columns_to_add(spec, existing, self.url):
                con.execute(f'ALTER TABLE {DATASET}.{spec.name} ADD COLUMN "{column.name}" '
                            f"{DUCKDB_TYPES[column.type]}")

    def begin_run(self, run: RunStart) -> None:
        """Record the run in load_runs with status 'running'."""
        with self.connection() as con:
            self._run_file(con, "load/begin_run.sql", slices.begin_params(run))

    def fail_run(self, run_id: str, error: str, report: dict[str, Any]) -> None:
        """Mark the run failed, in its own transaction (cost data is never touched)."""
        with self.connection() as con:
            self._run_file(con, "load/fail_run.sql", slices.fail_params(run_id, error, report))

    def commit_run(self, staged: StagedRun, expected: dict[SliceKey, SliceStats],
                   report: dict[str, Any]) -> list[SliceCheck]:
        """Stage, reconcile and replace every slice of the run in one transaction.

        Raises:
            ReconciliationError: a slice does not match ``expected``; nothing was committed.
            IngestFailed: any other error; rolled back, the previous contents are intact.
        """
        params = slices.replace_params(staged, expected, report)
        with slices.failures_recorded(self.fail_run, staged.run_id, report, "was rolled back"), \
                self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                checks = self._commit(con, staged, expected, params)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
        return checks

    def _commit(self, con: duckdb.DuckDBPyConnection, staged: StagedRun,
                expected: dict[SliceKey, SliceStats], params: dict[str, Any]) -> list[SliceCheck]:
        for name, spec in STAGED.items():
            files = staged.row_files if spec is COST_LINE_ITEMS else staged.dead_letter_files
            _check_staged_schema(spec, files)
            self._execute(con, name, DuckStatement(staged_view_sql(spec, files), frozenset()), {})
        (reconcile,) = sqlfiles.load("load/reconcile_slices.sql")
        cursor = self._execute(con, "reconcile_slices", reconcile.duckdb, params)
        columns = [d[0] for d in cursor.description]
        checks = slices.build_checks(expected, (dict(zip(columns, r, strict=True))
                                                for r in cursor.fetchall()))
        slices.verdict(staged.run_id, checks)
        for statement in sqlfiles.load("load/replace_slices.sql"):
            if "slices" in statement.parameters and not params["slices"]:
                continue  # no attributable slice: nothing to write (DuckDB cannot type [] here)
            if statement.name in VIEW_NEEDS_NO_CLEANING:
                continue
            self._execute(con, statement.name, statement.duckdb, params)
        for spec in STAGED.values():
            con.execute(f"DROP VIEW {DATASET}.{slices.STAGING_TABLES[spec.name]}")
        return checks

    def _execute(self, con: duckdb.DuckDBPyConnection, name: str, statement: DuckStatement,
                 params: Mapping[str, Any]) -> duckdb.DuckDBPyConnection:
        """Run one named statement and return its cursor.

        Every statement of the SQL files goes through here, and so do the commit's staging
        views: ``name`` is the statement's ``-- name:`` (e.g. ``delete_slice_rows`` of
        `sql/load/replace_slices.sql`), or ``stage_rows``, ``stage_dead_letters`` and
        ``reconcile_slices``. It is the seam a subclass overrides to act between the statements
        of a commit (the tests simulate a crash mid-commit this way).
        """
        return con.execute(statement.sql, statement.bind(params))

    def _run_file(self, con: duckdb.DuckDBPyConnection, relative: str,
                  params: Mapping[str, Any]) -> None:
        for statement in sqlfiles.load(relative):
            self._execute(con, statement.name, statement.duckdb, params)

    def replace_recommendations(self, rows: pa.Table, provider: str,
                                sources: list[str] | None = None) -> int:
        """Stage as Parquet, then delete and insert in one transaction."""
        table, params = recommendations.replace_params(rows, provider, sources)
        if not params["sources"]:
            return 0
        with tempfile.TemporaryDirectory(prefix="costflow-recs-") as tmp:
            staged = os.path.join(tmp, "recommendations.parquet")
            pq.write_table(table, staged)
            with self.connection() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    view = staged_view_sql(RECOMMENDATIONS, [staged] if table.num_rows else [],
                                           recommendations.STAGING_NAME)
                    con.execute(view)
                    self._run_file(con, "load/replace_recommendations.sql", params)
                    con.execute(f"DROP VIEW {DATASET}.{recommendations.STAGING_NAME}")
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
        return table.num_rows

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run BigQuery-dialect SQL (transpiled) with bound ``@params``; decimals stay decimal."""
        statements = sqlfiles.to_duckdb(sql)
        params = params or {}
        with self.connection() as con:
            for statement in statements[:-1]:
                con.execute(statement.sql, statement.bind(params))
            last = statements[-1]
            relation = con.sql(last.sql, params=last.bind(params))
            return relation.to_arrow_table() if relation is not None else pa.table({})

    def export_parquet(self, sql: str, out_path: str | os.PathLike[str]) -> int:
        """Stream the result of a trusted, parameterless BigQuery-dialect SELECT to Parquet.

        The rows go from DuckDB to the file without passing through Python. DuckDB's COPY
        cannot bind the file name, so the path is validated (a local file, no control
        characters) and rendered as an escaped string literal by sqlglot.

        Returns:
            The number of rows written.
        """
        path = Path(out_path).resolve()
        if any(ord(ch) < 32 for ch in str(path)):
            raise ConfigError(f"export path {str(path)!r} contains control characters; "
                              "give a plain local file path.")
        (statement,) = sqlfiles.to_duckdb(sql)
        if statement.parameters:
            raise ValueError("export_parquet takes a query without parameters")
        path.parent.mkdir(parents=True, exist_ok=True)
        target = exp.Literal.string(str(path)).sql(dialect="duckdb")
        with self.connection() as con:
            (written,) = con.execute(
                f"COPY ({statement.sql}) TO {target} (FORMAT parquet)").fetchall()
            return int(written[0])


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # A failed statement (e.g. a conflicting COMMIT) may already have ended the transaction.
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _check_staged_schema(spec: TableSpec, files: list[str]) -> None:
    """Staged files must carry exactly the table's columns (BY NAME would null missing ones)."""
    wanted = set(spec.names)
    for path in files:
        names = set(pq.read_schema(path).names)
        if names != wanted:
            raise ValueError(
                f"staged file {path} does not have the {spec.name} columns: missing "
                f"{sorted(wanted - names)}, unexpected {sorted(names - wanted)}")
