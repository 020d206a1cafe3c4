"""`costflow allocate`: split a cluster's node and volume charges of one period.

Matching a node to the bill. The pod report's ``resource_id`` (for a providerID such as
``aws:///us-east-1a/i-0abc`` its last path segment) is matched to ``cost_line_items.ResourceId``
of charges starting in the period: exact match first; only for a node with no exact match, a
ResourceId ending in ``/<resource_id>`` (an ARN, an Azure resource path, a GCP self link).
Volumes match the same way by ``csi_volume_handle`` (else the PV name). The documented
fallback is the cluster's tags (``--cluster-tag KEY=VALUE``, given by the user, never guessed):
a charge carrying one that matches no node or volume is a cluster-shared cost, split among
namespaces by `costflow.allocation.shared`. A pod on a node with no charge in the bill is
reported as unpriced usage and never given a cost. A matched charge whose period has no pod on
the node (no PVC bound to the volume) goes whole to the idle (unclaimed) row: the node is the
cluster's, but nothing used it.
"""

from __future__ import annotations

import bisect
import json
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pyarrow as pa

from costflow.allocation import shared, split
from costflow.allocation.shared import ClusterTag
from costflow.allocation.split import Portion
from costflow.allocation.store import SPLIT_COLUMNS, replace_allocation
from costflow.errors import ConfigError
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.operational import COST_ALLOCATIONS
from costflow.schemas.render import DATASET, ORIGIN_KEY, arrow_schema

SCHEMA = arrow_schema(COST_ALLOCATIONS)
ORIGIN_COLUMNS = COST_LINE_ITEMS.names


@dataclass
class AllocationResult:
    cluster: str
    start: date
    end: date
    run_id: str
    charges_split: int = 0
    rows_written: int = 0
    allocated: dict[str, Decimal] = field(default_factory=dict)  # currency -> BilledCost
    idle: dict[str, Decimal] = field(default_factory=dict)
    unpriced_nodes: list[dict[str, Any]] = field(default_factory=list)
    idle_only_charges: int = 0  # matched charges with no usage in their period: all idle
    matched_by_suffix: list[str] = field(default_factory=list)
    cluster_tags: list[str] = field(default_factory=list)  # KEY=VALUE of shared charges
    shared_charges: int = 0  # charges matched by a cluster tag (no node or volume)


def resource_key(resource_id: str | None) -> str | None:
    """The bill-side id of a node: a providerID's last path segment, else itself."""
    if not resource_id:
        return None
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or None


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def allocate(warehouse: Any, cluster: str, start: date, end: date,
             run_id: str | None = None,
             cluster_tags: Sequence[ClusterTag] = ()) -> AllocationResult:
    """Split ``cluster``'s charges starting in [start, end) and replace its allocation.

    ``cluster_tags``: the tags that mark the cluster's resources in the bill (see
    `costflow.allocation.shared`); charges carrying one that match no node or volume are split
    as cluster-shared costs.
    """
    if end <= start:
        raise ConfigError(f"--to {end} is not after --from {start} (the range is [from, to)).")
    run_id = run_id or f"alloc-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuidlib.uuid4().hex[:8]}"
    tags = sorted(set(cluster_tags))
    result = AllocationResult(cluster, start, end, run_id, cluster_tags=[str(t) for t in tags])
    warehouse.ensure_schema()
    period = {"cluster": cluster, "start": _at(start), "end": _at(end)}
    # The cluster's nodes and volumes in the period (what its charges are matched by).
    members = warehouse.query(
        f"SELECT kind, COALESCE(node, persistentvolume) AS name, "
        f"COALESCE(resource_id, csi_volume_handle) AS rid, COUNT(*) AS n "
        f"FROM {DATASET}.k8s_usage WHERE cluster_id = @cluster AND kind IN ('pod', 'storage') "
        f"AND interval_start >= @start AND interval_start < @end GROUP BY 1, 2, 3",
        period).to_pylist()
    if not members:
        raise ConfigError(f"cluster {cluster!r} has no usage in [{start}, {end}) in the "
                          "warehouse; load its usage reports first (costflow allocate --usage "
                          "PAYLOAD).")
    nodes = {resource_key(m["rid"]) or m["name"]: m["name"] for m in members
             if m["kind"] == "pod"}
    pvs = {resource_key(m["rid"]) or m["name"]: m["name"] for m in members
           if m["kind"] == "storage"}
    charges = _charges(warehouse, start, end, set(nodes) | set(pvs), result)
    common = _shared_charges(warehouse, start, end, tags,
                             {tuple(c[k] for k in ORIGIN_KEY) for _, c in charges})
    # Usage of every hour inside a matched charge (a daily charge may end after `end`).
    until = max([c["ChargePeriodEnd"] for _, c in charges]
                + [c["ChargePeriodEnd"] for c in common] + [_at(end)])
    window = {**period, "end": until}
    pods = warehouse.query(
        f"SELECT node, resource_id, namespace, pod, labels, interval_start, interval_end, "
        f"pod_usage_cpu_core_seconds, pod_request_cpu_core_seconds, "
        f"pod_usage_memory_byte_seconds, pod_request_memory_byte_seconds, "
        f"node_capacity_cpu_cores, node_capacity_memory_bytes FROM {DATASET}.k8s_usage "
        f"WHERE cluster_id = @cluster AND kind = 'pod' AND interval_start >= @start "
        f"AND interval_start < @end", window).to_pylist()
    volumes = warehouse.query(
        f"SELECT DISTINCT namespace, persistentvolumeclaim, persistentvolume, csi_volume_handle,"
        f" labels, interval_start, interval_end FROM {DATASET}.k8s_usage WHERE cluster_id = "
        f"@cluster AND kind = 'storage' AND interval_start >= @start AND interval_start < @end",
        window).to_pylist()
    by_node: dict[str, list[dict]] = defaultdict(list)
    for p in pods:
        by_node[p["node"]].append(p)
    by_pv: dict[str, list[dict]] = defaultdict(list)
    for v in volumes:
        by_pv[v["persistentvolume"]].append(v)
    for group in (*by_node.values(), *by_pv.values()):
        group.sort(key=lambda r: r["interval_start"])
    cluster_hours = sorted(pods, key=lambda r: r["interval_start"])
    rows: list[dict[str, Any]] = []
    priced = set()
    committed_at = datetime.now(UTC)
    for key, charge in charges:
        if key in nodes:
            priced.add(key)
            portions = _node_portions(cluster, nodes[key], charge, by_node[nodes[key]])
        else:
            portions = _volume_portions(cluster, pvs[key], charge, by_pv[pvs[key]])
        if len(portions) == 1:
            result.idle_only_charges += 1
        rows += _split_rows(charge, portions, cluster, start, end, run_id, committed_at, result)
        result.charges_split += 1
    for charge in common:
        portions = shared.portions(cluster, tags, _within(cluster_hours, charge))
        for p in portions:
            p.details["share"] = _dec(p.share)
        if portions[0].kind != "workload":
            result.idle_only_charges += 1
        rows += _split_rows(charge, portions, cluster, start, end, run_id, committed_at, result)
        result.charges_split += 1
        result.shared_charges += 1
    pod_hours = {m["name"]: m["n"] for m in members if m["kind"] == "pod"}
    for key, node in sorted(nodes.items()):
        if key not in priced:
            result.unpriced_nodes.append({
                "node": node, "resource_id": key, "pod_hours": pod_hours[node],
                "reason": "no charge with this ResourceId in the bill for the period"})
    table = pa.Table.from_pylist(rows, schema=SCHEMA) if rows else SCHEMA.empty_table()
    replace_allocation(warehouse, cluster, start, end, table, run_id)
    result.rows_written = table.num_rows
    return result


def _charges(warehouse: Any, start: date, end: date, keys: set[str],
             result: AllocationResult) -> list[tuple[str, dict[str, Any]]]:
    if not keys:
        return []
    ids = warehouse.query(
        f"SELECT DISTINCT ResourceId FROM {DATASET}.cost_line_items WHERE ResourceId IS NOT NULL "
        f"AND ChargePeriodStart >= @start AND ChargePeriodStart < @end",
        {"start": _at(start), "end": _at(end)}).column("ResourceId").to_pylist()
    matched: dict[str, str] = {rid: rid for rid in ids if rid in keys}
    exact = set(matched.values())
    for rid in ids:
        if rid in matched:
            continue
        tail = rid.rstrip("/").rsplit("/", 1)[-1]
        if tail in keys and tail not in exact and "/" in rid:
            matched[rid] = tail
            result.matched_by_suffix.append(rid)
    if not matched:
        return []
    found = warehouse.query(
        f"SELECT * FROM {DATASET}.cost_line_items WHERE ResourceId IN UNNEST(@ids) "
        f"AND ChargePeriodStart >= @start AND ChargePeriodStart < @end "
        f"ORDER BY {', '.join(ORIGIN_KEY)}",
        {"ids": sorted(matched), "start": _at(start), "end": _at(end)}).to_pylist()
    seen: set[tuple] = set()
    out = []
    for row in found:
        origin = tuple(row[k] for k in ORIGIN_KEY)
        if origin in seen:
            raise ConfigError(f"two cost_line_items rows share the lineage {origin}; the bill "
                              "cannot be split until it is re-ingested.")
        seen.add(origin)
        out.append((matched[row["ResourceId"]], row))
    return out


def _shared_charges(warehouse: Any, start: date, end: date, tags: Sequence[ClusterTag],
                    taken: set[tuple]) -> list[dict[str, Any]]:
    """Charges starting in [start, end) carrying one of ``tags``, not node or volume charges."""
    if not tags:
        return []
    needles = shared.prefilter(tags)
    found = warehouse.query(
        f"SELECT * FROM {DATASET}.cost_line_items WHERE Tags IS NOT NULL "
        f"AND ChargePeriodStart >= @start AND ChargePeriodStart < @end AND ("
        + " OR ".join(f"STRPOS(Tags, @needle{i}) > 0" for i in range(len(needles)))
        + f") ORDER BY {', '.join(ORIGIN_KEY)}",
        {"start": _at(start), "end": _at(end),
         **{f"needle{i}": n for i, n in enumerate(needles)}}).to_pylist()
    return [row for row in found if tuple(row[k] for k in ORIGIN_KEY) not in taken
            and shared.carries(row["Tags"], tags)]


def _within(rows: list[dict], charge: dict[str, Any]) -> list[dict]:
    """Rows (sorted by interval_start) of the intervals inside the charge period."""
    s, e = charge["ChargePeriodStart"], charge["ChargePeriodEnd"]
    first = bisect.bisect_left(rows, s, key=lambda r: r["interval_start"])
    out = []
    for r in rows[first:]:
        if r["interval_start"] >= e:
            break
        if r["interval_end"] <= e:
            out.append(r)
    return out


def _node_portions(cluster: str, node: str, charge: dict[str, Any],
                   rows: list[dict]) -> list[Portion]:
    hours = _within(rows, charge)
    if not hours:  # the node is in the cluster, but no pod ran on it in the charge's period
        return [_rest("idle", f"{cluster}/__idle__/{node}", "__idle__",
                      {"k8s:cluster": cluster, "k8s:node": node, "k8s:workload": "__idle__"},
                      Fraction(1), {"method": split.NODE_METHOD, "node": node,
                                    "basis": "no pod on the node in the charge period"})]
    seconds = Fraction(int((charge["ChargePeriodEnd"] - charge["ChargePeriodStart"])
                           .total_seconds()))
    cores = max(r["node_capacity_cpu_cores"] or Decimal(0) for r in hours)
    memory = max(r["node_capacity_memory_bytes"] or Decimal(0) for r in hours)
    w_cpu, w_mem = split.node_weights(cores, memory)
    basis: dict[tuple[str, str], list] = {}
    for r in hours:
        labels = json.loads(r["labels"] or "{}")
        workload = split.workload_of(r["pod"], labels)
        entry = basis.setdefault((r["namespace"], workload), [Decimal(0), Decimal(0), set(), None])
        entry[0] += max(r["pod_request_cpu_core_seconds"] or 0,
                        r["pod_usage_cpu_core_seconds"] or 0)
        entry[1] += max(r["pod_request_memory_byte_seconds"] or 0,
                        r["pod_usage_memory_byte_seconds"] or 0)
        entry[2].add(r["pod"])
        entry[3] = labels if entry[3] is None else {
            k: v for k, v in entry[3].items() if labels.get(k) == v}
    portions = []
    for (namespace, workload), (cpu, mem, pod_names, labels) in sorted(basis.items()):
        share = Fraction(0)
        if cores:
            share += w_cpu * Fraction(cpu) / (Fraction(cores) * seconds)
        if memory:
            share += w_mem * Fraction(mem) / (Fraction(memory) * seconds)
        tags = {"k8s:cluster": cluster, "k8s:namespace": namespace, "k8s:workload": workload,
                "k8s:node": node, **{f"k8s:label:{k}": v for k, v in sorted(labels.items())}}
        portions.append(Portion((0, namespace, workload), "workload",
                                f"{cluster}/{namespace}/{workload}", workload, tags, share, {
                                    "cpu_core_seconds": str(cpu), "memory_byte_seconds": str(mem),
                                    "pods": sorted(pod_names)}))
    split.scale_to_one(portions)
    idle = 1 - sum((p.share for p in portions), Fraction(0))
    portions.append(_rest("idle", f"{cluster}/__idle__/{node}", "__idle__",
                          {"k8s:cluster": cluster, "k8s:node": node, "k8s:workload": "__idle__"},
                          idle, {}))
    method = {"method": split.NODE_METHOD, "basis": "max(request, usage) per hour",
              "cpu_weight": _dec(w_cpu), "memory_weight": _dec(w_mem),
              "node": node, "node_cpu_cores": str(cores), "node_memory_bytes": str(memory),
              "prices": {"cpu_core_hour": str(split.CPU_CORE_HOUR_PRICE),
                         "ram_gib_hour": str(split.RAM_GIB_HOUR_PRICE)}}
    for p in portions:
        p.details = {**method, **p.details, "share": _dec(p.share)}
    return portions


def _volume_portions(cluster: str, pv: str, charge: dict[str, Any],
                     rows: list[dict]) -> list[Portion]:
    hours = _within(rows, charge)
    seconds = Fraction(int((charge["ChargePeriodEnd"] - charge["ChargePeriodStart"])
                           .total_seconds()))
    bound: dict[tuple[str, str], set] = defaultdict(set)
    for r in hours:
        bound[(r["namespace"], r["persistentvolumeclaim"])].add(
            (r["interval_start"], r["interval_end"]))
    portions = []
    for (namespace, pvc), spans in sorted(bound.items()):
        time = sum(int((e - s).total_seconds()) for s, e in spans)
        portions.append(Portion((0, namespace, pvc), "workload", f"{cluster}/{namespace}/pvc/{pvc}",
                                pvc, {"k8s:cluster": cluster, "k8s:namespace": namespace,
                                      "k8s:workload": pvc, "k8s:pvc": pvc, "k8s:pv": pv},
                                Fraction(time) / seconds, {"bound_seconds": time}))
    split.scale_to_one(portions)
    rest = 1 - sum((p.share for p in portions), Fraction(0))
    portions.append(_rest("unclaimed_volume", f"{cluster}/__unclaimed__/{pv}", "__unclaimed__",
                          {"k8s:cluster": cluster, "k8s:pv": pv, "k8s:workload": "__unclaimed__"},
                          rest, {}))
    for p in portions:
        p.details = {"method": split.VOLUME_METHOD, "pv": pv, **p.details,
                     "share": _dec(p.share)}
    return portions


def _rest(kind: str, resource_id: str, name: str, tags: dict[str, str], share: Fraction,
          details: dict) -> Portion:
    """The idle (or unclaimed-volume) row: last in the deterministic order."""
    return Portion((1,), kind, resource_id, name, tags, share, details)


def _dec(value: Fraction) -> str:
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = 30
        return str(Decimal(value.numerator) / Decimal(value.denominator))


def _split_rows(charge: dict[str, Any], portions: list[Portion], cluster: str, start: date,
                end: date, run_id: str, committed_at: datetime,
                result: AllocationResult) -> list[dict[str, Any]]:
    shares = split.Shares.of(portions)
    amounts = {c: split.apportion(charge[c], shares) for c in SPLIT_COLUMNS}
    rows = []
    for i, p in enumerate(portions):
        row = {c: charge[c] for c in ORIGIN_COLUMNS}
        row.update({c: amounts[c][i] for c in SPLIT_COLUMNS})
        row.update({
            "AllocatedMethodId": p.details["method"],
            "AllocatedMethodDetails": json.dumps(p.details, sort_keys=True),
            "AllocatedResourceId": p.resource_id, "AllocatedResourceName": p.name,
            "AllocatedTags": json.dumps(p.tags, sort_keys=True, ensure_ascii=False),
            "x_AllocationCluster": cluster, "x_AllocationKind": p.kind,
            "x_AllocationPeriodStart": _at(start), "x_AllocationPeriodEnd": _at(end),
            "x_AllocationRunId": run_id, "x_AllocatedAt": committed_at})
        currency = charge["BillingCurrency"]
        bucket = result.idle if p.kind != "workload" else result.allocated
        bucket[currency] = bucket.get(currency, Decimal(0)) + (row["BilledCost"] or 0)
        rows.append(row)
    return rows
