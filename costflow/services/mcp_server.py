"""The query services as MCP tools, over stdio, for AI agents (`costflow mcp`).

Built with the official MCP Python SDK (``mcp`` 2.x, `MCPServer`). The server is started for one
tenant and one provider scope (CLI flags); no tool argument can widen them. Every tool argument
is validated by the same code as the Python API and the CLI; a bad one comes back as a tool error
whose text says what was expected (the model reads it and retries), never as a crash. Results are
plain JSON: amounts are exact decimal strings, never floats.

Tools: get_costs, compare_periods, get_forecast, get_recommendations, get_resources,
list_dimensions, dimension_values, describe_schema, get_budgets (only when started with the
tenant's config entry); run_query (read-only SQL over the tenant's `focus` rows,
`sql_sandbox`), get_commitment_coverage, get_commitment_utilization (`commitments`). Over HTTP,
one such server per tenant sits behind `mcp_http` (bearer keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from costflow.errors import CostflowError
from costflow.models import to_json
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.services.costs import (
    DIMENSIONS,
    FILTER_ONLY,
    K8S_DIMENSIONS,
    K8S_LABEL_PREFIX,
    METRICS,
    TAG_PREFIX,
)
from costflow.services.providers import (
    DEFAULT_METRIC,
    GRANULARITIES,
    WarehouseCostProvider,
    dimension_names,
)
from costflow.services.tenancy import ALL_PROVIDERS, PROVIDERS, Tenant, check_provider
from costflow.text import exact
from costflow.warehouse import SERVER_KEEP_OPEN_S, connect
from costflow.warehouse.base import Warehouse

if TYPE_CHECKING:
    from costflow.config import TenantConfig

T = TypeVar("T")
METRIC_GUIDE = (
    "Which cost to use: BilledCost (default) is what the invoice charges, cash basis: an upfront "
    "reservation or savings plan fee lands on the day it is bought. EffectiveCost is the "
    "amortized cost after every discount, with prepaid commitments spread over the usage they "
    "cover: use it for 'what did this workload really cost' and for trends and unit economics. "
    "ListCost is the public on-demand price (savings = ListCost - EffectiveCost). ContractedCost "
    "is the negotiated price before commitment discounts. Amounts in different currencies are "
    "never added: results come per BillingCurrency.")
ALLOCATION_GUIDE = (
    "Unsplit vs allocated cost: by default every tool reads the bill as the provider billed it "
    "(FOCUS 1.2 rows; a Kubernetes node is one opaque VM charge). With allocated=true, "
    "get_costs reads the split view (FOCUS 1.3, focus_v1_3): each node or volume charge that "
    "`costflow allocate` split is replaced by its allocated rows, one per workload plus the "
    "node's idle capacity (k8s:workload __idle__) or a volume's unclaimed time (__unclaimed__), "
    "and every other charge stays as billed. The split rows of a charge add up to it exactly, "
    "so totals with and without allocated=true are equal; only the breakdown changes. The "
    "k8s: dimensions (k8s:cluster, k8s:namespace, k8s:workload, k8s:label:<key>) come from a "
    "split row's AllocatedTags and exist only with allocated=true; charges that were not "
    "split have no k8s: value (null). get_allocation adds idle shares and efficiency.")


def build_server(warehouse: Warehouse, tenant: Tenant,
                 provider_scope: str = ALL_PROVIDERS, *,
                 tenant_config: TenantConfig | None = None) -> MCPServer:
    """An MCP server answering for ``tenant`` (and ``provider_scope``) from ``warehouse``.

    ``tenant_config``: the config's entry of this tenant, for what only the config declares:
    with it the server also has `get_budgets` (the tenant's budgets); without it, no such tool.
    """
    check_provider(provider_scope)
    server = MCPServer("costflow", instructions=(
        "Cloud costs from the costflow FOCUS warehouse. Start with list_dimensions and "
        "describe_schema; dates are YYYY-MM-DD and ranges are [start, end). " + METRIC_GUIDE))

    def provider_for(name: str) -> WarehouseCostProvider:
        try:
            check_provider(name)
        except CostflowError as err:
            raise ToolError(str(err)) from err
        if provider_scope != ALL_PROVIDERS and name not in (provider_scope, ALL_PROVIDERS):
            raise ToolError(f"this server answers for provider {provider_scope!r} only.")
        return WarehouseCostProvider(warehouse, tenant,
                                     provider_scope if name == ALL_PROVIDERS else name)

    @server.tool()
    async def get_costs(start_date: str, end_date: str, group_by: list[str] | None = None,
                        granularity: str = "TOTAL",
                        filters: dict[str, list[str]] | None = None,
                        metric: str = DEFAULT_METRIC, provider: str = ALL_PROVIDERS,
                        allocated: bool = False) -> dict[str, Any]:
        """Costs in [start_date, end_date) grouped by dimensions; one result per currency.

        group_by: names from list_dimensions or tag:<key> (e.g. ["service", "tag:team"]).
        granularity: TOTAL (default), DAILY or MONTHLY. filters: dimension -> values kept
        (also "currency"). metric: BilledCost (default), EffectiveCost, ListCost,
        ContractedCost. provider: all, aws, gcp or azure. allocated: true reads Kubernetes
        node charges split onto workloads (same totals) and allows k8s:cluster,
        k8s:namespace, k8s:workload, k8s:label:<key> (see describe_schema).
        """
        results = await _guard(provider_for(provider).get_costs_per_currency(
            _day(start_date, "start_date"), _day(end_date, "end_date"), granularity,
            group_by, filters, metric=metric, allocated=allocated))
        return {"results": to_json(results)}

    @server.tool()
    async def compare_periods(base_start: str, base_end: str, compare_start: str,
                              compare_end: str, dimension: str = "service", top: int = 10,
                              metric: str = DEFAULT_METRIC, provider: str = ALL_PROVIDERS,
                              filters: dict[str, list[str]] | None = None,
                              allocated: bool = False) -> dict[str, Any]:
        """What changed between two periods: totals per currency and the top drivers.

        Drivers are the values of ``dimension`` with the largest absolute change in cost from
        the base period [base_start, base_end) to the compared one. allocated: as in get_costs
        (needed for a k8s: dimension).
        """
        if not 1 <= top <= 100:
            raise ToolError(f"top {top} must be between 1 and 100.")
        chosen = provider_for(provider)
        base = await _guard(chosen.get_costs_per_currency(
            _day(base_start, "base_start"), _day(base_end, "base_end"), "TOTAL", [dimension],
            filters, metric=metric, allocated=allocated))
        other = await _guard(chosen.get_costs_per_currency(
            _day(compare_start, "compare_start"), _day(compare_end, "compare_end"), "TOTAL",
            [dimension], filters, metric=metric, allocated=allocated))
        return {"dimension": dimension, "metric": metric,
                "currencies": _compare(base, other, dimension, top)}

    @server.tool()
    async def get_forecast(start_date: str, end_date: str, granularity: str = "MONTHLY",
                           metric: str = DEFAULT_METRIC, currency: str | None = None,
                           provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Forecast cost in [start_date, end_date) from the daily history before start_date.

        Weekly-seasonal ETS model with 95 % prediction intervals; the backtest error on the last
        14 days of history is reported. Needs 28 days of history.
        """
        result = await _guard(provider_for(provider).get_forecast(
            _day(start_date, "start_date"), _day(end_date, "end_date"), granularity,
            metric=metric, currency=currency))
        return to_json(result)

    @server.tool()
    async def get_recommendations(category: str | None = None,
                                  states: list[str] | None = None,
                                  provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Cost optimization recommendations, largest estimated monthly saving first.

        category: compute, storage, network, database, commitment or other. states: default
        ["active"].
        """
        recs = await _guard(provider_for(provider).get_recommendations(
            category, states=tuple(states or ["active"])))
        return {"recommendations": to_json(recs)}

    @server.tool()
    async def get_resources(resource_type: str | None = None, start_date: str | None = None,
                            end_date: str | None = None, metric: str = DEFAULT_METRIC,
                            limit: int = 50, provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """The most expensive resources and the cost attributed to each (per currency).

        resource_type matches exactly (e.g. "Virtual Machine"). Without dates: the last 30 days
        with charges.
        """
        found = await _guard(provider_for(provider).get_resources(
            resource_type, start_date=_day(start_date, "start_date") if start_date else None,
            end_date=_day(end_date, "end_date") if end_date else None, metric=metric,
            limit=limit))
        return {"resources": to_json(found)}

    @server.tool()
    async def list_dimensions() -> dict[str, Any]:
        """Dimensions to group by and filter on, metrics and granularities."""
        return {
            "dimensions": {name: DIMENSIONS[name] for name in dimension_names()},
            "filter_only": FILTER_ONLY,
            "tags": f"{TAG_PREFIX}<key> groups or filters by one key of the Tags JSON "
                    "(e.g. tag:team, tag:user:cost-center)",
            "kubernetes": {**K8S_DIMENSIONS, f"{K8S_LABEL_PREFIX}<key>": "one pod label of "
                           "the workload (e.g. k8s:label:app)",
                           "note": "only with get_costs allocated=true (see describe_schema)"},
            "metrics": list(METRICS), "default_metric": DEFAULT_METRIC,
            "granularities": list(GRANULARITIES),
            "providers": [ALL_PROVIDERS, *PROVIDERS] if provider_scope == ALL_PROVIDERS
            else [provider_scope],
        }

    @server.tool()
    async def dimension_values(dimension: str, start_date: str, end_date: str,
                               limit: int = 50, provider: str = ALL_PROVIDERS,
                               allocated: bool = False) -> dict[str, Any]:
        """The values a dimension takes in [start_date, end_date), costliest first.

        allocated: as in get_costs (needed for a k8s: dimension, e.g. k8s:namespace).
        """
        if not 1 <= limit <= 1000:
            raise ToolError(f"limit {limit} must be between 1 and 1000.")
        results = await _guard(provider_for(provider).get_costs_per_currency(
            _day(start_date, "start_date"), _day(end_date, "end_date"), "TOTAL", [dimension],
            allocated=allocated))
        values = sorted(((b.values[dimension], r.currency, b.cost) for r in results
                         for b in r.breakdown), key=lambda v: (-v[2], str(v[0]), v[1]))
        return {"dimension": dimension, "values": [
            {"value": v, "currency": c, "cost": exact(cost)} for v, c, cost in values[:limit]]}

    @server.tool()
    async def describe_schema() -> dict[str, Any]:
        """What the cost metrics mean (Billed vs Effective vs List vs Contracted cost) and
        allocated (Kubernetes split) vs unsplit cost."""
        return {"guide": METRIC_GUIDE, "allocated_vs_unsplit": ALLOCATION_GUIDE,
                "metrics": {m: COST_LINE_ITEMS.column(m).description for m in METRICS},
                "dimensions": {name: COST_LINE_ITEMS.column(column).description
                               for name, column in DIMENSIONS.items()
                               if column in COST_LINE_ITEMS.names},
                "currency": COST_LINE_ITEMS.column("BillingCurrency").description}

    # -- run_query (issue 18): read-only SQL over the tenant's FOCUS rows -----------------------
    @server.tool()
    async def run_query(sql: str, max_rows: int = 200,
                        provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Read-only SQL for questions the other tools do not answer.

        One BigQuery-dialect SELECT over the relation `focus`: this tenant's FOCUS 1.3 rows
        (every FOCUS column, e.g. ChargePeriodStart, BilledCost, EffectiveCost, ServiceName,
        SubAccountId, CommitmentDiscountId, Tags as JSON) plus x_SourceProvider. CTEs, joins,
        subqueries, UNION, GROUP BY and window functions are fine; other tables, table
        functions, parameters and statements that are not SELECT are refused. max_rows: 1 to
        10000 (default 200); a longer answer is cut and says truncated. Time limit 10 s.
        Amounts are exact decimal strings; never add different BillingCurrency values.
        """
        from costflow.services import sql_sandbox

        scope = provider_for(provider).provider
        result = await _guard(asyncio.to_thread(
            sql_sandbox.run_query, warehouse, tenant, sql, scope, max_rows=max_rows))
        return to_json(result)

    # -- commitments (issue 18): coverage and utilization of RIs, Savings Plans, CUDs ----------
    @server.tool()
    async def get_commitment_coverage(start_date: str, end_date: str,
                                      granularity: str = "MONTHLY",
                                      group_by: str | None = None,
                                      provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Share of commitment-eligible usage covered by RIs / Savings Plans / CUDs.

        Per provider, period (MONTHLY or TOTAL) and currency in [start_date, end_date);
        group_by: service, service_category, region or sub_account (optional). Eligible usage
        is Usage priced Standard or Committed (not spot), measured at ListCost (on-demand
        value); coverage = covered / eligible.
        """
        from costflow.services.commitments import commitment_coverage

        scope = provider_for(provider).provider
        found = await _guard(asyncio.to_thread(
            commitment_coverage, warehouse, tenant, _day(start_date, "start_date"),
            _day(end_date, "end_date"), scope, granularity, group_by))
        return {"coverage": to_json(found)}

    @server.tool()
    async def get_commitment_utilization(start_date: str, end_date: str,
                                         granularity: str = "MONTHLY",
                                         provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Used vs unused commitment (EffectiveCost) per commitment and per provider total.

        Per period (MONTHLY or TOTAL) and currency in [start_date, end_date); utilization =
        used / (used + unused). GCP exports carry no unused rows: GCP shows only the used part.
        """
        from costflow.services.commitments import commitment_utilization

        scope = provider_for(provider).provider
        report = await _guard(asyncio.to_thread(
            commitment_utilization, warehouse, tenant, _day(start_date, "start_date"),
            _day(end_date, "end_date"), scope, granularity))
        return to_json(report)

    # -- anomalies and reporting currency (issue 16) --------------------------------------------
    @server.tool()
    async def get_anomalies(start_date: str, end_date: str, group_by: list[str] | None = None,
                            metric: str = DEFAULT_METRIC,
                            provider: str = ALL_PROVIDERS) -> dict[str, Any]:
        """Days in [start_date, end_date) whose cost departs from its weekly baseline.

        Per group of group_by (default ["service"]; e.g. ["service", "sub_account"]) and
        currency: actual, expected (median of the same weekdays over the 28 days before),
        difference, share_of_period and kind: spike, drop, level_shift, new or disappeared.
        """
        from costflow.services.anomalies import find_anomalies

        scope = provider_for(provider).provider
        report = await _guard(asyncio.to_thread(
            find_anomalies, warehouse, tenant, _day(start_date, "start_date"),
            _day(end_date, "end_date"), list(group_by or ["service"]), scope, metric))
        return to_json(report)

    @server.tool()
    async def get_costs_in_currency(start_date: str, end_date: str, currency: str,
                                    group_by: list[str] | None = None,
                                    filters: dict[str, list[str]] | None = None,
                                    metric: str = DEFAULT_METRIC,
                                    provider: str = ALL_PROVIDERS,
                                    max_rate_age_days: int = 7) -> dict[str, Any]:
        """Costs in [start_date, end_date) converted to one currency (e.g. "EUR").

        Each charge day's amounts use that day's exchange rate (else the latest earlier one
        within max_rate_age_days); amounts without a rate are listed under "unconvertible" in
        their own currency (not in the total). "rates" lists every rate used and its source.
        """
        from costflow.services.rates_convert import convert_costs

        scope = provider_for(provider).provider
        result = await _guard(asyncio.to_thread(
            convert_costs, warehouse, _day(start_date, "start_date"),
            _day(end_date, "end_date"), list(group_by or []), currency, filters, metric,
            tenant=tenant, provider=scope, max_age_days=max_rate_age_days))
        return to_json(result)

    # -- Kubernetes cost allocation (issue 13) --------------------------------------------------
    @server.tool()
    async def get_allocation(start_date: str, end_date: str, cluster: str | None = None,
                             namespace: str | None = None,
                             workload: str | None = None) -> dict[str, Any]:
        """Cluster costs split onto Kubernetes workloads (costflow allocate), [start, end).

        Per cluster, namespace and workload (idle capacity and unclaimed volumes as their own
        rows) and currency: billed_cost and effective_cost; per cluster the idle share
        (idle / all split cost); per namespace the efficiency (CPU and memory used / requested).
        Splits sum exactly to the cloud bill's node charges.
        """
        from costflow.services.allocation import get_allocation as allocation

        report = await _guard(asyncio.to_thread(
            allocation, warehouse, tenant, _day(start_date, "start_date"),
            _day(end_date, "end_date"), cluster, namespace, workload))
        return to_json(report)

    # -- budgets (issue 16): served when the server knows the tenant's config entry -----------
    if tenant_config is not None:
        _budget_tool(server, warehouse, tenant, provider_scope, tenant_config)

    return server


def _budget_tool(server: MCPServer, warehouse: Warehouse, tenant: Tenant, provider_scope: str,
                 config: TenantConfig) -> None:
    """Register get_budgets: the budgets ``config`` declares, evaluated under ``tenant``."""

    @server.tool()
    async def get_budgets(as_of: str | None = None) -> dict[str, Any]:
        """This tenant's budgets (costflow.yaml policies.budgets) in the period containing
        as_of (YYYY-MM-DD; default today, UTC).

        Per budget: amount and currency, period, scope (filters), actual (exact sum of the
        budget's metric in its scope and currency so far), used_percent, forecast_rest and
        projected (actual + ETS forecast of the rest of the period, when forecast is on),
        and crossed thresholds (actual-<p>, forecast-100). Read-only: no alert is sent.
        """
        if provider_scope != ALL_PROVIDERS:
            raise ToolError(f"budgets are evaluated over every provider of the tenant, and this "
                            f"server answers for provider {provider_scope!r} only: ask a server "
                            "started for all providers.")
        from costflow.services.budgets import evaluate

        day = _day(as_of, "as_of") if as_of is not None else datetime.now(UTC).date()

        def statuses() -> list[dict[str, Any]]:
            return [evaluate(warehouse, tenant, budget, day, tenant_name=config.id).as_json()
                    for budget in config.budgets]

        found = await _guard(asyncio.to_thread(statuses))
        return {"tenant": config.id, "as_of": day.isoformat(), "budgets": found,
                "crossed": any(b["crossed"] for b in found)}


async def _guard(call: Awaitable[T]) -> T:
    """Turn an error a user can act on into a tool error the model reads."""
    try:
        return await call
    except CostflowError as err:
        raise ToolError(str(err)) from err


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ToolError(f"{name} {text!r} is not a date; expected YYYY-MM-DD.") from None


def _compare(base: list[Any], other: list[Any], dimension: str,
             top: int) -> list[dict[str, Any]]:
    out = []
    for code in sorted({r.currency for r in base} | {r.currency for r in other}):
        before = {b.values[dimension]: b.cost for r in base if r.currency == code
                  for b in r.breakdown}
        after = {b.values[dimension]: b.cost for r in other if r.currency == code
                 for b in r.breakdown}
        changes = [(v, before.get(v, Decimal(0)), after.get(v, Decimal(0)))
                   for v in before.keys() | after.keys()]
        changes.sort(key=lambda c: (-abs(c[2] - c[1]), str(c[0])))
        total_before, total_after = sum(before.values(), Decimal(0)), sum(after.values(),
                                                                          Decimal(0))
        out.append({"currency": code, "base_total": exact(total_before),
                    "compare_total": exact(total_after),
                    "change": exact(total_after - total_before),
                    "change_percent": (f"{(total_after - total_before) / total_before:.2%}"
                                       if total_before else None),
                    "top_drivers": [{"value": v, "base": exact(b), "compare": exact(a),
                                     "change": exact(a - b)} for v, b, a in changes[:top]]})
    return out


def connect_reader(url: str) -> Warehouse:
    """The warehouse as the query side opens it: a query during a write waits only briefly, and
    a DuckDB file stays open a moment after each call for the next (`SERVER_KEEP_OPEN_S`)."""
    return connect(url, reader=True, keep_open=SERVER_KEEP_OPEN_S)


def serve(url: str, tenant: Tenant, provider_scope: str = ALL_PROVIDERS,
          connector: Callable[[str], Warehouse] = connect_reader, *,
          tenant_config: TenantConfig | None = None) -> None:
    """Run the server over stdio until the client closes it."""
    build_server(connector(url), tenant, provider_scope,
                 tenant_config=tenant_config).run("stdio")
