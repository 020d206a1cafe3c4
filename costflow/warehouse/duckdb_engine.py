"""The `cost_analytics` dataset in an embedded DuckDB file: the local twin of BigQuery.

It runs the same BigQuery-dialect SQL files as the BigQuery engine, transpiled by
`costflow.warehouse.sqlfiles`. A commit is one DuckDB transaction: the staging names become
views over the staged Parquet files, the reconciliation query is compared with the source's totals
and, only if every slice matches, the slices are replaced. Any error rolls everything back and
the ledger records the run as failed in a separate small transaction.

The file is opened per operation (and closed after), so the pipeline's commit step and the CLI
can both hold a `DuckDBWarehouse` on the same file in one process, and another process can open
the file between operations. ``:memory:`` keeps one database for the life of the object.

Concurrency. DuckDB lets ONE process open a file read-write, or any number of processes open it
read-only. A write (schema, ledger, commit) opens it read-write; a query opens it read-only. When
another process holds the file, the operation waits, polling with backoff: a query of the query
side (``reader=True``: CLI query, MCP, `InfrastructureModule.from_url`) up to
``COSTFLOW_DUCKDB_READ_TIMEOUT`` seconds (default 5), anything else (writes, an ingest's reads) up
to ``COSTFLOW_DUCKDB_LOCK_TIMEOUT`` (default 60), and then raises `WarehouseBusy` naming the file
and the holder's PID. Within one process
DuckDB shares one database instance per file, so a query while this process writes reuses the
read-write instance (it reads the last committed state; no deadlock with an open commit), and
writes of different threads take turns. A full disk ends in `IngestFailed` naming the file.

Serving. Opening a large file costs tens of milliseconds (DuckDB reads the catalog), as much as
a month's query on ten million rows. A long-lived query server (the MCP server, the cost
report) passes ``keep_open=SECONDS``: after a query its read-only connection stays open that
long, and the next query takes it instead of opening the file again. A parked connection is
closed as soon as a writer of this process asks for the file, when it expires, and by
`DuckDBWarehouse.close`; a writer in another process waits for it as it waits for any reader
(at most ``keep_open`` seconds once the queries stop; a connection is reused for at most
`REUSE_AT_MOST_S`, then closed, so queries arriving without pause never hold the file for good).

    wh = DuckDBWarehouse(".costflow/warehouse.duckdb")
    wh.ensure_schema()
    wh.query("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items")
"""

from __future__ import annotations

import math
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from costflow.errors import ConfigError, IngestFailed, WarehouseBusy
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
# How long an operation waits for another process to release the file (seconds).
LOCK_TIMEOUT_ENV = "COSTFLOW_DUCKDB_LOCK_TIMEOUT"  # writes, and every read of an ingest
DEFAULT_LOCK_TIMEOUT = 60.0
READ_TIMEOUT_ENV = "COSTFLOW_DUCKDB_READ_TIMEOUT"  # queries of the query side (reader=True)
DEFAULT_READ_TIMEOUT = 5.0
FIRST_RETRY, LONGEST_RETRY = 0.01, 0.5  # backoff between attempts to open a held file
REUSE_AT_MOST_S = 10.0  # a kept-open read-only connection is closed after this long in use
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
        reader: for the query side: a query waits only ``COSTFLOW_DUCKDB_READ_TIMEOUT`` (default
            5 s) for a writer to finish, then raises `WarehouseBusy` saying to try again.
            Without it every operation waits up to ``COSTFLOW_DUCKDB_LOCK_TIMEOUT`` (default
            60 s), as an ingest must: its reads (planning, the post-load assertions) may not
            fail just because another run is committing.
    """

    def __init__(self, path: str | os.PathLike[str], *, reader: bool = False,
                 keep_open: float = 0.0) -> None:
        text = os.fspath(path)
        self._memory = text == MEMORY
        self.path: Path | None = None if self._memory else Path(text)
        self.url = f"duckdb:///{text}"
        self.reader = reader
        self.keep_open = keep_open
        self._shared: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        """Close the read-only connection parked for the next query, if any (``keep_open``)."""
        if self.path is not None:
            _PARKED.close(os.path.abspath(self.path))

    @contextmanager
    def connection(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation, in UTC, closed afterwards.

        ``read_only`` opens the file read-only (other processes may read it at the same time),
        unless this process has it open read-write already (then that instance is shared).
        Waits while another process holds the file (see the module docstring).

        Raises:
            WarehouseBusy: the file stayed held by another process for the whole wait.
            IngestFailed: the filesystem is full.
            ConfigError: a read of a file that does not exist.
        """
        if self.path is None:
            if self._shared is None:
                self._shared = duckdb.connect(MEMORY)
            con = self._shared.cursor()
            try:
                con.execute("SET SESSION TimeZone = 'UTC'")
                yield con
            finally:
                con.close()
            return
        target = os.path.abspath(self.path)
        if read_only and not os.path.exists(target):
            raise ConfigError(
                f"there is no warehouse at {target}: nothing has been ingested there yet. Run "
                "costflow ingest first, or point --warehouse (or COSTFLOW_WAREHOUSE) at the "
                "warehouse to read.")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        wait = Wait.of(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT) if read_only and self.reader \
            else Wait.of(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT)
        parked = _PARKED.take(target) if read_only and self.keep_open > 0 else None
        with _turn_to_write(target, not read_only, wait):
            if parked is not None:
                con, opened_read_only, opened_at = parked, True, _PARKED.opened_at(parked)
            else:
                con, opened_read_only = _open(target, read_only, wait)
                opened_at = time.monotonic()
            answered = False
            try:
                con.execute("SET SESSION TimeZone = 'UTC'")
                yield con
                answered = True
            except duckdb.Error as err:
                _raise_as_disk_full(err, target)
            finally:
                if (answered and opened_read_only and self.keep_open > 0
                        and time.monotonic() - opened_at < REUSE_AT_MOST_S):
                    _PARKED.park(target, con, opened_at, self.keep_open)
                else:
                    _PARKED.forget(con)
                    _close(con, target, opened_read_only)

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
        """Record the run in load_runs with status 'running', owner and first heartbeat.

        Raises:
            ConfigError: a run with this id is in the ledger already; nothing was written.
        """
        params = slices.begin_params(run)
        (exists,) = sqlfiles.load("load/run_exists.sql")
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")  # the check and the insert see one state
            try:
                cursor = self._execute(con, exists.name, exists.duckdb, params)
                columns = [d[0] for d in cursor.description]
                found = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
                if found:
                    raise slices.run_id_taken(run.run_id, found[0])
                self._run_file(con, "load/begin_run.sql", params)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise

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
        with self.connection(read_only=_reads_only(sql)) as con:
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
        with self.connection(read_only=True) as con:
            (written,) = con.execute(
                f"COPY ({statement.sql}) TO {target} (FORMAT parquet)").fetchall()
            return int(written[0])


# -- opening a file other processes may hold ---------------------------------------------------

class _FileUse:
    """This process's connections to one file. DuckDB keeps one database instance per file and
    process and refuses a second one with other settings, so while a connection is read-write
    every other one must be too (a read then shares it), and a write waits for this process's
    read-only connections to close (new reads queue behind a waiting write)."""

    def __init__(self) -> None:
        self.read_only = 0
        self.read_write = 0
        self.writer_waiting = False


_USES: dict[str, _FileUse] = {}
_USES_CHANGED = threading.Condition()
# One writer at a time per file within this process too (DuckDB would fail the later of two
# conflicting transactions; across processes the file lock already serializes them).
_WRITERS: dict[str, threading.RLock] = {}
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")
THIS_PROCESS = "another connection of this process"


class _ParkedReaders:
    """Read-only connections kept open after a query (``keep_open``), one per file, each
    closed by a timer when not taken again in time. Guarded by `_USES_CHANGED` (an RLock), so
    a waiting writer can close one while it holds the lock; a parked connection still counts
    as a read-only use of its file until it is closed."""

    def __init__(self) -> None:
        self._parked: dict[str, tuple[duckdb.DuckDBPyConnection, threading.Timer]] = {}
        self._opened_at: dict[int, float] = {}

    def take(self, target: str) -> duckdb.DuckDBPyConnection | None:
        with _USES_CHANGED:
            found = self._parked.pop(target, None)
        if found is None:
            return None
        found[1].cancel()
        return found[0]

    def opened_at(self, con: duckdb.DuckDBPyConnection) -> float:
        with _USES_CHANGED:
            return self._opened_at.get(id(con), time.monotonic())

    def park(self, target: str, con: duckdb.DuckDBPyConnection, opened_at: float,
             seconds: float) -> None:
        with _USES_CHANGED:
            use = _USES.get(target)
            if target not in self._parked and not (use and use.writer_waiting):
                timer = threading.Timer(seconds, self._expire, (target, con))
                timer.daemon = True
                self._parked[target] = (con, timer)
                self._opened_at[id(con)] = opened_at
                timer.start()
                return
        self.forget(con)
        _close(con, target, True)

    def forget(self, con: duckdb.DuckDBPyConnection) -> None:
        with _USES_CHANGED:
            self._opened_at.pop(id(con), None)

    def close(self, target: str) -> bool:
        """Close ``target``'s parked connection now; returns whether there was one."""
        with _USES_CHANGED:
            found = self._parked.pop(target, None)
            if found is None:
                return False
            found[1].cancel()
            self._opened_at.pop(id(found[0]), None)
            _close(found[0], target, True)
            return True

    def _expire(self, target: str, con: duckdb.DuckDBPyConnection) -> None:
        with _USES_CHANGED:
            found = self._parked.get(target)
            if found is None or found[0] is not con:
                return  # taken again (or closed) since the timer was set
            self.close(target)


_PARKED = _ParkedReaders()


@dataclass(frozen=True)
class Wait:
    """How long to wait for another process to release the file, and the setting that says so."""

    seconds: float
    setting: str

    @classmethod
    def of(cls, setting: str, default: float) -> Wait:
        text = os.environ.get(setting, "").strip()
        if not text:
            return cls(default, setting)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 <= value < math.inf:
            raise ConfigError(f"{setting}={text!r} is not a number of seconds; set it to how "
                              "long to wait for another process to release the warehouse, e.g. "
                              f"{setting}={default:g}.")
        return cls(value, setting)


@contextmanager
def _turn_to_write(target: str, write: bool, wait: Wait) -> Iterator[None]:
    """This thread's turn to write ``target`` among the threads of this process (writes only)."""
    if not write:
        yield
        return
    with _USES_CHANGED:
        turn = _WRITERS.setdefault(target, threading.RLock())
    if not turn.acquire(timeout=wait.seconds):
        raise _busy(target, True, wait, "another thread of this process")
    try:
        yield
    finally:
        turn.release()


def _claim(target: str, read_only: bool, deadline: float, wait: Wait) -> bool:
    """Count a connection about to be opened; returns whether it is to be read-only."""
    with _USES_CHANGED:
        use = _USES.setdefault(target, _FileUse())
        waiting = False
        try:
            while True:
                if use.read_write or (not read_only and not use.read_only):
                    use.read_write += 1
                    return False
                if read_only and not use.writer_waiting:
                    use.read_only += 1
                    return True
                if not read_only and not waiting:
                    use.writer_waiting = waiting = True
                if not read_only and _PARKED.close(target):
                    continue  # a parked reader of this process was all it waited for
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _busy(target, not read_only, wait, THIS_PROCESS)
                _USES_CHANGED.wait(remaining)
        finally:
            if waiting:
                use.writer_waiting = False
                _USES_CHANGED.notify_all()


def _unclaim(target: str, read_only: bool) -> None:
    with _USES_CHANGED:
        use = _USES[target]
        if read_only:
            use.read_only -= 1
        else:
            use.read_write -= 1
        if not (use.read_only or use.read_write or use.writer_waiting):
            del _USES[target]
        _USES_CHANGED.notify_all()


def _open(target: str, read_only: bool, wait: Wait) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """Connect, retrying with backoff while another process holds the file (up to ``wait``).

    Returns the connection and whether it is read-only (a read shares this process's
    read-write instance when one is open).
    """
    deadline = time.monotonic() + wait.seconds
    delay = FIRST_RETRY
    while True:
        as_read_only = _claim(target, read_only, deadline, wait)
        try:
            return duckdb.connect(target, read_only=as_read_only, config=_config()), as_read_only
        except duckdb.Error as err:
            _unclaim(target, as_read_only)
            full = _disk_full(err, target)
            if full is not None:
                raise full from err
            if not _held_elsewhere(err):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                found = _HOLDER_PID.search(str(err))
                raise _busy(target, not read_only, wait,
                            f"PID {found.group(1)}" if found else THIS_PROCESS) from None
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
            delay = min(LONGEST_RETRY, delay * 2)


def _close(con: duckdb.DuckDBPyConnection, target: str, read_only: bool) -> None:
    try:
        con.close()
    except duckdb.Error as err:
        _raise_as_disk_full(err, target)
    finally:
        _unclaim(target, read_only)


def _raise_as_disk_full(err: duckdb.Error, target: str) -> NoReturn:
    """Re-raise a DuckDB error, as the one-paragraph IngestFailed when the disk is full."""
    full = _disk_full(err, target)
    if full is None:
        raise err
    raise full from err


def _held_elsewhere(err: duckdb.Error) -> bool:
    """The file is locked by another process, or open here with other settings (read-only)."""
    text = str(err)
    return (isinstance(err, duckdb.IOException) and "Could not set lock on file" in text) or (
        isinstance(err, duckdb.ConnectionException) and "different configuration" in text)


def _busy(target: str, write: bool, wait: Wait, holder: str) -> WarehouseBusy:
    if write:
        return WarehouseBusy(
            f"the warehouse {target} is held by another costflow process ({holder}) and stayed "
            f"locked for {wait.seconds:g} s, so nothing was written. DuckDB lets one process "
            "write a warehouse file at a time: let the other ingest, query or MCP server finish "
            f"and run this again, or wait longer with {wait.setting}=SECONDS (default "
            f"{DEFAULT_LOCK_TIMEOUT:g}).")
    return WarehouseBusy(
        f"the warehouse {target} is being updated by another process ({holder}); try again in "
        f"a moment (a query waited {wait.seconds:g} s for the update to finish; "
        f"{wait.setting}=SECONDS waits longer).")


def _disk_full(err: duckdb.Error, target: str) -> IngestFailed | None:
    """A full filesystem as a one-paragraph `IngestFailed` naming the file; else None."""
    if "no space left on device" not in str(err).lower():
        return None
    return IngestFailed(
        f"the warehouse file {target} could not be written: no space left on device "
        f"({' '.join(str(err).split())}). Nothing was committed; the previous contents are "
        "intact. Free space on that filesystem, or point --warehouse (or COSTFLOW_WAREHOUSE) "
        "at one with room, and run again.")


@lru_cache(maxsize=512)
def _reads_only(sql: str) -> bool:
    """Every statement of this BigQuery-dialect text is a query (it can open the file read-only)."""
    return all(isinstance(statement.expression, exp.Query) for statement in sqlfiles.split(sql))


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
