"""Generated OpenCost allocation API answers: a cluster's namespaces, day by day, plus idle.

Why this module exists: the one real answer we hold (``../shared/samples/opencost/``) is three
namespaces over one two-day window. Tests and demos need a month, paging, idle rows and the
float text OpenCost's consumers really see. Each generated Allocation has the real sample's
fields (`FIELDS`); costs are float64 computed as OpenCost computes them (component costs, then
``totalCost`` as their float sum), and `answer_text` can print every number with 17 significant
digits (``0.30414999999999998``), as many JSON printers do, instead of the shortest text
(``0.30415``). `truth` is what a correct reader loads: per (cluster, UTC day) the exact sum of
the shortest decimal text of each ``totalCost``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

NAMESPACES = ("checkout", "search", "payments")
CLUSTER = "prod-eks"
IDLE = "__idle__"
# The Allocation fields of the real answer (allocation_compute_namespace.json), in its order.
FIELDS = ("name", "properties", "window", "start", "end", "minutes", "cpuCores",
          "cpuCoreRequestAverage", "cpuCoreUsageAverage", "cpuCoreHours", "cpuCost",
          "cpuCostAdjustment", "cpuEfficiency", "gpuCount", "gpuHours", "gpuCost",
          "gpuCostAdjustment", "networkTransferBytes", "networkReceiveBytes", "networkCost",
          "networkCostAdjustment", "loadBalancerCost", "loadBalancerCostAdjustment", "pvBytes",
          "pvByteHours", "pvCost", "pvs", "pvCostAdjustment", "ramBytes",
          "ramByteRequestAverage", "ramByteUsageAverage", "ramByteHours", "ramCost",
          "ramCostAdjustment", "ramEfficiency", "sharedCost", "externalCost", "totalCost",
          "totalEfficiency", "rawAllocationOnly")
# On-demand-like unit prices (USD): per core-hour, per GiB-hour, per GiB-hour of volume.
CPU_HOUR, RAM_GIB_HOUR, PV_GIB_HOUR = 0.031611, 0.004237, 0.000137
GIB = 1024.0 ** 3


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _allocation(name: str, properties: dict[str, Any], start: datetime, end: datetime,
                cores: float, ram: float, pv: float, usage: float,
                network: float) -> dict[str, Any]:
    hours = (end - start).total_seconds() / 3600
    cpu_cost = cores * hours * CPU_HOUR
    ram_cost = ram / GIB * hours * RAM_GIB_HOUR
    pv_cost = pv / GIB * hours * PV_GIB_HOUR
    total = cpu_cost + ram_cost + pv_cost + network  # float sum, as OpenCost's TotalCost()
    window = {"start": _rfc3339(start), "end": _rfc3339(end)}
    values: dict[str, Any] = {
        "name": name, "properties": properties, "window": window,
        "start": window["start"], "end": window["end"], "minutes": hours * 60,
        "cpuCores": cores, "cpuCoreRequestAverage": cores, "cpuCoreUsageAverage": cores * usage,
        "cpuCoreHours": cores * hours, "cpuCost": cpu_cost, "cpuCostAdjustment": 0.0,
        "cpuEfficiency": usage, "gpuCount": 0.0, "gpuHours": 0.0, "gpuCost": 0.0,
        "gpuCostAdjustment": 0.0, "networkTransferBytes": network * 1e11,
        "networkReceiveBytes": network * 3e11, "networkCost": network,
        "networkCostAdjustment": 0.0, "loadBalancerCost": 0.0,
        "loadBalancerCostAdjustment": 0.0, "pvBytes": pv, "pvByteHours": pv * hours,
        "pvCost": pv_cost, "pvs": None, "pvCostAdjustment": 0.0, "ramBytes": ram,
        "ramByteRequestAverage": ram, "ramByteUsageAverage": ram * usage,
        "ramByteHours": ram * hours, "ramCost": ram_cost, "ramCostAdjustment": 0.0,
        "ramEfficiency": usage, "sharedCost": 0.0, "externalCost": 0.0, "totalCost": total,
        "totalEfficiency": usage, "rawAllocationOnly": None,
    }
    return {field: values[field] for field in FIELDS}


def day_allocations(day: date, cluster: str = CLUSTER,
                    namespaces: Sequence[str] = NAMESPACES, seed: int = 13,
                    idle: bool = True) -> dict[str, dict[str, Any]]:
    """One step (a UTC day) of ``aggregate=namespace&includeIdle=true``: name -> Allocation."""
    rng = random.Random(f"{seed}:{cluster}:{day.isoformat()}")
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = start + timedelta(days=1)
    out: dict[str, dict[str, Any]] = {}
    for namespace in namespaces:
        properties = {"cluster": cluster, "namespace": namespace,
                      "labels": {"app": namespace, "team": f"team-{namespace[:3]}"}}
        out[namespace] = _allocation(
            namespace, properties, start, end, cores=round(rng.uniform(0.2, 6.0), 6),
            ram=float(rng.randrange(256, 16_384)) * 1024 ** 2, pv=float(rng.choice(
                (0, 10, 50))) * GIB, usage=round(rng.uniform(0.05, 0.9), 6),
            network=round(rng.uniform(0, 0.02), 6))
    if idle:
        out[IDLE] = _allocation(IDLE, {"cluster": cluster}, start, end,
                                cores=round(rng.uniform(1, 4), 6),
                                ram=float(rng.randrange(1024, 8192)) * 1024 ** 2, pv=0.0,
                                usage=0.0, network=0.0)
    return out


def answer(maps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The allocation API's answer envelope around one map per step."""
    return {"code": 200, "status": "success", "data": list(maps)}


def month_answer(month: date, cluster: str = CLUSTER,
                 namespaces: Sequence[str] = NAMESPACES, seed: int = 13) -> dict[str, Any]:
    """``window=<month>&step=1d&aggregate=namespace&includeIdle=true`` for a whole month."""
    days, day = [], month.replace(day=1)
    while day.month == month.month:
        days.append(day_allocations(day, cluster, namespaces, seed))
        day += timedelta(days=1)
    return answer(days)


_FLOAT = re.compile(r'"@@float:([^@]+)@@"')


def answer_text(value: dict[str, Any], digits17: bool = True) -> str:
    """The answer as JSON text; with ``digits17`` every non-integral number is printed with 17
    significant digits (``0.30414999999999998``), the same double as its shortest text."""
    if not digits17:
        return json.dumps(value, indent=1)

    def mark(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        if isinstance(node, float) and not node.is_integer():
            return f"@@float:{node:.17g}@@"
        return node

    return _FLOAT.sub(r"\1", json.dumps(mark(value), indent=1))


def truth(value: dict[str, Any]) -> dict[tuple[str, date], Decimal]:
    """Exact totalCost per (cluster, UTC day of the window start): the sum of each double's
    shortest decimal text, what a correct reader loads."""
    out: dict[tuple[str, date], Decimal] = {}
    for step in value["data"]:
        for allocation in step.values():
            key = (allocation["properties"]["cluster"],
                   date.fromisoformat(allocation["window"]["start"][:10]))
            out[key] = out.get(key, Decimal(0)) + Decimal(repr(allocation["totalCost"]))
    return out
