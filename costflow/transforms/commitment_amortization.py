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

1. `PoolTotals.add` sums, per (slice, pool), the fee (BilledCost of the pool's Purchase rows),
   keeps the positive weights of its covered Usage rows (as Arrow decimals, 20 bytes a row) and
   the anchor row; the totals of several files merge.
2. `Allocation` gives each covered row ``floor(fee x weight / total weight)`` in units of
   1e-18 (the warehouse's scale) and the rounding remainder to the anchor row (the largest
   weight; ties by source URI and row number, so reruns allocate identically), and sets the
   pool's Purchase rows to 0. So each pool's EffectiveCost total is exactly what it was: the
   fee moved, not a cent created or lost.

The products need up to ~80 bits more than decimal128 holds, and Arrow has no exact decimal
multiply-then-divide at that width, so shares are computed on Python integers held in numpy
object arrays, one vectorized expression per batch, converted from and to decimal128 through
their two 64-bit words.

A pool with fees but no covered usage (an idle commitment) keeps the fee's EffectiveCost on the
fee row — FOCUS would show it on an "Unused" row, which the export gives no basis to build — and
is reported. Covered rows with no fee in their pool (the fee billed to another account or
period) keep EffectiveCost = BilledCost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.reconcile import SliceKey
from costflow.schemas.columns import DECIMAL_SCALE
from costflow.schemas.focus import SLICE_KEY
from costflow.transforms.arrow_ops import DECIMAL, decimal_add, fill_false

POOL = "x_CommitmentPool"
WEIGHT = "x_CommitmentCoveredCost"
ROW_ID = ("x_SourceUri", "x_SourceRowNumber")
# What pass 1 reads of a staged file.
COLUMNS = (*SLICE_KEY, POOL, "ChargeCategory", "BilledCost", WEIGHT, *ROW_ID)
_SEP = "\x1f"  # joins key parts; it cannot occur in account ids, pools or URIs
_WORD = 1 << 64
_ZERO = pa.scalar(Decimal(0), DECIMAL)

PoolKey = tuple[Any, ...]  # (*SLICE_KEY values, pool)


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-DECIMAL_SCALE)


def units_of(values: pa.Array) -> np.ndarray:
    """decimal128 values as Python integers of 1e-18 (a numpy object array; nulls are 0)."""
    values = _whole(pc.cast(values, DECIMAL))
    words = np.frombuffer(values.buffers()[1], dtype="<u8")[
        2 * values.offset:2 * (values.offset + len(values))].reshape(-1, 2)
    high = words[:, 1].view("<i8").astype(object)
    units = high * _WORD + words[:, 0].astype(object)
    return np.where(np.asarray(values.is_valid()), units, 0)


def decimals_of(units: np.ndarray) -> pa.Array:
    """Python integers of 1e-18 (each within decimal128) as a DECIMAL array."""
    units = np.asarray(units, dtype=object)
    low = (units % _WORD).astype("<u8")   # floor division: two's complement words
    high = (units // _WORD).astype("<i8")
    words = np.empty(2 * len(units), dtype="<u8")
    words[0::2], words[1::2] = low, high.view("<u8")
    return pa.Array.from_buffers(DECIMAL, len(units), [None, pa.py_buffer(words.tobytes())])


def _keys(table: pa.Table) -> pa.Array:
    """One text per row naming its (slice, pool)."""
    parts = [pc.cast(table.column(c), pa.string()) for c in (*SLICE_KEY, POOL)]
    return pc.binary_join_element_wise(*parts, _SEP).combine_chunks()


def _row_ids(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.cast(table.column(ROW_ID[0]), pa.string()),
        pc.cast(table.column(ROW_ID[1]), pa.string()), _SEP).combine_chunks()


def _whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _covered(table: pa.Table) -> pa.Array:
    return _whole(fill_false(pc.and_(pc.equal(table.column("ChargeCategory"), "Usage"),
                                     pc.greater(table.column(WEIGHT), _ZERO))))


@dataclass
class Pool:
    """One (slice, pool): its key, fee and covered weight totals, and its anchor row."""

    key: PoolKey
    fee_rows: int = 0
    fee: int = 0           # units of 1e-18
    covered_rows: int = 0
    weight: int = 0        # units
    anchor: tuple[int, str, int] | None = None  # (-weight, uri, row): the smallest wins


class PoolTotals:
    """Pass 1: per (slice, pool) fee totals, covered weights and anchors, over staged tables."""

    def __init__(self) -> None:
        self.pools: dict[str, Pool] = {}          # key text -> pool
        self._weights: list[tuple[pa.Array, pa.Array]] = []  # (key texts, weights) per batch

    def add(self, table: pa.Table) -> None:
        """Fold the pool rows of ``table`` (any table with `COLUMNS`) into the totals."""
        table = table.filter(pc.is_valid(table.column(POOL)))
        if not table.num_rows:
            return
        table = table.append_column("_key", _keys(table))
        fees = table.filter(pc.equal(table.column("ChargeCategory"), "Purchase"))
        for row in fees.group_by(["_key"], use_threads=False).aggregate(
                [("BilledCost", "sum"), ("BilledCost", "count")]).to_pylist():
            pool = self._pool(row["_key"], fees)
            pool.fee += int(row["BilledCost_sum"].scaleb(DECIMAL_SCALE))
            pool.fee_rows += row["BilledCost_count"]
        covered = table.filter(_covered(table))
        if not covered.num_rows:
            return
        self._weights.append((covered.column("_key").combine_chunks(),
                              covered.column(WEIGHT).combine_chunks()))
        for row in covered.group_by(["_key"], use_threads=False).aggregate(
                [(WEIGHT, "sum"), (WEIGHT, "count")]).to_pylist():
            pool = self._pool(row["_key"], covered)
            pool.weight += int(row[f"{WEIGHT}_sum"].scaleb(DECIMAL_SCALE))
            pool.covered_rows += row[f"{WEIGHT}_count"]
        # This batch's anchor candidate per pool: the first row of each key once sorted.
        ordered = covered.sort_by([("_key", "ascending"), (WEIGHT, "descending"),
                                   (ROW_ID[0], "ascending"), (ROW_ID[1], "ascending")])
        keys = ordered.column("_key").combine_chunks()
        first = pa.concat_arrays([pa.array([True]), pc.not_equal(keys[1:], keys[:-1])])
        for row in ordered.filter(first).select(["_key", WEIGHT, *ROW_ID]).to_pylist():
            pool = self.pools[row["_key"]]
            candidate = (-int(row[WEIGHT].scaleb(DECIMAL_SCALE)), row[ROW_ID[0]],
                         row[ROW_ID[1]])
            if pool.anchor is None or candidate < pool.anchor:
                pool.anchor = candidate

    def _pool(self, key: str, rows: pa.Table) -> Pool:
        pool = self.pools.get(key)
        if pool is None:
            first = rows.filter(pc.equal(rows.column("_key"), key)).slice(0, 1).to_pylist()[0]
            pool = self.pools[key] = Pool((*(first[c] for c in SLICE_KEY), first[POOL]))
        return pool

    def allocation(self) -> Allocation:
        return Allocation({k: p for k, p in self.pools.items() if p.fee_rows and p.weight},
                          self._weights)

    def unamortized(self) -> list[tuple[PoolKey, Decimal]]:
        """Pools whose fees found no covered usage: (key, fee), for the run report."""
        return [(p.key, _amount(p.fee)) for p in sorted(self.pools.values(), key=_sortable)
                if p.fee_rows and not p.weight]


def slice_label(key: PoolKey) -> str:
    """``gcp/<account>/<YYYY-MM>``: the slice of a pool key, as reports name slices."""
    return str(SliceKey(*key[:-1]))


def _sortable(pool: Pool) -> tuple[str, ...]:
    return tuple(str(v) for v in pool.key)


class Allocation:
    """Pass 2: the EffectiveCost of every row of the amortizable pools."""

    def __init__(self, pools: dict[str, Pool],
                 weights: list[tuple[pa.Array, pa.Array]]) -> None:
        self.pools = pools
        self._names = pa.array(list(pools), pa.string())
        self._fee = np.array([p.fee for p in pools.values()] + [0], dtype=object)
        self._weight = np.array([p.weight for p in pools.values()] + [1], dtype=object)
        self._anchor = pa.array([f"{p.anchor[1]}{_SEP}{p.anchor[2]}" if p.anchor else ""
                                 for p in pools.values()], pa.string())
        shared = np.zeros(len(pools) + 1, dtype=object)  # what floor shares hand out
        for keys, values in weights:
            index = self._index(keys)
            np.add.at(shared, index, self._shares(index, units_of(values)))
        self.remainders = self._fee - shared  # to each pool's anchor row; 0 for the sentinel

    def __bool__(self) -> bool:
        return bool(self.pools)

    def _index(self, keys: pa.Array) -> np.ndarray:
        """Position of each key's pool; len(pools) (a zero-fee sentinel) when not amortized."""
        index = pc.index_in(keys, value_set=self._names)
        return np.asarray(pc.fill_null(index, len(self.pools)), dtype=np.int64)

    def _shares(self, index: np.ndarray, units: np.ndarray) -> np.ndarray:
        return self._fee[index] * units // self._weight[index]

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` (staged cost rows) with EffectiveCost amortized; other rows unchanged."""
        if not self.pools or table.column(POOL).null_count == table.num_rows:
            return table
        pooled = np.flatnonzero(np.asarray(table.column(POOL).is_valid()))
        index = np.full(table.num_rows, len(self.pools), dtype=np.int64)  # not amortized
        index[pooled] = self._index(_keys(table.take(pa.array(pooled))))
        amortized = pa.array(index < len(self.pools))
        fees = _whole(fill_false(pc.and_(amortized, pc.equal(
            table.column("ChargeCategory").combine_chunks(), "Purchase"))))
        covered = _whole(fill_false(pc.and_(amortized, _covered(table))))
        effective = table.column("EffectiveCost").combine_chunks()
        if pc.any(fees).as_py():
            effective = pc.replace_with_mask(effective, fees, pa.repeat(
                _ZERO, pc.sum(pc.cast(fees, pa.int64())).as_py()))
        if pc.any(covered).as_py():
            rows = table.filter(covered)
            at = index[np.asarray(covered)]
            shares = self._shares(at, units_of(rows.column(WEIGHT)))
            anchor = np.asarray(pc.equal(_row_ids(rows), pc.take(self._anchor, pa.array(at))))
            shares = shares + np.where(anchor, self.remainders[at], 0)
            moved, _ = decimal_add(rows.column("BilledCost").combine_chunks(),
                                   decimals_of(shares), "EffectiveCost")
            effective = pc.replace_with_mask(effective, covered, moved)
        position = table.schema.get_field_index("EffectiveCost")
        return table.set_column(position, table.schema.field(position), effective)

    def summary(self) -> list[dict[str, Any]]:
        """Per amortized pool: the fee moved and over how many rows, for the run report."""
        return [{"slice": slice_label(p.key), "pool": p.key[-1], "fee_moved": _amount(p.fee),
                 "fee_rows": p.fee_rows, "covered_rows": p.covered_rows,
                 "covered_cost": _amount(p.weight)}
                for p in sorted(self.pools.values(), key=_sortable)]
