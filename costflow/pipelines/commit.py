"""The last step of an ingest run: check the run, then commit it to the warehouse atomically.

`MergeStagedParts` folds every bundle's staged files and totals into one. `CommitRun` then
refuses a systematically broken source (dead-letter threshold), amortizes commitment fees over
the staged rows (`costflow.pipelines.amortize`), flags line items repeated across the files of a
slice (`costflow.pipelines.cross_file`), asks the warehouse to load the
staged files and replace the run's slices in one transaction after reconciling them, removes the
staging files, and writes the run report. Any failure leaves the previous warehouse contents
intact, records the run as failed in the ledger (retrying), and fails the pipeline. Cleanup comes
first and never depends on a write: a report that cannot be written (a full disk) is logged and
named, in the error of a failed run or the warnings of a succeeded one, never raised over the
run's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import pyarrow as pa

from costflow.errors import CostflowError, DeadLetterThresholdError, IngestFailed
from costflow.pipelines.amortize import amortize_staged
from costflow.pipelines.cross_file import CrossFile, flag_across_files
from costflow.pipelines.elements import StagedPart
from costflow.pipelines.report import RunReport, write_reports
from costflow.reconcile import SliceKey, SliceStats
from costflow.warehouse import ledger
from costflow.warehouse.base import StagedRun
from costflow.warehouse.commit_params import (
    FAIL_RUN_DELAYS,
    LEDGER_UNRECORDED,
    retry_fail_run,
    unrecorded,
)

LOG = logging.getLogger("costflow.ingest")


class MergeStagedParts(beam.CombineFn):
    def create_accumulator(self) -> StagedPart:
        return StagedPart()

    def add_input(self, acc: StagedPart, part: StagedPart) -> StagedPart:
        return acc.merge(part)

    def merge_accumulators(self, accs) -> StagedPart:
        out = StagedPart()
        for acc in accs:
            out = out.merge(acc)
        return out

    def extract_output(self, acc: StagedPart) -> StagedPart:
        return acc


@dataclass(frozen=True)
class RunSettings:
    """What the commit step needs to know about the run, fixed at the composition root."""

    run_id: str
    started_at: datetime
    warehouse_url: str
    run_dir: str  # <staging_root>/<run_id>, made by the run with its marker
    report_path: str
    sources: list[dict[str, Any]]
    staging_root: str = ""  # cleanup removes exactly run_dir, and only as a child of this
    empty_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # planner notes (Plan.notes), into warnings
    max_dead_letter_ratio: float = 0.01
    dead_letter_allowance: int = 10


def threshold_breaches(part: StagedPart, settings: RunSettings) -> list[str]:
    """Sources whose dead letters exceed max(allowance, ratio x rows read), and sources whose
    every row was dead-lettered (however few: a file that loads nothing is never a success)."""
    breaches = []
    for uri, counts in sorted(part.files.items()):
        limit = max(settings.dead_letter_allowance,
                    settings.max_dead_letter_ratio * counts.rows_read)
        every_row = 0 < counts.rows_read <= counts.rows_dead_lettered
        if counts.rows_dead_lettered > limit or every_row:
            top = max(counts.dead_letter_reasons.items(), key=lambda kv: kv[1])
            why = "none loaded" if every_row else f"limit {limit:,.0f}"
            breaches.append(
                f"{uri}: {counts.rows_dead_lettered:,} of {counts.rows_read:,} rows could not "
                f"be loaded ({why}); most common reason ({top[1]:,} rows): {top[0]}")
    return breaches


class CommitRun(beam.DoFn):
    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings

    def setup(self) -> None:
        from costflow.quality.commit_checks import SliceGateStep
        from costflow.warehouse import connect  # clients are built on the worker, not pickled
        self.warehouse = connect(self.settings.warehouse_url)
        self.quality = SliceGateStep()  # GX context and suite: once per worker
        self.quality.warm_up()

    def teardown(self) -> None:
        self.warehouse.close()

    def process(self, part: StagedPart) -> Iterator[dict[str, Any]]:
        s = self.settings
        # Reading and normalizing are over: give their Arrow buffers back before the load.
        pa.default_memory_pool().release_unused()
        report = RunReport(run_id=s.run_id, started_at=s.started_at, warehouse=s.warehouse_url,
                           sources=s.sources, empty_files=s.empty_files)
        report.warnings.extend(s.notes)
        report.add_totals(part.slices, part.files)
        # Unattributable keys (dead letters with no readable account or period) are passed
        # too, so the warehouse reconciles their cost; they replace by source URI, not slice.
        expected: dict[SliceKey, SliceStats] = dict(part.slices)
        unattributed = sum(v.rows_read for k, v in part.slices.items() if not k.attributable)
        if unattributed:
            report.warnings.append(
                f"{unattributed:,} dead-lettered rows have no readable billing account or "
                "period; they are kept in dead_letters by source file")
        failure: Exception | None = None
        try:
            breaches = threshold_breaches(part, s)
            if breaches:
                raise DeadLetterThresholdError(
                    "The source looks systematically broken, so nothing was committed: "
                    + " | ".join(breaches))
            amortized = amortize_staged(part.row_files, part.pool_row_files)  # gate sees it
            report.amortization = amortized.pools
            report.warnings.extend(amortized.warnings)
            # A line item in two files of one slice: flagged like a repeat inside a file
            # (a run of one file has none: each file's own repeats are flagged as it is read).
            crossed = (flag_across_files(amortized.row_files, part.key_files)
                       if len(s.sources) > 1 else CrossFile(list(amortized.row_files)))
            report.warnings.extend(crossed.warnings)
            part = StagedPart(crossed.row_files, part.dead_letter_files, part.slices,
                              part.files)
            self.quality.check_staged(s.run_id, part.row_files, report)
            pa.default_memory_pool().release_unused()  # the gate's chunks, before the load
            LOG.info("committing %d slice(s) to %s",
                     sum(k.attributable for k in expected), s.warehouse_url)
            ledger.beat_quietly(self.warehouse, s.run_id)  # alive, right before the commit
            with ledger.LEDGER_LOCK:  # no heartbeat of this process during the transaction
                checks = self.warehouse.commit_run(
                    StagedRun(run_id=s.run_id, row_files=part.row_files,
                              dead_letter_files=part.dead_letter_files,
                              source_uris=[src["uri"] for src in s.sources]),
                    expected, report.to_dict())
            report.add_totals(part.slices, part.files, checks)
            self.quality.assert_loaded(self.warehouse, s.run_id, report)
            report.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - recorded, then raised as IngestFailed below
            failure = exc
            report.status = "failed"
            report.error = str(exc) if isinstance(exc, CostflowError) else (
                f"{type(exc).__name__}: {exc}")
        report.finished_at = datetime.now(UTC)
        # Cleanup first: it must never depend on the ledger or a report being writable.
        remove_dir(s.staging_root, s.run_id)
        if failure is None:
            write_reports(report, s.report_path)  # a file that fails is named in warnings
            yield report.to_dict()
            return
        # Record the failure with the whole report (retrying). A failed commit recorded itself
        # already; if the ledger refused every attempt then, its error says so: do not wait
        # through the same attempts again.
        addenda: list[str] = []
        if LEDGER_UNRECORDED not in (report.error or ""):
            with ledger.LEDGER_LOCK:
                ledger_error = retry_fail_run(self.warehouse.fail_run, s.run_id,
                                              report.error or "", report.to_dict())
            if ledger_error is not None:
                addenda.append(unrecorded(ledger_error, len(FAIL_RUN_DELAYS) + 1))
        addenda += [f"Also, {p}." for p in write_reports(report, s.report_path)]
        raise IngestFailed(" ".join([report.error or "", *addenda])) from failure


def remove_dir(staging_root: str, run_id: str) -> bool:
    """Remove the run's own staging directory, ``<staging_root>/<run_id>``; never raises.

    Anything that is not that directory, made by this run (`costflow.warehouse.ledger`), is
    left alone and logged.
    """
    return ledger.remove_run_dir(staging_root, run_id)
