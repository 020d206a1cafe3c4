"""Spread recurring commitment fees over the usage their commitments covered (EffectiveCost).

Why this module exists: FOCUS's EffectiveCost is the amortized cost. A commitment bought to
cover future usage must show EffectiveCost 0 on its Purchase row (validator rule
EffectiveCost-C-005-C) and its cost on the usage it covered instead (FOCUS's own worked example,
``../shared/samples/focus/commitment_discount_scenarios``). GCP bills a committed-use discount as
a recurring fee row and nets the covered usage to about 0 with CUD credits, so per row its
BilledCost is right and its EffectiveCost is not. Moving the fee needs every row of a billing
account's period — the fee row and the usage it covered sit in different batches and files — so
it cannot be done in the per-batch normalizer. The normalizer marks the rows instead
(``x_CommitmentPool``: which fees spread over which usage; ``x_CommitmentCoveredCost``: each
usage row's weight), and this module does the slice-level arithmetic in two passes:

1. `PoolTotals.add` sums, per (slice, pool), the fee (BilledCost of the pool's Purchase rows)
   and collects the positive weights of its covered Usage rows; totals of several files merge.
2. `Allocation` gives each covered row ``floor(fee x weight / total weight)`` in units of
   1e-18 (the warehouse's scale) and the rounding remainder to one anchor row (the largest
   weight; ties by source URI and row number, so reruns allocate identically), and sets the
   pool's Purchase rows to 0. So each pool's EffectiveCost total is exactly what it was: the
   fee moved, not a cent created or lost.

A pool with fees but no covered usage (an idle commitment) keeps the fee's EffectiveCost on the
fee row — FOCUS would show it on an "Unused" row, which the export gives no basis to build — and
is reported. Covered rows with no fee in their pool (the fee billed to another account or
period) keep EffectiveCost = BilledCost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from costflow.reconcile import SliceKey
from costflow.schemas.columns import DECIMAL_SCALE
from costflow.schemas.focus import SLICE_KEY
from costflow.transforms.arrow_ops import DECIMAL

POOL = "x_CommitmentPool"
WEIGHT = "x_CommitmentCoveredCost"
ROW_ID = ("x_SourceUri", "x_SourceRowNumber")
# What pass 1 reads of a staged file.
COLUMNS = (*SLICE_KEY, POOL, "ChargeCategory", "BilledCost", WEIGHT, *ROW_ID)
UNIT = Decimal(1).scaleb(-DECIMAL_SCALE)  # the smallest amount the warehouse stores

PoolKey = tuple[Any, ...]  # (*SLICE_KEY values, pool)


def _units(value: Decimal) -> int:
    """An amount of the warehouse's scale as an integer count of `UNIT`."""
    return int(value.scaleb(DECIMAL_SCALE))


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-DECIMAL_SCALE)


@dataclass
class Pool:
    """One (slice, pool): its fee, its covered rows' weights, and its anchor row."""

    fee_rows: int = 0
    fee: int = 0  # units
    weights: list[int] = field(default_factory=list)  # units, one per covered row (> 0)
    anchor: tuple[int, str, int] | None = None  # (-weight, uri, row): the smallest wins

    @property
    def weight(self) -> int:
        return sum(self.weights)

    @property
    def amortizable(self) -> bool:
        return self.fee_rows > 0 and bool(self.weights)

    def share(self, weight: int) -> int:
        """floor(fee x weight / total weight), in units."""
        return self.fee * weight // self.weight


class PoolTotals:
    """Pass 1: per (slice, pool) fee totals, covered weights and anchors, over staged tables."""

    def __init__(self) -> None:
        self.pools: dict[PoolKey, Pool] = {}

    def add(self, table: pa.Table) -> None:
        """Fold the pool rows of ``table`` (any table with `COLUMNS`) into the totals."""
        table = table.filter(pc.is_valid(table.column(POOL)))
        if not table.num_rows:
            return
        category = table.column("ChargeCategory")
        fees = table.filter(pc.equal(category, "Purchase"))
        covered = table.filter(pc.and_(pc.equal(category, "Usage"), pc.fill_null(
            pc.greater(table.column(WEIGHT), pa.scalar(Decimal(0), DECIMAL)), False)))
        for row in fees.group_by([*SLICE_KEY, POOL], use_threads=False).aggregate(
                [("BilledCost", "sum"), ("BilledCost", "count")]).to_pylist():
            pool = self._pool(row)
            pool.fee += _units(row["BilledCost_sum"])
            pool.fee_rows += row["BilledCost_count"]
        for row in covered.select([*SLICE_KEY, POOL, WEIGHT, *ROW_ID]).to_pylist():
            pool = self._pool(row)
            weight = _units(row[WEIGHT])
            pool.weights.append(weight)
            candidate = (-weight, *(row[c] for c in ROW_ID))
            if pool.anchor is None or candidate < pool.anchor:
                pool.anchor = candidate

    def _pool(self, row: dict[str, Any]) -> Pool:
        key = (*(row[c] for c in SLICE_KEY), row[POOL])
        return self.pools.setdefault(key, Pool())

    def allocation(self) -> Allocation:
        return Allocation({k: p for k, p in self.pools.items() if p.amortizable})

    def unamortized(self) -> list[tuple[PoolKey, Decimal]]:
        """Pools whose fees found no covered usage: (key, fee), for the run report."""
        return [(k, _amount(p.fee)) for k, p in sorted(self.pools.items(), key=_sortable)
                if p.fee_rows and not p.weights]


def slice_label(key: PoolKey) -> str:
    """``gcp/<account>/<YYYY-MM>``: the slice of a pool key, as reports name slices."""
    return str(SliceKey(*key[:-1]))


def _sortable(item: tuple[PoolKey, Pool]) -> tuple[str, ...]:
    return tuple(str(v) for v in item[0])


class Allocation:
    """Pass 2: the EffectiveCost of every row of the amortizable pools."""

    def __init__(self, pools: dict[PoolKey, Pool]) -> None:
        self.pools = pools
        self.remainders = {key: pool.fee - sum(pool.share(w) for w in pool.weights)
                           for key, pool in pools.items()}

    def __bool__(self) -> bool:
        return bool(self.pools)

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` (staged cost rows) with EffectiveCost amortized; other rows unchanged."""
        positions = pc.indices_nonzero(pc.is_valid(table.column(POOL))).to_pylist()
        if not positions:
            return table
        rows = table.select(list(COLUMNS)).take(positions).to_pylist()
        changed: dict[int, Decimal] = {}  # position -> new EffectiveCost
        for position, row in zip(positions, rows, strict=True):
            key = (*(row[c] for c in SLICE_KEY), row[POOL])
            pool = self.pools.get(key)
            if pool is None:
                continue
            if row["ChargeCategory"] == "Purchase":
                changed[position] = Decimal(0)
                continue
            weight = _units(row[WEIGHT]) if row[WEIGHT] is not None else 0
            if row["ChargeCategory"] != "Usage" or weight <= 0:
                continue
            share = pool.share(weight)
            if (-weight, *(row[c] for c in ROW_ID)) == pool.anchor:
                share += self.remainders[key]
            changed[position] = row["BilledCost"] + _amount(share)
        if not changed:
            return table
        mask = pc.is_in(pa.array(range(table.num_rows), pa.int64()),
                        value_set=pa.array(list(changed), pa.int64()))
        values = pa.array([changed[i] for i in sorted(changed)], DECIMAL)
        index = table.schema.get_field_index("EffectiveCost")
        column = pc.replace_with_mask(table.column(index).combine_chunks(), mask, values)
        return table.set_column(index, table.schema.field(index), column)

    def summary(self) -> list[dict[str, Any]]:
        """Per amortized pool: the fee moved and over how many rows, for the run report."""
        return [{"slice": slice_label(key), "pool": key[-1],
                 "fee_moved": _amount(pool.fee), "fee_rows": pool.fee_rows,
                 "covered_rows": len(pool.weights), "covered_cost": _amount(pool.weight)}
                for key, pool in sorted(self.pools.items(), key=_sortable)]
