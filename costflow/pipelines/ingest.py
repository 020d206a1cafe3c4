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

import logging
import os
import posixpath
import uuid
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
from costflow.pipelines.report import RunReport
from costflow.pipelines.staging import StageParquet, run_staging_dir
from costflow.pipelines.unchanged import previous_load, skip_run
from costflow.providers import CATALOG, Catalog
from costflow.sources.contract import Plan, SourceBatch
from costflow.warehouse import connect, resolve_url
from costflow.warehouse.base import RunStart

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
        | "StageParquet" >> beam.ParDo(StageParquet(settings.run_dir))
        .with_output_types(StagedPart)
    )
    return (
        staged
        | "MergeStaged" >> beam.CombineGlobally(MergeStagedParts())
        | "Commit" >> beam.ParDo(CommitRun(settings))
    )


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
    if not src.source:
        raise ConfigError("No --source given: name a file, directory or glob of exports.")
    url = resolve_url(wh.warehouse)
    run_id = wh.run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC)
    report_path = posixpath.join(_default_dir(wh.report_dir, "runs"), f"{run_id}.json")
    warehouse = connect(url)
    try:
        warehouse.ensure_schema()
        try:
            patterns = catalog.resolve_patterns(src.source, {
                "authorized_project": src.authorized_project,
                "lookback_days": src.lookback_days}, warehouse)
            plan = catalog.plan(patterns, src.provider, src.source_format,
                                billing_currency=src.billing_currency)
        except CostflowError as exc:
            warehouse.begin_run(RunStart(run_id, started, src.provider, src.source_format,
                                         [{"uri": s} for s in src.source]))
            warehouse.fail_run(run_id, str(exc), {"error": str(exc)})
            raise
        formats = sorted({f.source_format for f in plan.files})
        start = RunStart(run_id, started, src.provider, ",".join(formats) or src.source_format,
                         [f.ledger_entry() for f in plan.files])
        previous = previous_load(warehouse, plan)
        if previous:  # the same deliveries are loaded already: say so, read nothing
            return skip_run(warehouse, start, previous, plan, report_path)
        warehouse.begin_run(start)
    finally:
        warehouse.close()  # the commit step opens its own connection
    settings = RunSettings(
        run_id=run_id, started_at=started, warehouse_url=url,
        run_dir=run_staging_dir(_default_dir(wh.staging_dir, "staging"), run_id),
        report_path=report_path, sources=[f.ledger_entry() for f in plan.files],
        empty_files=plan.empty_files, notes=plan.notes,
        max_dead_letter_ratio=quality.max_dead_letter_ratio,
        dead_letter_allowance=quality.dead_letter_allowance)
    LOG.info("run %s: %d file(s) to read into %s", run_id, len(plan.files), url)
    runner = options.view_as(StandardOptions).runner
    try:
        pipeline = beam.Pipeline(runner=FnApiRunner() if runner in LOCAL_RUNNERS else None,
                                 options=options)
        build(pipeline, plan, settings, catalog)
        pipeline.run().wait_until_finish()
    except Exception as exc:
        raise _as_user_error(exc, settings) from None
    return RunReport.read(report_path)


def _as_user_error(exc: Exception, settings: RunSettings) -> CostflowError:
    """The CostflowError behind Beam's wrapping, with the ledger and report updated.

    A failure in the commit step has already recorded itself; one earlier in the pipeline
    (say a truncated gzip file) is recorded here: ledger 'failed', a report, staging removed.
    """
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, CostflowError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, IngestFailed):
        return cause
    message = str(cause) if cause else f"{type(exc).__name__}: {exc}"
    report = RunReport(run_id=settings.run_id, started_at=settings.started_at,
                       warehouse=settings.warehouse_url, sources=settings.sources,
                       empty_files=settings.empty_files, status="failed", error=message,
                       finished_at=datetime.now(UTC))
    report.write(settings.report_path)
    remove_dir(settings.run_dir)
    warehouse = connect(settings.warehouse_url)
    try:
        warehouse.fail_run(settings.run_id, message, report.to_dict())
    finally:
        warehouse.close()
    return cause if isinstance(cause, CostflowError) else IngestFailed(message)

