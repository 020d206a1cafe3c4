"""Shared test fixtures.

`shared_dir` points at the reference material in ../shared. A user's fresh clone has no
../shared: tests that need it skip with a reason; under CI=true (CI always has it) they fail
instead, so they can never skip silently in CI.

`ingest` runs the ingest pipeline under the test's tmp_path (one helper for every test file);
`normalize_file` runs only the normalize step (normalizer + finalize) on one file, for tests of
dead letters and row errors that need no pipeline; `cur_sample_loaded` gives a test's warehouse
one finished ingest of the real CUR sample (loaded once per session, copied); `aws_demo` is
`costflow demo`, run once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COSTFLOW_SHARED", ROOT.parent / "shared"))


def require_shared(relative: str = "") -> Path:
    """Path under ../shared, or skip (fail under CI=true) when it is absent."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is absent: the reference samples live in ../shared beside the clone"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: CI always has ../shared)")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()


@pytest.fixture
def cur_sample() -> Path:
    """The real anonymized AWS legacy CUR sample (1,281 rows, 94 columns)."""
    return require_shared("samples/aws/cur_legacy_anonymous.csv")


# --- one ingest helper for every test that runs the pipeline ------------------------------------


class Ingest:
    """`costflow.pipelines.ingest.run` as the tests call it, everything under one directory.

    ``ingest(*sources)`` runs one ingest of the sources into ``duckdb:///<tmp>/<db>.duckdb``,
    staging in ``<tmp>/staging`` and the run reports in ``<tmp>/runs``, and returns the run report.
    Keywords: ``db`` (warehouse file name), ``provider`` (``--provider``), ``extra`` (more flags),
    ``tmp`` (another directory than the test's, e.g. one warehouse per variant), ``queries``
    (``{name: sql}``: also return ``{name: rows}`` read from the warehouse after the run) and
    ``cli`` (go through ``costflow ingest --json`` instead, and return the report it prints).
    """

    def __init__(self, tmp: Path, request: pytest.FixtureRequest | None = None) -> None:
        self.tmp = tmp
        self._request = request

    def url(self, db: str = "w", tmp: Path | None = None) -> str:
        return f"duckdb:///{tmp or self.tmp}/{db}.duckdb"

    def argv(self, *sources: Path | str, db: str = "w", provider: str | None = None,
             extra: list[str] | None = None, tmp: Path | None = None) -> list[str]:
        where = tmp or self.tmp
        return ([f"--source={s}" for s in sources]
                + ([f"--provider={provider}"] if provider else [])
                + [f"--warehouse={self.url(db, where)}", f"--staging_dir={where}/staging",
                   f"--report_dir={where}/runs"] + list(extra or []))

    def rows(self, sql: str, db: str = "w", tmp: Path | None = None) -> list[dict]:
        from costflow.warehouse import connect

        wh = connect(self.url(db, tmp))
        try:
            return wh.query(sql).to_pylist()
        finally:
            wh.close()

    def __call__(self, *sources: Path | str, db: str = "w", provider: str | None = None,
                 extra: list[str] | None = None, tmp: Path | None = None,
                 queries: dict[str, str] | None = None, cli: bool = False) -> Any:
        argv = self.argv(*sources, db=db, provider=provider, extra=extra, tmp=tmp)
        if cli:
            report = self._through_cli(argv)
        else:
            from costflow.pipelines.ingest import run

            report = run(argv)
        if queries is None:
            return report
        return report, {name: self.rows(sql, db, tmp) for name, sql in queries.items()}

    def _through_cli(self, argv: list[str]) -> dict:
        from costflow import cli

        if self._request is None:
            raise TypeError("cli=True needs the `ingest` fixture (it reads the output)")
        capsys = self._request.getfixturevalue("capsys")
        code = cli.main(["ingest", *argv, "--json"])
        assert code == 0
        return json.loads(capsys.readouterr().out)


@pytest.fixture
def ingest(tmp_path: Path, request: pytest.FixtureRequest) -> Ingest:
    """Run the ingest pipeline under the test's tmp_path; see `Ingest`."""
    return Ingest(tmp_path, request)


# --- the real CUR sample, ingested once per session and copied into each test that needs it ----


@pytest.fixture(scope="session")
def _cur_sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One ingest of `cur_sample` (the warehouse file and its run report), per session/worker."""
    sample = require_shared("samples/aws/cur_legacy_anonymous.csv")
    where = tmp_path_factory.mktemp("cur-sample-loaded")
    report = Ingest(where)(sample)
    assert report["status"] == "succeeded", report
    return where / "w.duckdb", report


@pytest.fixture
def cur_sample_loaded(tmp_path: Path, _cur_sample_run: tuple[Path, dict]) -> dict:
    """The test's warehouse (``ingest``'s ``w``) already holding one succeeded ingest of
    `cur_sample`: a copy of a warehouse loaded once per session, not a new pipeline run.
    Returns that run's report. For tests of what a later run does to previous contents."""
    import shutil

    warehouse, report = _cur_sample_run
    for name in (warehouse.name, warehouse.name + ".wal"):
        if (warehouse.parent / name).exists():
            shutil.copyfile(warehouse.parent / name, tmp_path / name)
    return report


# --- the AWS demo, run once per session -------------------------------------------------------


@dataclass(frozen=True)
class DemoRun:
    cwd: Path   # where `costflow demo` ran: exports/aws and .costflow/ are under it
    text: str   # what it printed


@pytest.fixture(scope="session")
def aws_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`costflow demo` (AWS, 2,000 rows a month) run once in a directory of its own."""
    from costflow.demo import run_demo

    cwd = tmp_path_factory.mktemp("aws-demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        text = run_demo(rows=2_000)
    return DemoRun(cwd, text)


# --- the normalize step alone, for tests of what finalize() makes of a file ---------------------


@dataclass(frozen=True)
class NormalizedFile:
    """One file through its format's normalizer and `finalize`, batch by batch, as the
    pipeline's normalize step does it; nothing is staged or committed."""

    uri: str
    rows_read: int
    rows: pa.Table          # what would be loaded
    dead_letters: pa.Table  # what would go to dead_letters
    slices: dict[Any, Any]  # SliceKey -> SliceStats, merged over the batches

    def refusals(self) -> list[str]:
        """The commit step's dead-letter threshold (default limits) applied to this file."""
        from costflow.pipelines.commit import RunSettings, threshold_breaches
        from costflow.pipelines.elements import FileCounts, StagedPart

        reasons: dict[str, int] = {}
        for reason in self.dead_letters.column("ErrorReason").to_pylist():
            reasons[reason] = reasons.get(reason, 0) + 1
        counts = FileCounts(self.rows_read, self.dead_letters.num_rows, reasons)
        settings = RunSettings(run_id="run-1", started_at=INGESTED_AT, warehouse_url="",
                               run_dir="", report_path="", sources=[])
        return threshold_breaches(StagedPart(slices=self.slices, files={self.uri: counts}),
                                  settings)


INGESTED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def normalize_file(path: Path | str, provider: str | None = None) -> NormalizedFile:
    """Plan one file as `costflow ingest` would, read it, normalize and finalize every batch."""
    from costflow.providers import CATALOG
    from costflow.reconcile import merge_all
    from costflow.transforms.contract import BatchContext
    from costflow.transforms.finalize import finalize

    (source,) = CATALOG.plan([str(path)], provider).files
    normalizer = CATALOG.formats.get(source.source_format)
    done, rows_read = [], 0
    for first, batch in CATALOG.read_batches(source):
        ctx = BatchContext(source_uri=source.uri, source_format=source.source_format,
                           provider=source.provider, first_row_number=first, run_id="run-1",
                           ingested_at=INGESTED_AT)
        done.append(finalize(batch, normalizer.map(batch), ctx))
        rows_read += batch.num_rows
    return NormalizedFile(source.uri, rows_read,
                          pa.concat_tables([d.rows for d in done]),
                          pa.concat_tables([d.dead_letters for d in done]),
                          merge_all([d.slices for d in done]))


def modules_loaded_by(imports: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules in (or under) one of the packages ``prefixes`` that ``import {imports}``
    loads in a fresh interpreter (what a light import promises not to pull in)."""
    code = (f"import sys; before = set(sys.modules); import {imports}; "
            f"print('\\n'.join(sorted(m for m in set(sys.modules) - before "
            f"if any(m == p or m.startswith(p + '.') for p in {prefixes!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
