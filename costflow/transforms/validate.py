"""Hard rules every loaded row must satisfy, read from the schema declaration.

A row that breaks one becomes a dead letter instead of a warehouse row. The rules are not a
second copy of the schema: non-null columns, allowed values and the ServiceCategory ->
ServiceSubcategory pairs all come from `costflow.schemas.focus`. Only the ordering rules
(period start before end) are written here, once.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from costflow.schemas.focus import COST_LINE_ITEMS, PERIOD_PAIRS, SERVICE_SUBCATEGORIES
from costflow.transforms.arrow_ops import fill_false, whole
from costflow.transforms.contract import RowError

_SUBCATEGORY_PAIRS = pa.array(
    [f"{cat}\x1f{sub}" for cat, subs in SERVICE_SUBCATEGORIES.items() for sub in subs]
)
_PERIODS = PERIOD_PAIRS


def hard_rule_errors(table: pa.Table) -> list[RowError]:
    """RowErrors for every hard-rule failure in a table shaped like cost_line_items."""
    errors: list[RowError] = []
    for col in COST_LINE_ITEMS:
        values = table.column(col.name)
        if not col.nullable and values.null_count:
            errors.append(RowError(_dense(pc.is_null(values)), col.name,
                                   "is empty, but the column may not be null"))
        if col.allowed_values:
            allowed = pa.array(col.allowed_values, type=values.type)
            bad = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=allowed)))
            if pc.any(bad).as_py():
                shown = ", ".join(col.allowed_values[:8])
                more = "..." if len(col.allowed_values) > 8 else ""
                errors.append(RowError(_dense(bad), col.name,
                                       f"is not an allowed value (allowed: {shown}{more})"))
    pair = pc.binary_join_element_wise(
        pc.fill_null(table.column("ServiceCategory"), ""),
        pc.fill_null(table.column("ServiceSubcategory"), ""), "\x1f")
    both = pc.and_(pc.is_valid(table.column("ServiceCategory")),
                   pc.is_valid(table.column("ServiceSubcategory")))
    bad_pair = pc.and_(both, pc.invert(pc.is_in(pair, value_set=_SUBCATEGORY_PAIRS)))
    if pc.any(bad_pair).as_py():
        errors.append(RowError(_dense(bad_pair), "ServiceSubcategory",
                               "does not belong to the row's ServiceCategory"))
    for start, end in _PERIODS:
        bad_order = pc.fill_null(pc.greater_equal(table.column(start), table.column(end)), False)
        if pc.any(bad_order).as_py():
            errors.append(RowError(_dense(bad_order), end, f"is not after {start}"))
    return errors


def _dense(mask: pa.ChunkedArray | pa.Array) -> pa.BooleanArray:
    """A RowError mask: one array, nulls False."""
    return fill_false(whole(mask))
