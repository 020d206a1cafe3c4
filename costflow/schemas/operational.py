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

# running: begun, no outcome yet; abandoned: its owner process died or stopped beating without
# recording an outcome (costflow.warehouse.ledger marks it, with the reason in `error`).
RUN_STATUSES = ("running", "succeeded", "failed", "skipped", "abandoned")


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
        Column(name="status", type=S, nullable=False, description="running, succeeded, failed, skipped, or abandoned (the owner process died or stopped beating without recording an outcome; the reason is in error).", allowed_values=RUN_STATUSES),
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
        # Appended later (nullable, so older ledgers gain them in place): who runs the run.
        _c("owner_host", S, True, "Host name of the process that began the run."),
        _c("owner_pid", INT, True, "Process id of the process that began the run, on owner_host."),
        _c("heartbeat_at", T, True, "Last sign of life of a running run (UTC); a run on another host silent for longer than the documented timeout is marked abandoned."),
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
        _c("high_water_export_time", T, True, "MAX(x_ExportTime) of the slice's loaded rows: the latest provider export the slice includes (GCP export_time); null for providers without one. Incremental loads re-read from it minus the lookback."),
    ),
)

# Provider-neutral cost recommendations (GCP Recommender, AWS Compute Optimizer, Azure Advisor).
RECOMMENDATION_CATEGORIES = ("compute", "storage", "network", "database", "commitment", "other")
RECOMMENDATION_STATES = ("active", "claimed", "succeeded", "failed", "dismissed")

RECOMMENDATIONS = TableSpec(
    name="recommendations",
    description="Cost optimization recommendations from every provider, in one shape; the latest fetch per provider and billing account replaces the previous one.",
    columns=(
        _c("recommendation_id", S, False, "The provider's own ID of the recommendation (GCP recommendation name, Compute Optimizer instance ARN + option, Advisor recommendation ID)."),
        _c("x_SourceProvider", S, False, "Provider: aws, gcp or azure."),
        _c("source", S, False, "Which service produced it, e.g. google.compute.instance.MachineTypeRecommender, aws.compute_optimizer.ec2, azure.advisor."),
        Column(name="category", type=S, nullable=False, description="What kind of saving it is.", allowed_values=RECOMMENDATION_CATEGORIES),
        _c("BillingAccountId", S, True, "Billing account the resource bills to, when known."),
        _c("SubAccountId", S, True, "Sub account (AWS account, GCP project, Azure subscription) of the resource."),
        _c("RegionId", S, True, "Region of the resource."),
        _c("ResourceId", S, True, "Provider ID of the resource the recommendation is about (null for account-wide ones)."),
        _c("ResourceName", S, True, "Display name of the resource."),
        _c("ResourceType", S, True, "Kind of resource, e.g. Virtual Machine."),
        _c("description", S, False, "What to do, in the provider's words."),
        _c("current_configuration", S, True, "What the resource is now, e.g. the instance type."),
        _c("recommended_configuration", S, True, "What it should become, e.g. the target instance type."),
        _c("estimated_monthly_savings", D, True, "Estimated savings per month, in savings_currency."),
        _c("savings_currency", S, True, "ISO 4217 currency of estimated_monthly_savings."),
        Column(name="state", type=S, nullable=False, description="Lifecycle state of the recommendation.", allowed_values=RECOMMENDATION_STATES),
        _c("priority", S, True, "Provider's impact or priority label (e.g. High, P2)."),
        _c("last_refreshed_at", T, True, "When the provider last refreshed it (UTC)."),
        _c("details", J, True, "The provider's full record as JSON, for anything not mapped above."),
        _c("x_RunId", S, False, "Run that fetched it."),
        _c("x_IngestedAt", T, False, "When it was fetched (UTC)."),
    ),
    cluster_by=("x_SourceProvider", "category"),
)

OPERATIONAL_TABLES = (DEAD_LETTERS, LOAD_RUNS, LOAD_SLICES, RECOMMENDATIONS)
