"""Declarations of the operational tables: dead letters and the load ledger.

They use the same `Column` vocabulary as the cost schema, so their DDL, pyarrow schemas and docs
are rendered by the same code, and the dead-letter lineage columns are the very same objects as
the ones stamped on cost rows.
"""

from __future__ import annotations

from costflow.schemas.columns import Column, LogicalType, TableSpec
from costflow.schemas.focus import LINEAGE_COLUMNS

S, D, T, J, INT = (
    LogicalType.STRING,
    LogicalType.DECIMAL,
    LogicalType.TIMESTAMP,
    LogicalType.JSON,
    LogicalType.INTEGER,
)

RUN_STATUSES = ("running", "succeeded", "failed", "skipped")


def _c(name, type_, nullable, desc) -> Column:
    return Column(name=name, type=type_, nullable=nullable, description=desc)


DEAD_LETTERS = TableSpec(
    name="dead_letters",
    description="Source rows that did not make it into cost_line_items, each with its reason and raw record.",
    columns=LINEAGE_COLUMNS
    + (
        # Slice keys as far as they could be read (null when the row was too broken to tell).
        _c("BillingAccountId", S, True, "Billing account of the row, when it could be read."),
        _c("BillingPeriodStart", T, True, "Billing period of the row, when it could be read."),
        _c("ErrorColumn", S, True, "The column that failed (source spelling, or the FOCUS column for rule failures)."),
        _c("ErrorReason", S, False, "What was wrong and what was expected."),
        _c("SourceCost", D, True, "The row's invoice-basis cost as the source states it (null when unparseable): what reconciliation counts as dead-lettered."),
        _c("RawRecord", J, False, "The source row as a JSON object of source column name to source text."),
    ),
    partition_by_day="x_IngestedAt",
    cluster_by=("x_SourceProvider", "BillingAccountId"),
)

LOAD_RUNS = TableSpec(
    name="load_runs",
    description="The load ledger: one row per ingest run, with its sources, counts, totals, status and timings.",
    columns=(
        _c("run_id", S, False, "Run ID (also x_RunId on the rows it loaded)."),
        _c("status", S, False, "running, succeeded, failed or skipped."),
        _c("provider", S, True, "Provider asked for (aws, gcp, azure), or null when detected per file."),
        _c("source_format", S, True, "Source format of the run's files."),
        _c("sources", J, False, "JSON array of {uri, size_bytes, sha256, format} (or manifest ids) read by the run."),
        _c("started_at", T, False, "When the run started (UTC)."),
        _c("finished_at", T, True, "When the run finished (UTC)."),
        _c("rows_read", INT, True, "Source rows read."),
        _c("rows_loaded", INT, True, "Rows committed to cost_line_items."),
        _c("rows_dead_lettered", INT, True, "Rows committed to dead_letters."),
        _c("source_basis_total", D, True, "Sum of the source's invoice-basis cost over all rows read."),
        _c("billed_cost_total", D, True, "Sum of BilledCost over rows loaded."),
        _c("dead_lettered_cost_total", D, True, "Sum of SourceCost over rows dead-lettered."),
        _c("error", S, True, "Why the run failed, naming file, row and column where known."),
        _c("report", J, True, "The full run report (per-slice reconciliation, timings, warnings)."),
    ),
)

LOAD_SLICES = TableSpec(
    name="load_slices",
    description="Per-slice reconciliation of each run: what the source says next to what was committed.",
    columns=(
        _c("run_id", S, False, "Run that produced this slice."),
        _c("x_SourceProvider", S, False, "Slice key: provider."),
        _c("BillingAccountId", S, False, "Slice key: billing account."),
        _c("BillingPeriodStart", T, False, "Slice key: billing period start (UTC)."),
        _c("rows_read", INT, False, "Source rows of this slice."),
        _c("rows_loaded", INT, False, "Rows loaded into cost_line_items."),
        _c("rows_dead_lettered", INT, False, "Rows sent to dead_letters."),
        _c("source_basis", D, False, "Sum of the source's invoice-basis cost for the slice."),
        _c("loaded_billed_cost", D, False, "SUM(BilledCost) of the slice as stored in the warehouse."),
        _c("dead_lettered_cost", D, False, "Sum of SourceCost of the slice's dead letters."),
        _c("committed_at", T, False, "When the slice replaced the previous contents (UTC)."),
    ),
)

OPERATIONAL_TABLES = (DEAD_LETTERS, LOAD_RUNS, LOAD_SLICES)
