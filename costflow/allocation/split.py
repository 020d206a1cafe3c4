"""How one origin charge is split: shares per workload, then exact integer apportionment.

Compute charges (a node's rows of the bill). For the charge period [s, e) and the node's pod
rows of hours inside it, each pod's basis is max(request, usage) of CPU core-seconds and of
memory byte-seconds, hour by hour (what koku calls effective usage and OpenCost bills). A
workload's share is

    cpu_weight * cpu_basis / (cores * seconds(e - s))
      + memory_weight * memory_basis / (bytes * seconds(e - s))

with cores and bytes the node's capacity (largest reported in the period) and the weights the
node's CPU and memory parts at OpenCost's default prices (0.031611 per core-hour, 0.004237 per
GiB-hour; opencost `configs/default.json`): cpu_weight = cores*0.031611 / (cores*0.031611 +
GiB*0.004237), memory_weight = 1 - cpu_weight. Hours the node was not reported count as idle.
When the shares add up to more than 1 (usage above capacity) they are scaled to sum to 1. The
remainder, 1 - sum, is the idle row.

Volume charges (a PV's rows): each PVC bound to it gets the share of the charge period it was
bound (distinct report hours times their length over the period); the remainder is the
unclaimed-volume row.

Apportionment. Each split column of the charge is taken as an integer number of the smallest
unit of its scale (1e-18); every portion gets the floor of its exact share, and the units left
go one each to the portions with the largest fractional parts, ties to the first in the
deterministic order (workloads by namespace then name, the idle row last). Negative amounts
(credits) are apportioned by their magnitude. So the portions add up to the charge exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction

from costflow.schemas.columns import DECIMAL_SCALE

GIB = 1024**3
CPU_CORE_HOUR_PRICE = Fraction("0.031611")  # OpenCost default CPU price per core-hour
RAM_GIB_HOUR_PRICE = Fraction("0.004237")   # OpenCost default RAM price per GiB-hour
NODE_METHOD = "costflow.k8s.node.max-request-usage.v1"
VOLUME_METHOD = "costflow.k8s.volume.pvc-bound-time.v1"
UNIT = 10**DECIMAL_SCALE
_HASHES = (re.compile(r"-[a-z0-9]{6,10}-[a-z0-9]{5,}$"), re.compile(r"-[a-z0-9]{5}$"))
WORKLOAD_LABELS = ("app.kubernetes.io/name", "app")


@dataclass
class Portion:
    """One allocated-to object of a charge, with its exact share."""

    order: tuple  # deterministic sort key (idle / unclaimed last)
    kind: str     # workload, idle, unclaimed_volume
    resource_id: str
    name: str
    tags: dict[str, str]
    share: Fraction
    details: dict = field(default_factory=dict)


def workload_of(pod: str, labels: dict[str, str]) -> str:
    """The workload a pod belongs to: its app label, else its name without the ReplicaSet
    and pod hash suffixes (``api-7d9f8c6b5-x2x7k`` -> ``api``)."""
    for key in WORKLOAD_LABELS:
        if labels.get(key):
            return labels[key]
    for pattern in _HASHES:
        stripped = pattern.sub("", pod)
        if stripped != pod:
            return stripped
    return pod


def node_weights(cores: Decimal, memory_bytes: Decimal) -> tuple[Fraction, Fraction]:
    cpu = Fraction(cores) * CPU_CORE_HOUR_PRICE
    ram = Fraction(memory_bytes) / GIB * RAM_GIB_HOUR_PRICE
    if cpu + ram == 0:
        return Fraction(1, 2), Fraction(1, 2)
    return cpu / (cpu + ram), ram / (cpu + ram)


def scale_to_one(portions: list[Portion]) -> None:
    total = sum((p.share for p in portions), Fraction(0))
    if total > 1:
        for p in portions:
            p.share = p.share / total


@dataclass(frozen=True)
class Shares:
    """The portions' shares as integers over one common denominator (exact, and fast)."""

    numerators: tuple[int, ...]
    denominator: int
    order: tuple[tuple, ...]

    @classmethod
    def of(cls, portions: Sequence[Portion]) -> Shares:
        denominator = math.lcm(*(p.share.denominator for p in portions))
        numerators = tuple(p.share.numerator * (denominator // p.share.denominator)
                           for p in portions)
        if sum(numerators) != denominator or min(numerators) < 0:
            raise ValueError("shares must be non-negative and sum to 1")
        return cls(numerators, denominator, tuple(p.order for p in portions))


def apportion(amount: Decimal | None, shares: Shares) -> list[Decimal | None]:
    """``amount`` split by ``shares`` (which sum to 1) into exact 1e-18 units."""
    if amount is None:
        return [None] * len(shares.numerators)
    with localcontext() as ctx:
        ctx.prec = 60
        scaled = amount.scaleb(DECIMAL_SCALE)
        units = int(scaled)
        if units != scaled:
            raise ValueError(f"{amount} has more than {DECIMAL_SCALE} decimal places")
    sign, magnitude = (-1 if units < 0 else 1), abs(units)
    if magnitude == 0:
        return [Decimal(0).scaleb(-DECIMAL_SCALE)] * len(shares.numerators)
    parts = [divmod(magnitude * n, shares.denominator) for n in shares.numerators]
    floors = [q for q, _ in parts]
    left = magnitude - sum(floors)
    ranked = sorted(range(len(parts)), key=lambda i: (-parts[i][1], shares.order[i]))
    for i in ranked[:left]:
        floors[i] += 1
    with localcontext() as ctx:
        ctx.prec = 60  # scaleb rounds to the context's precision: 38 digits must stay exact
        return [Decimal(sign * f).scaleb(-DECIMAL_SCALE) for f in floors]
