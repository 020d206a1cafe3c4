"""What the commit step does with data quality: gate the slices, then assert the load.

`SliceGateStep` is built once per commit worker (its GX context with it). It validates the
staged rows per slice, in the gate process when one runs (`costflow.quality.gate_process`),
else in this process, on a thread while the warehouse loads the same rows in its transaction
(`SliceGateStep.start`; the warehouse awaits the verdict before it commits): hard failures
raise `DataQualityError` (nothing is committed, the run fails, every reason is in the report),
soft failures become warnings. After the commit it runs the `assert_*.sql` queries; a failing
assertion fails the run loudly. The results go into the run report under ``quality`` and into
the HTML report beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from costflow.errors import CostflowError
from costflow.quality import gate_process
from costflow.quality.assertions import AssertionResult, run_assertions
from costflow.quality.gate import QualityGate, SliceQuality
from costflow.reconcile import SliceKey
from costflow.warehouse.base import Warehouse

LOG = logging.getLogger("costflow.quality")


class DataQualityError(CostflowError):
    """A slice broke a hard data-quality rule, or a post-load assertion failed."""

    exit_code = 3


class SliceGateStep:
    def __init__(self) -> None:
        self.gate = QualityGate()

    def warm_up(self) -> None:
        """Build the GX context and suite now (once per worker), not on the first slice; the
        gate process, when one runs, has built its own."""
        if not gate_process.running():
            self.gate.warm_up()

    def check_staged(self, run_id: str, row_files: list[str], report: Any) -> None:
        """Validate staged rows per slice; record outcomes; raise on any hard failure."""
        self.start(run_id, row_files, report)()

    def start(self, run_id: str, row_files: list[str],
              report: Any) -> Callable[[], dict[str, Any]]:
        """Start validating the staged rows on a thread; returns the verdict: a call that
        waits for it, records the outcomes in ``report``, raises `DataQualityError` on any
        hard failure (or the validation's own error) and else returns ``report.to_dict()``."""
        LOG.info("checking %d staged file(s) against %d data-quality rules", len(row_files),
                 len(self.gate.checks) + len(self.gate.type_checks))
        future: Future[dict[SliceKey, SliceQuality]] = Future()

        def validate() -> None:
            try:
                future.set_result(self._validate(list(row_files)))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the verdict
                future.set_exception(exc)

        threading.Thread(target=validate, name="quality-gate", daemon=True).start()

        recorded: list[BaseException | None] = []  # the verdict is given once

        def verdict() -> dict[str, Any]:
            if not recorded:
                try:
                    self._record(run_id, future.result(), report)
                    recorded.append(None)
                except BaseException as exc:
                    recorded.append(exc)
            if recorded[0] is not None:
                raise recorded[0]
            return report.to_dict()
        return verdict

    def _validate(self, row_files: list[str]) -> dict[SliceKey, SliceQuality]:
        results = gate_process.validate(row_files)
        return self.gate.validate_files(row_files) if results is None else results

    def _record(self, run_id: str, results: dict[SliceKey, SliceQuality], report: Any) -> None:
        report.quality["slices"] = [slice_dict(q) for q in
                                    sorted(results.values(), key=lambda q: str(q.key))]
        report.quality["checks"] = len(self.gate.checks) + len(self.gate.type_checks)
        for q in results.values():
            for o in q.soft_failures:
                report.warnings.append(
                    f"slice {q.key}: {o.failed:,} row(s) fail soft check {o.check.name} "
                    f"({o.check.rule}); first at {_where(o.samples)}")
        rejected = [q for q in results.values() if q.hard_failures]
        if rejected:
            reasons = "; ".join(
                f"slice {q.key} rejected: " + ", ".join(
                    f"{o.check.name} ({o.check.rule}) failed on {o.failed:,} row(s)"
                    + (f", first at {_where(o.samples)}" if o.samples else "")
                    + (f" [{o.error}]" if o.error else "")
                    for o in q.hard_failures)
                for q in sorted(rejected, key=lambda q: str(q.key)))
            raise DataQualityError(
                f"run {run_id}: {len(rejected)} slice(s) broke hard data-quality rules, so "
                f"nothing was committed and the previous contents are intact: {reasons}")

    def assert_loaded(self, warehouse: Warehouse, run_id: str, report: Any) -> None:
        """Run the post-load assertion queries; raise when one returns rows."""
        results: list[AssertionResult] = run_assertions(warehouse, run_id)
        report.quality["assertions"] = [r.to_dict() for r in results]
        failing = [r for r in results if not r.ok]
        if failing:
            raise DataQualityError(
                f"run {run_id} was committed, but post-load assertion(s) failed: "
                + "; ".join(f"{r.name} returned {r.failing_rows} row(s), e.g. {r.samples[:1]}"
                            for r in failing))


def slice_dict(q: SliceQuality) -> dict[str, Any]:
    outcomes = sorted(q.outcomes.values(), key=lambda o: (o.check.severity, o.check.name))
    return {"slice": str(q.key), "rejected": bool(q.hard_failures),
            "hard_failures": len(q.hard_failures), "soft_failures": len(q.soft_failures),
            "checks": [o.to_dict() for o in outcomes]}


def _where(samples: list[dict[str, Any]]) -> str:
    if not samples:
        return "?"
    s = samples[0]
    return f"{s.get('x_SourceUri')} row {s.get('x_SourceRowNumber')}"
