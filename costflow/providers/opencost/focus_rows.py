"""The FOCUS columns both OpenCost formats share: what an allocation is, said once.

Why this module exists: the allocation API answer and the CSV export describe the same thing
(the cost OpenCost allocated to one Kubernetes workload over one window), so the FOCUS choices
are made here once and both normalizers pass their columns in:

* **Money.** BilledCost = EffectiveCost = ``totalCost`` (the answer) / ``TotalCost`` (the CSV),
  parsed exactly from text (the shortest text of OpenCost's double). It is also the invoice
  basis reconciliation sums. OpenCost gives no list or negotiated price of its own (it prices
  node resources from the cloud's on-demand price, custom pricing or the reconciled bill), so
  ListCost and ContractedCost equal BilledCost, as FOCUS ``listcost.md``/``contractedcost.md``
  allow when no better price is known; each row says so in x_DataQualityFlags.
* **Currency.** The payload carries none. BillingCurrency is the planner's (``--billing-currency``,
  default USD), flagged ``BillingCurrency:asserted_by_user`` or ``BillingCurrency:default_USD``.
* **Who.** The cluster is the "billing account" (the scope the costs are reported for):
  BillingAccountId = the cluster id (OpenCost ``CLUSTER_ID``), SubAccountId = the namespace.
  Provider, publisher, service provider, host provider and invoice issuer are all
  ``Kubernetes``, spelled alike so FOCUS rule BilledCost-C-005-C holds (BilledCost must be 0
  when ProviderName and InvoiceIssuerName differ); OpenCost is the data generator, not a seller.
* **What.** ServiceName ``Kubernetes``, ServiceCategory ``Compute``, ServiceSubcategory
  ``Containers``; ResourceId = the allocation's name as aggregated (``ns/pod``, a controller,
  a namespace...). ChargeCategory ``Usage``, ChargeFrequency ``Usage-Based``.
* **When.** ChargePeriod = the allocation's window; BillingPeriod = its calendar month (UTC):
  a load replaces whole (cluster, month) slices, as for every other provider.
* **Idle.** ``__idle__`` (cluster capacity no workload requested) stays its own row:
  x_LineItemType ``Idle``, tag ``opencost:idle`` = ``true``, SubAccountId null, a description
  saying so. ``__unmounted__`` (volumes no pod mounts) is ``Unmounted``; other rows ``Allocation``.
* **Detail.** Labels are Tags as given; the Kubernetes properties (node, controller, pod,
  container, providerID) are provider tags ``opencost:<property>``. Cost components
  (cpu/gpu/ram/pv/network/loadBalancer/shared/external and their adjustments), usage and
  efficiencies are exact text in x_ProviderMetrics.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.opencost import planned
from costflow.transforms.arrow_ops import (
    TIMESTAMP,
    any_true,
    column,
    constant,
    fill_false,
    json_array_of_flags,
    null_where,
)
from costflow.transforms.contract import RowError

KUBERNETES = "Kubernetes"  # one spelling for every provider-name column (BilledCost-C-005-C)
TAG_PREFIX = "opencost:"
IDLE, UNMOUNTED = "__idle__", "__unmounted__"
_DAY_US = 86_400_000_000


def month_bounds(start: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The calendar month [start, end) holding each timestamp (UTC)."""
    first = pc.floor_temporal(start, 1, "month")
    after = pc.floor_temporal(pc.add(first, pa.scalar(32 * _DAY_US, pa.duration("us"))),
                              1, "month")
    return first, pc.cast(after, first.type)


def next_day(day: pa.Array) -> pa.Array:
    return pc.cast(pc.add(day, pa.scalar(_DAY_US, pa.duration("us"))), TIMESTAMP)


def marker(name: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(is idle, is unmounted, x_LineItemType) from the allocation's name or key parts."""
    idle = fill_false(pc.or_(pc.equal(name, IDLE), pc.ends_with(name, "/" + IDLE)))
    unmounted = fill_false(pc.match_substring(name, UNMOUNTED))
    kind = pc.if_else(idle, "Idle", pc.if_else(unmounted, "Unmounted", "Allocation"))
    return idle, unmounted, kind


def merge_json_objects(first: pa.Array, second: pa.Array) -> pa.Array:
    """Two columns of JSON object text (or null) as one object per row (keys never overlap:
    the second's are all prefixed ``opencost:``, which a Kubernetes label key cannot be)."""
    both = pc.binary_join_element_wise(pc.utf8_slice_codeunits(first, 0, -1),
                                       pc.utf8_slice_codeunits(second, 1), ",")
    return pc.if_else(pc.is_null(first), second, pc.if_else(pc.is_null(second), first, both))


def required(values: pa.Array, name: str, expected: str) -> list[RowError]:
    mask = pc.is_null(values)
    return [RowError(fill_false(mask), name, f"is empty (expected {expected})")] if any_true(
        mask) else []


def focus_columns(*, batch: pa.RecordBatch, total: pa.Array, cluster: pa.Array,
                  cluster_defaulted: pa.Array, namespace: pa.Array,
                  name: pa.Array, charge_start: pa.Array, charge_end: pa.Array,
                  tags: pa.Array, metrics: pa.Array) -> dict[str, pa.Array]:
    """Every FOCUS column of one batch of allocations (see the module docstring)."""
    n = batch.num_rows
    asserted = fill_false(pc.equal(column(batch, planned.ASSERTED_COLUMN), "true"))
    idle, _unmounted, kind = marker(name)
    period_start, period_end = month_bounds(charge_start)
    idle_tag = pc.if_else(idle, '{"opencost:idle":"true"}', pa.scalar(None, pa.string()))
    described = pc.binary_join_element_wise("OpenCost allocation ", name, " in cluster ",
                                            cluster, "")
    idle_said = pc.binary_join_element_wise(
        "Idle capacity of cluster ", cluster, " (OpenCost __idle__): node resources no "
        "workload requested", "")
    flags = {
        "ListCost:from_BilledCost": constant(True, n, pa.bool_()),
        "ContractedCost:from_BilledCost": constant(True, n, pa.bool_()),
        "BillingCurrency:asserted_by_user": asserted,
        f"BillingCurrency:default_{planned.DEFAULT_CURRENCY}": pc.invert(asserted),
        "BillingAccountId:opencost_default_cluster": cluster_defaulted,
    }
    k8s = constant(KUBERNETES, n)
    return {
        "BilledCost": total,
        "EffectiveCost": total,
        "ListCost": total,
        "ContractedCost": total,
        "BillingCurrency": column(batch, planned.CURRENCY_COLUMN),
        "BillingAccountId": cluster,
        "BillingAccountName": cluster,
        "BillingAccountType": constant("Kubernetes Cluster", n),
        "SubAccountId": null_where(namespace, idle),
        "SubAccountName": null_where(namespace, idle),
        "SubAccountType": pc.if_else(pc.is_null(null_where(namespace, idle)),
                                     pa.scalar(None, pa.string()), "Kubernetes Namespace"),
        "BillingPeriodStart": period_start,
        "BillingPeriodEnd": period_end,
        "ChargePeriodStart": charge_start,
        "ChargePeriodEnd": charge_end,
        "ChargeCategory": constant("Usage", n),
        "ChargeFrequency": constant("Usage-Based", n),
        "ChargeDescription": pc.if_else(idle, idle_said, described),
        "ServiceName": k8s,
        "ServiceCategory": constant("Compute", n),
        "ServiceSubcategory": constant("Containers", n),
        "ResourceId": name,
        "ResourceName": name,
        "Tags": merge_json_objects(tags, idle_tag),
        "ProviderName": k8s, "PublisherName": k8s, "ServiceProviderName": k8s,
        "HostProviderName": k8s, "InvoiceIssuerName": k8s,
        "x_LineItemType": kind,
        "x_ProviderMetrics": metrics,
        "x_DataQualityFlags": json_array_of_flags(flags, n),
    }
