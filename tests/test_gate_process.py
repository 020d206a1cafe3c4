"""The quality gate in its own process, and the commit that awaits its verdict.

`costflow.quality.gate_process` must answer exactly what the gate answers in this process, hand
a validation's error back as itself, and, when it dies, leave the validation to this process.
`commit_run(gate=...)` must insert nothing for good when the verdict rejects the run, and record
the report the verdict returns when it accepts it. Speed is the benchmarks' business (bench/).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from costflow.pipelines.report import RunReport
from costflow.quality import gate_process
from costflow.quality.commit_checks import DataQualityError, SliceGateStep
from costflow.quality.gate import QualityGate
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.warehouse_rows import cost_row, expected_for, run_start, stage

COUNT = "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items"


def _rows() -> list[dict]:
    """Three rows of one slice; one breaks a hard rule (a negative list unit price)."""
    return [cost_row("1.25", row_number=1), cost_row("0.50", row_number=2),
            cost_row("2.00", row_number=3, ListUnitPrice="-0.5")]


def _outcomes(results: dict) -> dict:
    return {str(key): sorted((o.check.name, o.evaluated, o.failed, o.error)
                             for o in quality.outcomes.values())
            for key, quality in results.items()}


@pytest.fixture
def staged(tmp_path: Path) -> list[str]:
    return stage(tmp_path / "run-1", "run-1", _rows(), []).row_files


def test_the_gate_process_answers_what_this_process_does(staged) -> None:
    gate_process.start()
    assert gate_process.running()
    remote = gate_process.validate(staged)
    local = QualityGate().validate_files(staged)
    assert _outcomes(remote) == _outcomes(local)
    (quality,) = remote.values()
    assert [o.check.name for o in quality.hard_failures] == ["non_negative:ListUnitPrice"]
    assert quality.hard_failures[0].failed == 1


def test_a_validation_error_comes_back_as_itself(tmp_path) -> None:
    gate_process.start()
    with pytest.raises(FileNotFoundError):
        gate_process.validate([str(tmp_path / "absent.parquet")])
    assert gate_process.running()  # the child survives a failed validation


def test_a_dead_gate_process_leaves_the_validation_to_this_process(staged, caplog) -> None:
    gate_process.start()
    gate_process._STATE["process"].kill()
    gate_process._STATE["process"].wait(timeout=10)
    report = RunReport(run_id="run-1", started_at=run_start("run-1").started_at,
                       warehouse="duckdb:///x", sources=[], empty_files=[])
    with caplog.at_level(logging.WARNING, logger="costflow.quality"):
        verdict = SliceGateStep().start("run-1", staged, report)
        with pytest.raises(DataQualityError, match="non_negative:ListUnitPrice"):
            verdict()
    assert any("quality gate process failed" in r.getMessage() for r in caplog.records)
    assert not gate_process.running()
    with pytest.raises(DataQualityError):  # the verdict is given once, the same each time
        verdict()


def test_a_rejecting_verdict_rolls_the_inserted_rows_back(tmp_path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    rows = _rows()[:2]
    seen: list[int] = []

    def reject() -> dict:
        # Called inside the transaction, after the insert: this connection's view is not
        # committed, so another connection still sees nothing.
        seen.append(wh.query(COUNT).to_pylist()[0]["n"])
        raise DataQualityError("run run-1: rejected by the test")

    wh.begin_run(run_start("run-1"))
    with pytest.raises(DataQualityError, match="rejected by the test"):
        wh.commit_run(stage(tmp_path / "s", "run-1", rows, []), expected_for(rows),
                      {"run_id": "run-1"}, gate=reject)
    assert seen == [0]
    assert wh.query(COUNT).to_pylist() == [{"n": 0}]
    status = wh.query("SELECT status FROM cost_analytics.load_runs").to_pylist()
    assert status == [{"status": "failed"}]


def test_an_accepting_verdict_records_the_report_it_returns(tmp_path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    rows = _rows()[:2]
    wh.begin_run(run_start("run-1"))
    wh.commit_run(stage(tmp_path / "s", "run-1", rows, []), expected_for(rows),
                  {"run_id": "run-1"}, gate=lambda: {"run_id": "run-1", "quality": "checked"})
    assert wh.query(COUNT).to_pylist() == [{"n": 2}]
    (row,) = wh.query("SELECT status, JSON_VALUE(report, '$.quality') AS q "
                      "FROM cost_analytics.load_runs").to_pylist()
    assert row == {"status": "succeeded", "q": "checked"}
