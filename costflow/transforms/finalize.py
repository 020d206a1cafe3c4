"""Turn a normalizer's answer into warehouse rows, dead letters and per-slice totals.

Shared by every provider, so no normalizer repeats it: conform the mapped columns to the schema,
complete the PricingCurrency columns (`costflow.transforms.pricing_currency`), apply the hard
rules, split failing rows off as dead letters (with every reason, the source location and the
raw record), stamp lineage, and count per slice what was read, loaded and dead-lettered, with
the source's invoice basis beside the BilledCost loaded. A slice's provider is the row's
``x_SourceProvider``: the file's provider, or each row's own when the normalizer gives them
(`Mapped.providers`: a FOCUS file holding several providers' rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from costflow.reconcile import ZERO, SliceKey, SliceStats
from costflow.schemas.focus import COST_LINE_ITEMS, PERIOD_PAIRS
from costflow.schemas.operational import DEAD_LETTERS
from costflow.schemas.render import ARROW_TYPES, arrow_schema
from costflow.transforms.arrow_ops import add_flags, whole
from costflow.transforms.contract import BatchContext, Mapped, RowError
from costflow.transforms.duplicates import (
    DUPLICATE_COLUMN,
    DUPLICATE_FLAG,
    KEY_HASH_COLUMN,
    KEY_TEXT_COLUMN,
    READER_COLUMNS,
)
from costflow.transforms.lineage import lineage_arrays
from costflow.transforms.pricing_currency import complete_pricing_currency
from costflow.transforms.validate import hard_rule_errors

ROW_SCHEMA = arrow_schema(COST_LINE_ITEMS)
DEAD_LETTER_SCHEMA = arrow_schema(DEAD_LETTERS)
_LINEAGE = {c.name for c in COST_LINE_ITEMS if c.name.startswith("x_Source")} | {
    "x_RunId", "x_IngestedAt"}


@dataclass
class Finalized:
    rows: pa.Table          # ROW_SCHEMA
    dead_letters: pa.Table  # DEAD_LETTER_SCHEMA
    slices: dict[SliceKey, SliceStats]
    # For formats with a line-item id: each row's key, aligned with ``rows`` (KEY_HASH_COLUMN,
    # null where the row has no id, and KEY_TEXT_COLUMN); None for formats without one.
    line_items: pa.Table | None = None


def finalize(batch: pa.RecordBatch, mapped: Mapped, ctx: BatchContext) -> Finalized:
    n = batch.num_rows
    # A converted amount too large for the schema is a dead letter, not a failed run.
    table, too_large = complete_pricing_currency(_conform(mapped, ctx, n))
    table = _flag_suspect_rows(table, batch)
    line_items = None
    if KEY_HASH_COLUMN in batch.schema.names:
        line_items = pa.table({name: batch.column(name)
                               for name in (KEY_HASH_COLUMN, KEY_TEXT_COLUMN)})
    marks = [name for name in READER_COLUMNS if name in batch.schema.names]
    if marks:  # the reader's marks, not source columns
        batch = batch.drop_columns(marks)
    errors = list(mapped.errors) + too_large + hard_rule_errors(table)
    failed = _any(errors, n)
    good = pc.invert(failed)
    # Every row left satisfies the declared nullability, so it takes the strict schema. A
    # batch without a failed row (nearly all) is taken whole: filtering copies every column.
    kept = table.filter(good) if errors and pc.any(failed).as_py() else table
    rows = pa.Table.from_arrays(kept.columns, schema=ROW_SCHEMA)
    dead = _dead_letters(batch, table, mapped.source_basis, errors, failed)
    slices = _slice_stats(table, mapped.source_basis, good)
    if line_items is not None and rows.num_rows < n:
        line_items = line_items.filter(good)
    return Finalized(rows=rows, dead_letters=dead, slices=slices, line_items=line_items)


def _conform(mapped: Mapped, ctx: BatchContext, n: int) -> pa.Table:
    """A table with every cost_line_items column in order, typed as declared."""
    unknown = set(mapped.columns) - set(ROW_SCHEMA.names)
    if unknown:
        raise ValueError(f"normalizer produced undeclared columns: {sorted(unknown)}")
    lineage = lineage_arrays(ctx, n)
    if mapped.providers is not None:  # a file of several providers: each row's own
        lineage["x_SourceProvider"] = whole(mapped.providers)
    arrays = []
    for field in ROW_SCHEMA:
        if field.name in lineage:
            arrays.append(lineage[field.name])
            continue
        values = mapped.columns.get(field.name)
        if values is None:
            values = pa.nulls(n, type=field.type)
        elif len(values) != n:
            raise ValueError(f"normalizer column {field.name} has {len(values)} rows, batch {n}")
        elif values.type != field.type:
            raise TypeError(f"normalizer column {field.name} is {values.type}, "
                            f"declared {field.type}")
        arrays.append(values)
    # Nullable while checking: the hard rules turn null violations into dead letters.
    return pa.Table.from_arrays(arrays, schema=_NULLABLE_SCHEMA)


_NULLABLE_SCHEMA = pa.schema([f.with_nullable(True) for f in ROW_SCHEMA])
FLAGS = "x_DataQualityFlags"
# The [start, end) pairs of the schema (costflow.schemas.focus.PERIOD_PAIRS).
(_CHARGE_START, _CHARGE_END), (_BILLING_START, _BILLING_END) = PERIOD_PAIRS
OUTSIDE_BILLING_PERIOD = f"{_CHARGE_START}:outside_billing_period"
NOT_ONE_MONTH = "BillingPeriod:not_one_month"
CORRECTION = "Correction"  # ChargeClass of a row correcting an earlier period (FOCUS 1.2)


def _flag_suspect_rows(table: pa.Table, batch: pa.RecordBatch) -> pa.Table:
    """Rows loaded as they are but flagged in x_DataQualityFlags (the slice gate warns):

    * ``LineItemId:duplicate``: the reader saw the row's line-item id earlier in the file
      (`costflow.transforms.duplicates`; the commit adds it where the id was in another file of
      the slice, `costflow.pipelines.cross_file`);
    * ``ChargePeriodStart:outside_billing_period``: the charge starts before its billing period
      or at/after its end (a charge dated 1970 or 9999 in a 2023-11 bill), unless it is a
      Correction, which may date from an earlier period;
    * ``BillingPeriod:not_one_month``: the billing period is not one month long (end = start +
      one month, same day and time; a start after the 28th may end on the 28th or later).
    """
    flags: dict[str, pa.Array] = {}
    if DUPLICATE_COLUMN in batch.schema.names:
        flags[DUPLICATE_FLAG] = batch.column(DUPLICATE_COLUMN)
    charge = whole(table.column(_CHARGE_START))
    start, end = whole(table.column(_BILLING_START)), whole(table.column(_BILLING_END))
    outside = pc.or_(pc.less(charge, start), pc.greater_equal(charge, end))
    correction = pc.equal(whole(table.column("ChargeClass")), CORRECTION)
    flags[OUTSIDE_BILLING_PERIOD] = pc.and_(pc.fill_null(outside, False),
                                            pc.invert(pc.fill_null(correction, False)))
    flags[NOT_ONE_MONTH] = pc.invert(pc.fill_null(_one_month(start, end), True))
    if not any(pc.any(mask).as_py() for mask in flags.values()):
        return table
    index = table.schema.get_field_index(FLAGS)
    return table.set_column(index, table.schema.field(index),
                            add_flags(whole(table.column(FLAGS)), flags))


def _one_month(start: pa.Array, end: pa.Array) -> pa.Array:
    """Whether each [start, end) is one calendar month (null where either is null)."""
    months = pc.subtract(pc.add(pc.multiply(pc.year(end), 12), pc.month(end)),
                         pc.add(pc.multiply(pc.year(start), 12), pc.month(start)))
    start_day, end_day = pc.day(start), pc.day(end)
    same_day = pc.or_(pc.equal(start_day, end_day),
                      pc.and_(pc.greater(start_day, 28), pc.greater_equal(end_day, 28)))
    same_time = pc.equal(pc.subtract(start, pc.floor_temporal(start, unit="day")),
                         pc.subtract(end, pc.floor_temporal(end, unit="day")))
    return pc.and_(pc.and_(pc.equal(months, 1), same_day), same_time)


def _any(errors: list[RowError], n: int) -> pa.BooleanArray:
    failed = pa.repeat(pa.scalar(False), n)
    for error in errors:
        failed = pc.or_(failed, pc.fill_null(error.mask, False))
    return failed


def _dead_letters(batch: pa.RecordBatch, table: pa.Table, basis: pa.Array,
                  errors: list[RowError], failed: pa.BooleanArray) -> pa.Table:
    if not pc.any(failed).as_py():
        return DEAD_LETTER_SCHEMA.empty_table()
    positions = pc.indices_nonzero(failed)
    # Per-row Python is fine here: dead letters are the rare rows.
    reasons: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        for pos in pc.indices_nonzero(pc.fill_null(error.mask, False)).to_pylist():
            reasons.setdefault(pos, []).append((error.column, error.reason))
    raw_rows = batch.take(positions).to_pylist()
    picked = table.take(positions)
    columns = {name: picked.column(name) for name in _LINEAGE}
    columns["BillingAccountId"] = picked.column("BillingAccountId")
    columns["BillingPeriodStart"] = picked.column("BillingPeriodStart")
    ordered = [reasons[p] for p in positions.to_pylist()]
    columns["ErrorColumn"] = pa.array([r[0][0] for r in ordered], type=pa.string())
    columns["ErrorReason"] = pa.array(
        ["; ".join(f"{col} {why}" for col, why in r) for r in ordered], type=pa.string())
    columns["SourceCost"] = basis.take(positions)
    columns["RawRecord"] = pa.array(
        [json.dumps(_jsonable(raw), ensure_ascii=False, default=str) for raw in raw_rows],
        type=pa.string())
    return pa.Table.from_arrays([_chunk(columns[f.name], f.type) for f in DEAD_LETTER_SCHEMA],
                                schema=DEAD_LETTER_SCHEMA)


def _chunk(values: pa.Array | pa.ChunkedArray, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], type=type_)
    return values


def _jsonable(record: dict[str, object]) -> dict[str, object]:
    # Nested records (dicts, lists) stay JSON; leaves JSON cannot hold become text.
    return {k: (v if v is None or isinstance(v, (str, int, float, bool, dict, list)) else str(v))
            for k, v in record.items()}


def _slice_stats(table: pa.Table, basis: pa.Array,
                 good: pa.BooleanArray) -> dict[SliceKey, SliceStats]:
    money = ARROW_TYPES[COST_LINE_ITEMS.column("BilledCost").type]
    zero = pa.scalar(Decimal(0), type=money)
    loaded = pc.cast(good, pa.int64())
    dead = pc.cast(pc.invert(good), pa.int64())
    billed = pc.if_else(good, pc.fill_null(table.column("BilledCost"), zero), zero)
    dead_cost = pc.if_else(good, zero, pc.fill_null(basis, zero))
    keyed = pa.table({
        "provider": table.column("x_SourceProvider"),  # the file's, or each row's (Mapped)
        "account": table.column("BillingAccountId"),
        "period": table.column("BillingPeriodStart"),
        "basis": pc.fill_null(basis, zero),
        "basis_null": pc.cast(pc.is_null(basis), pa.int64()),
        "loaded": loaded, "dead": dead, "billed": billed, "dead_cost": dead_cost,
        "currency": table.column("BillingCurrency"),
    })
    grouped = keyed.group_by(["provider", "account", "period"], use_threads=False).aggregate([
        ("loaded", "count"), ("loaded", "sum"), ("dead", "sum"), ("basis", "sum"),
        ("basis_null", "sum"), ("billed", "sum"), ("dead_cost", "sum"),
        ("currency", "distinct", pc.CountOptions(mode="only_valid")),
    ])
    out: dict[SliceKey, SliceStats] = {}
    for g in grouped.to_pylist():
        key = SliceKey(g["provider"], g["account"], g["period"])
        out[key] = SliceStats(
            rows_read=g["loaded_count"], rows_loaded=g["loaded_sum"],
            rows_dead_lettered=g["dead_sum"], source_basis=g["basis_sum"] or ZERO,
            billed_cost=g["billed_sum"] or ZERO, dead_lettered_cost=g["dead_cost_sum"] or ZERO,
            rows_basis_unparseable=g["basis_null_sum"],
            currencies=frozenset(g["currency_distinct"]))
    return out
