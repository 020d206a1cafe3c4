"""The ledger tells the truth about every run: one id per run, no run `running` forever, reports
that never hide the outcome, and `costflow runs` to read it without SQL.

Runs are real: the `ingest` fixture's pipeline on small generated exports, a real `costflow
ingest` child process killed with SIGKILL, real DuckDB files.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from costflow import cli
from costflow.errors import ConfigError, CostflowError, IngestFailed
from costflow.providers.aws.samples.cur import GeneratedCur, generate_cur
from costflow.providers.gcp.samples import billing as gcp_samples
from costflow.text import exact
from costflow.warehouse import ledger
from costflow.warehouse.base import RunStart
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.conftest import ROOT

LEDGER = "SELECT * FROM cost_analytics.load_runs ORDER BY run_id"
SLICES = "SELECT * FROM cost_analytics.load_slices ORDER BY run_id, BillingPeriodStart"
COSTS = "SELECT COUNT(*) AS n, SUM(BilledCost) AS billed FROM cost_analytics.cost_line_items"


@pytest.fixture(autouse=True)
def _fresh_cli_logging(monkeypatch) -> None:
    """`cli.main` gives the costflow logger a handler on the stderr of its time; an earlier
    test's captured stream is closed by now, so each test starts without one."""
    monkeypatch.setattr(logging.getLogger("costflow"), "handlers", [])


@pytest.fixture
def cur(tmp_path: Path) -> GeneratedCur:
    return generate_cur(tmp_path / "exports" / "cur.csv", 100)


def _gcp_export(path: Path, rows: int | None = None) -> Path:
    """GCP billing export rows whose every row is dead-lettered (an unknown cost_type)."""
    records = gcp_samples.fixture_rows()[:rows]
    for record in records:
        record["cost_type"] = "credit_memo"
    return gcp_samples.write_jsonl(records, path)


def _status(ingest, run_id: str) -> dict:
    (row,) = ingest.rows(f"SELECT status, error FROM cost_analytics.load_runs "
                         f"WHERE run_id = '{run_id}'")
    return row


def _run_now(run_id: str) -> RunStart:
    return RunStart(run_id, datetime.now(UTC), "aws", "aws_cur_legacy", [{"uri": "x.csv"}])


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- 2. one id, one run ---------------------------------------------------------------------


def test_a_reused_run_id_is_refused_and_the_first_run_is_untouched(tmp_path, cur, ingest) -> None:
    ingest(cur.path, extra=["--run_id=nightly"])
    report_file = tmp_path / "runs" / "nightly.json"
    before = (ingest.rows(LEDGER), ingest.rows(SLICES), ingest.rows(COSTS),
              report_file.read_bytes())

    with pytest.raises(ConfigError, match=r"run id 'nightly' is already in the ledger \(a "
                                          r"succeeded run, started .* UTC\)\. .*untouched"):
        ingest(cur.path, extra=["--run_id=nightly"])
    # A reused id whose planning fails must not mark the first run failed either.
    with pytest.raises(ConfigError, match="already in the ledger"):
        ingest(tmp_path / "nowhere" / "*.csv", extra=["--run_id=nightly"])

    assert (ingest.rows(LEDGER), ingest.rows(SLICES), ingest.rows(COSTS),
            report_file.read_bytes()) == before
    assert not (tmp_path / "staging" / "nightly").exists()


# --- 3. nobody is `running` forever -----------------------------------------------------------


def test_a_run_killed_with_sigkill_is_marked_abandoned_and_its_staging_removed(
        tmp_path, cur, capsys) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    staging = tmp_path / "staging"
    child = subprocess.Popen(
        [sys.executable, "-m", "costflow.cli", "ingest", "--source", str(cur.path),
         "--warehouse", url, f"--staging_dir={staging}", f"--report_dir={tmp_path}/runs",
         "--run_id=doomed"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = staging / "doomed"
    deadline = time.monotonic() + 240
    try:
        while not run_dir.exists():  # staging exists once the ledger says running
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run never started staging"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    (row,) = wh.query("SELECT status, owner_pid FROM cost_analytics.load_runs").to_pylist()
    assert row == {"status": "running", "owner_pid": child.pid}  # nobody recorded an outcome
    assert run_dir.exists()

    capsys.readouterr()
    assert cli.main(["runs", "list", "--warehouse", url, "--staging-dir", str(staging),
                     "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == "doomed" and listed["status"] == "abandoned"
    assert f"its process (pid {child.pid} on " in listed["error"]
    assert "is gone" in listed["error"] and listed["finished_at"]
    assert not run_dir.exists()
    assert staging.is_dir()  # the root stays


def test_the_next_run_marks_a_run_whose_process_is_gone_abandoned(tmp_path, cur, ingest) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    wh.begin_run(_run_now("crashed"))
    pid = _dead_pid()
    wh.query("UPDATE cost_analytics.load_runs SET owner_pid = @pid WHERE run_id = 'crashed'",
             {"pid": pid})
    left = Path(ledger.create_run_dir(str(tmp_path / "staging"), "crashed"))
    (left / "rows").mkdir()
    (left / "rows" / "part.parquet").write_bytes(b"PAR1")

    assert ingest(cur.path, extra=["--run_id=next"])["status"] == "succeeded"

    assert _status(ingest, "next") == {"status": "succeeded", "error": None}
    crashed = _status(ingest, "crashed")
    assert crashed["status"] == "abandoned"
    assert crashed["error"].startswith(f"abandoned: its process (pid {pid} on ")
    assert not left.exists()


def test_other_hosts_runs_are_abandoned_only_when_their_heartbeat_is_older_than_the_timeout(
        tmp_path) -> None:
    from costflow.services.runs import list_runs

    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    for run_id in ("fresh-elsewhere", "stale-elsewhere", "alive-here", "no-owner"):
        wh.begin_run(_run_now(run_id))
    wh.query("UPDATE cost_analytics.load_runs SET owner_host = 'batch-7.example' "
             "WHERE run_id LIKE '%elsewhere'")
    wh.query("UPDATE cost_analytics.load_runs SET heartbeat_at = TIMESTAMP_SUB("
             "CURRENT_TIMESTAMP(), INTERVAL 31 MINUTE) WHERE run_id = 'stale-elsewhere'")
    # A ledger row of an older costflow: no owner, no heartbeat, started two hours ago.
    wh.query("UPDATE cost_analytics.load_runs SET owner_host = NULL, owner_pid = NULL, "
             "heartbeat_at = NULL, started_at = TIMESTAMP_SUB(CURRENT_TIMESTAMP(), "
             "INTERVAL 2 HOUR) WHERE run_id = 'no-owner'")

    runs = {r["run_id"]: r for r in list_runs(wh)}

    assert {k: r["status"] for k, r in runs.items()} == {
        "fresh-elsewhere": "running", "alive-here": "running",
        "stale-elsewhere": "abandoned", "no-owner": "abandoned"}
    assert runs["stale-elsewhere"]["error"].startswith(
        "abandoned: no heartbeat from pid ")
    assert "on batch-7.example for 31 minutes (timeout 30 minutes)" in runs[
        "stale-elsewhere"]["error"]
    assert "an unrecorded owner for 120 minutes" in runs["no-owner"]["error"]


def test_a_heartbeat_moves_while_running_and_never_touches_a_finished_run(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    wh = DuckDBWarehouse(path)
    wh.ensure_schema()
    wh.begin_run(_run_now("alive"))

    def heartbeat() -> datetime:
        (row,) = wh.query("SELECT heartbeat_at FROM cost_analytics.load_runs").to_pylist()
        return row["heartbeat_at"]

    first = heartbeat()
    with ledger.Heartbeat(lambda: DuckDBWarehouse(path), "alive",
                          interval=timedelta(milliseconds=50)):
        deadline = time.monotonic() + 30
        while heartbeat() == first:
            assert time.monotonic() < deadline, "the heartbeat never moved"
            time.sleep(0.05)
    wh.fail_run("alive", "stopped", {})
    last = heartbeat()
    ledger.beat(wh, "alive")
    assert heartbeat() == last
    (row,) = wh.query("SELECT status FROM cost_analytics.load_runs").to_pylist()
    assert row == {"status": "failed"}


# --- 4. a full disk loses no data, leaves no staging and no cut report ------------------------


def test_a_report_dir_that_cannot_be_created_does_not_hide_a_successful_run(
        tmp_path, cur, ingest) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the report directory should be")

    report = ingest(cur.path, extra=[f"--report_dir={blocker}", "--run_id=r1"])

    assert report["status"] == "succeeded"
    assert report["totals"]["billed_cost"] == exact(cur.unblended_total)
    assert any(f"could not be written to {blocker}/r1.json" in w for w in report["warnings"])
    assert _status(ingest, "r1") == {"status": "succeeded", "error": None}
    assert ingest.rows(COSTS)[0]["billed"] == cur.unblended_total
    assert not (tmp_path / "staging" / "r1").exists()
    assert blocker.read_text() == "a file where the report directory should be"


def test_a_failed_run_whose_report_cannot_be_written_says_both(tmp_path, ingest) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("not a directory")
    export = _gcp_export(tmp_path / "export.json")  # 16 rows, all dead-lettered

    with pytest.raises(IngestFailed) as raised:
        ingest(export, extra=[f"--report_dir={blocker}", "--run_id=r2"])

    message = str(raised.value)
    assert message.startswith("The source looks systematically broken")
    assert f"Also, the run report could not be written to {blocker}/r2.json: " in message
    assert f"the data-quality report could not be written to {blocker}/r2.html" in message
    status = _status(ingest, "r2")
    assert status["status"] == "failed"
    assert status["error"].startswith("The source looks systematically broken")
    assert not (tmp_path / "staging" / "r2").exists()


def test_a_disk_that_fills_while_writing_the_reports_leaves_no_cut_file(
        tmp_path, cur, ingest, monkeypatch) -> None:
    runs = tmp_path / "runs"
    real_create = FileSystems.create

    class FullDisk:
        """Writes half of what it is given, then the disk is full."""

        def __init__(self, sink) -> None:
            self.sink = sink

        def write(self, data: bytes) -> int:
            self.sink.write(data[:len(data) // 2])
            self.sink.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.sink.close()

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.sink.close()

    def create(path, *args, **kwargs):
        sink = real_create(path, *args, **kwargs)
        return FullDisk(sink) if str(path).startswith(str(runs)) else sink

    monkeypatch.setattr(FileSystems, "create", staticmethod(create))

    report = ingest(cur.path, extra=["--run_id=full"])

    assert report["status"] == "succeeded"
    assert _status(ingest, "full")["status"] == "succeeded"
    assert list(runs.iterdir()) == []  # no cut HTML or JSON, no temporary file left
    assert not (tmp_path / "staging" / "full").exists()


# --- 5. a run that fails while planning writes its report -----------------------------------


@pytest.mark.parametrize(("source", "says"), [
    ("{tmp}/nowhere/*.csv", "matches no file"),
    ("s3://billing-exports/cur/", "cannot be read from S3 (EndpointConnectionError"),
])
def test_a_run_that_fails_while_planning_writes_its_report(tmp_path, ingest, monkeypatch,
                                                           source, says) -> None:
    # An S3 endpoint nobody listens on (port 9, discard): unreachable, at once.
    for name, value in {"COSTFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9",
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    source = source.format(tmp=tmp_path)
    with pytest.raises(CostflowError) as raised:
        ingest(source, extra=["--run_id=lost"])

    assert says in str(raised.value)
    written = json.loads((tmp_path / "runs" / "lost.json").read_text())
    assert written["status"] == "failed" and written["error"] == str(raised.value)
    assert written["sources"] == [{"uri": source}] and written["finished_at"]
    assert says in (tmp_path / "runs" / "lost.html").read_text()
    assert _status(ingest, "lost") == {"status": "failed", "error": str(raised.value)}


# --- 6. a source that loads nothing is never a success --------------------------------------


def test_a_small_source_whose_every_row_is_dead_lettered_fails_the_run(tmp_path, ingest,
                                                                        capsys) -> None:
    export = _gcp_export(tmp_path / "five.json", rows=5)  # under the allowance of 10

    code = cli.main(["ingest", *ingest.argv(export, provider="gcp"), "--run_id=five"])

    assert code == 3
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert (f"{export}: 5 of 5 rows could not be loaded (none loaded); most common reason "
            "(5 rows):") in error
    assert _status(ingest, "five")["status"] == "failed"
    assert ingest.rows("SELECT COUNT(*) AS n FROM cost_analytics.dead_letters") == [{"n": 0}]
    assert ingest.rows(COSTS)[0]["n"] == 0


# --- 7. costflow runs list / show -----------------------------------------------------------


def test_runs_list_and_show_read_the_ledger_without_sql(tmp_path, cur, ingest, capsys) -> None:
    ingest(cur.path, extra=["--run_id=good"])
    with pytest.raises(CostflowError):
        ingest(tmp_path / "nowhere.csv", extra=["--run_id=bad"])
    url = ingest.url()
    capsys.readouterr()

    assert cli.main(["runs", "list", "--warehouse", url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["run_id", "status", "started_at", "finished_at", "sources",
                                "rows_read", "rows_loaded", "rows_dead_lettered",
                                "billed_cost_total", "error"]
    assert table[2].split()[:2] == ["bad", "failed"]
    assert table[3].split()[:2] == ["good", "succeeded"]
    total = exact(cur.unblended_total)
    assert table[3].split()[-4:] == ["100", "100", "0", total]

    assert cli.main(["runs", "list", "--warehouse", url, "--format", "json",
                     "--status", "succeeded"]) == 0
    (good,) = json.loads(capsys.readouterr().out)
    assert good["billed_cost_total"] == total  # exact text, never a float
    assert good["sources"][0]["uri"] == str(cur.path) and good["sources"][0]["sha256"]
    assert (good["rows_read"], good["rows_loaded"], good["rows_dead_lettered"]) == (100, 100, 0)

    assert cli.main(["runs", "show", "good", "--warehouse", url]) == 0
    page = capsys.readouterr().out
    assert page.startswith("run good: succeeded\n")
    assert f"  {cur.path} (format aws_cur_legacy, size_bytes " in page
    assert f"totals: source basis {total} = BilledCost {total} + dead-lettered 0" in page
    assert "slices:\n" in page and "aws/123412340534/2023-11" in page

    assert cli.main(["runs", "show", "good", "--warehouse", url, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    (one,) = shown["slices"]
    assert one["committed"] and one["loaded_billed_cost"] == total

    assert cli.main(["runs", "show", "bad", "--warehouse", url]) == 0
    assert "error: " in capsys.readouterr().out

    assert cli.main(["runs", "show", "nope", "--warehouse", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("costflow: error: the ledger of ") and "has no run 'nope'" in err


def test_runs_on_a_warehouse_without_a_ledger_is_one_clear_line(tmp_path, capsys) -> None:
    for command in (["list"], ["show", "some-run"]):
        code = cli.main(["runs", *command, "--warehouse", f"duckdb:///{tmp_path}/none.duckdb"])
        assert code == 2
        err = capsys.readouterr().err
        assert err.startswith("costflow: error: ") and err.count("\n") == 1, err
        assert "Run costflow ingest first" in err and "Traceback" not in err


def test_the_readme_documents_the_abandonment_timeout() -> None:
    readme = (ROOT / "README.md").read_text()
    minutes = int(ledger.HEARTBEAT_TIMEOUT.total_seconds() // 60)
    assert f"{minutes} minutes" in readme and "abandoned" in readme
