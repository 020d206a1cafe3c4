"""The PricingCurrency columns, completed the same way for every provider.

Why this module exists: FOCUS 1.2 makes PricingCurrency and PricingCurrencyEffectiveCost
non-nullable wherever the columns are present (validator rules PricingCurrency-C-004-M and
PricingCurrencyEffectiveCost-C-003-M), and they are present because every cloud we read can
price and bill in different currencies. The normalizers state what their source says: the
pricing currency where it differs from the billing currency, and `x_PricingToBillingRate`
(billing-currency units per pricing-currency unit) where the source carries one (GCP
``currency_conversion_rate``, Azure ``ExchangeRatePricingToBilling``). This step fills the rest,
once, after every normalizer and again after commitment amortization has moved EffectiveCost:

* PricingCurrency = BillingCurrency where the source names no other currency;
* on those rows the PricingCurrency* amounts equal their billing-currency columns (rate 1, exact);
* where the currencies differ and the rate is known, amount / rate, rounded half-even to the
  schema's 18 decimal places (the one inexact step, and only on converted rows);
* where they differ and the rate is unknown (an AWS CUR with pricing/currency set), the amounts
  stay null: never guessed;
* a quotient DECIMAL(38, 18) cannot hold (a rate near 0 against a large amount) is a row error
  on that column, returned beside the table: `finalize` dead-letters the row with the reason,
  amortization refuses the run naming the row.

Division runs only on the converted rows, in exact integers, once per distinct (amount, rate);
the common case (same currency) is columnar.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import DECIMAL, fill_false, whole
from costflow.transforms.contract import RowError
from costflow.transforms.decimal_units import LIMIT, decimals_of, divide_half_even, units_of
from costflow.transforms.distinct_rows import once_per_distinct_row

RATE = "x_PricingToBillingRate"
# PricingCurrency column -> the billing-currency column it is the equivalent of.
AMOUNTS = {
    "PricingCurrencyEffectiveCost": "EffectiveCost",
    "PricingCurrencyListUnitPrice": "ListUnitPrice",
    "PricingCurrencyContractedUnitPrice": "ContractedUnitPrice",
}


def complete_pricing_currency(table: pa.Table, recompute: pa.Array | None = None
                              ) -> tuple[pa.Table, list[RowError]]:
    """``table`` (cost_line_items columns) with the PricingCurrency columns completed, and a
    RowError per column where a converted amount does not fit DECIMAL(38, 18) (left null there).

    ``recompute`` (boolean mask): rows whose billing-currency amounts changed since the
    PricingCurrency amounts were set (amortization); their amounts are derived again.
    """
    if table.num_rows == 0:
        return table, []
    billing = table.column("BillingCurrency")
    currency = pc.coalesce(table.column("PricingCurrency"), billing)
    same = fill_false(pc.equal(currency, billing))
    rate = table.column(RATE)
    rate = pc.if_else(same, pa.scalar(Decimal(1), rate.type), rate)
    table = _set(table, "PricingCurrency", currency)
    table = _set(table, RATE, rate)
    converted = pc.and_(pc.invert(same), pc.is_valid(rate))
    errors: list[RowError] = []
    for target, source in AMOUNTS.items():
        current = table.column(target)
        if recompute is not None:
            current = pc.if_else(recompute, pa.scalar(None, current.type), current)
        amount = table.column(source)
        derived = pc.if_else(same, amount, pa.scalar(None, amount.type))
        # Only rows without a value need one (after amortization: the rows it moved).
        wanted = fill_false(pc.and_(pc.and_(converted, pc.is_valid(amount)),
                                    pc.is_null(current)))
        if pc.any(wanted).as_py():
            derived, too_large = _convert(amount, rate, wanted, derived)
            if too_large is not None:
                errors.append(RowError(too_large, target, (
                    f"is {source} / {RATE}, a value DECIMAL(38, 18) cannot hold (a "
                    "pricing-to-billing rate near 0 against a large amount?)")))
        table = _set(table, target, pc.coalesce(current, derived))
    return table, errors


def _convert(amount: pa.ChunkedArray, rate: pa.ChunkedArray, wanted: pa.ChunkedArray,
             derived: pa.ChunkedArray) -> tuple[pa.Array, pa.BooleanArray | None]:
    """``derived`` with amount / rate filled on the ``wanted`` rows (currencies differ, an
    amount and a rate known, no value yet), and the mask of rows whose quotient does not fit
    (None when every one fits).

    Only those rows are divided, exactly in integers of 1e-18 (`decimal_units`), once per
    distinct (amount, rate) pair: a SKU's unit price under the day's rate repeats on every row.
    """
    todo = fill_false(pc.and_(wanted, pc.not_equal(rate, pa.scalar(Decimal(0), rate.type))))
    positions = pc.indices_nonzero(todo)
    quotients = once_per_distinct_row(
        [pc.take(amount, positions), pc.take(rate, positions)], _divide)
    filled = pc.replace_with_mask(whole(derived), whole(todo), pc.cast(quotients, amount.type))
    if not quotients.null_count:
        return filled, None
    too_large = np.zeros(len(todo), dtype=bool)
    too_large[np.asarray(pc.filter(positions, pc.is_null(quotients)))] = True
    return filled, pa.array(too_large)


def _divide(pair: list[pa.Array]) -> pa.Array:
    """amount / rate, rounded half-even at the 18th place; null where the quotient does not
    fit DECIMAL(38, 18)."""
    amounts, rates = pair
    quotients = divide_half_even(units_of(amounts), units_of(rates))
    too_large = (np.abs(quotients) >= LIMIT).astype(bool)
    if not too_large.any():
        return decimals_of(quotients)
    return pc.if_else(pa.array(too_large), pa.scalar(None, DECIMAL),
                      decimals_of(np.where(too_large, 0, quotients)))


def _set(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), values)
