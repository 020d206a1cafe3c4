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

1. `PoolTotals.add` sums, per (slice, pool), the fee (EffectiveCost of the pool's Purchase
   rows) and the positive weights of its covered Usage rows, keeps each covered row's weight
   and pool number (20 bytes a row) and the pool's anchor row; several files fold in turn.
2. `Allocation.apply` adds to each covered row's EffectiveCost ``floor(fee x weight / total
   weight)`` in units of 1e-18 (the warehouse's scale), gives the rounding remainder to the
   anchor row (the largest weight; ties by source URI and row number, so reruns allocate
   identically), and sets the pool's Purchase rows to 0. `Allocation.verify` then checks that
   every pool's EffectiveCost total is exactly what it was: the fee moved, not a unit created
   or lost.

All sums and shares are exact integers: the products need up to ~80 bits more than decimal128
holds and Arrow has no exact multiply-then-divide at that width, so amounts are read from
decimal128's two 64-bit words into Python integers held in numpy object arrays (one vectorized
expression per batch) and written back the same way.

A pool with fees but no covered usage (an idle commitment) keeps the fee's EffectiveCost on the
fee row — FOCUS would show it on an "Unused" row, which the export gives no basis to build — and
is reported. Covered rows with no fee in their pool (the fee billed to another account or
period) keep their EffectiveCost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.errors import CostflowError
from costflow.reconcile import SliceKey
from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE
from costflow.schemas.focus import SLICE_KEY
from costflow.transforms.arrow_ops import DECIMAL, fill_false, whole
from costflow.transforms.decimal_units import LIMIT, decimals_of, units_of
from costflow.transforms.distinct_rows import once_per_distinct_row
from costflow.transforms.pricing_currency import RATE, complete_pricing_currency

POOL = "x_CommitmentPool"
WEIGHT = "x_CommitmentCoveredCost"
ROW_ID = ("x_SourceUri", "x_SourceRowNumber")
# What pass 1 reads of a staged file.
COLUMNS = (*SLICE_KEY, POOL, "ChargeCategory", "EffectiveCost", WEIGHT, *ROW_ID)
_SEP = "\x1f"  # joins key parts; it cannot occur in account ids, pools or URIs
_EXACT = Context(prec=2 * DECIMAL_PRECISION + 10)
_ZERO = pa.scalar(Decimal(0), DECIMAL)

PoolKey = tuple[Any, ...]  # (*SLICE_KEY values, pool)


class AmortizationError(CostflowError):
    """A fee could not be moved exactly; nothing was committed."""

    exit_code = 3


def _amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-DECIMAL_SCALE, context=_EXACT)


def _row_named(table: pa.Table, i: int) -> str:
    """Row ``i`` of staged rows as its source file and row number, for an error message."""
    row = table.slice(i, 1).select(list(ROW_ID)).to_pylist()[0]
    return f"{row[ROW_ID[0]]} row {row[ROW_ID[1]]}"


def _keys(table: pa.Table) -> pa.Array:
    """One text per row naming its (slice, pool); written once per distinct key (a pool's
    rows share it, and writing a timestamp as text is the costly part)."""
    return once_per_distinct_row([table.column(c) for c in (*SLICE_KEY, POOL)], _key_text)


def _key_text(columns: list[pa.Array]) -> pa.Array:
    return whole(pc.binary_join_element_wise(*(pc.cast(c, pa.string()) for c in columns),
                                              _SEP))


def _is(table: pa.Table, category: str) -> np.ndarray:
    return np.asarray(whole(fill_false(pc.equal(table.column("ChargeCategory"), category))))


def _covered(table: pa.Table) -> np.ndarray:
    """Usage rows a commitment covered (weight > 0): the rows a fee is spread over."""
    return _is(table, "Usage") & np.asarray(
        whole(fill_false(pc.greater(table.column(WEIGHT), _ZERO))))


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
        self.pools: list[Pool] = []
        self.numbers: dict[str, int] = {}  # key text -> position in pools
        self._weights: list[tuple[np.ndarray, pa.Array]] = []  # (pool numbers, weights)

    def number(self, table: pa.Table) -> np.ndarray:
        """The pool number of every row of ``table`` (rows with a pool), adding new pools."""
        encoded = pc.dictionary_encode(_keys(table))
        codes = np.asarray(encoded.indices)
        firsts = np.unique(codes, return_index=True)[1]
        mapping = np.empty(len(encoded.dictionary), dtype=np.int64)
        for code, text in enumerate(encoded.dictionary.to_pylist()):
            if text not in self.numbers:
                row = table.slice(int(firsts[code]), 1).to_pylist()[0]
                self.numbers[text] = len(self.pools)
                self.pools.append(Pool((*(row[c] for c in SLICE_KEY), row[POOL])))
            mapping[code] = self.numbers[text]
        return mapping[codes]

    def add(self, table: pa.Table) -> None:
        """Fold the pool rows of ``table`` (any table with `COLUMNS`) into the totals."""
        table = table.filter(pc.is_valid(table.column(POOL)))
        if not table.num_rows:
            return
        number = self.number(table)
        fees, covered = _is(table, "Purchase"), _covered(table)
        fee_sums = np.zeros(len(self.pools), dtype=object)
        np.add.at(fee_sums, number[fees], units_of(table.column("EffectiveCost"))[fees])
        weights = units_of(table.column(WEIGHT))[covered]
        weight_sums = np.zeros(len(self.pools), dtype=object)
        np.add.at(weight_sums, number[covered], weights)
        fee_rows = np.bincount(number[fees], minlength=len(self.pools))
        covered_rows = np.bincount(number[covered], minlength=len(self.pools))
        for i in np.flatnonzero(fee_rows + covered_rows):
            pool = self.pools[i]
            pool.fee += fee_sums[i]
            pool.fee_rows += int(fee_rows[i])
            pool.weight += weight_sums[i]
            pool.covered_rows += int(covered_rows[i])
        if covered.any():
            rows = table.filter(pa.array(covered))
            self._weights.append((number[covered].astype(np.int32),
                                  whole(rows.column(WEIGHT))))
            self._anchors(rows, number[covered], weights)

    def _anchors(self, rows: pa.Table, number: np.ndarray, weights: np.ndarray) -> None:
        """This batch's best anchor candidate per pool, kept if better than the pool's."""
        candidates = pa.table({"n": number, "w": rows.column(WEIGHT),
                               "uri": rows.column(ROW_ID[0]), "row": rows.column(ROW_ID[1]),
                               "at": np.arange(rows.num_rows)}).sort_by([
            ("n", "ascending"), ("w", "descending"), ("uri", "ascending"),
            ("row", "ascending")])
        n = np.asarray(candidates.column("n"))
        first = np.concatenate([[True], n[1:] != n[:-1]])
        best = candidates.filter(pa.array(first)).to_pydict()
        for i, at, uri, row in zip(best["n"], best["at"], best["uri"], best["row"],
                                   strict=True):
            pool = self.pools[i]
            candidate = (-weights[at], uri, row)
            if pool.anchor is None or candidate < pool.anchor:
                pool.anchor = candidate

    def allocation(self) -> Allocation:
        return Allocation(self)

    def unamortized(self) -> list[tuple[PoolKey, Decimal]]:
        """Pools whose fees found no covered usage: (key, fee), for the run report."""
        return [(p.key, _amount(p.fee)) for p in sorted(self.pools, key=_sortable)
                if p.fee_rows and not p.weight]


def slice_label(key: PoolKey) -> str:
    """``gcp/<account>/<YYYY-MM>``: the slice of a pool key, as reports name slices."""
    return str(SliceKey(*key[:-1]))


def _sortable(pool: Pool) -> tuple[str, ...]:
    return tuple(str(v) for v in pool.key)


class Allocation:
    """Pass 2: the EffectiveCost of every row of the amortizable pools, checked exactly."""

    def __init__(self, totals: PoolTotals) -> None:
        self.totals = totals
        pools = totals.pools
        self.moving = np.array([bool(p.fee_rows and p.weight) for p in pools] + [False])
        self._fee = np.array([p.fee for p in pools] + [0], dtype=object)
        self._weight = np.array([p.weight or 1 for p in pools] + [1], dtype=object)
        self._anchor = pa.array([f"{p.anchor[1]}{_SEP}{p.anchor[2]}" if p.anchor else ""
                                 for p in pools] + [""], pa.string())
        handed_out = np.zeros(len(pools) + 1, dtype=object)
        for number, weights in totals._weights:
            np.add.at(handed_out, number, self._shares(number, units_of(weights)))
        self.remainders = np.where(self.moving, self._fee - handed_out, 0)
        self._before = np.zeros(len(pools) + 1, dtype=object)  # EffectiveCost of the pool rows
        self._after = np.zeros(len(pools) + 1, dtype=object)

    def __bool__(self) -> bool:
        return bool(self.moving.any())

    def _shares(self, number: np.ndarray, units: np.ndarray) -> np.ndarray:
        return self._fee[number] * units // self._weight[number]

    def _number(self, table: pa.Table) -> np.ndarray:
        """Pool number per row; the sentinel len(pools) for rows of no pool that moves."""
        sentinel = len(self.totals.pools)
        number = np.full(table.num_rows, sentinel, dtype=np.int64)
        pooled = np.flatnonzero(np.asarray(table.column(POOL).is_valid()))
        if len(pooled):
            found = self.totals.numbers
            keys = pc.dictionary_encode(_keys(table.take(pa.array(pooled))))
            mapping = np.array([found.get(k, sentinel) for k in keys.dictionary.to_pylist()],
                               dtype=np.int64)
            number[pooled] = mapping[np.asarray(keys.indices)]
        return np.where(self.moving[number], number, sentinel)

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` (staged cost rows) with EffectiveCost amortized; other rows unchanged."""
        if not self or table.column(POOL).null_count == table.num_rows:
            return table
        number = self._number(table)
        moving = number < len(self.totals.pools)
        fees, covered = moving & _is(table, "Purchase"), moving & _covered(table)
        if not (fees.any() or covered.any()):
            return table
        effective = units_of(table.column("EffectiveCost"))
        new = effective.copy()
        new[fees] = 0
        if covered.any():
            rows = table.filter(pa.array(covered))
            at = number[covered]
            shares = self._shares(at, units_of(rows.column(WEIGHT)))
            anchor = np.asarray(pc.equal(_row_ids(rows), pc.take(self._anchor, pa.array(at))))
            new[covered] = effective[covered] + shares + np.where(anchor, self.remainders[at], 0)
            self._refuse_overflow(table, covered, new)
        touched = fees | covered
        np.add.at(self._before, number[touched], effective[touched])
        np.add.at(self._after, number[touched], new[touched])
        position = table.schema.get_field_index("EffectiveCost")
        column = pc.replace_with_mask(whole(table.column(position)), pa.array(touched),
                                      decimals_of(new[touched]))
        table = table.set_column(position, table.schema.field(position), column)
        if "PricingCurrencyEffectiveCost" not in table.schema.names:
            return table  # a partial table (unit tests of the allocation alone)
        # PricingCurrencyEffectiveCost is EffectiveCost in the pricing currency: it moves too.
        table, too_large = complete_pricing_currency(table, recompute=pa.array(touched))
        if too_large:  # the amortized cost over a rate near 0: the run stops
            i = int(pc.index(too_large[0].mask, True).as_py())
            raise AmortizationError(f"{_row_named(table, i)}: its amortized EffectiveCost "
                                    f"({table.column('EffectiveCost')[i].as_py()}) over "
                                    f"the pricing-to-billing rate ({table.column(RATE)[i].as_py()})"
                                    " does not fit DECIMAL(38, 18); nothing was committed.")
        return table

    def _refuse_overflow(self, table: pa.Table, covered: np.ndarray, new: np.ndarray) -> None:
        large = np.flatnonzero(covered)[(np.abs(new[covered]) >= LIMIT).astype(bool)]
        if len(large):
            i = int(large[0])
            raise AmortizationError(
                f"{_row_named(table, i)}: its EffectiveCost plus its share of "
                f"the commitment fees ({_amount(new[i])}) does not fit DECIMAL(38, 18); "
                "nothing was committed.")

    def verify(self) -> None:
        """Every pool's EffectiveCost total is unchanged: the fees moved, nothing else."""
        for i in np.flatnonzero(self._before != self._after):
            pool = self.totals.pools[i]
            raise AmortizationError(
                f"amortizing the commitment fees of {slice_label(pool.key)} (pool "
                f"{pool.key[-1]}) changed its EffectiveCost total from {_amount(self._before[i])}"
                f" to {_amount(self._after[i])}; nothing was committed.")

    def summary(self) -> list[dict[str, Any]]:
        """Per amortized pool: the fee moved and over how many rows, for the run report."""
        return [{"slice": slice_label(p.key), "pool": p.key[-1], "fee_moved": _amount(p.fee),
                 "fee_rows": p.fee_rows, "covered_rows": p.covered_rows,
                 "covered_cost": _amount(p.weight)}
                for i, p in sorted(enumerate(self.totals.pools), key=lambda x: _sortable(x[1]))
                if self.moving[i]]


def _row_ids(table: pa.Table) -> pa.Array:
    return whole(pc.binary_join_element_wise(
        pc.cast(table.column(ROW_ID[0]), pa.string()),
        pc.cast(table.column(ROW_ID[1]), pa.string()), _SEP))
