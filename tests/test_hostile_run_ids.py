"""A run id is a path component: a hostile one must never delete or write outside the run's own
directories. The staging directory is deleted recursively after every run, so `--run_id ..` or
`--run_id /some/dir` used to delete that directory (the warehouse with it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from costflow.errors import ConfigError
from costflow.providers.aws.samples.cur import generate_cur
from costflow.quality.html_report import quality_report_path
from costflow.warehouse import ledger
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.warehouse_rows import run_start


@pytest.fixture
def cur(tmp_path: Path) -> Path:
    generate_cur(tmp_path / "exports" / "cur.csv", 100)
    return tmp_path / "exports" / "cur.csv"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("run_id", [
    "..",                      # staging/.. is the directory holding the warehouse
    "{victim}",                # an absolute path: join(root, "/abs") is "/abs"
    "x/../../victim",          # climbs out of the staging root
    "../victim",
    ".hidden",                 # does not start with a letter or digit
    "a..b",                    # never "..", anywhere
    "run id",                  # a space
    "r" * 129,                 # longer than 128
    "",                        # empty: would be the staging root itself
])
def test_a_hostile_run_id_is_refused_before_anything_is_touched(tmp_path, cur, ingest,
                                                                run_id) -> None:
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    (victim / "keep" / "precious.txt").write_text("do not delete")
    history = DuckDBWarehouse(tmp_path / "w.duckdb")  # the warehouse `ingest` writes to
    history.ensure_schema()
    history.begin_run(run_start("first"))
    before = _tree(tmp_path)

    with pytest.raises(ConfigError, match=r"is not a run id: .*Nothing was done"):
        ingest(cur, extra=[f"--run_id={run_id.format(victim=victim)}"])

    assert _tree(tmp_path) == before  # nothing deleted, nothing written
    assert (victim / "keep" / "precious.txt").read_text() == "do not delete"
    assert ingest.rows("SELECT run_id, status FROM cost_analytics.load_runs") == [
        {"run_id": "first", "status": "running"}]


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_run_never_stages_into_nor_deletes_a_directory_it_did_not_make(tmp_path, cur, ingest,
                                                                         kind) -> None:
    """`<staging>/<run id>` already there (someone's directory, or a link to one): the run
    refuses to start instead of staging into it and deleting it afterwards."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    staging = tmp_path / "staging"
    staging.mkdir()
    if kind == "directory":
        (staging / "nightly").mkdir()
        (staging / "nightly" / "notes.txt").write_text("mine")
    else:
        (staging / "nightly").symlink_to(theirs, target_is_directory=True)

    with pytest.raises(ConfigError, match=r"staging directory .*nightly exists already"):
        ingest(cur, extra=["--run_id=nightly"])

    assert (staging / "nightly" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]  # nothing staged in it
    (row,) = ingest.rows("SELECT status, error FROM cost_analytics.load_runs")
    assert row["status"] == "failed" and "exists already" in row["error"]


def test_cleanup_removes_only_the_runs_own_marked_child_of_the_staging_root(tmp_path) -> None:
    root = tmp_path / "staging"
    made = ledger.create_run_dir(str(root), "run-1")
    (Path(made) / "rows").mkdir()
    (Path(made) / "rows" / "a.parquet").write_bytes(b"x")
    unmarked = root / "run-2"
    unmarked.mkdir()
    other_marker = root / "run-3"
    other_marker.mkdir()
    (other_marker / ledger.MARKER).write_text("run-1")  # a marker naming another run

    assert ledger.remove_run_dir(str(root), "run-2") is False
    assert ledger.remove_run_dir(str(root), "run-3") is False
    assert ledger.remove_run_dir(str(root), "..") is False
    assert ledger.remove_run_dir(str(root), str(unmarked)) is False
    assert unmarked.is_dir() and other_marker.is_dir() and root.is_dir()
    assert ledger.remove_run_dir(str(root), "run-1") is True
    assert not Path(made).exists()
    assert ledger.remove_run_dir(str(root), "run-1") is False  # gone already: nothing to do


def test_generated_ids_match_the_pattern_and_the_patterns_are_posix_egrep() -> None:
    for _ in range(50):
        assert ledger.is_run_id(ledger.new_run_id())
    assert ledger.is_run_id("2026-11.aws_cur-nightly") and ledger.is_run_id("a" * 128)
    # Only constructs POSIX ERE shares with Python (the Flex Template validates with them).
    for pattern in ledger.RUN_ID_PATTERNS:
        assert not re.search(r"\(\?|\\[dDwWsSbB]|\*\?|\+\?", pattern), pattern


def test_report_paths_are_built_from_a_checked_id_only(tmp_path) -> None:
    from costflow.pipelines.report import report_path

    assert report_path(str(tmp_path), "run-1") == f"{tmp_path}/run-1.json"
    with pytest.raises(ConfigError):
        report_path(str(tmp_path), "../run-1")
    assert quality_report_path(f"{tmp_path}/run-1.json") == f"{tmp_path}/run-1.html"
    for not_a_report in (f"{tmp_path}/run-1", f"{tmp_path}/.json", f"{tmp_path}/run-1.html"):
        with pytest.raises(ValueError, match="not the path of a run's JSON report"):
            quality_report_path(not_a_report)
