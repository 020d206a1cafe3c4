"""Hostile dates and a full disk end in one paragraph and an exit status, never a traceback.

Dates at the ends of the calendar (year 1, year 9999) reach date arithmetic in the query
services (a forecast's history window, the "last 30 days with charges" of resources, the month
of a MONTHLY bucket); a warehouse on a full filesystem fails the ingest at schema creation or at
the commit. Each case runs through `costflow.cli.main` (or the MCP server in-process) on a real
DuckDB file. The full disk is a real 1 MiB tmpfs when this process may mount one (root), else
(or with COSTFLOW_SIMULATE_FULL_DISK=1) simulated by raising DuckDB's own exception with the text
DuckDB gives on a real full tmpfs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from mcp import Client

from costflow.cli import main
from costflow.errors import IngestFailed
from costflow.services.mcp_server import build_server
from costflow.services.tenancy import Tenant
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import AWS_ACCT, GCP_BILLING, build, insert
from tests.test_query_services import history_rows
from tests.warehouse_rows import cost_row, expected_for, run_start, stage

LAST_DAY = datetime(9999, 12, 31, 6, tzinfo=UTC)
YEAR_ONE = "000000000001"  # an account whose only charge is dated 0001-01-05


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_paragraph(err: str) -> str:
    assert err.startswith("costflow: error: "), err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def far_future(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The query fixture plus AWS rows dated 9999-12-15 and 9999-12-31, the last day a date can
    hold (a bad source row: nothing stops an export from saying so)."""
    path = tmp_path_factory.mktemp("far") / "warehouse.duckdb"
    warehouse = build(path)
    insert(warehouse, [cost_row(cost, account=AWS_ACCT, sub_account=AWS_ACCT,
                                period=datetime(9999, 11, 1, tzinfo=UTC), charge_start=day,
                                row_number=77, ResourceType="Virtual Machine")
                       for cost, day in (("2.00", datetime(9999, 12, 15, tzinfo=UTC)),
                                         ("3.00", LAST_DAY))])
    insert(warehouse, [cost_row("1.50", account=YEAR_ONE, sub_account=YEAR_ONE,
                                period=datetime(1, 1, 1, tzinfo=UTC), row_number=78)])
    return f"duckdb:///{path}"


def test_a_forecast_starting_in_year_one_says_there_is_no_history(far_future, capsys) -> None:
    code, out, err = cli(capsys, "query", "forecast", "--start", "0001-01-02", "--end",
                         "0001-02-01", "--warehouse", far_future)
    assert (code, out) == (2, "")
    assert one_paragraph(err) == (
        "costflow: error: not enough history to forecast: no costs before 0001-01-02 for this "
        "tenant and provider 'all' (the history window starts at 0001-01-01, the first day a "
        "date can hold).\n")
    code, _, err = cli(capsys, "query", "forecast", "--start", "0001-01-01", "--end",
                       "0001-01-08", "--warehouse", far_future)
    assert code == 2 and "no costs before 0001-01-01 for this" in one_paragraph(err)


def test_a_forecast_at_the_end_of_the_calendar_works(tmp_path, capsys) -> None:
    """History in year 9999 (beyond pandas' nanosecond timestamps) and a December 9999 bucket."""
    warehouse = DuckDBWarehouse(tmp_path / "late.duckdb")
    warehouse.ensure_schema()
    insert(warehouse, history_rows(40, date(9999, 10, 1)))  # through 9999-11-09
    code, out, err = cli(capsys, "query", "forecast", "--start", "9999-12-01", "--end",
                         "9999-12-31", "--format", "json", "--warehouse",
                         f"duckdb:///{tmp_path / 'late.duckdb'}")
    assert code == 0, err
    result = json.loads(out)
    assert [(p["period"]["start"], p["period"]["end"]) for p in result["points"]] == [
        ("9999-12-01", "9999-12-31")]
    assert result["history"] == {"start": "9999-10-01", "end": "9999-11-10"}
    point = result["points"][0]
    assert Decimal(point["lower"]) < Decimal(point["cost"]) < Decimal(point["upper"])


def test_resources_after_a_row_dated_9999_12_31_explain_instead_of_crashing(
        far_future, capsys) -> None:
    code, out, err = cli(capsys, "query", "resources", "--warehouse", far_future)
    assert (code, out) == (2, "")
    assert one_paragraph(err) == (
        "costflow: error: the latest charge in scope is dated 9999-12-31, the last day a date "
        "can hold, so the 30 days ending with it are not a [start, end) period; that row's "
        "ChargePeriodStart is almost certainly wrong in the source. Give the period explicitly "
        "(--start/--end; MCP: start_date/end_date).\n")
    # A tenant that cannot see that row still gets its own last 30 days.
    code, out, _ = cli(capsys, "query", "resources", "--billing-account", GCP_BILLING,
                       "--format", "json", "--warehouse", far_future)
    assert code == 0 and [r["cost"] for r in json.loads(out)] == ["4.25"]
    # Nor do the 30 days before a charge in year 1 reach before the first day.
    code, out, _ = cli(capsys, "query", "resources", "--billing-account", YEAR_ONE,
                       "--format", "json", "--warehouse", far_future)
    assert code == 0 and [r["cost"] for r in json.loads(out)] == ["1.5"]
    # Explicit dates up to the last representable day work.
    code, out, _ = cli(capsys, "query", "resources", "--start", "9999-12-01", "--end",
                       "9999-12-31", "--format", "json", "--warehouse", far_future)
    assert code == 0 and [r["cost"] for r in json.loads(out)] == ["2"]


def test_the_mcp_tools_say_the_same_about_year_9999(far_future) -> None:
    path = far_future.removeprefix("duckdb:///")
    server = build_server(DuckDBWarehouse(path), Tenant.unrestricted_owner("t"))

    async def scenario() -> None:
        async with Client(server) as client:
            resources = await client.call_tool("get_resources", {})
            assert resources.is_error
            assert "the latest charge in scope is dated 9999-12-31" in (
                resources.content[0].text)
            monthly = await client.call_tool("get_costs", {
                "start_date": "9999-12-01", "end_date": "9999-12-31",
                "granularity": "MONTHLY"})
            assert not monthly.is_error, monthly.content[0].text
            (usd,) = json.loads(monthly.content[0].text)["results"]
            assert [(b["period"], b["cost"]) for b in usd["breakdown"]] == [
                ({"start": "9999-12-01", "end": "9999-12-31"}, "2")]

    asyncio.run(scenario())


# -- a full disk --------------------------------------------------------------------------------

NO_SPACE = ('TransactionContext Error: Failed to commit: Could not write file "{wal}": '
            "No space left on device")


def mount_tiny_tmpfs(where: Path) -> bool:
    """Mount a 1 MiB tmpfs on ``where``; False where this process may not (not root, no
    CAP_SYS_ADMIN in a container, no mount command)."""
    if os.environ.get("COSTFLOW_SIMULATE_FULL_DISK") or os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                              capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory whose filesystem is full, holding a warehouse with its schema.

    Real: a 1 MiB tmpfs filled up with a filler file. Without the right to mount (not root),
    DuckDB's exception on a full disk is raised with its real text instead.
    """
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = mount_tiny_tmpfs(where)
    try:
        DuckDBWarehouse(where / "w.duckdb").ensure_schema()
        if mounted:
            fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 65536)
            except OSError:
                pass
            finally:
                os.close(fd)
        else:
            wal = f"{where / 'w.duckdb'}.wal"

            def no_space(self, con, *args, **kwargs):
                raise duckdb.TransactionException(NO_SPACE.format(wal=wal))

            monkeypatch.setattr(DuckDBWarehouse, "_add_new_columns", no_space)
            monkeypatch.setattr(DuckDBWarehouse, "_commit", no_space)
        yield where
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=True)


def test_an_ingest_onto_a_full_disk_is_one_paragraph(full_disk, tmp_path, capsys) -> None:
    source = tmp_path / "cur.csv"
    source.write_text("identity/LineItemId,lineItem/UnblendedCost\nx,1\n", encoding="utf-8")
    code, _, err = cli(capsys, "ingest", "--source", str(source), "--warehouse",
                       f"duckdb:///{full_disk / 'w.duckdb'}",
                       f"--staging_dir={tmp_path / 'staging'}",
                       f"--report_dir={tmp_path / 'runs'}")
    assert code == 3
    assert one_paragraph(err).startswith(
        f"costflow: error: the warehouse file {full_disk / 'w.duckdb'} could not be written: "
        "no space left on device")
    assert "Nothing was committed" in err and "Free space" in err


def test_a_commit_onto_a_full_disk_names_the_file_and_rolls_back(full_disk, tmp_path) -> None:
    warehouse = DuckDBWarehouse(full_disk / "w.duckdb")
    rows = [cost_row(f"{i}.25", row_number=i, ResourceId=f"i-{i:040d}") for i in range(3000)]
    staged = stage(tmp_path / "staged", "run-full", rows)
    with contextlib.suppress(IngestFailed):  # the ledger row may not fit either
        warehouse.begin_run(run_start("run-full"))
    with pytest.raises(IngestFailed) as failed:
        warehouse.commit_run(staged, expected_for(rows), {})
    message = str(failed.value)
    assert message.startswith(f"the warehouse file {full_disk / 'w.duckdb'} could not be "
                              "written: no space left on device"), message
    assert "\n" not in message
    (full_disk / "filler").unlink(missing_ok=True)  # room again: nothing of the run is there
    reopened = DuckDBWarehouse(full_disk / "w.duckdb")
    assert reopened.query("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items"
                          ).to_pylist() == [{"n": 0}]
