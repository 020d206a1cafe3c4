"""The `costflow` console script as a user runs it: exit codes and one-paragraph errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.text import render_table as render

COSTFLOW = Path(sys.executable).with_name("costflow")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Output buffered as a user's shell buffers it (some machines export PYTHONUNBUFFERED).
    env = {k: v for k, v in os.environ.items()
           if k not in ("COSTFLOW_WAREHOUSE", "PYTHONUNBUFFERED")}
    return subprocess.run([str(COSTFLOW), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_missing_source_is_one_line_exit_2(tmp_path):
    done = _run("ingest", "--source", "nowhere/*.csv.gz", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "costflow: error: nowhere/*.csv.gz: matches no file. "
        "Expected files ending in .csv, .csv.gz, .parquet, .json, .json.gz, .jsonl, .jsonl.gz, "
        ".ndjson, .ndjson.gz, .avro.")
    assert "Traceback" not in done.stderr


def test_a_run_refused_at_commit_is_one_paragraph_without_traceback(tmp_path):
    from costflow.providers.gcp.samples import billing as gs

    rows = gs.fixture_rows()
    for row in rows:
        row["cost_type"] = "credit_memo"  # every row dead-lettered: the threshold refuses
    gs.write_jsonl(rows, tmp_path / "export.json")
    done = _run("ingest", "--provider", "gcp", "--source", "export.json", "--warehouse",
                "duckdb:///w.duckdb", cwd=tmp_path)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert error.startswith("costflow: error: The source looks systematically broken")
    assert "export.json: 16 of 16 rows could not be loaded" in error


def test_unknown_group_by_and_bad_range_are_clear(tmp_path):
    done = _run("query", "costs", "--start", "2023-11-01", "--end", "2023-12-01",
                "--group-by", "service;DROP TABLE x", cwd=tmp_path)
    assert done.returncode == 2
    assert "service;DROP TABLE x" in done.stderr and "service" in done.stderr
    assert "Traceback" not in done.stderr
    done = _run("query", "costs", "--start", "2023-12-01", "--end", "2023-11-01", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not after --start" in done.stderr


def test_not_a_date_is_an_argument_error(tmp_path):
    done = _run("query", "costs", "--start", "11/01/2023", "--end", "2023-12-01", cwd=tmp_path)
    assert done.returncode == 2
    assert "'11/01/2023' is not a date; expected YYYY-MM-DD" in done.stderr


def test_warehouse_url_errors_name_the_accepted_forms(tmp_path):
    done = _run("export", "--out", "x.parquet", "--warehouse", "postgres://db/x", cwd=tmp_path)
    assert done.returncode == 2
    assert "postgres://db/x" in done.stderr and "duckdb:///" in done.stderr


def test_render_keeps_decimals_exact_in_every_format():
    rows = [{"service": "Amazon S3", "cost": Decimal("0.000000004970000000")},
            {"service": "AWS Lambda", "cost": Decimal("-12.500000000000000000")}]
    assert render(rows, ["service", "cost"], "csv").splitlines() == [
        "service,cost", "Amazon S3,0.00000000497", "AWS Lambda,-12.5"]
    assert '"cost": "0.00000000497"' in render(rows, ["service", "cost"], "json")
    table = render(rows, ["service", "cost"], "table").splitlines()
    assert table[0].startswith("service") and table[2].endswith("0.00000000497")
    assert table[3].endswith("-12.5")


def test_demo_generates_ingests_and_reconciles(aws_demo):
    # The AWS demo runs once per session (tests/conftest.py `aws_demo`); this checks its output.
    text = aws_demo.text
    assert "succeeded" in text
    assert "aws/123412340534/2023-10" in text and "aws/123412340534/2023-11" in text
    source = text.split("(source says all months, USD: ")[1].split(")")[0]
    assert f"source basis {source} = BilledCost {source} + dead-lettered 0" in text
    assert (aws_demo.cwd / ".costflow" / "warehouse.duckdb").exists()
    assert (aws_demo.cwd / "exports" / "aws").is_dir()


@pytest.mark.parametrize("provider", ["gcp", "azure"])
def test_demo_for_other_providers_reconciles_every_slice(tmp_path, monkeypatch, provider):
    import json

    from costflow.demo import run_demo

    monkeypatch.chdir(tmp_path)
    text = run_demo(rows=300, provider=provider)
    assert "generated" in text and "succeeded" in text
    (report,) = (tmp_path / ".costflow" / "runs").glob("*.json")
    slices = json.loads(report.read_text())["slices"]
    assert all(s["difference"] == "0" and s["reconciled"] for s in slices)
    assert len({s["billing_period_start"][:7] for s in slices}) == 2  # both generated months
    assert {s["provider"] for s in slices} == {provider}


def test_a_finished_ingest_exits_with_its_whole_report_written(tmp_path):
    """`console` leaves with os._exit: the JSON report must still be whole on a pipe (a sync
    reads its children's reports this way) and the exit status the command's."""
    from costflow.providers.gcp.samples import billing as gs

    gs.write_jsonl(gs.fixture_rows(), tmp_path / "export.json")
    done = _run("ingest", "--provider", "gcp", "--source", "export.json", "--warehouse",
                "duckdb:///w.duckdb", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded"
    assert report["totals"]["rows_loaded"] == 16
    assert "done, 16 rows" in done.stderr  # the progress log is flushed too


def test_console_runs_exit_handlers_and_threads_then_skips_the_teardown(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import atexit, sys, threading, time\n"
        "import costflow.cli as cli\n"
        "class Teardown:\n"
        "    def __del__(self):\n"
        "        print('teardown ran', flush=True)\n"
        "KEPT = Teardown()\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread finished')\n"
        "def main(argv=None):\n"
        "    threading.Thread(target=late).start()\n"
        "    print('answer')\n"
        "    return 7\n"
        "cli.main = main\n"
        "cli.console()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 7
    assert done.stdout.splitlines() == ["answer", "thread finished", "exit handler ran"]
