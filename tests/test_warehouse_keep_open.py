"""A query server keeps its DuckDB file open between queries, and never keeps writers out.

`keep_open` (the MCP server, the cost report) parks the read-only connection after a query so
the next one skips opening the file (tens of milliseconds on a large warehouse). What must
hold: the next query reuses it; a writer of the same process takes the file at once (the
parked reader is closed for it); another process can write once the keep-open time is over or
the warehouse is closed; a failed query never leaves a connection parked. Other processes are
real DuckDB processes, not mocks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from costflow.warehouse import duckdb_engine
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import build
from tests.warehouse_rows import run_start

WRITE = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CHECKPOINT")
con.close()
"""
COUNT = "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "warehouse.duckdb"
    build(target)
    return target


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time the engine really opens the file (not when it takes a parked connection)."""
    seen: list[str] = []
    real = duckdb_engine._open

    def counting(target: str, read_only: bool, wait: object):
        seen.append("ro" if read_only else "rw")
        return real(target, read_only, wait)  # type: ignore[arg-type]

    monkeypatch.setattr(duckdb_engine, "_open", counting)
    return seen


def other_process_writes(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", WRITE, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 or "lock" in done.stderr.lower(), done.stderr
    return done.returncode == 0


def test_the_next_query_reuses_the_parked_connection(path, opens) -> None:
    warehouse = DuckDBWarehouse(path, reader=True, keep_open=30)
    try:
        first = warehouse.query(COUNT).to_pylist()
        assert warehouse.query(COUNT).to_pylist() == first
        assert opens == ["ro"]
    finally:
        warehouse.close()
    plain = DuckDBWarehouse(path, reader=True)
    plain.query(COUNT)
    plain.query(COUNT)
    assert opens == ["ro", "ro", "ro"]  # without keep_open every query opens the file


def test_a_writer_of_this_process_takes_the_file_at_once(path, opens, monkeypatch) -> None:
    monkeypatch.setenv("COSTFLOW_DUCKDB_LOCK_TIMEOUT", "2")
    reader = DuckDBWarehouse(path, reader=True, keep_open=30)
    reader.query(COUNT)
    began = time.monotonic()
    DuckDBWarehouse(path).begin_run(run_start("run-after-a-query"))  # waits 30 s if parked
    assert time.monotonic() - began < 2
    assert reader.query("SELECT status FROM cost_analytics.load_runs WHERE run_id = "
                        "'run-after-a-query'").to_pylist() == [{"status": "running"}]
    reader.close()


def test_other_processes_write_after_close_or_expiry(path) -> None:
    reader = DuckDBWarehouse(path, reader=True, keep_open=30)
    reader.query(COUNT)
    assert not other_process_writes(path)  # parked: held, as any open reader holds it
    reader.close()
    assert other_process_writes(path)
    brief = DuckDBWarehouse(path, reader=True, keep_open=0.2)
    brief.query(COUNT)
    time.sleep(0.6)
    assert other_process_writes(path)  # expired by its timer, nobody closed it


def test_a_failed_query_parks_nothing(path, opens) -> None:
    warehouse = DuckDBWarehouse(path, reader=True, keep_open=30)
    with pytest.raises(Exception, match="no_such_table"):
        warehouse.query("SELECT * FROM cost_analytics.no_such_table")
    assert other_process_writes(path)
    warehouse.query(COUNT)
    assert opens == ["ro", "ro"]
    warehouse.close()


def test_a_connection_is_reused_for_a_while_only(path, opens, monkeypatch) -> None:
    monkeypatch.setattr(duckdb_engine, "REUSE_AT_MOST_S", 0.3)
    warehouse = DuckDBWarehouse(path, reader=True, keep_open=30)
    warehouse.query(COUNT)
    time.sleep(0.4)
    warehouse.query(COUNT)  # reused once more, then closed instead of parked again
    assert other_process_writes(path)
    warehouse.query(COUNT)
    assert opens == ["ro", "ro"]
    warehouse.close()
