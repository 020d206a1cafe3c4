"""AWS Cost and Usage Report mapped to FOCUS: legacy CSV, legacy Parquet and CUR 2.0, one mapping.

Why this module exists: the legacy CUR is what most AWS payers still export, and the most detailed
statement of what AWS billed, but it speaks AWS, not FOCUS. Charge categories, amortized cost,
commitment columns and service categories all have to be derived from AWS's own columns. This
module derives them for one record batch at a time, vectorized with `pyarrow.compute`, and flags
every row it cannot map (unknown line item type, unparseable number or date, missing amortization
input) with a `RowError` instead of guessing. BilledCost is ``lineItem/UnblendedCost`` unchanged,
so the warehouse reconciles to the CUR to the last decimal.

The mapping is written once, over canonical column names (the legacy CSV headers). The three
shapes AWS delivers (legacy CSV ``lineItem/UnblendedCost``, legacy Parquet
``line_item_unblended_cost``, CUR 2.0 snake_case with map columns) only supply their spelling
and their values as text (`costflow.providers.aws.cur_shapes`), so the same month gives the
same FOCUS rows whichever shape it came in.

Sources cited in the comments:
    [PF §2.1]  ../shared/reference/provider_formats.md §2.1 (columns, line item types, the
               EffectiveCost table).
    [CUR]      AWS CUR user guide, awsdocs/aws-cur-user-guide ``doc_source/*-columns.md``.
    [FC x]     finopsfoundation/focus_converters ``conversion_configs/aws/x.yaml``.
    [FOCUS x]  FOCUS 1.2 ``specification/columns/x.md`` (FinOps-Open-Cost-and-Usage-Spec).
    [FOCUS13 x] FOCUS 1.3 ``specification/columns/x.md`` (ServiceProviderName, HostProviderName).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.aws.cur_shapes import (
    COST_CATEGORIES,
    CUR2,
    CUR2_MARKERS,
    DISCOUNTS,
    LEGACY_CSV,
    LEGACY_PARQUET,
    TAGS,
    Shape,
)
from costflow.transforms.arrow_ops import (
    DECIMAL,
    STRING,
    TIMESTAMP,
    any_true,
    constant,
    decimal_add,
    decimal_subtract,
    fill_false,
    index_in,
    json_array_of_flags,
    map_values,
    null_where,
    on_distinct,
    parse_decimal,
    parse_quantity,
    parse_timestamp,
    take_values,
)
from costflow.transforms.contract import Mapped, RowError
from costflow.transforms.lookup_tables import read_lookup
from costflow.transforms.service_mapping import read_service_table

PAYER, PAYER_NAME = "bill/PayerAccountId", "bill/PayerAccountName"
PERIOD_START, PERIOD_END = "bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate"
INVOICE_ID, INVOICING_ENTITY, BILLING_ENTITY = (
    "bill/InvoiceId", "bill/InvoicingEntity", "bill/BillingEntity")
LINE_ITEM_TYPE, USAGE_START, USAGE_END = (
    "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate")
USAGE_ACCOUNT, USAGE_ACCOUNT_NAME = "lineItem/UsageAccountId", "lineItem/UsageAccountName"
PRODUCT_CODE, USAGE_TYPE, OPERATION = (
    "lineItem/ProductCode", "lineItem/UsageType", "lineItem/Operation")
CURRENCY, UNBLENDED_COST, UNBLENDED_RATE = (
    "lineItem/CurrencyCode", "lineItem/UnblendedCost", "lineItem/UnblendedRate")
USAGE_AMOUNT, DESCRIPTION = "lineItem/UsageAmount", "lineItem/LineItemDescription"
AZ, RESOURCE_ID = "lineItem/AvailabilityZone", "lineItem/ResourceId"
LEGAL_ENTITY = "lineItem/LegalEntity"
PRODUCT_NAME, PRODUCT_FAMILY, SKU = "product/ProductName", "product/productFamily", "product/sku"
REGION_CODE, REGION, LOCATION = "product/regionCode", "product/region", "product/location"
PUBLIC_COST, PUBLIC_RATE = "pricing/publicOnDemandCost", "pricing/publicOnDemandRate"
PRICING_TERM, PRICING_UNIT, PRICING_CURRENCY, RATE_CODE = (
    "pricing/term", "pricing/unit", "pricing/currency", "pricing/RateCode")
RI_ARN, RI_EFFECTIVE_COST, RI_UNUSED_QUANTITY = (
    "reservation/ReservationARN", "reservation/EffectiveCost", "reservation/UnusedQuantity")
RI_UNUSED_UPFRONT = "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"
RI_UNUSED_RECURRING = "reservation/UnusedRecurringFee"
SP_ARN, SP_EFFECTIVE_COST = "savingsPlan/SavingsPlanARN", "savingsPlan/SavingsPlanEffectiveCost"
SP_TOTAL_COMMITMENT, SP_USED_COMMITMENT = (
    "savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment")
MARKETPLACE = "AWS Marketplace"  # bill/BillingEntity of Marketplace purchases [PF §2.1]

# Source columns that feed a NOT NULL FOCUS column; every other column may be absent in a month.
REQUIRED = (PAYER, PERIOD_START, PERIOD_END, LINE_ITEM_TYPE, USAGE_START, USAGE_END,
            PRODUCT_CODE, CURRENCY, UNBLENDED_COST)


@dataclass(frozen=True)
class _Kind:
    """What one ``lineItem/LineItemType`` value means in FOCUS terms."""

    category: str               # ChargeCategory
    frequency: str              # ChargeFrequency
    pricing: str | None         # PricingCategory (Usage rows refine it from pricing/term)
    list_cost: str              # "public": pricing/publicOnDemandCost; "billed"; "zero"
    status: str | None = None   # CommitmentDiscountStatus when the row names a commitment
    charge_class: str | None = None


# Line item types [CUR Lineitem-columns.md; PF §2.1 adds BundledDiscount, Discount, EdpDiscount,
# PrivateRateDiscount]. Anything else is a RowError: a new AWS type must be mapped by a person.
# ChargeCategory follows FOCUS 1.2 [FOCUS chargecategory.md]: covered usage and its negation are
# Usage; RI/SP fees and other Fees are Purchase [FC 1_charge_category_S001]; discounts and credits
# are Credit (provider reductions, not usage). Refund is Adjustment + ChargeClass Correction: FOCUS
# files a refund under the refunded charge's category, which a CUR Refund row does not name, and
# AWS refunds money already invoiced [FOCUS chargeclass.md].
# ChargeFrequency [FOCUS chargefrequency.md]: Fee is the upfront fee [CUR]; RI/SP recurring fees
# are Recurring; Tax and discounts follow the usage they apply to; Credit/Refund are One-Time.
# PricingCategory [FOCUS pricingcategory.md]: null for Tax (MUST), null for Credit/Adjustment
# (MAY); Committed for usage a commitment covers; Standard for purchases at agreed rates.
# list_cost [FOCUS listcost.md]: priced rows use AWS's public on-demand cost; rows without a list
# price use BilledCost (Credit/Refund: "MUST match BilledCost"; Tax: levied on what was billed);
# discounts and the SP negation are 0 at list (the usage row already carries the list cost).
# status [FOCUS commitmentdiscountstatus.md]: Used on covered usage; Unused on RIFee and
# SavingsPlanRecurringFee, whose EffectiveCost is exactly the unused commitment [PF §2.1].
_KINDS: dict[str, _Kind] = {
    "Usage": _Kind("Usage", "Usage-Based", "Standard", "public"),
    "DiscountedUsage": _Kind("Usage", "Usage-Based", "Committed", "public", "Used"),
    "SavingsPlanCoveredUsage": _Kind("Usage", "Usage-Based", "Committed", "public", "Used"),
    "SavingsPlanNegation": _Kind("Usage", "Usage-Based", "Committed", "zero", "Used"),
    "SavingsPlanUpfrontFee": _Kind("Purchase", "One-Time", "Standard", "public"),
    "SavingsPlanRecurringFee": _Kind("Purchase", "Recurring", "Standard", "public", "Unused"),
    "RIFee": _Kind("Purchase", "Recurring", "Standard", "public", "Unused"),
    "Fee": _Kind("Purchase", "One-Time", "Standard", "public"),
    "Tax": _Kind("Tax", "Usage-Based", None, "billed"),
    "Credit": _Kind("Credit", "One-Time", None, "billed"),
    "Refund": _Kind("Adjustment", "One-Time", None, "billed", charge_class="Correction"),
    "BundledDiscount": _Kind("Credit", "Usage-Based", None, "zero"),
    "Discount": _Kind("Credit", "Usage-Based", None, "zero"),
    "EdpDiscount": _Kind("Credit", "Usage-Based", None, "zero"),
    "PrivateRateDiscount": _Kind("Credit", "Usage-Based", None, "zero"),
}
_TYPE_NAMES = tuple(_KINDS)
_TYPE_INDEX = {name: i for i, name in enumerate(_TYPE_NAMES)}
_SP_TYPES = ("SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee",
             "SavingsPlanUpfrontFee")
_CONSUMPTION_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
_ZERO = pa.scalar(Decimal(0), DECIMAL)
_NULL_DECIMAL, _NULL_STRING = pa.scalar(None, DECIMAL), pa.scalar(None, STRING)
_AWS = "AWS"  # one spelling for every provider-name column (validator rule BilledCost-C-005-C)


def load_services(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The product code -> ServiceCategory/Subcategory table, checked on reading."""
    rows = read_service_table(path, key="product_code")
    return ([r["product_code"] for r in rows], [r["service_category"] for r in rows],
            [r["service_subcategory"] for r in rows])


# Loaded once at import; every subcategory checked against FOCUS 1.2 [FOCUS servicesubcategory.md].
SERVICE_CODES, SERVICE_CATEGORIES, SERVICE_SUBCATEGORIES = load_services(
    Path(__file__).with_name("mappings") / "aws_services.csv")


class _Work:
    """One batch being mapped: parsed values, the errors found and the data-quality flags."""

    def __init__(self, batch: pa.RecordBatch, shape: Shape) -> None:
        self.batch, self.n, self.shape = batch, batch.num_rows, shape
        self.errors: list[RowError] = []
        self.flags: dict[str, pa.Array] = {}
        self._texts: dict[str, pa.Array] = {}
        self.kinds = index_in(self.text(LINE_ITEM_TYPE), _TYPE_NAMES)

    def label(self, name: str) -> str:
        """The column as this shape spells it, for error messages."""
        return self.shape.label(name, self.batch)

    def text(self, name: str) -> pa.Array:
        """Canonical column ``name`` as text, whatever the shape (read once per batch)."""
        if name not in self._texts:
            values, errors = self.shape.text(self.batch, name)
            self.add_errors(errors)
            self._texts[name] = values
        return self._texts[name]

    def family(self, prefix: str) -> pa.Array:
        """Tags, cost categories or discounts as one JSON object per row."""
        values, errors = self.shape.family_json(self.batch, prefix)
        self.add_errors(errors)
        return values

    def add_errors(self, errors: Sequence[RowError], used_on: pa.Array | None = None) -> None:
        """Keep errors, limited to the rows that use the value (so a row's fate never depends
        on which other rows share its batch)."""
        for e in errors:
            mask = e.mask if used_on is None else fill_false(pc.and_(e.mask, used_on))
            if any_true(mask):
                self.errors.append(RowError(mask=mask, column=e.column, reason=e.reason))

    def number(self, name: str, used_on: pa.Array | None = None) -> pa.Array:
        values, errors = parse_decimal(self.text(name), self.label(name))
        self.add_errors(errors, used_on)
        return values

    def quantity(self, name: str) -> pa.Array:
        """A usage amount: digits beyond 18 places are rounded and flagged, not refused
        (`parse_quantity`); money columns keep `number`'s refusal to round."""
        values, rounded, errors = parse_quantity(self.text(name), self.label(name))
        self.add_errors(errors)
        self.flag("PricingQuantity:rounded", rounded)  # and ConsumedQuantity
        return values

    def timestamp(self, name: str, column: str) -> pa.Array:
        raw = self.shape.raw(self.batch, name)
        if pa.types.is_timestamp(raw.type):  # Parquet: already a timestamp, stated in UTC
            return pc.cast(raw, TIMESTAMP)
        text = self.text(name)
        # CUR times are UTC by definition (legacy CUR and CUR 2.0 data dictionaries), yet some
        # deliveries write them without a zone ("2023-06-01 00:00:00"): those are read as UTC
        # and the row flagged <FOCUS column>:zoneless_utc. Anything else without a zone (a date
        # alone, "06/01/2023 12:00 AM") is still refused by parse_timestamp.
        zoneless = fill_false(on_distinct(text, _zoneless))  # an hour's rows share a text
        if any_true(zoneless):
            text = pc.if_else(zoneless, pc.binary_join_element_wise(text, "Z", ""), text)
            self.flag(f"{column}:zoneless_utc", zoneless)
        values, errors = parse_timestamp(text, self.label(name))
        self.add_errors(errors)
        return values

    def require(self, name: str, reason: str, rows: pa.Array | None = None) -> None:
        """A RowError for rows (all, or ``rows``) where source column ``name`` is empty."""
        mask = pc.is_null(self.text(name))
        self.add_errors([RowError(mask=mask, column=self.label(name), reason=reason)], rows)

    def of_type(self, *names: str) -> pa.BooleanArray:
        positions = pa.array([_TYPE_INDEX[n] for n in names], pa.int32())
        return fill_false(pc.is_in(self.kinds, value_set=positions))

    def kind(self, attribute: str) -> pa.Array:
        return take_values(self.kinds, [getattr(k, attribute) for k in _KINDS.values()])

    def flag(self, name: str, mask: pa.Array) -> None:
        self.flags[name] = fill_false(mask)


def _check_required_values(w: _Work) -> None:
    """RowErrors for rows whose NOT NULL inputs are empty or whose line item type is unknown."""
    w.require(LINE_ITEM_TYPE, "is empty (expected a CUR line item type such as Usage or Tax)")
    unknown = pc.and_(pc.is_valid(w.text(LINE_ITEM_TYPE)), pc.is_null(w.kinds))
    w.add_errors([RowError(mask=fill_false(unknown), column=w.label(LINE_ITEM_TYPE), reason=(
        "is not a line item type this normalizer knows (expected one of: "
        f"{', '.join(_TYPE_NAMES)}); it is dead-lettered rather than guessed"))])
    w.require(PAYER, "is empty (expected the payer account ID, which is BillingAccountId)")
    w.require(CURRENCY, "is empty (expected an ISO 4217 currency code such as USD)")
    w.require(UNBLENDED_COST, "is empty (expected the line item's cost, the invoice basis)")
    for name in (PERIOD_START, PERIOD_END, USAGE_START, USAGE_END):
        w.require(name, "is empty (expected an ISO 8601 timestamp such as 2023-11-01T00:00:00Z)")
    both_empty = pc.and_(pc.is_null(w.text(PRODUCT_CODE)), pc.is_null(w.text(PRODUCT_NAME)))
    w.add_errors([RowError(mask=fill_false(both_empty), column=w.label(PRODUCT_CODE), reason=(
        f"and {w.label(PRODUCT_NAME)} are both empty (expected the service the charge is for)"))])


def _accounts_and_parties(w: _Work) -> dict[str, pa.Array]:
    sub_account = w.text(USAGE_ACCOUNT)
    currency, pricing_currency = w.text(CURRENCY), w.text(PRICING_CURRENCY)
    differs = fill_false(pc.not_equal(pricing_currency, currency))
    # AWS does not say which currency pricing/public* are in when pricing/currency differs.
    w.flag("ListCost:currency_unverified", differs)
    return {
        "BillingAccountId": w.text(PAYER),                        # [FC billing_account_id_S001]
        "BillingAccountName": w.text(PAYER_NAME),                 # CUR 2.0 column; legacy: null
        "BillingAccountType": constant("Payer Account", w.n),     # [CUR] bill/PayerAccountId
        "SubAccountId": sub_account,                              # [FC sub_account_id_S001]
        "SubAccountName": w.text(USAGE_ACCOUNT_NAME),             # CUR 2.0 column; legacy: null
        # Cost Explorer calls member accounts LINKED_ACCOUNT [PF §2.6].
        "SubAccountType": pc.if_else(pc.is_valid(sub_account), "Linked Account", _NULL_STRING),
        "BillingCurrency": currency,                              # [FC billing_currency_S001]
        # [FOCUS pricingcurrency.md]: only when it differs from the billing currency.
        "PricingCurrency": pc.if_else(differs, pricing_currency, _NULL_STRING),
        # [CUR] blank until the month is invoiced: null InvoiceId marks a not-yet-final bill.
        "InvoiceId": w.text(INVOICE_ID),
        **_providers(w),
        "x_InvoicingEntity": w.text(INVOICING_ENTITY),
        "x_BillingEntity": w.text(BILLING_ENTITY),
    }


def _providers(w: _Work) -> dict[str, pa.Array]:
    """Provider, publisher, service provider, host and invoice issuer names.

    AWS invoices everything in the CUR, Marketplace purchases included (bill/InvoicingEntity is
    an Amazon entity), so InvoiceIssuerName and ProviderName are "AWS" on every row, spelled
    alike so BilledCost-C-005-C holds (BilledCost must be 0 when they differ); the legal
    entities stay in x_InvoicingEntity / x_BillingEntity. On Marketplace rows (bill/BillingEntity
    "AWS Marketplace") the seller of record, lineItem/LegalEntity [CUR], is the publisher and
    the service provider [FOCUS13 serviceprovidername.md]. Its host is AWS when the charge is
    for an AWS resource (an AMI or container product runs on the buyer's instance, so the row
    has a ResourceId); a SaaS subscription without one is hosted by the seller, which the CUR
    does not state: flagged HostProviderName:assumed_seller.
    """
    aws = constant(_AWS, w.n)
    market = fill_false(pc.equal(w.text(BILLING_ENTITY), MARKETPLACE))
    if not any_true(market):
        return {name: aws for name in ("ProviderName", "PublisherName", "ServiceProviderName",
                                       "HostProviderName", "InvoiceIssuerName")}
    seller = w.text(LEGAL_ENTITY)
    w.flag("ServiceProviderName:seller_unknown", pc.and_(market, pc.is_null(seller)))
    seller = pc.if_else(market, pc.coalesce(seller, MARKETPLACE), aws)
    saas = pc.and_(market, pc.is_null(w.text(RESOURCE_ID)))
    w.flag("HostProviderName:assumed_seller", saas)
    return {"ProviderName": aws, "InvoiceIssuerName": aws, "PublisherName": seller,
            "ServiceProviderName": seller, "HostProviderName": pc.if_else(saas, seller, aws)}


def _charge(w: _Work) -> dict[str, pa.Array]:
    usage = w.of_type("Usage")
    term, usage_type = w.text(PRICING_TERM), w.text(USAGE_TYPE)
    # Spot usage: pricing/term "Spot" or a "SpotUsage" usage type [CUR pricing/product columns].
    spot = fill_false(pc.and_(usage, pc.or_kleene(
        pc.equal(term, "Spot"), pc.match_substring(usage_type, "SpotUsage"))))
    reserved = fill_false(pc.and_(usage, pc.equal(term, "Reserved")))
    pricing = pc.if_else(spot, "Dynamic", pc.if_else(reserved, "Committed", w.kind("pricing")))
    return {
        "ChargeCategory": w.kind("category"),
        "ChargeClass": w.kind("charge_class"),
        "ChargeFrequency": w.kind("frequency"),
        "PricingCategory": pricing,
        "ChargeDescription": w.text(DESCRIPTION),                 # [FC charge_description_S001]
        # [FC billing_period_start_S001]
        "BillingPeriodStart": w.timestamp(PERIOD_START, "BillingPeriodStart"),
        "BillingPeriodEnd": w.timestamp(PERIOD_END, "BillingPeriodEnd"),
        # [FC charge_period_start_S001]
        "ChargePeriodStart": w.timestamp(USAGE_START, "ChargePeriodStart"),
        "ChargePeriodEnd": w.timestamp(USAGE_END, "ChargePeriodEnd"),
        "x_LineItemType": w.text(LINE_ITEM_TYPE),
        "x_UsageType": usage_type,
        "x_Operation": w.text(OPERATION),
    }


def _list_and_contracted(w: _Work, billed: pa.Array) -> dict[str, pa.Array]:
    """ListCost/ListUnitPrice and ContractedCost/ContractedUnitPrice (both NOT NULL costs)."""
    public_cost, public_rate = w.number(PUBLIC_COST), w.number(PUBLIC_RATE)
    unblended_rate = w.number(UNBLENDED_RATE)
    rule = w.kind("list_cost")
    priced = fill_false(pc.equal(rule, "public"))
    use_public = pc.and_(priced, pc.is_valid(public_cost))
    # [FC list_cost_S001] keeps AWS's public cost; when it is empty there is no list price, and
    # FOCUS listcost.md says such a charge's ListCost matches BilledCost.
    w.flag("ListCost:from_BilledCost", pc.and_(priced, pc.is_null(public_cost)))
    list_cost = pc.if_else(use_public, public_cost, pc.if_else(
        fill_false(pc.equal(rule, "zero")), _ZERO, billed))
    # ContractedCost = cost at agreed rates before commitment discounts [FOCUS contractedcost.md].
    # The legacy CUR has no contracted price: UnblendedCost is it, except RI-covered usage, whose
    # unblended cost is 0 (the RIFee carries it), so its on-demand cost stands in; the SP
    # negation is the commitment discount itself, so it is 0 before commitment discounts.
    discounted, negation = w.of_type("DiscountedUsage"), w.of_type("SavingsPlanNegation")
    w.flag("ContractedCost:from_BilledCost", pc.and_(discounted, pc.is_null(public_cost)))
    contracted = pc.if_else(discounted, pc.coalesce(public_cost, billed), billed)
    contracted = pc.if_else(negation, _ZERO, contracted)
    contracted_unit = pc.if_else(
        w.of_type("Usage", "SavingsPlanCoveredUsage"), unblended_rate,
        pc.if_else(discounted, public_rate, _NULL_DECIMAL))
    return {
        "ListCost": list_cost,
        "ListUnitPrice": pc.if_else(use_public, public_rate, _NULL_DECIMAL),  # [FC list_unit_price]
        "ContractedCost": contracted,
        "ContractedUnitPrice": contracted_unit,
    }


def _savings_plan_amortization(w: _Work, billed: pa.Array, effective: pa.Array,
                               quantity: pa.Array) -> tuple[pa.Array, pa.Array]:
    """EffectiveCost and CommitmentDiscountQuantity of Savings Plan rows [PF §2.1].

    Covered usage costs its SavingsPlanEffectiveCost; the recurring fee carries the unused
    commitment, TotalCommitmentToDate - UsedCommitment. Quantities are spend in currency:
    consumed, unused, or paid upfront [FOCUS commitmentdiscountquantity.md]; the negation
    consumes nothing, so commitment use is not counted twice.
    """
    covered, recurring = w.of_type("SavingsPlanCoveredUsage"), w.of_type("SavingsPlanRecurringFee")
    for name, rows in ((SP_EFFECTIVE_COST, covered), (SP_TOTAL_COMMITMENT, recurring),
                       (SP_USED_COMMITMENT, recurring)):
        w.require(name, "is empty on a Savings Plan line item that needs it for EffectiveCost "
                  "(provider_formats.md §2.1)", rows)
    sp_cost = w.number(SP_EFFECTIVE_COST, covered)
    unused, errors = decimal_subtract(w.number(SP_TOTAL_COMMITMENT, recurring),
                                      w.number(SP_USED_COMMITMENT, recurring), "EffectiveCost")
    w.add_errors(errors, recurring)
    effective = pc.if_else(recurring, unused, pc.if_else(covered, sp_cost, effective))
    quantity = pc.if_else(covered, sp_cost, pc.if_else(recurring, unused, pc.if_else(
        w.of_type("SavingsPlanUpfrontFee"), billed, quantity)))
    return effective, quantity


def _reservation_amortization(w: _Work, usage_amount: pa.Array, effective: pa.Array,
                              quantity: pa.Array) -> tuple[pa.Array, pa.Array]:
    """EffectiveCost and CommitmentDiscountQuantity of reserved-instance rows [PF §2.1].

    Covered usage costs reservation/EffectiveCost (amortized upfront + recurring per hour); the
    RIFee carries the unused part, UnusedAmortizedUpfrontFeeForBillingPeriod +
    UnusedRecurringFee. Quantities are hours: covered, or left unused.
    """
    discounted, fee = w.of_type("DiscountedUsage"), w.of_type("RIFee")
    for name, rows in ((RI_EFFECTIVE_COST, discounted), (RI_UNUSED_UPFRONT, fee),
                       (RI_UNUSED_RECURRING, fee)):
        w.require(name, "is empty on a reservation line item that needs it for EffectiveCost "
                  "(provider_formats.md §2.1)", rows)
    ri_cost = w.number(RI_EFFECTIVE_COST, discounted)
    unused, errors = decimal_add(w.number(RI_UNUSED_UPFRONT, fee),
                                 w.number(RI_UNUSED_RECURRING, fee), "EffectiveCost")
    w.add_errors(errors, fee)
    effective = pc.if_else(fee, unused, pc.if_else(discounted, ri_cost, effective))
    quantity = pc.if_else(discounted, usage_amount, pc.if_else(
        fee, w.number(RI_UNUSED_QUANTITY, fee), quantity))
    return effective, quantity


def _commitments(w: _Work, billed: pa.Array, usage_amount: pa.Array) -> dict[str, pa.Array]:
    """EffectiveCost with RI/SP amortization, and the CommitmentDiscount* columns.

    Per commitment, EffectiveCost of the covered usage plus the unused commitment on its fee rows
    equals what was bought for the period. An input the formula needs that is empty is a RowError.
    """
    sp_rows = w.of_type(*_SP_TYPES)
    ri_arn = w.text(RI_ARN)
    ri_upfront = fill_false(pc.and_(w.of_type("Fee"), pc.is_valid(ri_arn)))  # RI upfront fee
    ri_rows = pc.or_(w.of_type("DiscountedUsage", "RIFee"), ri_upfront)
    if not any_true(pc.or_(sp_rows, ri_rows)):
        return {"EffectiveCost": billed}  # CommitmentDiscount* left out: null
    effective, quantity = billed, pa.nulls(w.n, DECIMAL)
    if any_true(sp_rows):
        effective, quantity = _savings_plan_amortization(w, billed, effective, quantity)
    if any_true(ri_rows):
        effective, quantity = _reservation_amortization(w, usage_amount, effective, quantity)
    # Negation and upfront fees are amortized into the covered usage: 0 here [PF §2.1].
    zero_rows = pc.or_(w.of_type("SavingsPlanNegation", "SavingsPlanUpfrontFee"), ri_upfront)
    effective = pc.if_else(zero_rows, _ZERO, effective)
    # [FC commitment_discount_id_S001/_category_S001/_type_S001]: the ARN names the commitment.
    ids = pc.if_else(sp_rows, w.text(SP_ARN), pc.if_else(ri_rows, ri_arn, _NULL_STRING))
    has_id = pc.is_valid(ids)
    w.flag("CommitmentDiscountId:missing", pc.and_(pc.or_(sp_rows, ri_rows), pc.invert(has_id)))
    is_sp, is_ri = pc.and_(sp_rows, has_id), pc.and_(ri_rows, has_id)

    def by_kind(savings_plan: object, reservation: object) -> pa.Array:
        return pc.if_else(is_sp, savings_plan, pc.if_else(is_ri, reservation, _NULL_STRING))

    return {
        "EffectiveCost": effective,
        "CommitmentDiscountId": ids,
        # AWS gives commitments no display name; the ARN's last segment is the ID the console
        # shows (savingsplan/<uuid>, reserved-instances/<id>).
        "CommitmentDiscountName": pc.replace_substring_regex(ids, r"^.*/", ""),
        "CommitmentDiscountCategory": by_kind("Spend", "Usage"),
        "CommitmentDiscountType": by_kind("Savings Plan", "Reserved Instance"),
        "CommitmentDiscountStatus": null_where(w.kind("status"), pc.invert(has_id)),
        "CommitmentDiscountQuantity": null_where(quantity, pc.invert(has_id)),
        # Spend is counted in the billing currency, reservations in hours.
        "CommitmentDiscountUnit": by_kind(w.text(CURRENCY), "Hours"),
    }


# An ISO 8601 date and time of day without a zone designator.
_ZONELESS_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$"


def _zoneless(texts: pa.Array) -> pa.Array:
    return pc.match_substring_regex(texts, _ZONELESS_ISO)


REGION_NAMES = read_lookup(Path(__file__).with_name("mappings") / "aws_regions.csv",
                           "region_code", "region_name")


# FOCUS UnitFormat: a unit per time period is "<unit>-<plural time unit>", e.g. "GB-Months"
# [FOCUS 1.2 attributes/unit_format.md; validator rules PricingUnit-C-003-O, ConsumedUnit-C-003-O,
# which failed on the real sample's "GB-Mo" and "Obj-Month"]. AWS abbreviates or uses the
# singular after the dash [CUR pricing/unit]; only that suffix is rewritten, the rest stays AWS's.
_TIME_SUFFIXES = ((r"-(Mo|Mos|Month)$", "-Months"), (r"-(Hr|Hrs|Hour)$", "-Hours"),
                  (r"-Day$", "-Days"), (r"-(Min|Minute)$", "-Minutes"),
                  (r"-(Sec|Second)$", "-Seconds"), (r"-(Yr|Year)$", "-Years"))


def _unit_format(unit: pa.Array) -> pa.Array:
    """Once per distinct unit (a bill has a few dozen): 21 -> 2 ms per 32k rows."""
    return on_distinct(unit, _unit_suffixes)


def _unit_suffixes(unit: pa.Array) -> pa.Array:
    for pattern, replacement in _TIME_SUFFIXES:
        unit = pc.replace_substring_regex(unit, pattern, replacement)
    return unit


def _quantities(w: _Work, usage_amount: pa.Array) -> dict[str, pa.Array]:
    tax = w.of_type("Tax")
    consumed = pc.invert(w.of_type(*_CONSUMPTION_TYPES))
    unit = _unit_format(w.text(PRICING_UNIT))
    return {
        # [FC pricing_quantity_S001, pricing_unit_S001]; null on Tax [FOCUS pricingquantity.md].
        "PricingQuantity": null_where(usage_amount, tax),
        "PricingUnit": null_where(unit, tax),
        # Consumption only on usage rows [FC consumed_quantity_S001, consumed_unit_S001].
        "ConsumedQuantity": null_where(usage_amount, consumed),
        "ConsumedUnit": null_where(unit, consumed),
    }


def _service_location_sku(w: _Work) -> dict[str, pa.Array]:
    code = w.text(PRODUCT_CODE)
    region = pc.coalesce(w.text(REGION_CODE), w.text(REGION))
    positions = index_in(code, SERVICE_CODES)  # [FC service_category_S001] keyed by ProductCode
    w.flag("ServiceCategory:unmapped", pc.is_null(positions))
    return {
        "ServiceName": pc.coalesce(w.text(PRODUCT_NAME), code),   # product/ProductName first
        "ServiceCategory": take_values(positions, SERVICE_CATEGORIES, default="Other"),
        "ServiceSubcategory": take_values(positions, SERVICE_SUBCATEGORIES,
                                          default="Other (Other)"),
        "x_ServiceCode": code,
        "RegionId": region,                                       # [FC region_S001]
        # product/location as exported, else the region code's name (mappings/aws_regions.csv:
        # the price-list location names AWS writes in product/location, e.g. "EU (Ireland)");
        # the CUR leaves product/location blank on some rows that have a region (data transfer,
        # RI and Savings Plan fees).
        "RegionName": pc.coalesce(w.text(LOCATION), map_values(region, REGION_NAMES)),
        "AvailabilityZone": w.text(AZ),                           # [FC availability_zone_S001]
        "ResourceId": w.text(RESOURCE_ID),                        # [FC resource_id_S001]
        "SkuId": w.text(SKU),                                     # [FC sku_id_S001]
        "SkuPriceId": w.text(RATE_CODE),                          # [FC sku_price_id_S001]
        # [FOCUS skumeter.md] "functionality being metered": Storage, Data Transfer, API Request.
        # Some SKUs carry no product/productFamily (S3 "USW2-Requests-Tier3"): their usage type
        # names the meter, and stays the same for the SKU (SkuMeter-C-005-C, SHOULD).
        "SkuMeter": null_where(pc.coalesce(w.text(PRODUCT_FAMILY), w.text(USAGE_TYPE)),
                               pc.is_null(w.text(SKU))),
        # Keys as each shape spells them: legacy CSV user:Env, Parquet/CUR 2.0 user_env [PF §2.2].
        "Tags": w.family(TAGS),
        # Cost categories and CUR 2.0's discount map, kept whole as JSON [PF §2.1, §2.4].
        "x_CostCategories": w.family(COST_CATEGORIES),
        "x_Discounts": w.family(DISCOUNTS),
    }


# A CUR line item: its id is unique per time interval, not per file (an hourly report repeats
# a resource's id every hour) [PF §2.1]. `costflow.transforms.duplicates` flags repeats.
LINE_ITEM = ("identity/LineItemId", "identity/TimeInterval")


class _CurNormalizer:
    """CUR (any shape) -> FOCUS 1.2 (+ 1.3 columns), one record batch at a time."""

    provider: ClassVar[str] = "aws"
    source_format: ClassVar[str]
    basis_column: ClassVar[str]
    shape: ClassVar[Shape]

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False  # this export has columns of its own: detect() decides

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        """Required columns (those feeding NOT NULL FOCUS columns) absent from the header."""
        return self.shape.missing(columns, REQUIRED)

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Map one batch; rows that cannot be mapped are flagged in ``errors``, never dropped."""
        w = _Work(batch, self.shape)
        _check_required_values(w)
        # BilledCost is lineItem/UnblendedCost exactly: the invoice basis reconciliation checks.
        billed = w.number(UNBLENDED_COST)
        usage_amount = w.quantity(USAGE_AMOUNT)
        columns: dict[str, pa.Array] = {"BilledCost": billed}
        columns.update(_accounts_and_parties(w))
        columns.update(_charge(w))
        columns.update(_list_and_contracted(w, billed))
        columns.update(_commitments(w, billed, usage_amount))
        columns.update(_quantities(w, usage_amount))
        columns.update(_service_location_sku(w))
        columns["x_DataQualityFlags"] = json_array_of_flags(w.flags, w.n)
        return Mapped(columns=columns, source_basis=billed, errors=w.errors)


class AwsCurLegacyNormalizer(_CurNormalizer):
    """Legacy CUR CSV (``lineItem/UnblendedCost`` headers) [PF §2.1]."""

    source_format: ClassVar[str] = "aws_cur_legacy"
    basis_column: ClassVar[str] = UNBLENDED_COST
    shape: ClassVar[Shape] = LEGACY_CSV
    line_item_key: ClassVar[tuple[str, ...]] = tuple(LEGACY_CSV.column_name(c) for c in LINE_ITEM)

    def detect(self, columns: Sequence[str]) -> bool:
        """A legacy CUR header: ``bill/PayerAccountId`` and ``lineItem/...`` columns [PF §2.1].

        Recognised by its naming scheme rather than by every required column, so that a CUR
        missing, say, ``lineItem/UnblendedCost`` is still identified and `missing_required` can
        name the absent column instead of the file matching no format at all. CUR 2.0 and the
        FOCUS exports spell their columns differently and never match.
        """
        return PAYER in columns and any(name.startswith("lineItem/") for name in columns)


def _snake_cur(columns: Sequence[str]) -> bool:
    return "bill_payer_account_id" in columns and any(
        name.startswith("line_item_") for name in columns)


class AwsCurParquetNormalizer(_CurNormalizer):
    """Legacy CUR in its Parquet/Athena spelling (``line_item_unblended_cost``) [PF §2.2]."""

    source_format: ClassVar[str] = "aws_cur_legacy_parquet"
    basis_column: ClassVar[str] = LEGACY_PARQUET.column_name(UNBLENDED_COST)
    shape: ClassVar[Shape] = LEGACY_PARQUET
    line_item_key: ClassVar[tuple[str, ...]] = tuple(
        LEGACY_PARQUET.column_name(c) for c in LINE_ITEM)

    def detect(self, columns: Sequence[str]) -> bool:
        """snake_case CUR columns and none of the columns only CUR 2.0 has."""
        return _snake_cur(columns) and not CUR2_MARKERS.intersection(columns)


class AwsCur2Normalizer(_CurNormalizer):
    """CUR 2.0 (Data Exports ``COST_AND_USAGE_REPORT``), CSV or Parquet [PF §2.4]."""

    source_format: ClassVar[str] = "aws_cur2"
    basis_column: ClassVar[str] = CUR2.column_name(UNBLENDED_COST)
    shape: ClassVar[Shape] = CUR2
    line_item_key: ClassVar[tuple[str, ...]] = tuple(CUR2.column_name(c) for c in LINE_ITEM)

    def detect(self, columns: Sequence[str]) -> bool:
        """snake_case CUR columns plus a map column or a column new in CUR 2.0."""
        return _snake_cur(columns) and bool(CUR2_MARKERS.intersection(columns))
