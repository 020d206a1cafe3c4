"""One warehouse interface, two engines (DuckDB embedded, BigQuery).

The ingest pipeline stages normalized rows and dead letters as Parquet files, then asks the
warehouse to commit a run: load the staged files, check every slice against the source totals,
and replace the slices atomically. Readers only call `query`, with BigQuery-dialect SQL and
named parameters; each engine runs it its own way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from costflow.reconcile import SliceCheck, SliceKey, SliceStats


@dataclass(frozen=True)
class StagedRun:
    """What one run staged: Parquet files in the cost_line_items and dead_letters schemas."""

    run_id: str
    row_files: list[str] = field(default_factory=list)
    dead_letter_files: list[str] = field(default_factory=list)
    # Sources of the run: their earlier dead letters are replaced even if the slice is unknown.
    source_uris: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunStart:
    run_id: str
    started_at: datetime
    provider: str | None
    source_format: str | None
    sources: list[dict[str, Any]]  # [{uri, size_bytes, sha256, format}]


class Warehouse(ABC):
    """The `cost_analytics` dataset on one engine."""

    url: str

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the dataset, tables and views when missing (idempotent)."""

    @abstractmethod
    def begin_run(self, run: RunStart) -> None:
        """Record the run in load_runs with status 'running'."""

    @abstractmethod
    def commit_run(self, staged: StagedRun, expected: dict[SliceKey, SliceStats],
                   report: dict[str, Any]) -> list[SliceCheck]:
        """Load the staged files and replace every slice in ``expected`` in one transaction.

        Inside the transaction the engine recomputes, per slice, rows and SUM(BilledCost) of the
        staged rows and rows and SUM(SourceCost) of the staged dead letters, and compares them
        with ``expected``. If any slice differs it rolls back, records the run as failed and
        raises `ReconciliationError` naming the slices; the previous contents stay. Otherwise
        it deletes the slices' previous rows (and the dead letters of those slices and of
        ``staged.source_uris``), inserts the staged ones, writes load_slices and marks the run
        'succeeded' with ``report`` — all in the same transaction.
        """

    @abstractmethod
    def fail_run(self, run_id: str, error: str, report: dict[str, Any]) -> None:
        """Mark the run failed (its own small transaction; never touches cost data)."""

    @abstractmethod
    def replace_recommendations(self, rows: pa.Table, provider: str,
                                sources: list[str] | None = None) -> int:
        """Replace ``provider``'s recommendations of ``sources`` with ``rows``, atomically.

        ``rows`` has the declared `recommendations` columns (one run id). ``sources`` defaults
        to the sources present in ``rows``; pass them explicitly so that a fetch that found
        nothing still clears what that source recommended before. Returns rows written.
        """

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run BigQuery-dialect SQL with named ``@params`` and return the result."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
