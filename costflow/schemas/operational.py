"""Declarations of the operational tables: dead letters and the load ledger.

They use the same `Column` vocabulary as the cost schema, so their DDL, pyarrow schemas and docs
are rendered by the same code, and the dead-letter lineage columns are the very same objects as
the ones stamped on cost rows.
"""

from __future__ import annotations

from costflow.schemas.columns import Column, LogicalType, TableSpec
from costflow.schemas.focus import COST_LINE_ITEMS, LINEAGE_COLUMNS

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
        _c("source_basis_total", D, True, "Sum of the source's invoice-basis cost over all rows read; null when the run's slices are in several currencies (never summed across them)."),
        _c("billed_cost_total", D, True, "Sum of BilledCost over rows loaded; null when the run's slices are in several currencies."),
        _c("dead_lettered_cost_total", D, True, "Sum of SourceCost over rows dead-lettered; null when the run's slices are in several currencies."),
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

# Exchange rates for the reporting currency (costflow.services.rates): one row per day, pair and
# source; a load replaces the same (date, from_currency, to_currency, source) keys.
EXCHANGE_RATES = TableSpec(
    name="exchange_rates",
    description="Exchange rates for converting costs at query time: 1 from_currency = rate to_currency on date, per source (ECB reference rates, a user's CSV, the rates the bills carry).",
    columns=(
        Column(name="date", type=LogicalType.DATE, nullable=False, description="The day the rate applies to (the ECB reference date; the charge day for rates carried by bills)."),
        _c("from_currency", S, False, "ISO 4217 code of the currency converted from."),
        _c("to_currency", S, False, "ISO 4217 code of the currency converted to."),
        _c("rate", D, False, "Units of to_currency for one unit of from_currency, exact as the source states it."),
        _c("source", S, False, "Where the rate comes from: ecb, csv, bill:gcp, bill:azure."),
        _c("loaded_at", T, False, "When it was loaded (UTC)."),
    ),
    cluster_by=("from_currency", "to_currency"),
)

# Kubernetes usage (costflow.usage.openshift): one table, one `kind` per report of the
# koku-metrics-operator. Usage has no cost; it is what costflow.allocation splits node costs by.
K8S_USAGE_KINDS = ("pod", "storage", "node_labels", "namespace_labels")

K8S_USAGE = TableSpec(
    name="k8s_usage",
    description="Kubernetes / OpenShift usage reports (koku-metrics-operator format), hourly, one row per report row; kind says which report. An ingest replaces, per cluster and report period, the days its payload carries.",
    columns=(
        _c("cluster_id", S, False, "Cluster ID of the payload manifest."),
        Column(name="kind", type=S, nullable=False, description="Which report the row comes from: pod (CPU and memory usage), storage (PVC/PV), node_labels, namespace_labels.", allowed_values=K8S_USAGE_KINDS),
        _c("report_period_start", T, False, "Start of the report period (UTC)."),
        _c("report_period_end", T, False, "End of the report period (UTC, exclusive)."),
        _c("interval_start", T, False, "Start of the hour the row measures (UTC)."),
        _c("interval_end", T, False, "End of the hour the row measures (UTC, exclusive)."),
        _c("namespace", S, True, "Namespace (pod, storage and namespace_labels rows)."),
        _c("node", S, True, "Node name (pod and node_labels rows)."),
        _c("pod", S, True, "Pod name."),
        _c("resource_id", S, True, "The node's cloud resource id as the report gives it (e.g. an EC2 instance id), what allocation matches to the bill's ResourceId."),
        _c("node_role", S, True, "Node role (newer reports): master, worker, infra."),
        _c("persistentvolumeclaim", S, True, "PVC name (storage rows)."),
        _c("persistentvolume", S, True, "PV name (storage rows)."),
        _c("storageclass", S, True, "Storage class (storage rows)."),
        _c("csi_volume_handle", S, True, "The CSI volume handle (newer reports; e.g. an EBS volume id), matched to the bill's ResourceId."),
        _c("pod_usage_cpu_core_seconds", D, True, "CPU used in the hour, core-seconds."),
        _c("pod_request_cpu_core_seconds", D, True, "CPU requested in the hour, core-seconds."),
        _c("pod_limit_cpu_core_seconds", D, True, "CPU limit in the hour, core-seconds."),
        _c("pod_usage_memory_byte_seconds", D, True, "Memory used in the hour, byte-seconds."),
        _c("pod_request_memory_byte_seconds", D, True, "Memory requested in the hour, byte-seconds."),
        _c("pod_limit_memory_byte_seconds", D, True, "Memory limit in the hour, byte-seconds."),
        _c("node_capacity_cpu_cores", D, True, "CPU cores of the node."),
        _c("node_capacity_cpu_core_seconds", D, True, "CPU capacity of the node in the hour, core-seconds."),
        _c("node_capacity_memory_bytes", D, True, "Memory of the node, bytes."),
        _c("node_capacity_memory_byte_seconds", D, True, "Memory capacity of the node in the hour, byte-seconds."),
        _c("persistentvolumeclaim_capacity_bytes", D, True, "Capacity of the PVC, bytes."),
        _c("persistentvolumeclaim_capacity_byte_seconds", D, True, "Capacity of the PVC in the hour, byte-seconds."),
        _c("volume_request_storage_byte_seconds", D, True, "Storage requested in the hour, byte-seconds."),
        _c("persistentvolumeclaim_usage_byte_seconds", D, True, "Storage used in the hour, byte-seconds."),
        _c("labels", J, True, "Labels as a JSON object: pod_labels, persistentvolumeclaim_labels, node_labels or namespace_labels (label_ prefix removed)."),
        _c("volume_labels", J, True, "persistentvolume_labels as a JSON object (storage rows)."),
        _c("payload_uuid", S, False, "uuid of the payload manifest."),
        _c("x_SourceUri", S, False, "The payload and the report file in it (payload!file.csv)."),
        _c("x_SourceRowNumber", INT, False, "1-based data row number within the report file."),
        _c("x_IngestedAt", T, False, "When the payload was loaded (UTC)."),
    ),
    partition_by_day="interval_start",
    cluster_by=("cluster_id", "kind"),
)

# Split cost allocation (costflow.allocation): FOCUS 1.3 rows that replace, in focus_v1_3, the
# cost_line_items rows they split. Every column of cost_line_items is kept from the origin
# charge (its lineage columns x_RunId, x_SourceUri, x_SourceRowNumber identify it), the costs
# are the allocated portion, the Allocated* columns say to what and how.
ALLOCATION_KINDS = ("workload", "idle", "unclaimed_volume")

COST_ALLOCATIONS = TableSpec(
    name="cost_allocations",
    description="Split cost allocation of cluster node and volume charges to Kubernetes workloads: per origin charge (cost_line_items row, by x_RunId, x_SourceUri, x_SourceRowNumber), the allocated portions plus the idle remainder sum exactly to the charge. costflow allocate replaces a cluster-period at once.",
    columns=COST_LINE_ITEMS.columns + (
        _c("x_AllocationCluster", S, False, "Cluster whose usage the charge was split by."),
        Column(name="x_AllocationKind", type=S, nullable=False, description="workload (a pod's portion), idle (node capacity no pod used or requested) or unclaimed_volume (volume time no PVC was bound).", allowed_values=ALLOCATION_KINDS),
        _c("x_AllocationPeriodStart", T, False, "Start of the allocate run's period (UTC): a rerun replaces the cluster's rows of charges starting in its period."),
        _c("x_AllocationPeriodEnd", T, False, "End of the allocate run's period (UTC, exclusive)."),
        _c("x_AllocationRunId", S, False, "ID of the allocate run that wrote the row."),
        _c("x_AllocatedAt", T, False, "When that run committed (UTC)."),
    ),
    partition_by_day="ChargePeriodStart",
    cluster_by=("x_AllocationCluster", "x_SourceProvider"),
)

# Sub-account display names for bills that carry ids only (the legacy AWS CUR): from the
# provider's directory (AWS Organizations) or a user's mapping; the FOCUS views fill
# SubAccountName from them (costflow.services.account_names).
ACCOUNT_NAMES = TableSpec(
    name="account_names",
    description="Display names of sub accounts whose bills carry ids only, per provider and source; the FOCUS views use them where SubAccountName is null, a user's mapping first.",
    columns=(
        _c("provider", S, False, "The provider (x_SourceProvider) the account id belongs to."),
        _c("account_id", S, False, "The sub account id as the bill writes it (SubAccountId)."),
        _c("account_name", S, False, "Its display name, as the source states it; never the id."),
        _c("source", S, False, "Where the name comes from: mapping (a user's CSV) or <provider>-directory (the provider's own, e.g. AWS Organizations)."),
        _c("loaded_at", T, False, "When it was stored (UTC)."),
    ),
)

OPERATIONAL_TABLES = (DEAD_LETTERS, LOAD_RUNS, LOAD_SLICES, RECOMMENDATIONS, EXCHANGE_RATES,
                      K8S_USAGE, COST_ALLOCATIONS, ACCOUNT_NAMES)
