"""Budgets against the warehouse: actual cost of the period so far, the forecast for the rest,
and which thresholds that crosses.

Why this module exists: "are we going to blow the budget?" is a question about one scope, one
currency and one calendar period, asked after every sync and by `costflow budgets check`. Both
ask it here, so there is one rule for what counts:

* **actual**: the exact sum of the budget's metric (BilledCost by default) over the charges of
  the period [start, end) that are in the budget's scope (its filters, the tenant's accounts)
  and billed in the budget's currency (rows in other currencies are not converted; they are
  counted and reported as ``other_currency_rows``);
* **forecast**: the existing forecast service (`costflow.services.forecast`, ETS with a weekly
  season) fitted on up to a year of daily history of the same scope, for the days after the
  last day with charges up to the period's end; ``projected`` = actual + forecast. With too
  little history the forecast is left out and the reason is given (the actual thresholds are
  still checked);
* **thresholds**: ``actual-<p>`` is crossed when actual >= p % of the amount (exact decimal
  comparison); ``forecast-100`` when the projection exceeds the amount while the actual has
  not reached it yet.

`check_budgets` evaluates every budget of the tenants given and hands the crossings to
`costflow.services.alerts`, which sends each (budget, threshold, period) once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError
from costflow.services import forecast as forecasting
from costflow.services.costs import costs_by_dimension
from costflow.services.tenancy import Tenant
from costflow.text import exact, money, render_display
from costflow.warehouse.base import Warehouse

if TYPE_CHECKING:
    from costflow.config import TenantConfig
    from costflow.config.budgets import Budget
    from costflow.metadata import MetadataStore
    from costflow.services.alerts import Delivery

HISTORY_DAYS = 365
FORECAST_THRESHOLD = 100


@dataclass(frozen=True)
class Crossing:
    """A threshold a budget has crossed in one period (``actual-80``, ``forecast-100``)."""

    kind: str      # "actual" or "forecast"
    percent: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.percent}"


@dataclass
class BudgetStatus:
    """One budget in its current period."""

    tenant: str
    budget: Budget
    period_start: date
    period_end: date
    as_of: date
    actual: Decimal
    rows: int
    last_day: date | None
    other_currency_rows: int = 0
    forecast_rest: Decimal | None = None
    forecast_upper: Decimal | None = None
    forecast_note: str | None = None
    crossed: list[Crossing] = field(default_factory=list)
    daily: dict[date, Decimal] = field(default_factory=dict)

    @property
    def projected(self) -> Decimal | None:
        return None if self.forecast_rest is None else self.actual + self.forecast_rest

    @property
    def used_percent(self) -> Decimal:
        """Actual as a percentage of the amount (exact; rounded only when shown)."""
        return self.actual * 100 / self.budget.amount

    def as_json(self) -> dict[str, Any]:
        b = self.budget
        return {
            "tenant": self.tenant, "budget": b.name, "amount": exact(b.amount),
            "currency": b.currency, "metric": b.metric, "period": b.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(), "as_of": self.as_of.isoformat(),
            "scope": {k: list(v) for k, v in b.scope.items()},
            "actual": exact(self.actual), "rows": self.rows,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "used_percent": exact(self.used_percent.quantize(Decimal("0.01"))),
            "forecast_rest": None if self.forecast_rest is None else exact(self.forecast_rest),
            "forecast_upper": None if self.forecast_upper is None
            else exact(self.forecast_upper),
            "projected": None if self.projected is None else exact(self.projected),
            "forecast_note": self.forecast_note,
            "other_currency_rows": self.other_currency_rows,
            "thresholds": list(b.thresholds), "forecast_breach_checked": b.forecast,
            "crossed": [c.name for c in self.crossed]}


@dataclass
class BudgetCheck:
    """What one check found and, when alerts were delivered, what happened to each."""

    statuses: list[BudgetStatus]
    deliveries: list[Delivery] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def crossed(self) -> bool:
        return any(s.crossed for s in self.statuses)

    @property
    def failed_deliveries(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]

    @property
    def exit_status(self) -> int:
        """0: no threshold crossed; 1: a threshold is crossed; 3: an alert could not be sent."""
        if self.failed_deliveries:
            return 3
        return 1 if self.crossed else 0


def tenant_scope(tenant: TenantConfig) -> Tenant:
    """The query tenant of a config tenant (as `InfrastructureModule.from_config` builds it)."""
    return Tenant.of(tenant.id, billing_accounts=tenant.billing_accounts,
                     sub_accounts=(*tenant.sub_accounts, *tenant.projects))


def evaluate(warehouse: Warehouse, tenant: Tenant, budget: Budget, as_of: date,
             *, tenant_name: str | None = None) -> BudgetStatus:
    """One budget's status in the period containing ``as_of``.

    Raises:
        ConfigError: the budget's scope names an unknown dimension (the message names the
            budget).
    """
    start, end = budget.period_of(as_of)
    filters = {k: list(v) for k, v in budget.scope.items()}
    try:
        table = costs_by_dimension(warehouse, start, end, ["day"], filters, budget.metric,
                                   tenant=tenant)
    except ConfigError as err:
        raise ConfigError(f"budget {budget.name} of tenant {tenant.tenant_id}: scope: "
                          f"{err}") from None
    daily: dict[date, Decimal] = {}
    rows = other = 0
    for row in table.to_pylist():
        if row["BillingCurrency"] != budget.currency:
            other += row["rows"]
            continue
        daily[row["day"]] = daily.get(row["day"], Decimal(0)) + row["cost"]
        rows += row["rows"]
    actual = sum(daily.values(), Decimal(0))
    status = BudgetStatus(tenant_name or tenant.tenant_id, budget, start, end, as_of, actual,
                          rows, max(daily) if daily else None, other, daily=daily)
    if budget.forecast:
        _forecast_rest(warehouse, tenant, budget, filters, status)
    status.crossed = crossings(budget, actual, status.projected)
    return status


def crossings(budget: Budget, actual: Decimal, projected: Decimal | None) -> list[Crossing]:
    """The thresholds ``actual`` (and the projection) cross, in exact arithmetic."""
    found = [Crossing("actual", p) for p in budget.thresholds
             if actual * 100 >= budget.amount * p]
    if (budget.forecast and projected is not None and projected > budget.amount
            and actual < budget.amount):
        found.append(Crossing("forecast", FORECAST_THRESHOLD))
    return found


def _forecast_rest(warehouse: Warehouse, tenant: Tenant, budget: Budget,
                   filters: dict[str, list[str]], status: BudgetStatus) -> None:
    """Fill ``forecast_rest`` (or ``forecast_note``) from the history before the next day."""
    last = status.last_day or status.period_start - timedelta(days=1)
    first_rest = last + timedelta(days=1)
    if first_rest >= status.period_end:
        status.forecast_rest, status.forecast_upper = Decimal(0), Decimal(0)
        return
    table = costs_by_dimension(warehouse, first_rest - timedelta(days=HISTORY_DAYS), first_rest,
                               ["day"], {**filters, "currency": [budget.currency]},
                               budget.metric, tenant=tenant)
    history = {r["day"]: r["cost"] for r in table.to_pylist()}
    if not history:
        status.forecast_note = "no history in this scope to forecast from"
        return
    try:
        _, (total, _lower, upper), _, _ = forecasting.forecast(
            history, last, first_rest, status.period_end, "MONTHLY")
    except ConfigError as err:
        status.forecast_note = str(err)
        return
    status.forecast_rest, status.forecast_upper = total, upper


def check_budgets(warehouse: Warehouse, tenants: Iterable[TenantConfig], as_of: date | None = None,
                  *, store: MetadataStore | None = None, secrets_url: str | None = None,
                  notify: bool = True, **delivery_options: Any) -> BudgetCheck:
    """Evaluate every budget of ``tenants``; with ``notify`` and a ``store``, deliver each
    crossing not alerted before (`costflow.services.alerts.deliver`)."""
    day = as_of or datetime.now(UTC).date()
    statuses = [evaluate(warehouse, tenant_scope(t), b, day, tenant_name=t.id)
                for t in tenants for b in t.budgets]
    check = BudgetCheck(statuses)
    if notify and store is not None:
        from costflow.services.alerts import deliver

        check.deliveries = deliver(statuses, store, secrets_url, **delivery_options)
    return check


TABLE_COLUMNS = ["tenant", "budget", "period", "currency", "amount", "actual", "used %",
                 "projected", "crossed"]


def render_check(check: BudgetCheck, fmt: str = "table") -> str:
    """The check as a table (with the alerts' fate below) or as JSON."""
    if fmt == "json":
        return json.dumps({
            "checked_at": check.checked_at.isoformat(), "crossed": check.crossed,
            "exit_status": check.exit_status,
            "budgets": [s.as_json() for s in check.statuses],
            "alerts": [d.as_json() for d in check.deliveries]}, indent=2)
    if not check.statuses:
        return "no budgets declared (add them under policies.budgets of a tenant in the config)"
    rows = [{"tenant": s.tenant, "budget": s.budget.name,
             "period": f"{s.period_start}..{s.period_end}", "currency": s.budget.currency,
             "amount": money(s.budget.amount, s.budget.currency),
             "actual": money(s.actual, s.budget.currency),
             "used %": f"{s.used_percent:,.1f}",
             "projected": "" if s.projected is None else money(s.projected, s.budget.currency),
             "crossed": ", ".join(c.name for c in s.crossed) or "-"} for s in check.statuses]
    lines = [render_display(rows, TABLE_COLUMNS)]
    notes = [f"  {s.tenant}/{s.budget.name}: forecast left out: {s.forecast_note}"
             for s in check.statuses if s.forecast_note]
    notes += [f"  {s.tenant}/{s.budget.name}: {s.other_currency_rows} row(s) billed in another "
              f"currency than {s.budget.currency} are not counted"
              for s in check.statuses if s.other_currency_rows]
    if notes:
        lines += ["", "notes:", *notes]
    if check.deliveries:
        lines += ["", "alerts:"]
        lines += [f"  {d.describe()}" for d in check.deliveries]
    return "\n".join(lines)

