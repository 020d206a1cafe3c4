"""AWS Cost Explorer ``GetCostAndUsage`` answers (daily, per linked account and service) -> FOCUS.

Why this module exists: accounts without a CUR still have Cost Explorer. Its answer is an
aggregate (one row per day, linked account and service: no resources, usage types or line item
types), so every row is flagged ``aggregated:cost_explorer`` in ``x_DataQualityFlags``, but it
fits the same schema and reconciles exactly: BilledCost is the UnblendedCost amount as AWS wrote
it (a string in the API, parsed exactly), EffectiveCost is AmortizedCost.

The planner (`costflow.providers.aws.cost_explorer_api`) flattens the API's JSON into one
string column per field, named as the API names them: ``TimePeriodStart``/``TimePeriodEnd``
(dates), ``Estimated``,
the group keys ``LINKED_ACCOUNT`` and ``SERVICE``, each metric's ``Amount`` under the metric name
and its ``Unit`` under ``<Metric>Unit``, ``LinkedAccountName`` (DimensionValueAttributes
description) and ``PayerAccountId`` (which the API does not return: the planner's choice, see
there). Metrics without a FOCUS column (BlendedCost, NetUnblendedCost, NetAmortizedCost,
UsageQuantity, NormalizedUsageAmount) are kept whole in ``x_ProviderMetrics``.

[PF §2.6] = ../shared/reference/provider_formats.md §2.6 (GetCostAndUsage request/response).
[FOCUS x] = FOCUS 1.2 ``specification/columns/x.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.aws.cur import SERVICE_CATEGORIES, SERVICE_CODES, SERVICE_SUBCATEGORIES
from costflow.transforms.arrow_ops import (
    any_true,
    column,
    constant,
    fill_false,
    index_in,
    json_array_of_flags,
    json_object_from_columns,
    parse_decimal,
    parse_timestamp,
    take_values,
)
from costflow.transforms.contract import Mapped, RowError

# Request metrics, PascalCase as GetCostAndUsage takes and returns them [PF §2.6].
METRICS = ("UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost",
           "NetAmortizedCost", "UsageQuantity", "NormalizedUsageAmount")
GROUP_KEYS = ("LINKED_ACCOUNT", "SERVICE")
START, END, ESTIMATED = "TimePeriodStart", "TimePeriodEnd", "Estimated"
PAYER, ACCOUNT_NAME = "PayerAccountId", "LinkedAccountName"
REQUIRED = (START, END, *GROUP_KEYS, "UnblendedCost", "UnblendedCostUnit", "AmortizedCost",
            PAYER)
# Kept in x_ProviderMetrics: every metric but the two that are FOCUS columns, with its unit.
_OTHER_METRICS = {key: key for m in METRICS if m not in ("UnblendedCost", "AmortizedCost")
                  for key in (m, f"{m}Unit")}
# The SERVICE dimension's "Tax" value is the tax on the month's charges, not usage [PF §2.6].
_TAX_SERVICE = "Tax"


def _load_ce_services(path: Path) -> list[tuple[str, str]]:
    """Cost Explorer SERVICE names -> CUR product codes, every code known to aws_services.csv."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(r["ce_service"], r["product_code"]) for r in csv.DictReader(f)]
    unknown = sorted({code for _, code in rows if code not in SERVICE_CODES})
    if unknown:
        raise ValueError(f"{path}: product codes not in aws_services.csv: {unknown}")
    return rows


# Cost Explorer names services by their long name ("Amazon Elastic Compute Cloud - Compute"),
# the CUR by product code; one table bridges them so categories stay in aws_services.csv.
_CE_SERVICES = _load_ce_services(Path(__file__).with_name("mappings") / "aws_ce_services.csv")
_CE_NAMES = [name for name, _ in _CE_SERVICES]
_CE_CATEGORY_POSITIONS = [SERVICE_CODES.index(code) for _, code in _CE_SERVICES]


def _day_start(text: pa.Array, name: str) -> tuple[pa.Array, list[RowError]]:
    """'YYYY-MM-DD' (UTC day boundaries [PF §2.6]) -> timestamp at 00:00Z."""
    return parse_timestamp(pc.binary_join_element_wise(text, "T00:00:00Z", ""), name)


def _month_bounds(day: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Calendar month [start, end) of each day: Cost Explorer's months are billing periods."""
    start = pc.floor_temporal(day, 1, "month")
    end = pc.floor_temporal(pc.add(start, pa.scalar(32 * 86_400_000_000, pa.duration("us"))),
                            1, "month")
    return start, pc.cast(end, start.type)


class AwsCostExplorerNormalizer:
    """Flattened GetCostAndUsage rows (see the module docstring) -> cost_line_items."""

    provider: ClassVar[str] = "aws"
    source_format: ClassVar[str] = "aws_cost_explorer"
    basis_column: ClassVar[str] = "UnblendedCost"

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False  # this export has columns of its own: detect() decides

    def detect(self, columns: Sequence[str]) -> bool:
        return False  # only ever chosen by the aws-ce:// planner

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [c for c in REQUIRED if c not in names]

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Map one batch; rows that cannot be mapped are flagged in ``errors``, never dropped."""
        n = batch.num_rows
        errors: list[RowError] = []

        def text(name: str) -> pa.Array:
            return column(batch, name)

        def number(name: str) -> pa.Array:
            values, errs = parse_decimal(text(name), name)
            errors.extend(errs)
            return values

        for name, expected in ((PAYER, "the payer account ID, which is BillingAccountId"),
                               ("LINKED_ACCOUNT", "the linked account the cost belongs to"),
                               ("SERVICE", "the Cost Explorer service name"),
                               ("UnblendedCost", "the UnblendedCost Amount, the invoice basis"),
                               ("UnblendedCostUnit", "an ISO 4217 currency code such as USD")):
            mask = pc.is_null(text(name))
            if any_true(mask):
                errors.append(RowError(mask, name, f"is empty (expected {expected})"))
        day, errs = _day_start(text(START), START)
        errors.extend(errs)
        day_end, errs = _day_start(text(END), END)
        errors.extend(errs)
        period_start, period_end = _month_bounds(day)
        billed = number("UnblendedCost")            # [PF §2.6] UnblendedCost = invoice basis
        effective = number("AmortizedCost")         # commitments spread over covered usage
        service = text("SERVICE")
        tax = fill_false(pc.equal(service, _TAX_SERVICE))
        positions = index_in(service, _CE_NAMES)
        category_at = take_values(positions, _CE_CATEGORY_POSITIONS, pa.int32())
        flags = {
            "aggregated:cost_explorer": constant(True, n, pa.bool_()),
            # ResultsByTime[].Estimated: the month is not final yet, amounts may change [PF §2.6].
            "estimated:cost_explorer": fill_false(pc.equal(text(ESTIMATED), "true")),
            # CE gives no public or negotiated price: FOCUS listcost.md / contractedcost.md say
            # ListCost/ContractedCost match BilledCost when no better price is known.
            "ListCost:from_BilledCost": constant(True, n, pa.bool_()),
            "ContractedCost:from_BilledCost": constant(True, n, pa.bool_()),
            "ServiceCategory:unmapped": fill_false(pc.and_(pc.is_null(positions),
                                                           pc.invert(tax))),
        }
        aws = constant("AWS", n)
        linked = text("LINKED_ACCOUNT")
        columns: dict[str, pa.Array] = {
            "BilledCost": billed,
            "EffectiveCost": effective,
            "ListCost": billed,
            "ContractedCost": billed,
            "BillingCurrency": text("UnblendedCostUnit"),     # Amount's Unit is the currency
            "BillingAccountId": text(PAYER),                  # payer: the planner's choice
            "BillingAccountType": constant("Payer Account", n),
            "SubAccountId": linked,                           # GroupBy DIMENSION LINKED_ACCOUNT
            "SubAccountName": text(ACCOUNT_NAME),
            "SubAccountType": constant("Linked Account", n),
            "BillingPeriodStart": period_start,
            "BillingPeriodEnd": period_end,
            "ChargePeriodStart": day,                         # DAILY granularity: one day
            "ChargePeriodEnd": day_end,
            # Usage unless it is the Tax service; credits and refunds are netted into the
            # services' amounts by Cost Explorer, which the aggregated flag says.
            "ChargeCategory": pc.if_else(tax, "Tax", "Usage"),
            "ChargeFrequency": constant("Usage-Based", n),
            # PricingCategory stays null: one row mixes on-demand, Spot and committed usage.
            "ServiceName": service,                           # GroupBy DIMENSION SERVICE
            "ServiceCategory": pc.if_else(tax, "Other", take_values(
                category_at, SERVICE_CATEGORIES, default="Other")),
            "ServiceSubcategory": pc.if_else(tax, "Other (Other)", take_values(
                category_at, SERVICE_SUBCATEGORIES, default="Other (Other)")),
            "x_ServiceCode": take_values(positions, [c for _, c in _CE_SERVICES]),
            "ProviderName": aws, "PublisherName": aws, "ServiceProviderName": aws,
            "HostProviderName": aws, "InvoiceIssuerName": aws,
            "x_ProviderMetrics": json_object_from_columns(batch, _OTHER_METRICS),
            "x_DataQualityFlags": json_array_of_flags(flags, n),
        }
        return Mapped(columns=columns, source_basis=billed, errors=errors)
