"""Costs in one reporting currency, converted at query time, exactly, with what could not be.

The warehouse sums the metric per requested group, charge day (``DATE(ChargePeriodStart)``) and
billing currency (`costflow.services.costs`, unchanged: amounts in different currencies are never
added in SQL). Each day's sum is then multiplied by the rate `RateBook.lookup` picks for that
currency and day (the policy is in `costflow.services.rates`) and the products are added per
group, in exact decimal arithmetic. A group's amount in a currency on a day without a usable
rate is not converted: it is returned in `ConvertedCosts.unconvertible` with its amount, its
currency and the days lacking a rate — never dropped, never converted with a guessed rate. Every
rate applied is listed in `ConvertedCosts.rates` (pair, rate, its date, source, how derived).

    converted = convert_costs(wh, date(2026, 10, 1), date(2026, 11, 1), ["provider"], "EUR")
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from costflow.services.costs import costs_by_dimension
from costflow.services.rates import (
    DEFAULT_MAX_AGE_DAYS,
    EXACT,
    AppliedRate,
    RateBook,
    check_currency,
    read_rate_book,
)
from costflow.services.tenancy import ALL_PROVIDERS, Tenant
from costflow.warehouse.base import Warehouse


@dataclass(frozen=True)
class Unconvertible:
    """A group's amount in one billing currency that had no rate on some of its days."""

    values: dict[str, Any]
    currency: str
    cost: Decimal
    rows: int
    days_without_rate: list[date]


@dataclass(frozen=True)
class ConvertedCosts:
    """Costs of a period in ``currency``.

    Attributes:
        currency: the reporting currency.
        group_by: the dimensions asked for (the keys of each row's values).
        rows: per group: the dimension values, ``currency``, ``cost`` (exact) and ``rows``.
        total: sum of the converted costs (exact).
        unconvertible: what had no rate, in its own currency (not in ``total``).
        rates: every rate applied (identity conversions are not listed).
        max_age_days: how many days before the charge day a rate could come from.
    """

    currency: str
    group_by: list[str]
    rows: list[dict[str, Any]]
    total: Decimal
    unconvertible: list[Unconvertible] = field(default_factory=list)
    rates: list[AppliedRate] = field(default_factory=list)
    max_age_days: int = DEFAULT_MAX_AGE_DAYS


def convert_costs(warehouse: Warehouse, start: date, end: date, group_by: list[str],
                  currency: str, filters: dict[str, list[str]] | None = None,
                  metric: str = "BilledCost", *, tenant: Tenant | None = None,
                  provider: str = ALL_PROVIDERS,
                  max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> ConvertedCosts:
    """Sum ``metric`` over [start, end) per ``group_by`` in ``currency`` (see module docstring).

    ``group_by`` takes what `costs_by_dimension` takes, ``day`` and ``month`` included.

    Raises:
        ConfigError: a bad currency, max age, dimension, metric or range; no exchange_rates
            table when some amount needs a rate.
    """
    target = check_currency(currency, "reporting currency")
    RateBook([], max_age_days)  # validate before querying
    by_day = ["day" if g == "month" else g for g in group_by]
    query_dims = by_day if "day" in by_day else ["day", *by_day]
    table = costs_by_dimension(warehouse, start, end, query_dims, filters, metric,
                               tenant=tenant, provider=provider)
    found = table.to_pylist()
    currencies = {r["BillingCurrency"] for r in found}
    book = RateBook([], max_age_days)
    if currencies - {target}:
        book = read_rate_book(warehouse, currencies | {target}, start, end, max_age_days)

    sums: dict[tuple, list] = {}
    missing: dict[tuple, list] = {}
    used: set[AppliedRate] = set()
    for row in found:
        values = {g: (row["day"].replace(day=1) if g == "month" else row[g]) for g in group_by}
        key = tuple(values.values())
        code, cost = row["BillingCurrency"], row["cost"]
        applied = book.lookup(code, target, row["day"])
        if applied is None:
            entry = missing.setdefault((key, code), [values, Decimal(0), 0, set()])
            entry[1] = EXACT.add(entry[1], cost)
            entry[2] += row["rows"]
            entry[3].add(row["day"])
            continue
        if applied.how != "identity":
            used.add(applied)
        entry = sums.setdefault(key, [values, Decimal(0), 0])
        entry[1] = EXACT.add(entry[1], EXACT.multiply(cost, applied.rate))
        entry[2] += row["rows"]

    rows = [{**values, "currency": target, "cost": cost, "rows": count}
            for key, (values, cost, count) in sorted(sums.items(), key=lambda kv: _order(kv[0]))]
    total = Decimal(0)
    for row in rows:
        total = EXACT.add(total, row["cost"])
    unconvertible = [Unconvertible(values, code, cost, count, sorted(days))
                     for (key, code), (values, cost, count, days)
                     in sorted(missing.items(), key=lambda kv: (_order(kv[0][0]), kv[0][1]))]
    rates = sorted(used, key=lambda r: (r.from_currency, r.to_currency, r.rate_date or date.min,
                                        r.source))
    return ConvertedCosts(target, list(group_by), rows, total, unconvertible, rates, max_age_days)


def _order(key: tuple) -> tuple:
    """Sort key of group values: nulls first, as the SQL orders them."""
    return tuple((value is not None, value if value is not None else "") for value in key)


def summary_lines(result: ConvertedCosts) -> list[str]:
    """What a person reads under the table: the rates used and what could not be converted."""
    from costflow.text import exact, money

    lines = [f"total {money(result.total, result.currency)} {result.currency} (exact "
             f"{exact(result.total)}; amounts are rounded only here)"]
    grouped: dict[tuple[str, str, str, str], list[AppliedRate]] = defaultdict(list)
    for rate in result.rates:
        grouped[(rate.from_currency, rate.to_currency, rate.source, rate.how)].append(rate)
    for (src, dst, source, how), rates in sorted(grouped.items()):
        days = sorted({r.rate_date for r in rates if r.rate_date})
        distinct = sorted({r.rate for r in rates})
        shown = exact(distinct[0]) if len(distinct) == 1 else \
            f"{exact(distinct[0])} to {exact(distinct[-1])}"
        lines.append(f"rates {src}->{dst}: {shown} ({how}, source {source}, rate dates "
                     f"{days[0]} to {days[-1]}, {len(days)} day(s))")
    for item in result.unconvertible:
        where = ", ".join(f"{k}={v}" for k, v in item.values.items()) or "all"
        days = item.days_without_rate
        lines.append(f"UNCONVERTIBLE {where}: {exact(item.cost)} {item.currency} ({item.rows} "
                     f"rows; no {item.currency}->{result.currency} rate within "
                     f"{result.max_age_days} days before {days[0]}"
                     + (f" and {len(days) - 1} more day(s) to {days[-1]}" if len(days) > 1
                        else "") + ")")
    return lines
