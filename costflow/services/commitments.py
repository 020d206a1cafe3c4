"""Commitment coverage and utilization (RIs, Savings Plans, CUDs) from the FOCUS columns.

Two questions every FinOps team asks of a bill, answered per provider, period and currency
(currencies are never added) under a tenant's scope (`costflow.services.tenancy`):

**Coverage**: what share of the usage a commitment could cover was covered by one. Eligible
usage is every ``ChargeCategory = 'Usage'`` row priced ``Standard`` or ``Committed`` (or with no
PricingCategory), except the unused portion of a commitment (``CommitmentDiscountStatus =
'Unused'``): spot/dynamic and other pricing is not usage a commitment covers. Covered usage is
the part of it with ``CommitmentDiscountStatus = 'Used'``. Both are measured in ``ListCost``, the
on-demand value, so covered and uncovered usage are in one unit (a covered row's billed cost is
the discounted price; AWS's SavingsPlanNegation rows have ListCost 0, as the usage they negate
already carries it). ``coverage = covered / eligible``.

**Utilization**: how much of each commitment was used. Rows naming a commitment
(``CommitmentDiscountId``) with status ``Used`` are the commitment consumed by usage; rows with
status ``Unused`` are what was paid for and not used (AWS: the RIFee / SavingsPlanRecurringFee
rows, whose EffectiveCost is exactly the unused part; Azure: the unused reservation and savings
plan rows). Both are measured in ``EffectiveCost`` (the amortized commitment), and
``utilization = used / (used + unused)``. GCP billing exports carry no unused rows (a CUD's
unused part stays on its fee row, see the README), so a GCP commitment shows only its used part.

Ratios are exact decimal quotients rounded half-even to `RATIO_PLACES` places; amounts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

import sqlglot
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.services.tenancy import ALL_PROVIDERS, Tenant, scope_params
from costflow.warehouse.base import Warehouse

RATIO_PLACES = 6
GRANULARITIES = ("MONTHLY", "TOTAL")
# Optional breakdown of coverage: name -> FOCUS column (an allow-list; never user text in SQL).
COVERAGE_GROUPS: dict[str, str] = {"service": "ServiceName",
                                   "service_category": "ServiceCategory",
                                   "region": "RegionId", "sub_account": "SubAccountId"}
_SCOPE = ("ChargePeriodStart >= TIMESTAMP(@start) AND ChargePeriodStart < TIMESTAMP(@end) "
          "AND (@tenant_all OR BillingAccountId IN UNNEST(@tenant_billing_accounts) "
          "OR SubAccountId IN UNNEST(@tenant_sub_accounts)) "
          "AND (@provider = 'all' OR x_SourceProvider = @provider)")
_MONTH = "DATE_TRUNC(DATE(ChargePeriodStart), MONTH)"
COVERAGE_SQL = f"""
SELECT x_SourceProvider AS provider, {_MONTH} AS period, BillingCurrency AS currency,
       SUM(IF(CommitmentDiscountStatus = 'Used', ListCost, 0)) AS covered,
       SUM(ListCost) AS eligible,
       COUNT(*) AS `rows`
FROM cost_analytics.cost_line_items
WHERE {_SCOPE}
  AND ChargeCategory = 'Usage'
  AND COALESCE(PricingCategory, 'Standard') IN ('Standard', 'Committed')
  AND COALESCE(CommitmentDiscountStatus, 'Used') = 'Used'
GROUP BY provider, period, currency
"""
UTILIZATION_SQL = f"""
SELECT x_SourceProvider AS provider, {_MONTH} AS period, BillingCurrency AS currency,
       CommitmentDiscountId AS commitment_id,
       MAX(CommitmentDiscountType) AS commitment_type,
       MAX(CommitmentDiscountCategory) AS commitment_category,
       SUM(IF(CommitmentDiscountStatus = 'Used', EffectiveCost, 0)) AS used,
       SUM(IF(CommitmentDiscountStatus = 'Unused', EffectiveCost, 0)) AS unused,
       COUNT(*) AS `rows`
FROM cost_analytics.cost_line_items
WHERE {_SCOPE}
  AND CommitmentDiscountId IS NOT NULL
  AND CommitmentDiscountStatus IN ('Used', 'Unused')
GROUP BY provider, period, currency, commitment_id
"""


@dataclass(frozen=True)
class Coverage:
    """Covered and eligible usage (ListCost) of one provider, period, currency (and group)."""

    provider: str
    period_start: date
    period_end: date
    currency: str
    group: dict[str, str | None]
    covered: Decimal
    eligible: Decimal
    coverage: Decimal | None  # None when nothing was eligible
    rows: int


@dataclass(frozen=True)
class Utilization:
    """Used and unused commitment (EffectiveCost) of one commitment in one period."""

    provider: str
    period_start: date
    period_end: date
    currency: str
    commitment_id: str
    commitment_type: str | None
    commitment_category: str | None
    used: Decimal
    unused: Decimal
    utilization: Decimal | None  # None when the commitment shows neither
    rows: int


@dataclass(frozen=True)
class UtilizationReport:
    """Per commitment, and totals per provider, period and currency."""

    commitments: list[Utilization]
    totals: list[Utilization] = field(default_factory=list)  # commitment_id "(all)"


def commitment_coverage(warehouse: Warehouse, tenant: Tenant, start: date, end: date,
                        provider: str = ALL_PROVIDERS, granularity: str = "MONTHLY",
                        group_by: str | None = None) -> list[Coverage]:
    """Coverage of eligible usage by commitments in [start, end), per provider, period
    (month, or the whole range with TOTAL), currency and optionally one of `COVERAGE_GROUPS`.

    Raises:
        ConfigError: bad dates, granularity, group or provider.
    """
    _check(start, end, granularity)
    if group_by is not None and group_by not in COVERAGE_GROUPS:
        raise ConfigError(f"unknown coverage group {group_by!r}; allowed: "
                          f"{', '.join(COVERAGE_GROUPS)} (or none).")
    sql = _coverage_sql(group_by, granularity == "TOTAL")
    table = warehouse.query(sql, {"start": start, "end": end,
                                  **scope_params(tenant, provider)})
    out = []
    for row in table.to_pylist():
        begin, finish = _period(row["period"], start, end, granularity)
        covered, eligible = row["covered"] or Decimal(0), row["eligible"] or Decimal(0)
        out.append(Coverage(row["provider"], begin, finish, row["currency"],
                            {group_by: row["grp"]} if group_by else {}, covered, eligible,
                            ratio(covered, eligible), row["rows"]))
    out.sort(key=lambda c: (c.provider, c.period_start, c.currency,
                            tuple((v is not None, v or "") for v in c.group.values())))
    return out


def commitment_utilization(warehouse: Warehouse, tenant: Tenant, start: date, end: date,
                           provider: str = ALL_PROVIDERS,
                           granularity: str = "MONTHLY") -> UtilizationReport:
    """Used vs unused commitment in [start, end), per commitment and per provider total.

    Raises:
        ConfigError: bad dates, granularity or provider.
    """
    _check(start, end, granularity)
    sql = _utilization_sql(granularity == "TOTAL")
    table = warehouse.query(sql, {"start": start, "end": end,
                                  **scope_params(tenant, provider)})
    commitments = []
    for row in table.to_pylist():
        begin, finish = _period(row["period"], start, end, granularity)
        used, unused = row["used"] or Decimal(0), row["unused"] or Decimal(0)
        commitments.append(Utilization(
            row["provider"], begin, finish, row["currency"], row["commitment_id"],
            row["commitment_type"], row["commitment_category"], used, unused,
            ratio(used, used + unused), row["rows"]))
    commitments.sort(key=lambda u: (u.provider, u.period_start, u.currency, u.commitment_id))
    totals: dict[tuple[str, date, str], list[Utilization]] = {}
    for item in commitments:
        totals.setdefault((item.provider, item.period_start, item.currency), []).append(item)
    summed = []
    for (name, begin, currency), items in totals.items():
        used = sum((i.used for i in items), Decimal(0))
        unused = sum((i.unused for i in items), Decimal(0))
        summed.append(Utilization(name, begin, items[0].period_end, currency, "(all)", None,
                                  None, used, unused, ratio(used, used + unused),
                                  sum(i.rows for i in items)))
    return UtilizationReport(commitments, summed)


def ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part / whole`` rounded half-even to `RATIO_PLACES` places; None when whole is 0."""
    if not whole:
        return None
    return (part / whole).quantize(Decimal(1).scaleb(-RATIO_PLACES), rounding=ROUND_HALF_EVEN)


def _check(start: date, end: date, granularity: str) -> None:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}.")
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")
    if granularity not in GRANULARITIES:
        raise ConfigError(f"unknown granularity {granularity!r}; allowed: "
                          f"{', '.join(GRANULARITIES)}.")


def _period(month: date | None, start: date, end: date, granularity: str) -> tuple[date, date]:
    if granularity == "TOTAL" or month is None:
        return start, end
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1) \
        if month < date(9999, 12, 1) else end
    return max(month, start), min(following, end)


@lru_cache(maxsize=16)
def _coverage_sql(group_by: str | None, total: bool) -> str:
    query = sqlglot.parse_one(COVERAGE_SQL, read="bigquery")
    assert isinstance(query, exp.Select)
    if group_by:
        column = exp.column(exp.to_identifier(COVERAGE_GROUPS[group_by], quoted=True))
        query = query.select(exp.alias_(column, "grp")).group_by(exp.column("grp"))
    return _finish(query, total)


@lru_cache(maxsize=4)
def _utilization_sql(total: bool) -> str:
    return _finish(sqlglot.parse_one(UTILIZATION_SQL, read="bigquery"), total)


def _finish(query: exp.Expr, total: bool) -> str:
    """With TOTAL, the period column is NULL (one row for the whole range)."""
    if total:
        def no_period(node: exp.Expr) -> exp.Expr:
            return (exp.alias_(exp.cast(exp.null(), "DATE"), "period")
                    if isinstance(node, exp.Alias) and node.alias == "period" else node)

        query = query.transform(no_period)
        group = query.args["group"]
        group.set("expressions", [e for e in group.expressions if e.name != "period"])
    return query.sql(dialect="bigquery", comments=False)
