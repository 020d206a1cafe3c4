"""Azure Cost Management cost exports (every variant) mapped to FOCUS, one batch at a time.

Why this module exists: Azure's cost data comes as EA (PascalCase, old and new names), MCA
(camelCase), legacy pay-as-you-go and localized exports, each as an actual-cost and an
amortized-cost dataset. One normalizer reads all of them through the alias table in
`costflow.providers.azure.headers`, so a fix applies to every variant at once.

Actual vs amortized [PF §3.1]: the two are never added. BilledCost is the actual cost;
EffectiveCost the amortized cost. Readers (`costflow.providers.azure.exports`) pair the two
exports of a month and add two synthetic columns to each batch:

* ``costflow:Dataset``: ``actual`` / ``amortized`` (a file given alone), ``actual+amortized``
  (an actual-cost row, with its amortized twin joined on), ``amortized-only`` (an amortized row
  with no actual twin: unused reservation/savings plan, covered usage the actual export omits),
  ``query`` (Cost Management Query API, aggregated). Absent means ``actual``.
* ``costflow:AmortizedCost``: the amortized twin's cost on ``actual+amortized`` rows.

Amortized-only rows get BilledCost 0 and source basis 0: they are not in the actual export, so
reconciliation stays exact against the sum of the ACTUAL cost column. A file loaded alone
reconciles against its own cost column, and every row says in ``x_DataQualityFlags`` which cost
could not be derived.

Slice account (BillingAccountId) per variant: the billing profile when the file has one (MCA:
FOCUS BillingAccountId is the billing profile [PF §3.2, finops-toolkit mapping.md]; EA files
carry the enrollment in both BillingProfileId and BillingAccountId), else BillingAccountId, else
the subscription (pay-as-you-go and CSP/customer exports, whose subscription is the billing
account; flagged). Reconciliation is per (that account, billing period).

Sources: [PF §3.x] ../shared/reference/provider_formats.md; [MAP] finops-toolkit
``docs-mslearn/focus/mapping.md`` (Microsoft's own cost-details -> FOCUS conversion);
[FOCUS x] FOCUS 1.2 ``specification/columns/x.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.azure import headers
from costflow.providers.azure.lookups import tables
from costflow.providers.azure.values import divide, multiply, normalize_tags, parse_date, zero
from costflow.transforms.arrow_ops import (
    DECIMAL,
    STRING,
    any_true,
    column,
    constant,
    fill_false,
    index_in,
    json_array_of_flags,
    map_values,
    null_where,
    parse_decimal,
    parse_quantity,
    take_values,
)
from costflow.transforms.contract import Mapped, RowError

DATASET, AMORTIZED_COST = "costflow:Dataset", "costflow:AmortizedCost"
# The user's --billing-currency, added by the reader only to files without a currency column.
ASSERTED_CURRENCY = "costflow:AssertedBillingCurrency"
_MICROSOFT = "Microsoft"  # one spelling for ProviderName/InvoiceIssuerName [MAP]
_NULL_STRING, _NULL_DECIMAL = pa.scalar(None, STRING), pa.scalar(None, DECIMAL)
_DAY = pa.scalar(timedelta(days=1), pa.duration("us"))


@dataclass(frozen=True)
class _Charge:
    """What one Azure ChargeType means in FOCUS terms [PF §3.1 values; MAP]."""

    category: str
    frequency: str
    pricing: str | None          # PricingCategory unless PricingModel refines it
    charge_class: str | None = None
    status: str | None = None    # CommitmentDiscountStatus


# ChargeType -> FOCUS [MAP ChargeCategory/ChargeClass/ChargeFrequency]. Unused reservation and
# savings plan hours are Usage of the commitment, Unused. Refund follows the AWS normalizer:
# Adjustment + Correction (money already invoiced, the refunded category is not named).
# A missing ChargeType column is the legacy usage-only export: every row is Usage.
_CHARGES: dict[str, _Charge] = {
    "usage": _Charge("Usage", "Usage-Based", "Standard"),
    "purchase": _Charge("Purchase", "One-Time", "Standard"),
    "tax": _Charge("Tax", "One-Time", None),
    "refund": _Charge("Adjustment", "One-Time", None, "Correction"),
    "roundingadjustment": _Charge("Adjustment", "One-Time", None),
    "unusedreservation": _Charge("Usage", "Usage-Based", "Committed", status="Unused"),
    "unusedsavingsplan": _Charge("Usage", "Usage-Based", "Committed", status="Unused"),
}
# Frequency column -> ChargeFrequency [PF §3.1: OneTime, Recurring, UsageBased].
_FREQUENCIES = {"onetime": "One-Time", "recurring": "Recurring", "usagebased": "Usage-Based"}
# PricingModel, spaces removed and lowercased ("On Demand" == "OnDemand") [PF §3.1] ->
# PricingCategory [FOCUS pricingcategory.md; MAP].
_PRICING = {"ondemand": "Standard", "reservation": "Committed", "savingsplan": "Committed",
            "spot": "Dynamic"}
_COMMITMENT_TYPE = {"reservation": "Reservation", "savingsplan": "Savings Plan",
                    "unusedreservation": "Reservation", "unusedsavingsplan": "Savings Plan"}
# [FOCUS commitmentdiscountcategory.md]: reservations commit to usage, savings plans to spend.
_COMMITMENT_CATEGORY = {"Reservation": "Usage", "Savings Plan": "Spend"}


def _key(arr: pa.Array) -> pa.Array:
    """Lowercase, spaces removed: tolerant matching of Azure enum spellings."""
    return pc.utf8_lower(pc.replace_substring(arr, " ", ""))


class _Work:
    """One batch being mapped: resolved columns, errors and data-quality flags."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch, self.n = batch, batch.num_rows
        self.names = headers.resolve(batch.schema.names)
        self.errors: list[RowError] = []
        self.flags: dict[str, pa.Array] = {}
        self.currency = self.text("currency")
        if not self.has("currency"):  # never guessed: asserted by the user, and flagged
            self.currency = column(batch, ASSERTED_CURRENCY)
            self.flag("BillingCurrency:asserted_by_user", pc.is_valid(self.currency))

    def has(self, canonical: str) -> bool:
        return canonical in self.names

    def text(self, canonical: str) -> pa.Array:
        return column(self.batch, self.names.get(canonical, ""))

    def label(self, canonical: str) -> str:
        return self.names.get(canonical, canonical)

    def add(self, errors: Sequence[RowError]) -> None:
        self.errors.extend(e for e in errors if any_true(e.mask))

    def number(self, canonical: str) -> pa.Array:
        values, errors = parse_decimal(self.text(canonical), self.label(canonical))
        self.add(errors)
        return values

    def quantity(self, canonical: str) -> pa.Array:
        """Quantity: digits beyond 18 places (Azure writes quantities such as
        0.0000000833333333333333) are rounded and flagged, not refused (`parse_quantity`)."""
        values, rounded, errors = parse_quantity(self.text(canonical), self.label(canonical))
        self.add(errors)
        self.flag("PricingQuantity:rounded", rounded)  # and ConsumedQuantity
        return values

    def date(self, canonical: str) -> pa.Array:
        values, errors = parse_date(self.text(canonical), self.label(canonical))
        self.add(errors)
        return values

    def require(self, canonical: str, reason: str) -> None:
        mask = fill_false(pc.is_null(self.text(canonical)))
        self.add([RowError(mask=mask, column=self.label(canonical), reason=reason)])

    def flag(self, name: str, mask: pa.Array | bool) -> None:
        if isinstance(mask, bool):
            mask = pa.repeat(pa.scalar(mask), self.n)
        self.flags[name] = fill_false(mask)


def _month_start(ts: pa.Array) -> pa.Array:
    return pc.floor_temporal(ts, unit="month")


def _periods(w: _Work) -> dict[str, pa.Array]:
    w.require("date", "is empty (expected the usage date, e.g. 09/21/2023)")
    day = w.date("date")
    # Azure's BillingPeriodEndDate is the last day, inclusive; FOCUS periods are [start, end).
    start, end = w.date("period_start"), w.date("period_end")
    derived = pc.is_null(start)
    w.flag("BillingPeriod:from_usage_date", derived)
    month = _month_start(day)
    next_month = _next_month(month)
    return {
        "ChargePeriodStart": day,
        "ChargePeriodEnd": pc.add(day, _DAY),
        "BillingPeriodStart": pc.coalesce(start, month),
        "BillingPeriodEnd": pc.coalesce(pc.add(end, _DAY), next_month),
    }


def _next_month(month: pa.Array) -> pa.Array:
    """First day of the following month (month starts + 31 days, floored)."""
    return pc.floor_temporal(pc.add(month, pa.scalar(timedelta(days=31), pa.duration("us"))),
                             unit="month")


def _accounts(w: _Work) -> dict[str, pa.Array]:
    sub = w.text("subscription_id")
    profile, account = w.text("billing_profile_id"), w.text("billing_account_id")
    billing = pc.coalesce(profile, account, sub)
    from_sub = fill_false(pc.and_(pc.is_null(profile), pc.is_null(account)))
    w.flag("BillingAccountId:from_SubscriptionId", from_sub)
    is_profile = fill_false(pc.and_(pc.is_valid(profile), pc.not_equal(profile, pc.coalesce(
        account, profile))))
    kind = pc.if_else(from_sub, "Subscription", pc.if_else(is_profile, "Billing Profile",
                                                            "Billing Account"))
    name = pc.if_else(is_profile, w.text("billing_profile_name"), pc.if_else(
        from_sub, w.text("subscription_name"), pc.coalesce(w.text("billing_account_name"),
                                                           w.text("billing_profile_name"))))
    currency, pricing_currency = w.currency, w.text("pricing_currency")
    differs = fill_false(pc.not_equal(pricing_currency, currency))
    return {
        "BillingAccountId": billing,
        "BillingAccountName": name,
        "BillingAccountType": kind,
        "SubAccountId": sub,                                    # [MAP SubAccountId]
        "SubAccountName": w.text("subscription_name"),
        "SubAccountType": pc.if_else(pc.is_valid(sub), "Subscription", _NULL_STRING),
        "x_ResourceGroupName": w.text("resource_group"),        # [PF §3.2 x_ResourceGroupName]
        "BillingCurrency": currency,
        "PricingCurrency": pc.if_else(differs, pricing_currency, _NULL_STRING),
        # The shared step (costflow.transforms.pricing_currency) derives the amounts from it.
        "x_PricingToBillingRate": w.number("pricing_to_billing_rate"),
        "InvoiceId": w.text("invoice_id"),                      # MCA invoiceId
        **{name: constant(_MICROSOFT, w.n) for name in (
            "ProviderName", "ServiceProviderName", "HostProviderName", "InvoiceIssuerName")},
        # Marketplace rows name their publisher [MAP PublisherName].
        "PublisherName": pc.coalesce(w.text("publisher_name"), constant(_MICROSOFT, w.n)),
    }


def _charges(w: _Work) -> tuple[dict[str, pa.Array], pa.Array, pa.Array]:
    """Charge columns; also the ChargeType key and PricingModel key used later."""
    if w.has("charge_type"):
        w.require("charge_type", "is empty (expected an Azure ChargeType such as Usage)")
        charge = _key(w.text("charge_type"))
    else:
        charge = constant("usage", w.n)
    positions = index_in(charge, list(_CHARGES))
    unknown = fill_false(pc.and_(pc.is_valid(charge), pc.is_null(positions)))
    w.add([RowError(mask=unknown, column=w.label("charge_type"), reason=(
        "is not a ChargeType this normalizer knows (expected one of: Usage, Purchase, Tax, "
        "Refund, RoundingAdjustment, UnusedReservation, UnusedSavingsPlan); it is "
        "dead-lettered rather than guessed"))])
    kinds = list(_CHARGES.values())
    model = _key(w.text("pricing_model"))
    pricing = take_values(positions, [k.pricing for k in kinds])
    usage = fill_false(pc.equal(charge, "usage"))
    refined = map_values(model, _PRICING)
    unknown_model = fill_false(pc.and_(pc.is_valid(model), pc.is_null(refined)))
    w.flag("PricingCategory:unknown_PricingModel", pc.and_(usage, unknown_model))
    pricing = pc.if_else(pc.and_(usage, pc.is_valid(refined)), refined, pricing)
    frequency = pc.coalesce(map_values(_key(w.text("frequency")), _FREQUENCIES),
                            take_values(positions, [k.frequency for k in kinds]))
    return {
        "ChargeCategory": take_values(positions, [k.category for k in kinds]),
        "ChargeClass": take_values(positions, [k.charge_class for k in kinds]),
        "ChargeFrequency": frequency,
        "PricingCategory": pricing,
        "ChargeDescription": pc.coalesce(w.text("product_name"), w.text("meter_name")),
        "x_LineItemType": w.text("charge_type"),
    }, charge, model


def _commitments(w: _Work, charge: pa.Array, model: pa.Array) -> dict[str, pa.Array]:
    """CommitmentDiscount* from benefitId/ReservationId and PricingModel [MAP; PF §3.1]."""
    kind_key = pc.if_else(pc.is_in(charge, value_set=pa.array(
        ["unusedreservation", "unusedsavingsplan"])), charge, model)
    ctype = map_values(kind_key, _COMMITMENT_TYPE)
    ids = pc.coalesce(w.text("benefit_id"), w.text("reservation_id"))
    related = fill_false(pc.and_(pc.is_valid(ctype), pc.is_valid(ids)))
    w.flag("CommitmentDiscountId:missing", pc.and_(pc.is_valid(ctype), pc.is_null(ids)))
    usage_like = pc.is_in(charge, value_set=pa.array(["usage", "unusedreservation",
                                                      "unusedsavingsplan"]))
    status = pc.if_else(fill_false(pc.is_in(charge, value_set=pa.array(
        ["unusedreservation", "unusedsavingsplan"]))), "Unused", "Used")
    return {
        "CommitmentDiscountId": null_where(ids, pc.invert(related)),
        "CommitmentDiscountName": null_where(pc.coalesce(w.text("benefit_name"),
                                                         w.text("reservation_name")),
                                             pc.invert(related)),
        "CommitmentDiscountType": null_where(ctype, pc.invert(related)),
        "CommitmentDiscountCategory": null_where(map_values(ctype, _COMMITMENT_CATEGORY),
                                                 pc.invert(related)),
        "CommitmentDiscountStatus": null_where(status, pc.invert(pc.and_(related, usage_like))),
    }


def _costs(w: _Work, charge: pa.Array, model: pa.Array, block: pa.Array,
           ) -> tuple[dict[str, pa.Array], pa.Array]:
    """BilledCost, EffectiveCost, List/Contracted costs and prices; returns the source basis."""
    w.require("cost", "is empty (expected the row's cost in the billing currency)")
    cost = w.number("cost")
    dataset = column(w.batch, DATASET)
    if dataset.null_count == len(dataset):
        dataset = constant("actual", w.n)
    dataset = pc.fill_null(dataset, "actual")

    def is_(name: str) -> pa.Array:
        return fill_false(pc.equal(dataset, name))

    amortized_only, joined = is_("amortized-only"), is_("actual+amortized")
    amortized_alone, actual_alone = is_("amortized"), is_("actual")
    amortized_cost, errors = parse_decimal(column(w.batch, AMORTIZED_COST), AMORTIZED_COST)
    w.add(errors)
    commitment_purchase = fill_false(pc.and_(pc.equal(charge, "purchase"), pc.is_in(
        model, value_set=pa.array(["reservation", "savingsplan"]))))
    no_twin = fill_false(pc.and_(joined, pc.is_null(amortized_cost)))
    billed = pc.if_else(amortized_only, zero(w.n), cost)
    effective = pc.if_else(pc.and_(joined, pc.is_valid(amortized_cost)), amortized_cost,
                           pc.if_else(pc.and_(no_twin, commitment_purchase), zero(w.n), cost))
    w.flag("BilledCost:from_amortized_cost", amortized_alone)
    w.flag("EffectiveCost:from_actual_cost", pc.or_(actual_alone, pc.and_(
        no_twin, pc.invert(commitment_purchase))))
    w.flag("BilledCost:not_in_actual_cost", amortized_only)
    w.flag("aggregated:query_api", is_("query"))
    basis = pc.if_else(amortized_only, zero(w.n), cost)

    quantity = w.quantity("quantity")
    payg_price, unit_price = w.number("payg_price"), w.number("unit_price")
    payg_cost = w.number("payg_cost")
    # [PF §3.1] EA has no list cost: PayGPrice x Quantity; MCA has paygCostInBillingCurrency.
    # Purchases, tax and adjustments have no list price: ListCost is BilledCost [FOCUS
    # listcost.md], as in the AWS normalizer.
    priced = fill_false(pc.is_in(charge, value_set=pa.array(
        ["usage", "unusedreservation", "unusedsavingsplan"])))
    list_cost = null_where(pc.coalesce(payg_cost, multiply(payg_price, quantity)),
                           pc.invert(priced))
    w.flag("ListCost:from_BilledCost", pc.and_(priced, pc.is_null(list_cost)))
    contracted = multiply(unit_price, quantity)
    priced = fill_false(pc.equal(charge, "usage"))
    w.flag("ContractedCost:from_BilledCost", pc.and_(priced, pc.is_null(contracted)))
    contracted = pc.if_else(priced, pc.coalesce(contracted, billed), billed)
    # Unit prices are per UnitOfMeasure block (e.g. "10K"); FOCUS prices per distinct unit
    # [finops-toolkit PricingUnits.csv PricingBlockSize].
    return {
        "BilledCost": billed,
        "EffectiveCost": effective,
        "ListCost": pc.coalesce(list_cost, billed),
        "ListUnitPrice": divide(payg_price, block),
        "ContractedCost": contracted,
        "ContractedUnitPrice": divide(unit_price, block),
        "x_DataQualityFlags": None,  # filled by the caller once every flag is known
    }, basis


def _lookup(keys: pa.Array, table_keys: list[str], *values: list[str]) -> tuple[pa.Array, ...]:
    positions = index_in(keys, table_keys)
    return (positions, *(take_values(positions, v) for v in values))


def _quantities(w: _Work, charge: pa.Array) -> tuple[dict[str, pa.Array], pa.Array]:
    t = tables()
    unit = w.text("unit")
    positions, block_text, distinct = _lookup(unit, t.unit_keys, t.unit_block_sizes,
                                              t.unit_distinct)
    w.flag("PricingUnit:unmapped", pc.and_(pc.is_valid(unit), pc.is_null(positions)))
    block, _ = parse_decimal(pc.fill_null(block_text, "1"), "PricingBlockSize")
    quantity = w.quantity("quantity")
    tax = fill_false(pc.equal(charge, "tax"))
    consumed = fill_false(pc.equal(charge, "usage"))
    in_units = multiply(quantity, block)
    units = pc.coalesce(distinct, unit)
    return {
        "PricingQuantity": null_where(in_units, tax),            # null on Tax [FOCUS]
        "PricingUnit": null_where(units, tax),
        "ConsumedQuantity": null_where(in_units, pc.invert(consumed)),
        "ConsumedUnit": null_where(units, pc.invert(consumed)),
    }, block


def _resource_type(resource_id: pa.Array) -> pa.Array:
    """``/subscriptions/../providers/Microsoft.Sql/servers/s/databases/d`` ->
    ``microsoft.sql/servers/databases``; top level when nested types are absent."""
    lower = pc.utf8_lower(resource_id)
    nested = pc.extract_regex(lower, r"/providers/(?P<ns>[^/]+)/(?P<t1>[^/]+)/[^/]+/"
                                     r"(?P<t2>[^/]+)/[^/]+$")
    top = pc.extract_regex(lower, r"/providers/(?P<ns>[^/]+)/(?P<t1>[^/]+)")
    nested_text = pc.binary_join_element_wise(
        pc.struct_field(nested, "ns"), pc.struct_field(nested, "t1"),
        pc.struct_field(nested, "t2"), "/")
    top_text = pc.binary_join_element_wise(pc.struct_field(top, "ns"),
                                           pc.struct_field(top, "t1"), "/")
    return pc.coalesce(nested_text, top_text)


@cache
def _lower_names(names: tuple[str, ...]) -> list[str]:
    return [n.lower() for n in names]


def _lower(names: list[str]) -> list[str]:
    return _lower_names(tuple(names))


def _blank_null(arr: pa.Array) -> pa.Array:
    return null_where(arr, pc.equal(arr, ""))


def _service_location_resource(w: _Work) -> dict[str, pa.Array]:
    t = tables()
    resource_id = w.text("resource_id")
    rtype = pc.coalesce(pc.utf8_lower(w.text("resource_type")), _resource_type(resource_id))
    consumed = pc.utf8_lower(pc.fill_null(w.text("consumed_service"), ""))
    key = pc.binary_join_element_wise(consumed, pc.fill_null(rtype, ""), "|")
    positions, name, category, subcategory = _lookup(
        key, t.service_keys, t.service_names, t.service_categories, t.service_subcategories)
    # Fallback: the same resource type under any consumed service [finops-toolkit Services].
    by_type = index_in(pc.binary_join_element_wise("", pc.fill_null(rtype, ""), "|"),
                       t.service_keys)
    # Then the service name itself (Query API and legacy exports carry ServiceName only).
    by_name = index_in(pc.utf8_lower(w.text("service_name")), _lower(t.service_names))
    positions = pc.coalesce(positions, by_type, by_name)
    unmapped = pc.is_null(positions)
    w.flag("ServiceCategory:unmapped", unmapped)
    service_name = pc.coalesce(take_values(positions, t.service_names),
                               w.text("service_name"), w.text("meter_category"),
                               w.text("consumed_service"))
    location = pc.coalesce(w.text("location"), w.text("meter_region"))
    region_pos, region_id, region_name = _lookup(pc.utf8_lower(location), t.region_keys,
                                                 t.region_ids, t.region_names)
    w.flag("RegionId:unmapped", pc.and_(pc.is_valid(location), pc.is_null(region_pos)))
    type_pos = index_in(rtype, t.type_keys)
    tags, errors = normalize_tags(w.text("tags"), w.label("tags"))
    w.add(errors)
    w.require("subscription_id", "is empty (expected the subscription GUID, SubAccountId)")
    sku_id = pc.coalesce(w.text("product_id"), w.text("part_number"))
    meter_id = w.text("meter_id")
    return {
        "ServiceName": service_name,
        "ServiceCategory": take_values(positions, t.service_categories, default="Other"),
        "ServiceSubcategory": take_values(positions, t.service_subcategories,
                                          default="Other (Other)"),
        "x_ServiceCode": w.text("consumed_service"),
        "x_UsageType": w.text("meter_subcategory"),
        "x_Operation": w.text("meter_name"),
        "RegionId": pc.coalesce(region_id, location),
        "RegionName": pc.coalesce(region_name, location),
        "AvailabilityZone": w.text("availability_zone"),
        "ResourceId": resource_id,
        "ResourceName": _blank_null(pc.coalesce(w.text("resource_name"),
                                                pc.replace_substring_regex(resource_id,
                                                                           r"^.*/", ""))),
        "ResourceType": pc.coalesce(take_values(type_pos, t.type_names), rtype),
        "SkuId": sku_id,                                                    # [MAP SkuId]
        # A price belongs to one SKU (SkuPriceId-C-008-M), and one meter can be sold under
        # several part numbers / products: the price id is the pair, "<SkuId>_<MeterId>".
        "SkuPriceId": pc.if_else(pc.is_valid(sku_id), pc.if_else(
            pc.is_valid(meter_id), pc.binary_join_element_wise(
                pc.fill_null(sku_id, ""), pc.fill_null(meter_id, ""), "_"), _NULL_STRING),
            meter_id),
        "SkuMeter": w.text("meter_name"),                                   # [MAP SkuMeter]
        "Tags": tags,
    }


class AzureCostNormalizer:
    """Azure cost details (EA, MCA, PAYG, localized; actual/amortized) -> FOCUS."""

    provider: ClassVar[str] = "azure"
    source_format: ClassVar[str] = "azure_cost_details"
    basis_column: ClassVar[str] = "CostInBillingCurrency"  # or Cost / PreTaxCost [PF §3.1]

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False  # this export has columns of its own: detect() decides

    def detect(self, columns: Sequence[str]) -> bool:
        """An Azure header: a date, a cost and a subscription column under any alias."""
        return headers.is_azure_export(columns)

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        return headers.missing(columns)

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Map one batch; rows that cannot be mapped are flagged in ``errors``, never dropped."""
        w = _Work(batch)
        columns: dict[str, pa.Array] = {}
        columns.update(_periods(w))
        columns.update(_accounts(w))
        charges, charge, model = _charges(w)
        columns.update(charges)
        columns.update(_commitments(w, charge, model))
        quantities, block = _quantities(w, charge)
        columns.update(quantities)
        costs, basis = _costs(w, charge, model, block)
        columns.update(costs)
        columns.update(_service_location_resource(w))
        w.add([RowError(mask=fill_false(pc.is_null(w.currency)), column=w.label("currency"),
                        reason="is empty (expected an ISO 4217 currency code such as USD)")])
        columns["x_DataQualityFlags"] = json_array_of_flags(w.flags, w.n)
        return Mapped(columns=columns, source_basis=basis, errors=w.errors)


class AzureQueryNormalizer(AzureCostNormalizer):
    """Cost Management Query API rows (already renamed to export headers by the reader)."""

    source_format: ClassVar[str] = "azure_cost_query"

    def detect(self, columns: Sequence[str]) -> bool:
        return False  # only ever chosen by the azure-query:// planner
