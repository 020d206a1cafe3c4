"""CloudCostProvider over the warehouse: one class serves aws, gcp, azure and "all".

The design document (F6 §3) puts one `CloudCostProvider` per cloud in front of each billing API.
Here every provider's bill is already one FOCUS table, so a provider is the same reader with a
provider scope (``x_SourceProvider``) and the tenant scope, both bound into every query. The
methods are ``async`` as the protocol says; the blocking warehouse call runs in a worker thread
so an MCP server keeps answering while a query runs.

Currencies are never added together: `get_costs` returns one `CostResult` when the rows in scope
are in one currency and otherwise raises `MixedCurrencyError` naming each currency's total (and
how to pick one); `get_costs_per_currency` returns one result per currency, and
`get_costs_in_currency` converts every amount to one reporting currency at query time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

import pyarrow as pa
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.models import (
    CostBreakdown,
    CostResult,
    ForecastResult,
    Recommendation,
    Resource,
    TimePeriod,
    exact,
)
from costflow.schemas.operational import RECOMMENDATION_CATEGORIES, RECOMMENDATION_STATES
from costflow.services import forecast as forecasting
from costflow.services.costs import DIMENSIONS, METRICS, costs_by_dimension
from costflow.services.rates import DEFAULT_MAX_AGE_DAYS
from costflow.services.rates_convert import ConvertedCosts, convert_costs
from costflow.services.tenancy import Tenant, check_provider, scope_params
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

DEFAULT_METRIC = "BilledCost"
# Granularity -> the time dimension it adds in front of the group-by.
GRANULARITIES: dict[str, str | None] = {"DAILY": "day", "MONTHLY": "month", "TOTAL": None}
HISTORY_DAYS = 365
RESOURCE_LIMIT = 100
RECENT_DAYS = 30


class MixedCurrencyError(ConfigError):
    """The rows in scope are billed in several currencies; one total would be meaningless."""


@runtime_checkable
class CloudCostProvider(Protocol):
    """The design document's unified interface for cloud billing data (F6 §3.1)."""

    async def get_costs(self, start_date: date, end_date: date, granularity: str = "DAILY",
                        group_by: list[str] | None = None,
                        filters: dict[str, list[str]] | None = None) -> CostResult: ...

    async def get_forecast(self, start_date: date, end_date: date,
                           granularity: str = "MONTHLY") -> ForecastResult: ...

    async def get_recommendations(self, category: str | None = None) -> list[Recommendation]: ...

    async def get_resources(self, resource_type: str | None = None) -> list[Resource]: ...


class WarehouseCostProvider:
    """`CloudCostProvider` reading the `cost_analytics` dataset under a tenant's scope.

    Args:
        warehouse: DuckDB or BigQuery warehouse.
        tenant: whose accounts may be read.
        provider: ``aws``, ``gcp``, ``azure`` or ``all``.
    """

    def __init__(self, warehouse: Warehouse, tenant: Tenant, provider: str = "all") -> None:
        if not isinstance(tenant, Tenant):
            raise ConfigError("every query runs under a Tenant; got "
                              f"{type(tenant).__name__}.")
        self.warehouse, self.tenant, self.provider = warehouse, tenant, check_provider(provider)

    # -- costs ------------------------------------------------------------------------------

    async def get_costs(self, start_date: date, end_date: date, granularity: str = "DAILY",
                        group_by: list[str] | None = None,
                        filters: dict[str, list[str]] | None = None, *,
                        metric: str = DEFAULT_METRIC, allocated: bool = False) -> CostResult:
        """Costs of [start_date, end_date) in one currency, per group and day/month.

        ``allocated`` reads the split view (Kubernetes allocations in place of the node
        charges they split; needed for the ``k8s:`` dimensions); totals are the same.

        Raises:
            MixedCurrencyError: the rows are in several currencies; filter ``currency`` or call
                `get_costs_per_currency`.
            ConfigError: unknown dimension, filter, metric or granularity; bad dates.
        """
        results = await self.get_costs_per_currency(start_date, end_date, granularity,
                                                    group_by, filters, metric=metric,
                                                    allocated=allocated)
        if len(results) > 1:
            totals = ", ".join(f"{r.currency} {exact(r.total_cost)}" for r in results)
            raise MixedCurrencyError(
                f"the costs from {start_date} to {end_date} are billed in {len(results)} "
                f"currencies ({totals}); amounts in different currencies are never added. Pick "
                "one with filters={'currency': ['USD']} (CLI: --filter currency=USD), ask "
                "for one result per currency (get_costs_per_currency) or convert them to one "
                "currency (get_costs_in_currency; CLI: --currency EUR).")
        if results:
            return results[0]
        return CostResult(self.provider, _only_currency(filters), TimePeriod(start_date, end_date),
                          Decimal(0), [], metric, granularity, list(group_by or []))

    async def get_costs_per_currency(self, start_date: date, end_date: date,
                                     granularity: str = "DAILY",
                                     group_by: list[str] | None = None,
                                     filters: dict[str, list[str]] | None = None, *,
                                     metric: str = DEFAULT_METRIC,
                                     allocated: bool = False) -> list[CostResult]:
        """One `CostResult` per billing currency (sorted by currency); ``allocated`` as in
        `get_costs`."""
        group_by = list(group_by or [])
        if granularity not in GRANULARITIES:
            raise ConfigError(f"unknown granularity {granularity!r}; allowed: "
                              f"{', '.join(GRANULARITIES)}.")
        time_dim = GRANULARITIES[granularity]
        if time_dim and time_dim in group_by or {"day", "month"} & set(group_by):
            raise ConfigError("group by day or month through granularity (DAILY, MONTHLY), "
                              "not as a dimension.")
        dims = [time_dim, *group_by] if time_dim else group_by
        table = await asyncio.to_thread(
            costs_by_dimension, self.warehouse, start_date, end_date, dims, filters, metric,
            tenant=self.tenant, provider=self.provider, usage=True, allocated=allocated)
        return _cost_results(table, self.provider, TimePeriod(start_date, end_date), metric,
                             granularity, group_by, time_dim)

    async def get_costs_in_currency(self, start_date: date, end_date: date, currency: str,
                                    group_by: list[str] | None = None,
                                    filters: dict[str, list[str]] | None = None, *,
                                    granularity: str = "TOTAL", metric: str = DEFAULT_METRIC,
                                    max_rate_age_days: int = DEFAULT_MAX_AGE_DAYS,
                                    ) -> ConvertedCosts:
        """Costs of [start_date, end_date) converted to ``currency`` at query time.

        The answer to a mix of billing currencies: each charge day's amount is converted with
        that day's rate under the policy of `costflow.services.rates`; what has no rate is
        returned as unconvertible in its own currency, and every rate used is listed.
        """
        if granularity not in GRANULARITIES:
            raise ConfigError(f"unknown granularity {granularity!r}; allowed: "
                              f"{', '.join(GRANULARITIES)}.")
        time_dim = GRANULARITIES[granularity]
        dims = [time_dim, *(group_by or [])] if time_dim else list(group_by or [])
        return await asyncio.to_thread(
            convert_costs, self.warehouse, start_date, end_date, dims, currency, filters,
            metric, tenant=self.tenant, provider=self.provider,
            max_age_days=max_rate_age_days)

    # -- forecast ---------------------------------------------------------------------------

    async def get_forecast(self, start_date: date, end_date: date,
                           granularity: str = "MONTHLY", *, metric: str = DEFAULT_METRIC,
                           currency: str | None = None,
                           confidence: float = 0.95) -> ForecastResult:
        """Forecast [start_date, end_date) from up to a year of daily history before it.

        Raises:
            ConfigError: too little history (names how much is needed), mixed currencies
                without ``currency``, a bad range or granularity.
        """
        # The window is cut at the first day a date can hold (a start in year 1).
        cut = start_date.toordinal() <= HISTORY_DAYS
        history_start = date.min if cut else start_date - timedelta(days=HISTORY_DAYS)
        filters = {"currency": [currency]} if currency else None
        per_currency: dict[str, dict[date, Decimal]] = defaultdict(dict)
        if history_start < start_date:
            table = await asyncio.to_thread(
                costs_by_dimension, self.warehouse, history_start, start_date, ["day"], filters,
                metric, tenant=self.tenant, provider=self.provider)
            for row in table.to_pylist():
                per_currency[row["BillingCurrency"]][row["day"]] = row["cost"]
        if len(per_currency) > 1:
            raise MixedCurrencyError(
                f"the history before {start_date} is billed in {len(per_currency)} currencies "
                f"({', '.join(sorted(per_currency))}); forecast one with currency='USD' "
                "(CLI: --currency USD).")
        if not per_currency:
            window = (f"before {start_date} for this tenant and provider {self.provider!r} (the "
                      f"history window starts at {date.min}, the first day a date can hold)"
                      if cut else f"in the {HISTORY_DAYS} days before {start_date} for this "
                      f"tenant and provider {self.provider!r}")
            raise ConfigError(f"not enough history to forecast: no costs {window}.")
        ((code, history),) = per_currency.items()
        points, (total, lower, upper), seen, (mae, wape) = await asyncio.to_thread(
            forecasting.forecast, history, max(history), start_date, end_date, granularity,
            confidence)
        return ForecastResult(self.provider, code, metric, TimePeriod(start_date, end_date),
                              granularity, total, lower, upper, points, confidence,
                              forecasting.MODEL, seen, forecasting.BACKTEST_DAYS, mae, wape)

    # -- recommendations and resources ------------------------------------------------------

    async def get_recommendations(self, category: str | None = None, *,
                                  states: tuple[str, ...] = ("active",),
                                  ) -> list[Recommendation]:
        """Recommendations in scope, largest estimated monthly saving first."""
        if category is not None and category not in RECOMMENDATION_CATEGORIES:
            raise ConfigError(f"unknown recommendation category {category!r}; allowed: "
                              f"{', '.join(RECOMMENDATION_CATEGORIES)}.")
        bad = [s for s in states if s not in RECOMMENDATION_STATES]
        if bad or not states:
            raise ConfigError(f"unknown recommendation state {bad[0] if bad else None!r}; "
                              f"allowed: {', '.join(RECOMMENDATION_STATES)}.")
        sql = sqlfiles.load("queries/recommendations.sql")[0].bigquery()
        params = {"category": category, "states": list(states),
                  **scope_params(self.tenant, self.provider)}
        table = await asyncio.to_thread(self.warehouse.query, sql, params)
        return [Recommendation(
            r["recommendation_id"], r["x_SourceProvider"], r["source"], r["category"],
            r["BillingAccountId"], r["SubAccountId"], r["RegionId"], r["ResourceId"],
            r["ResourceName"], r["ResourceType"], r["description"], r["current_configuration"],
            r["recommended_configuration"], r["estimated_monthly_savings"],
            r["savings_currency"], r["state"], r["priority"], r["last_refreshed_at"])
            for r in table.to_pylist()]

    async def get_resources(self, resource_type: str | None = None, *,
                            start_date: date | None = None, end_date: date | None = None,
                            metric: str = DEFAULT_METRIC,
                            limit: int = RESOURCE_LIMIT) -> list[Resource]:
        """The most expensive resources with the cost attributed to each.

        Without dates, the period is the `RECENT_DAYS` days ending with the last day that has
        charges in scope.
        """
        if resource_type is not None and not isinstance(resource_type, str):
            raise ConfigError(f"resource type must be text, got {resource_type!r}.")
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}.")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ConfigError(f"limit {limit!r} must be a whole number from 1 to 10000.")
        scope = scope_params(self.tenant, self.provider)
        if start_date is None or end_date is None:
            if start_date is not None or end_date is not None:
                raise ConfigError("give both start and end dates, or neither (the last "
                                  f"{RECENT_DAYS} days with charges).")
            latest = await asyncio.to_thread(
                self.warehouse.query, sqlfiles.load("queries/latest_charge.sql")[0].bigquery(),
                scope)
            last = latest.column("latest_day")[0].as_py() if latest.num_rows else None
            if last is None:
                return []
            if last == date.max:
                raise ConfigError(
                    f"the latest charge in scope is dated {last}, the last day a date can hold, "
                    f"so the {RECENT_DAYS} days ending with it are not a [start, end) period; "
                    "that row's ChargePeriodStart is almost certainly wrong in the source. Give "
                    "the period explicitly (--start/--end; MCP: start_date/end_date).")
            end_date = last + timedelta(days=1)
            start_date = date.fromordinal(max(1, end_date.toordinal() - RECENT_DAYS))
        _check_range(start_date, end_date)
        period = TimePeriod(start_date, end_date)
        sql = _with_metric(sqlfiles.load("queries/resources.sql")[0].expression, metric)
        params = {"start": start_date, "end": end_date, "resource_type": resource_type,
                  "limit": limit, **scope}
        table = await asyncio.to_thread(self.warehouse.query, sql, params)
        return [Resource(r["ResourceId"], r["ResourceName"], r["ResourceType"],
                         r["x_SourceProvider"], r["ServiceName"], r["SubAccountId"],
                         r["RegionId"], r["BillingCurrency"], r["cost"], r["rows"], period)
                for r in table.to_pylist()]


def _check_range(start: date, end: date) -> None:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}.")
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")


def _with_metric(template: exp.Expr, metric: str) -> str:
    """resources.sql with the chosen (allow-listed) metric summed as ``cost``."""
    query = template.copy()
    (cost,) = [e for e in query.find_all(exp.Alias) if e.alias == "cost"
               and isinstance(e.this, exp.Sum)]
    cost.this.set("this", exp.column(exp.to_identifier(metric, quoted=True)))
    return query.sql(dialect="bigquery", comments=False)


def _only_currency(filters: dict[str, list[str]] | None) -> str:
    values = (filters or {}).get("currency") or []
    return values[0] if len(values) == 1 else ""


def _cost_results(table: pa.Table, provider: str, period: TimePeriod, metric: str,
                  granularity: str, group_by: list[str],
                  time_dim: str | None) -> list[CostResult]:
    by_currency: dict[str, list[CostBreakdown]] = defaultdict(list)
    for row in table.to_pylist():
        values = {name: row[name] for name in group_by}
        when = row[time_dim] if time_dim else None
        by_currency[row["BillingCurrency"]].append(CostBreakdown(
            dimension=",".join(group_by),
            value=" / ".join("(none)" if v is None else str(v) for v in values.values()),
            cost=row["cost"], usage_quantity=row["usage_quantity"],
            usage_unit=row["usage_unit"], values=values,
            period=_period_of(when, granularity, period) if when else None, rows=row["rows"]))
    return [CostResult(provider, code, period, sum((b.cost for b in rows), Decimal(0)), rows,
                       metric, granularity, list(group_by))
            for code, rows in sorted(by_currency.items())]


def _period_of(day: date, granularity: str, bounds: TimePeriod) -> TimePeriod:
    if granularity == "DAILY":
        return TimePeriod(day, day + timedelta(days=1))  # day < bounds.end <= date.max
    month_end = forecasting.next_month(day) or bounds.end  # December 9999 has no next month
    return TimePeriod(max(day, bounds.start), min(month_end, bounds.end))


def dimension_names() -> list[str]:
    """Group-by names users may pass (``tag:<key>`` besides these)."""
    return [d for d in DIMENSIONS if d not in ("day", "month")]

