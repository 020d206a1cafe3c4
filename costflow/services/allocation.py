"""Kubernetes cost allocation, read back: cost per cluster, namespace and workload, the idle
share of each cluster and each namespace's efficiency (usage over request).

Reads `cost_allocations` (written by `costflow allocate`) under the caller's tenant, bound as
parameters, and only split rows whose origin charge is still in `cost_line_items` (as the
`focus_v1_3` view shows them). Efficiency comes from `k8s_usage`: CPU and memory used over
requested, per namespace, for the namespaces the tenant's allocated rows name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError
from costflow.services.tenancy import Tenant
from costflow.warehouse.base import Warehouse

_ALLOCATED = """
SELECT a.x_AllocationCluster AS cluster, a.AllocatedResourceId AS resource_id,
  a.AllocatedResourceName AS workload, a.x_AllocationKind AS kind,
  a.BillingCurrency AS currency, SUM(a.BilledCost) AS billed_cost,
  SUM(a.EffectiveCost) AS effective_cost, COUNT(*) AS rows_, MIN(a.AllocatedTags) AS tags
FROM cost_analytics.cost_allocations AS a
WHERE a.ChargePeriodStart >= @start AND a.ChargePeriodStart < @end
  AND (@cluster = '' OR a.x_AllocationCluster = @cluster)
  AND (@tenant_all OR a.BillingAccountId IN UNNEST(@tenant_billing_accounts)
       OR a.SubAccountId IN UNNEST(@tenant_sub_accounts))
  AND EXISTS (SELECT 1 FROM cost_analytics.cost_line_items AS o WHERE o.x_RunId = a.x_RunId
              AND o.x_SourceUri = a.x_SourceUri AND o.x_SourceRowNumber = a.x_SourceRowNumber)
GROUP BY cluster, resource_id, workload, kind, currency
ORDER BY cluster, currency, resource_id
"""
_EFFICIENCY = """
SELECT cluster_id AS cluster, namespace,
  SUM(pod_usage_cpu_core_seconds) AS cpu_used, SUM(pod_request_cpu_core_seconds) AS cpu_requested,
  SUM(pod_usage_memory_byte_seconds) AS memory_used,
  SUM(pod_request_memory_byte_seconds) AS memory_requested
FROM cost_analytics.k8s_usage
WHERE kind = 'pod' AND interval_start >= @start AND interval_start < @end
  AND (@cluster = '' OR cluster_id = @cluster)
GROUP BY cluster, namespace
"""


@dataclass(frozen=True)
class WorkloadCost:
    cluster: str
    resource_id: str        # AllocatedResourceId: cluster/namespace/workload, or the idle node
    namespace: str | None   # None for idle and unclaimed rows
    workload: str
    kind: str               # workload, idle, unclaimed_volume
    currency: str
    billed_cost: Decimal
    effective_cost: Decimal | None
    rows: int


@dataclass(frozen=True)
class ClusterSummary:
    cluster: str
    currency: str
    allocated: Decimal       # BilledCost on workloads
    idle: Decimal            # BilledCost of idle capacity and unclaimed volumes
    idle_share: Decimal | None  # idle / (allocated + idle), None when both are 0


@dataclass(frozen=True)
class NamespaceEfficiency:
    cluster: str
    namespace: str
    cpu_efficiency: Decimal | None     # CPU used / requested
    memory_efficiency: Decimal | None  # memory used / requested


@dataclass
class AllocationReport:
    start: date
    end: date
    workloads: list[WorkloadCost] = field(default_factory=list)
    clusters: list[ClusterSummary] = field(default_factory=list)
    efficiency: list[NamespaceEfficiency] = field(default_factory=list)
    method: str = ("BilledCost split per node-hour by max(request, usage) of CPU and memory, "
                   "weighted by the node's CPU/memory price ratio; idle is node capacity no pod "
                   "requested or used. Totals equal the unsplit charges exactly.")


def get_allocation(warehouse: Warehouse, tenant: Tenant, start: date, end: date,
                   cluster: str | None = None, namespace: str | None = None,
                   workload: str | None = None) -> AllocationReport:
    """Allocated cost in [start, end) per workload, with idle shares and efficiency."""
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")
    params: dict[str, Any] = {"start": start, "end": end, "cluster": cluster or "",
                              **tenant.params()}
    report = AllocationReport(start, end)
    totals: dict[tuple[str, str], list[Decimal]] = {}
    seen_namespaces: set[tuple[str, str]] = set()
    for row in warehouse.query(_ALLOCATED, params).to_pylist():
        tags = json.loads(row["tags"] or "{}")
        ns = tags.get("k8s:namespace")
        entry = totals.setdefault((row["cluster"], row["currency"]), [Decimal(0), Decimal(0)])
        entry[0 if row["kind"] == "workload" else 1] += row["billed_cost"] or 0
        if (namespace and ns != namespace) or (workload and row["workload"] != workload):
            continue
        if ns:
            seen_namespaces.add((row["cluster"], ns))
        report.workloads.append(WorkloadCost(
            row["cluster"], row["resource_id"], ns, row["workload"], row["kind"],
            row["currency"], row["billed_cost"], row["effective_cost"], row["rows_"]))
    for (name, currency), (allocated, idle) in sorted(totals.items()):
        whole = allocated + idle
        report.clusters.append(ClusterSummary(name, currency, allocated, idle,
                                              idle / whole if whole else None))
    for row in warehouse.query(_EFFICIENCY, params).to_pylist():
        if (row["cluster"], row["namespace"]) not in seen_namespaces:
            continue
        report.efficiency.append(NamespaceEfficiency(
            row["cluster"], row["namespace"], _ratio(row["cpu_used"], row["cpu_requested"]),
            _ratio(row["memory_used"], row["memory_requested"])))
    report.efficiency.sort(key=lambda e: (e.cluster, e.namespace))
    return report


def _ratio(used: Decimal | None, requested: Decimal | None) -> Decimal | None:
    if not used or not requested:
        return None
    return (used / requested).quantize(Decimal("0.0001"))
