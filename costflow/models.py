"""The result types of the query services: the design document's CostResult family, extended.

F6 §3 declares `CostResult`, `CostBreakdown` and `TimePeriod`; users also need to know which
cost metric was summed, which day or month a breakdown row belongs to and all of its dimension
values when grouping by several. Those are added as fields; the documented ones keep their names
and meaning. Money is `Decimal`; so is usage quantity (FOCUS ConsumedQuantity is exact decimal,
where the design document wrote float). `to_json` gives plain JSON (decimals as exact strings)
for the CLI and the MCP server.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from costflow.text import exact


@dataclass(frozen=True)
class TimePeriod:
    """A half-open date range [start, end)."""

    start: date
    end: date


@dataclass(frozen=True)
class CostBreakdown:
    """Cost of one combination of dimension values (and one day/month with a granularity).

    Attributes:
        dimension: the group-by names joined by commas (``service,region``).
        value: the values joined by `` / `` (None shown as ``(none)``).
        cost: sum of the chosen metric, in the result's currency.
        usage_quantity: sum of ConsumedQuantity when all rows share one unit, else None.
        usage_unit: that unit, else None.
        values: dimension name -> value (None when the rows have none).
        period: the day or month of this row; None for granularity TOTAL.
        rows: how many line items were added up.
    """

    dimension: str
    value: str
    cost: Decimal
    usage_quantity: Decimal | None
    usage_unit: str | None
    values: dict[str, Any] = field(default_factory=dict)
    period: TimePeriod | None = None
    rows: int = 0


@dataclass(frozen=True)
class CostResult:
    """Costs in one currency over one period, and their breakdown.

    Attributes:
        provider: ``aws``, ``gcp``, ``azure`` or ``all``.
        currency: ISO 4217 currency of every amount here (never a mix).
        time_period: the requested [start, end).
        total_cost: sum of every breakdown row's cost.
        breakdown: one row per dimension values (and period), ordered.
        metric: the FOCUS column summed (BilledCost by default).
        granularity: DAILY, MONTHLY or TOTAL.
        group_by: the dimension names asked for.
    """

    provider: str
    currency: str
    time_period: TimePeriod
    total_cost: Decimal
    breakdown: list[CostBreakdown]
    metric: str = "BilledCost"
    granularity: str = "DAILY"
    group_by: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ForecastPoint:
    """Forecast of one day or month: expected cost and its prediction interval."""

    period: TimePeriod
    cost: Decimal
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True)
class ForecastResult:
    """A cost forecast with its prediction interval and how well the model did in a backtest.

    Amounts are estimates rounded to the currency's cents, not ledger amounts.

    Attributes:
        provider: ``aws``, ``gcp``, ``azure`` or ``all``.
        currency: the one currency forecast.
        time_period: the forecast [start, end).
        total_cost / total_lower / total_upper: the whole period and its interval.
        points: per day (DAILY) or month (MONTHLY).
        confidence: e.g. 0.95 for a 95 % prediction interval.
        model: what was fitted.
        history: the days of history the model saw.
        backtest_days: days held out for the backtest.
        backtest_mae: mean absolute error per day on the held-out days.
        backtest_wape: sum|actual - forecast| / sum|actual| on the held-out days.
    """

    provider: str
    currency: str
    metric: str
    time_period: TimePeriod
    granularity: str
    total_cost: Decimal
    total_lower: Decimal
    total_upper: Decimal
    points: list[ForecastPoint]
    confidence: float
    model: str
    history: TimePeriod
    backtest_days: int
    backtest_mae: Decimal
    backtest_wape: Decimal | None


@dataclass(frozen=True)
class Recommendation:
    """One row of the provider-neutral recommendations table."""

    recommendation_id: str
    provider: str
    source: str
    category: str
    billing_account_id: str | None
    sub_account_id: str | None
    region_id: str | None
    resource_id: str | None
    resource_name: str | None
    resource_type: str | None
    description: str
    current_configuration: str | None
    recommended_configuration: str | None
    estimated_monthly_savings: Decimal | None
    savings_currency: str | None
    state: str
    priority: str | None
    last_refreshed_at: datetime | None


@dataclass(frozen=True)
class Resource:
    """One resource and the cost attributed to it over a period (one currency per row)."""

    resource_id: str
    resource_name: str | None
    resource_type: str | None
    provider: str
    service: str | None
    sub_account_id: str | None
    region_id: str | None
    currency: str
    cost: Decimal
    rows: int
    time_period: TimePeriod


def to_json(value: Any) -> Any:
    """Plain JSON data: dataclasses as dicts, Decimals as exact strings, dates as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return exact(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


