"""The ingest pipeline: billing export files -> Arrow batches -> FOCUS -> staged -> warehouse.

    costflow ingest --provider aws --source ../shared/samples/aws/cur_legacy_anonymous.csv
    costflow ingest --source 'gs://billing/**/*.csv.gz' --runner DataflowRunner ...

This module is the composition root only: it resolves configuration, plans the sources with the
providers' catalog (`costflow.providers.CATALOG`), records the run, builds the pipeline from the
transforms and runs it. Locally (no --runner, or
DirectRunner) it runs Beam's in-process FnApiRunner directly, which is what DirectRunner falls
back to after trying to download the Prism runner; that attempt is skipped so local runs are
fast and work offline.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from costflow.errors import ConfigError, CostflowError, IngestFailed
from costflow.pipelines.commit import CommitRun, MergeStagedParts, RunSettings, remove_dir
from costflow.pipelines.elements import StagedPart
from costflow.pipelines.normalize import NormalizeBatches
from costflow.pipelines.options import QualityOptions, SourceOptions, WarehouseOptions
from costflow.pipelines.read import ReadSourceBatches
from costflow.pipelines.report import RunReport, write_reports
from costflow.pipelines.report import report_path as report_path_of
from costflow.pipelines.staging import StageParquet, run_staging_dir
from costflow.pipelines.unchanged import previous_load, skip_run
from costflow.providers import CATALOG, Catalog
from costflow.sources.contract import Plan, SourceBatch
from costflow.sources.credentials import parse_ref
from costflow.warehouse import connect, ledger, resolve_url, sqlfiles
from costflow.warehouse.base import RunStart
from costflow.warehouse.commit_params import (
    FAIL_RUN_DELAYS,
    amend_message,
    retry_fail_run,
    unrecorded,
)

LOG = logging.getLogger("costflow.ingest")
LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")


def build(pipeline: beam.Pipeline, plan: Plan, settings: RunSettings,
          catalog: Catalog) -> beam.PCollection:
    """Wire the transforms; returns the PCollection holding the run report."""
    files = [f for f in plan.files if catalog.beam_reader(f.container) is None]
    batches = (
        pipeline
        | "ListSources" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadBatches" >> beam.ParDo(ReadSourceBatches(catalog)).with_output_types(SourceBatch)
    )
    # Sources read by a Beam IO (BigQuery tables), one branch each, joined to the file reads.
    tables = [(f, read) for f in plan.files if (read := catalog.beam_reader(f.container))]
    if tables:
        branches = [pipeline | f"ReadTable{i}" >> read(f) for i, (f, read) in enumerate(tables)]
        batches = (batches, *branches) | "JoinReads" >> beam.Flatten()
    staged = (
        batches
        | "Normalize" >> NormalizeBatches(settings.run_id, settings.started_at,
                                          catalog.normalizers())
        | "StageParquet" >> beam.ParDo(StageParquet(settings.run_dir, settings.warehouse_url,
                                                    settings.run_id))
        .with_output_types(StagedPart)
    )
    return (
        staged
        | "MergeStaged" >> beam.CombineGlobally(MergeStagedParts())
        | "Commit" >> beam.ParDo(CommitRun(settings))
    )


def warm_quality_gate() -> threading.Thread:
    """Build the quality gate's GX suite (import, context, ~150 expectations: seconds, the same
    for every run) in a background thread while the files are read and normalized.

    The commit step's `SliceGateStep.warm_up` then finds it built (or waits for the build under
    the gate's lock) instead of starting it after the last row is staged. A failure here is
    left to the commit step, which builds the suite again and reports the error.
    """
    def build_suite() -> None:
        from costflow.quality.gate import QualityGate

        try:
            QualityGate().warm_up()
        except Exception:  # noqa: BLE001 - the commit step builds it again and reports
            LOG.debug("quality gate warm-up failed; the commit step retries", exc_info=True)

    thread = threading.Thread(target=build_suite, name="quality-gate-warm-up", daemon=True)
    thread.start()
    return thread


def _default_dir(value: str | None, name: str) -> str:
    return value or os.path.abspath(os.path.join(".costflow", name))


def run(argv: list[str] | None = None, catalog: Catalog | None = None) -> dict[str, Any]:
    """Run one ingest; returns the run report, raises CostflowError on failure.

    ``catalog`` is the providers' catalog to plan and read with (default: every provider,
    `costflow.providers.CATALOG`).
    """
    catalog = catalog or CATALOG
    options = PipelineOptions(argv)
    src, wh, quality = (options.view_as(SourceOptions), options.view_as(WarehouseOptions),
                        options.view_as(QualityOptions))
    # The run id becomes paths (staging, reports): check it before anything is touched.
    run_id = ledger.check_run_id(wh.run_id) if wh.run_id is not None else ledger.new_run_id()
    if not src.source:
        raise ConfigError("No --source given: name a file, directory or glob of exports.")
    credentials = parse_ref(src.credentials, src.secrets)  # a reference: read where used
    url = resolve_url(wh.warehouse)
    started = datetime.now(UTC)
    report_path = report_path_of(_default_dir(wh.report_dir, "runs"), run_id)
    staging_root = _default_dir(wh.staging_dir, "staging")
    run_dir = run_staging_dir(staging_root, run_id)
    warehouse = connect(url)
    try:
        warehouse.ensure_schema()
        ledger.sweep_quietly(warehouse, staging_root)  # runs that died without a word
        try:
            patterns = catalog.resolve_patterns(src.source, {
                "authorized_project": src.authorized_project,
                "lookback_days": src.lookback_days}, warehouse)
            plan = catalog.plan(patterns, src.provider, src.source_format,
                                billing_currency=src.billing_currency,
                                credentials=credentials)
        except CostflowError as exc:
            sources = [{"uri": s} for s in src.source]
            warehouse.begin_run(RunStart(run_id, started, src.provider, src.source_format,
                                         sources))  # refuses a reused id before any report
            raise _planning_failed(exc, warehouse, run_id, started, sources,
                                   report_path) from None
        formats = sorted({f.source_format for f in plan.files})
        start = RunStart(run_id, started, src.provider, ",".join(formats) or src.source_format,
                         [f.ledger_entry() for f in plan.files])
        previous = previous_load(warehouse, plan, files_too=bool(src.skip_unchanged_files))
        if previous:  # the same deliveries are loaded already: say so, read nothing
            return skip_run(warehouse, start, previous, plan, report_path)
        warehouse.begin_run(start)
        settings = RunSettings(
            run_id=run_id, started_at=started, warehouse_url=url, run_dir=run_dir,
            staging_root=staging_root, report_path=report_path,
            sources=[f.ledger_entry() for f in plan.files],
            empty_files=plan.empty_files, notes=plan.notes,
            max_dead_letter_ratio=quality.max_dead_letter_ratio,
            dead_letter_allowance=quality.dead_letter_allowance)
        try:
            ledger.create_run_dir(staging_root, run_id)
        except Exception as exc:  # noqa: BLE001 - an existing directory, a full disk, ...
            raise _as_user_error(exc, settings) from None
    finally:
        warehouse.close()  # the commit step opens its own connection
    LOG.info("run %s: %d file(s) to read into %s", run_id, len(plan.files), url)
    runner = options.view_as(StandardOptions).runner
    local = runner in LOCAL_RUNNERS
    try:
        with ledger.Heartbeat(lambda: connect(url), run_id):
            pipeline = beam.Pipeline(runner=FnApiRunner() if local else None, options=options)
            build(pipeline, plan, settings, catalog)
            if local:  # the commit step runs in this process: its gate is built meanwhile
                warm_quality_gate()
            pipeline.run().wait_until_finish()
    except KeyboardInterrupt:  # recorded as failed, staging removed; the CLI says the rest
        _as_user_error(IngestFailed(f"run {run_id} was interrupted (Ctrl-C) before it "
                                    "committed; the previous contents are intact."), settings,
                       recorded=False)
        raise
    except Exception as exc:
        raise _as_user_error(exc, settings) from None
    return _final_report(settings)


def _final_report(settings: RunSettings) -> dict[str, Any]:
    """The run report as written; if it could not be written, the ledger's copy, saying so."""
    try:
        return RunReport.read(settings.report_path)
    except Exception as exc:  # noqa: BLE001 - the run's outcome is the ledger's
        why = f"{type(exc).__name__}: {exc}"
    warehouse = connect(settings.warehouse_url)
    try:
        (statement,) = sqlfiles.load("queries/run_show.sql")
        rows = warehouse.query(statement.bigquery(), {"run_id": settings.run_id}).to_pylist()
    finally:
        warehouse.close()
    stored = rows[0]["report"] if rows else None
    report = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
    if not report:
        raise IngestFailed(
            f"run {settings.run_id} ended, but its report could not be read from "
            f"{settings.report_path} ({why}) and the ledger holds none; see `costflow runs show "
            f"{settings.run_id}`.")
    report.setdefault("warnings", []).append(
        f"the run report could not be written to {settings.report_path} (see the log; reading "
        f"it back: {why}); this is the copy the ledger holds")
    report["status"] = rows[0]["status"]
    finished = rows[0].get("finished_at")
    report["finished_at"] = finished.isoformat() if isinstance(finished, datetime) else finished
    return report


def _planning_failed(exc: CostflowError, warehouse: Any, run_id: str, started: datetime,
                     sources: list[dict[str, Any]], report_path: str) -> CostflowError:
    """A run that failed before reading anything: ledger 'failed' (retried) and a report."""
    report = RunReport(run_id=run_id, started_at=started, warehouse=warehouse.url,
                       sources=sources, status="failed", error=str(exc),
                       finished_at=datetime.now(UTC))
    ledger_error = retry_fail_run(warehouse.fail_run, run_id, str(exc), report.to_dict())
    addenda = [unrecorded(ledger_error, len(FAIL_RUN_DELAYS) + 1)] if ledger_error else []
    addenda += [f"Also, {p}." for p in write_reports(report, report_path)]
    amend_message(exc, " ".join(addenda))
    return exc


def _as_user_error(exc: Exception, settings: RunSettings,
                   recorded: bool | None = None) -> CostflowError:
    """The CostflowError behind Beam's wrapping, with the ledger and report updated.

    A failure in the commit step has already recorded itself; one earlier in the pipeline
    (say a truncated gzip file) is recorded here: staging removed first, then ledger 'failed'
    (retried), then a report. A ledger or report that cannot be written is named in the error.
    ``recorded`` says whether the failure is recorded already (default: an `IngestFailed`, the
    commit step's own error, is).
    """
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, CostflowError):
        cause = cause.__cause__ or cause.__context__
    if recorded is None:
        recorded = isinstance(cause, IngestFailed)
    if recorded and isinstance(cause, CostflowError):
        remove_dir(settings.staging_root, settings.run_id)  # already gone unless it failed
        return cause
    message = str(cause) if cause else f"{type(exc).__name__}: {exc}"
    report = RunReport(run_id=settings.run_id, started_at=settings.started_at,
                       warehouse=settings.warehouse_url, sources=settings.sources,
                       empty_files=settings.empty_files, status="failed", error=message,
                       finished_at=datetime.now(UTC))
    remove_dir(settings.staging_root, settings.run_id)
    try:
        warehouse = connect(settings.warehouse_url)
        try:
            ledger_error = retry_fail_run(warehouse.fail_run, settings.run_id, message,
                                          report.to_dict())
        finally:
            warehouse.close()
    except Exception as connect_error:  # noqa: BLE001
        ledger_error = connect_error
    addenda = [unrecorded(ledger_error, len(FAIL_RUN_DELAYS) + 1)] if ledger_error else []
    addenda += [f"Also, {p}." for p in write_reports(report, settings.report_path)]
    error = cause if isinstance(cause, CostflowError) else IngestFailed(message)
    amend_message(error, " ".join(addenda))
    return error
