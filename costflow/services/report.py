"""What the cost report shows, read from the warehouse: every figure exact, nothing rendered.

Why this module exists: `costflow report` writes one HTML page people send to a team
(`costflow.services.report_html` draws it). The numbers on it must be the warehouse's, so they
are gathered here with the same query services the CLI uses (`costs_by_dimension`, the
forecast, budgets, B1's anomaly detection when present) into a `ReportData` of exact Decimals;
the page rounds them only where it shows them.

Sections: totals per currency; daily cost per provider; top services and accounts of the last
month in range against the month before (month-over-month); cost by the most common tag key
(a Kubernetes namespace key when there is one); cost by Kubernetes cluster and namespace when
`costflow allocate` has split node charges in range (the split view, `allocated=True`); the
forecast band for the 30 days after the
last day with charges, in the main currency; anomalies; the burn-down of each budget of the
config's tenants; and the reconciliation of the load runs that wrote the rows shown.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError
from costflow.services import forecast as forecasting
from costflow.services.costs import costs_by_dimension
from costflow.services.tenancy import Tenant
from costflow.warehouse.base import Warehouse

if TYPE_CHECKING:
    from costflow.config import TenantConfig
    from costflow.services.budgets import BudgetStatus

LOG = logging.getLogger("costflow.report")
TOP = 10
FORECAST_DAYS = 30
FORECAST_HISTORY_DAYS = 365  # as `query forecast` (WarehouseCostProvider) fits
NAMESPACE_KEYS = ("namespace", "k8s-namespace", "kubernetes_namespace", "k8s_namespace")

# Tag objects seen in range, most frequent first (keys are picked in Python: JSON key listing
# differs between the engines).
_TAGS_SQL = """
SELECT TO_JSON_STRING(Tags) AS tags, COUNT(*) AS n
FROM cost_analytics.cost_line_items
WHERE ChargePeriodStart >= TIMESTAMP(@start) AND ChargePeriodStart < TIMESTAMP(@end)
  AND Tags IS NOT NULL
GROUP BY 1
ORDER BY n DESC
LIMIT 500
"""

# The runs that wrote the rows in range, with their ledger status and slice reconciliation.
_LOADS_SQL = """
WITH shown AS (
  SELECT x_RunId AS run_id, COUNT(*) AS rows_shown
  FROM cost_analytics.cost_line_items
  WHERE ChargePeriodStart >= TIMESTAMP(@start) AND ChargePeriodStart < TIMESTAMP(@end)
  GROUP BY x_RunId
),
slices AS (
  SELECT run_id, COUNT(*) AS slices,
         COUNTIF(source_basis != loaded_billed_cost + dead_lettered_cost) AS slices_off,
         STRING_AGG(DISTINCT x_SourceProvider, ',') AS providers
  FROM cost_analytics.load_slices
  GROUP BY run_id
)
SELECT shown.run_id, shown.rows_shown, r.status, r.finished_at, r.rows_dead_lettered,
       s.slices, s.slices_off, s.providers
FROM shown
LEFT JOIN cost_analytics.load_runs AS r ON r.run_id = shown.run_id
LEFT JOIN slices AS s ON s.run_id = shown.run_id
ORDER BY r.finished_at DESC, shown.run_id
"""


@dataclass
class Change:
    """One service or account: cost in the report's last month and the month before."""

    name: str
    currency: str
    current: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal:
        return self.current - self.previous

    @property
    def percent(self) -> Decimal | None:
        return None if not self.previous else self.change * 100 / self.previous


@dataclass
class ReportData:
    """Everything the page shows, exact."""

    start: date
    end: date
    warehouse: str
    generated_at: datetime
    totals: list[dict[str, Any]]                 # currency, cost, rows
    daily: list[dict[str, Any]]                  # day, provider, currency, cost
    months: tuple[date, date] | None = None      # (previous, current) month compared
    last_day: date | None = None                 # the last day with charges in range
    services: list[Change] = field(default_factory=list)
    accounts: list[Change] = field(default_factory=list)
    tag_key: str | None = None
    tags: list[dict[str, Any]] = field(default_factory=list)
    namespaces: list[dict[str, Any]] = field(default_factory=list)  # cluster, namespace, ...
    forecast_currency: str | None = None
    forecast: list[dict[str, Any]] = field(default_factory=list)   # day, cost, lower, upper
    forecast_note: str | None = None
    anomalies: list[Any] = field(default_factory=list)
    anomalies_note: str | None = None
    budgets: list[BudgetStatus] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def main_currency(self) -> str | None:
        return max(self.totals, key=lambda t: t["cost"])["currency"] if self.totals else None


def gather(warehouse: Warehouse, start: date, end: date, *,
           tenants: list[TenantConfig] | None = None, tenant: Tenant | None = None,
           as_of: date | None = None) -> ReportData:
    """Read every section of the report for [start, end).

    Args:
        warehouse: where to read.
        start: first day; end: first day not shown.
        tenants: config tenants whose budgets get a burn-down (none: no budget section).
        tenant: whose rows are shown (None: the warehouse owner, every row).
        as_of: the day the budgets are evaluated on (default: the last day with charges).

    Raises:
        ConfigError: a bad range.
    """
    if end <= start:
        raise ConfigError(f"--end {end} is not after --start {start} (the range is "
                          "[start, end)).")
    scope = tenant or Tenant.unrestricted_owner("report")
    params = {"start": start, "end": end}
    totals = costs_by_dimension(warehouse, start, end, [], tenant=scope).to_pylist()
    data = ReportData(start, end, warehouse.url, datetime.now(UTC),
                      [{"currency": r["BillingCurrency"], "cost": r["cost"], "rows": r["rows"]}
                       for r in totals], [])
    data.daily = [{"day": r["day"], "provider": r["provider"] or "(none)",
                   "currency": r["BillingCurrency"], "cost": r["cost"]}
                  for r in costs_by_dimension(warehouse, start, end, ["day", "provider"],
                                              tenant=scope).to_pylist()]
    data.last_day = max((d["day"] for d in data.daily), default=None)
    _month_over_month(warehouse, data, scope)
    _tags(warehouse, data, scope, params)
    _namespaces(warehouse, data, scope)
    _forecast(data)
    _anomalies(warehouse, data, scope)
    if tenants:
        from costflow.services.budgets import evaluate, tenant_scope

        day = as_of or data.last_day or end - timedelta(days=1)
        data.budgets = [evaluate(warehouse, tenant_scope(t), b, day, tenant_name=t.id)
                        for t in tenants for b in t.budgets]
    data.loads = warehouse.query(_LOADS_SQL, params).to_pylist()
    return data


def _month_over_month(warehouse: Warehouse, data: ReportData, scope: Tenant) -> None:
    months = sorted({d["day"].replace(day=1) for d in data.daily})
    if not months:
        return
    current = months[-1]
    previous = (current - timedelta(days=1)).replace(day=1)
    data.months = (previous, current)
    # The previous month is read whole even when the range starts inside it.
    first = min(previous, data.start)
    for dimension, target in (("service", data.services), ("sub_account", data.accounts)):
        rows = costs_by_dimension(warehouse, first, data.end, ["month", dimension],
                                  tenant=scope).to_pylist()
        found: dict[tuple[str, str], list[Decimal]] = defaultdict(
            lambda: [Decimal(0), Decimal(0)])
        for r in rows:
            slot = 1 if r["month"] == current else 0 if r["month"] == previous else None
            if slot is not None:
                found[(r[dimension] or "(none)", r["BillingCurrency"])][slot] += r["cost"]
        changes = [Change(name, cur, now, before) for (name, cur), (before, now)
                   in found.items()]
        target += sorted(changes, key=lambda c: (-c.current, c.name))[:TOP]


def _tags(warehouse: Warehouse, data: ReportData, scope: Tenant,
          params: dict[str, Any]) -> None:
    weight: Counter[str] = Counter()
    for row in warehouse.query(_TAGS_SQL, params).to_pylist():
        try:
            tags = json.loads(row["tags"]) if row["tags"] else None
        except ValueError:
            continue
        if isinstance(tags, dict):
            for key in tags:
                weight[key] += row["n"]
    if not weight:
        return
    namespace = [k for k in weight if k.lower() in NAMESPACE_KEYS]
    key = namespace[0] if namespace else weight.most_common(1)[0][0]
    try:
        rows = costs_by_dimension(warehouse, data.start, data.end, [f"tag:{key}"],
                                  tenant=scope).to_pylist()
    except ConfigError:  # a key the JSONPath cannot carry: no tag section
        return
    data.tag_key = key
    data.tags = sorted(({"value": r[f"tag:{key}"] or "(untagged)",
                         "currency": r["BillingCurrency"], "cost": r["cost"]} for r in rows),
                       key=lambda r: -r["cost"])


def _namespaces(warehouse: Warehouse, data: ReportData, scope: Tenant) -> None:
    """Allocated cost per cluster and namespace (idle capacity and unclaimed volumes have no
    namespace: ``None``); nothing when no charge in range was split."""
    rows = costs_by_dimension(warehouse, data.start, data.end, ["k8s:cluster", "k8s:namespace"],
                              tenant=scope, allocated=True).to_pylist()
    data.namespaces = sorted(
        ({"cluster": r["k8s:cluster"], "namespace": r["k8s:namespace"],
          "currency": r["BillingCurrency"], "cost": r["cost"], "rows": r["rows"]}
         for r in rows if r["k8s:cluster"] is not None),
        key=lambda r: (r["cluster"], r["currency"], r["namespace"] is None, -r["cost"]))


def _forecast(data: ReportData) -> None:
    currency = data.main_currency
    if currency is None:
        data.forecast_note = "no charges in range"
        return
    history: dict[date, Decimal] = defaultdict(Decimal)
    for d in data.daily:
        if d["currency"] == currency:
            history[d["day"]] += d["cost"]
    last = max(history)
    # Up to a year of history, as `query forecast` fits: older days (e.g. a range spanning
    # years with a gap) would only slow the fit down and flatten the season.
    history = {day: cost for day, cost in history.items()
               if (last - day).days < FORECAST_HISTORY_DAYS}
    try:
        points, *_ = forecasting.forecast(dict(history), last, last + timedelta(days=1),
                                          last + timedelta(days=1 + FORECAST_DAYS), "DAILY")
    except ConfigError as err:
        data.forecast_note = str(err)
        return
    data.forecast_currency = currency
    data.forecast = [{"day": p.period.start, "cost": p.cost, "lower": p.lower,
                      "upper": p.upper} for p in points]


def _anomalies(warehouse: Warehouse, data: ReportData, scope: Tenant) -> None:
    try:
        from costflow.services.anomalies import find_anomalies
    except ImportError:
        data.anomalies_note = ("anomaly detection (costflow.services.anomalies) is not part "
                               "of this installation")
        return
    if data.last_day is None:
        return
    # Up to the last day with charges: later days are not "disappeared", just not billed yet.
    end = min(data.end, data.last_day + timedelta(days=1))
    try:
        report = find_anomalies(warehouse, scope, data.start, end, ["provider"])
    except ConfigError as err:
        data.anomalies_note = str(err)
        return
    data.anomalies = list(report.anomalies)
