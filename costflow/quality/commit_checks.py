"""What the commit step does with data quality: gate the slices, then assert the load.

`SliceGateStep` is built once per commit worker (its GX context with it). Before a commit it
validates the staged rows per slice: hard failures raise `DataQualityError` (nothing is
committed, the run fails, every reason is in the report), soft failures become warnings. After
the commit it runs the `assert_*.sql` queries; a failing assertion fails the run loudly. The
results go into the run report under ``quality`` and into the HTML report beside it.
"""

from __future__ import annotations

import logging
from typing import Any

from costflow.errors import CostflowError
from costflow.quality.assertions import AssertionResult, run_assertions
from costflow.quality.gate import QualityGate, SliceQuality
from costflow.warehouse.base import Warehouse

LOG = logging.getLogger("costflow.quality")


class DataQualityError(CostflowError):
    """A slice broke a hard data-quality rule, or a post-load assertion failed."""

    exit_code = 3


class SliceGateStep:
    def __init__(self) -> None:
        self.gate = QualityGate()

    def warm_up(self) -> None:
        """Build the GX context and suite now (once per worker), not on the first slice."""
        self.gate.warm_up()

    def check_staged(self, run_id: str, row_files: list[str], report: Any) -> None:
        """Validate staged rows per slice; record outcomes; raise on any hard failure."""
        LOG.info("checking %d staged file(s) against %d data-quality rules", len(row_files),
                 len(self.gate.checks) + len(self.gate.type_checks))
        results = self.gate.validate_files(row_files)
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
