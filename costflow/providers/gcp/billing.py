"""GCP Cloud Billing export (standard and detailed resource-level tables) mapped to FOCUS.

Why this module exists: the BigQuery billing export is GCP's statement of what was billed, but
it is nested (records, repeated credits and labels), nets nothing (credits sit beside the cost),
dates invoices by ``invoice.month`` rather than by usage time, and corrects past months by
appending rows. This module turns one record batch of it (any file flavour, first conformed by
`costflow.providers.gcp.export_schema.conform`) into FOCUS rows, vectorized: credits are summed
per row with list flatten + parent indices + group sums, tags are merged the same way. Rows it
cannot map (unknown cost_type, missing cost, bad invoice month or timestamp) are `RowError`s.

The invoice basis, reconciled per (billing account, invoice month) to the cent and beyond, is
``cost + SUM(credits.amount)`` — Google's own net-cost expression [PF §1.4] — and BilledCost is
exactly that value, so the warehouse sums to the invoice.

Sources cited in the comments:
    [PF §x]    ../shared/reference/provider_formats.md §1.x (schema, late data, credits netting).
    [DOC]      Google's "Structure of Detailed data export" (detailed-usage) schema doc.
    [FC x]     finopsfoundation/focus_converters ``conversion_configs/gcp/x.yaml``.
    [OC]       opencost ``pkg/cloud/gcp/bigqueryintegration_types.go`` FOCUS-like mapping.
    [FOCUS x]  FOCUS 1.2 ``specification/columns/x.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.gcp.export_schema import conform, decimal_text
from costflow.transforms.arrow_ops import (
    DECIMAL,
    REASON_NOT_A_TIMESTAMP,
    STRING,
    TIMESTAMP,
    any_true,
    constant,
    decimal_add,
    fill_false,
    index_in,
    json_array_of_flags,
    json_object_from_columns,
    map_values,
    null_where,
    on_distinct,
    parse_decimal,
    parse_quantity,
    parse_timestamp,
    take_values,
)
from costflow.transforms.contract import Mapped, RowError
from costflow.transforms.distinct_rows import once_per_distinct_row
from costflow.transforms.lookup_tables import read_lookup
from costflow.transforms.nested_ops import (
    KeyValues,
    explode,
    group_first,
    group_sum,
    join_per_row,
    json_members,
    merged_json_object,
    rows_with,
)
from costflow.transforms.service_mapping import read_service_table

GOOGLE = "Google Cloud"  # one spelling for every provider-name column (ProviderName == issuer)
# Columns whose absence makes a file unusable (they feed NOT NULL FOCUS columns).
REQUIRED = ("billing_account_id", "cost", "currency", "invoice", "cost_type",
            "usage_start_time", "usage_end_time")

# cost_type -> ChargeCategory [FC 1_charge_category_S001; PF §1.4]; rounding_error and
# adjustment are both Adjustment. CUD fee rows (regular) are refined to Purchase below.
CHARGE_CATEGORY = {"regular": "Usage", "tax": "Tax", "adjustment": "Adjustment",
                   "rounding_error": "Adjustment"}
# ChargeFrequency [FOCUS chargefrequency.md]: tax follows the usage it is levied on;
# adjustments and rounding are one-off. CUD fees are Recurring (monthly fee), set below.
CHARGE_FREQUENCY = {"regular": "Usage-Based", "tax": "Usage-Based", "adjustment": "One-Time",
                    "rounding_error": "One-Time"}
# Credit types of committed use discounts [PF §1.2 enumeration] -> CommitmentDiscountCategory:
# resource-based CUDs commit to usage (vCPU, memory); the dollar-based / fee-offset ones to spend.
CUD_CREDIT_CATEGORY = {"COMMITTED_USAGE_DISCOUNT": "Usage",
                       "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE": "Spend",
                       "FEE_UTILIZATION_OFFSET": "Spend"}
CUD_TYPE = {"Usage": "Committed Use Discount",
            "Spend": "Committed Use Discount (spend-based)"}
# CUD fee SKUs [PF §1.4]: "Commitment v1: ..." (resource CUD), "Commitment - dollar based v1: ..."
# (flex / spend-based CUD).
CUD_FEE_RESOURCE, CUD_FEE_SPEND = r"^Commitment v1", r"^Commitment - dollar based v1"
# Export amounts without a FOCUS column, kept exact in x_ProviderMetrics [PF §1.2]: the USD->
# billing-currency rate (cost / rate = USD), the costs at default and consumption-model prices
# (since 2025-07-15), and the price details ListUnitPrice/ContractedUnitPrice do not carry.
PROVIDER_METRICS = {
    "CurrencyConversionRate": ("currency_conversion_rate",),
    "CostAtEffectivePriceDefault": ("cost_at_effective_price_default",),
    "CostAtListConsumptionModel": ("cost_at_list_consumption_model",),
    "EffectivePriceDefault": ("price", "effective_price_default"),
    "ListPriceConsumptionModel": ("price", "list_price_consumption_model"),
    "TierStartAmount": ("price", "tier_start_amount"),
    "PricingUnitQuantity": ("price", "pricing_unit_quantity"),
}
# Spot / preemptible SKUs are dynamically priced [FOCUS pricingcategory.md].
SPOT_SKU = r"(?i)\b(spot|preemptible)\b"
PACIFIC = "America/Los_Angeles"  # Google's billing days and months [PF §1.3]
_INVOICE_MONTH = r"^[0-9]{4}(0[1-9]|1[0-2])$"
_NULL_STRING, _NULL_DECIMAL = pa.scalar(None, STRING), pa.scalar(None, DECIMAL)
_ZERO = pa.scalar(Decimal(0), DECIMAL)


def _load_services(name: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """Service id/description -> ServiceCategory/Subcategory, checked on reading."""
    rows = read_service_table(Path(__file__).with_name("mappings") / name, key="service_id")
    return ([r["service_id"] for r in rows], [r["service_description"] for r in rows],
            [r["service_category"] for r in rows], [r["service_subcategory"] for r in rows])


# Keyed by service.id (stable across renames), with service.description as the fallback key.
_SERVICE_IDS, _SERVICE_NAMES, _SERVICE_CATEGORIES, _SERVICE_SUBCATEGORIES = _load_services(
    "gcp_services.csv")


def _load_units(name: str) -> dict[str, str]:
    """GCP unit text -> FOCUS UnitFormat, from ``mappings/gcp_units.csv``.

    Google writes units lowercase and singular or plural at will (``hour``, ``gibibyte month``,
    ``vCPU-second``, ``byte-seconds``) [DOC usage.unit, usage.pricing_unit]; FOCUS UnitFormat
    [FOCUS 1.2 attributes/unit_format.md; validator PricingUnit-C-003-O, ConsumedUnit-C-003-O]
    wants data sizes abbreviated (``B``, ``GiB``), time units capitalized and plural
    (``Hours``), a unit per time as ``<unit>-<plural time>`` (``GiB-Months``) and a block as
    ``<quantity> <units>``. A unit missing from the table is kept as Google wrote it and the row
    flagged ``PricingUnit:unmapped`` (``ConsumedUnit:unmapped``); the provider's text stays in
    x_PricingUnitDescription and x_ConsumedUnitDescription.
    """
    return read_lookup(Path(__file__).with_name("mappings") / name, "gcp_unit", "focus_unit")


UNITS = _load_units("gcp_units.csv")
# Region id -> display name, from Google's Cloud locations page (cloud.google.com/about/
# locations: "Iowa" for us-central1); the export carries only the id [DOC location.region].
REGION_NAMES = read_lookup(Path(__file__).with_name("mappings") / "gcp_regions.csv",
                           "region_id", "region_name")


def _unit_format(w: _Work, unit: pa.Array, column: str) -> pa.Array:
    mapped = map_values(unit, UNITS)
    w.flag(f"{column}:unmapped", fill_false(pc.and_(pc.is_valid(unit), pc.is_null(mapped))))
    return pc.coalesce(mapped, unit)


# ResourceType from the resource's full resource name [DOC resource.global_name, Google's
# "Full resource names": //<service>.googleapis.com/<path>/<collection>/<id>], keyed by service
# host and collection (e.g. compute.googleapis.com/instances -> "Virtual Machine") through
# mappings/gcp_resource_types.csv, the kinds named as Google's product docs name them.
RESOURCE_TYPES = read_lookup(Path(__file__).with_name("mappings") / "gcp_resource_types.csv",
                             "resource_kind", "resource_type")
_RESOURCE_KIND = r"^//(?P<service>[^/]+)/(?:.*/)?(?P<collection>[^/]+)/[^/]+$"


def _resource_type(w: _Work, global_name: pa.Array) -> pa.Array:
    """ResourceType of each row with a full resource name; a kind not in the table is null and
    flagged ``ResourceType:unmapped`` rather than guessed."""
    typed = on_distinct(global_name, _resource_kind_type)
    w.flag("ResourceType:unmapped", fill_false(pc.and_(pc.is_valid(global_name),
                                                       pc.is_null(typed))))
    return typed


def _resource_kind_type(global_name: pa.Array) -> pa.Array:
    parts = pc.extract_regex(global_name, _RESOURCE_KIND)
    kind = pc.binary_join_element_wise(pc.struct_field(parts, "service"),
                                       pc.struct_field(parts, "collection"), "/")
    return map_values(kind, RESOURCE_TYPES)


def _region_name(w: _Work, region: pa.Array) -> pa.Array:
    named = map_values(region, REGION_NAMES)
    w.flag("RegionName:unmapped", fill_false(pc.and_(pc.is_valid(region), pc.is_null(named))))
    return pc.coalesce(named, region)


def _field(parent: pa.Array, *path: str) -> pa.Array:
    """A nested leaf of a struct column, null where any parent is null."""
    values = parent
    for name in path:
        values = pc.struct_field(values, name)
    return values


def _utc_text(values: pa.Array) -> pa.Array:
    """BigQuery's ``YYYY-MM-DD HH:MM:SS[.ffffff] UTC`` rendering as ISO text Arrow parses."""
    return pc.replace_substring_regex(values, r"\s*(UTC|\+00(:?00)?)$", "Z")


class _Work:
    """One batch being mapped: the conformed columns, errors and data-quality flags."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.raw = conform(batch, keep_timestamps=True)
        self.n = self.raw.num_rows
        self.errors: list[RowError] = []
        self.flags: dict[str, pa.Array] = {}

    def col(self, name: str, *path: str) -> pa.Array:
        return _field(self.raw.column(name), *path)

    def add(self, errors: Sequence[RowError], used_on: pa.Array | None = None) -> None:
        for e in errors:
            mask = e.mask if used_on is None else fill_false(pc.and_(e.mask, used_on))
            if any_true(mask):
                self.errors.append(RowError(mask=mask, column=e.column, reason=e.reason))

    def error(self, mask: pa.Array, column: str, reason: str) -> None:
        self.add([RowError(mask=fill_false(mask), column=column, reason=reason)])

    def number(self, values: pa.Array, name: str) -> pa.Array:
        parsed, errors = parse_decimal(values, name)
        self.add(errors)
        return parsed

    def quantity(self, values: pa.Array, name: str, column: str) -> pa.Array:
        """A usage quantity: BigQuery computes some in FLOAT64 (``1.1574074074074073e-05``),
        so digits beyond 18 places are rounded (flagged ``<column>:rounded``), not refused."""
        parsed, rounded, errors = parse_quantity(values, name)
        self.add(errors)
        self.flag(f"{column}:rounded", rounded)
        return parsed

    def timestamp(self, name: str) -> pa.Array:
        values = self.col(name)
        if pa.types.is_timestamp(values.type):  # kept by conform: an instant already
            return self._instant(values, name)
        parsed, errors = parse_timestamp(_utc_text(values), name)
        self.add(errors)
        return parsed

    def flag(self, name: str, mask: pa.Array) -> None:
        self.flags[name] = fill_false(mask)

    def _instant(self, values: pa.Array, name: str) -> pa.Array:
        """A zone-aware timestamp in microseconds: a nanosecond value that is not a whole
        microsecond is refused by name, as its text would be, never truncated."""
        if values.type.unit != "ns":
            try:
                return pc.cast(values, TIMESTAMP)  # s, ms, us: exact
            except pa.ArrowInvalid:  # beyond year 294246: its text is refused, row by row
                parsed, errors = parse_timestamp(_utc_text(pc.cast(values, STRING)), name)
                self.add(errors)
                return parsed
        instants = pc.cast(values, TIMESTAMP, safe=False)
        finer = pc.not_equal(pc.cast(instants, values.type), values)
        self.error(finer, name, REASON_NOT_A_TIMESTAMP)
        return null_where(instants, fill_false(finer))


def _check_required(w: _Work) -> None:
    w.error(pc.is_null(w.col("billing_account_id")), "billing_account_id",
            "is empty (expected the Cloud Billing account ID, e.g. 01338E-BE3FD6-363B4C)")
    w.error(pc.is_null(w.col("cost")), "cost",
            "is missing (expected the row's cost in the billing currency, a JSON number)")
    w.error(pc.is_null(w.col("currency")), "currency",
            "is empty (expected an ISO 4217 currency code such as USD)")
    for name in ("usage_start_time", "usage_end_time"):
        w.error(pc.is_null(w.col(name)), name,
                "is empty (expected a timestamp such as 2026-10-01 07:00:00 UTC)")
    cost_type = w.col("cost_type")
    unknown = pc.invert(pc.is_in(cost_type, value_set=pa.array(list(CHARGE_CATEGORY))))
    w.error(unknown, "cost_type", f"is not a cost type this normalizer knows (expected one of: "
            f"{', '.join(CHARGE_CATEGORY)}); it is dead-lettered rather than guessed")


def _billing_period(w: _Work) -> tuple[pa.Array, pa.Array]:
    """BillingPeriodStart/End from invoice.month 'YYYYMM' [FC 1_billing_period_start_S002].

    The invoice, not the usage time, decides the period: late usage and corrections are billed
    on a later invoice [PF §1.3]. Periods start at midnight UTC of the 1st, as FOCUS's UTC
    timestamps and the focus_converters mapping do (Google's own month is US/Pacific).
    """
    month = w.col("invoice", "month")
    good = fill_false(pc.match_substring_regex(month, _INVOICE_MONTH))
    w.error(pc.invert(good), "invoice.month",
            "is not a YYYYMM invoice month (expected e.g. 202610)")
    month = null_where(month, pc.invert(good))
    year = pc.cast(pc.utf8_slice_codeunits(month, 0, 4), pa.int32())
    mon = pc.cast(pc.utf8_slice_codeunits(month, 4, 6), pa.int32())
    december = pc.equal(mon, 12)
    next_year = pc.if_else(december, pc.add(year, 1), year)
    next_mon = pc.if_else(december, pa.scalar(1, pa.int32()), pc.add(mon, 1))

    def first_of(y: pa.Array, m: pa.Array) -> pa.Array:
        text = pc.binary_join_element_wise(
            pc.cast(y, STRING), pc.utf8_lpad(pc.cast(m, STRING), 2, "0"), "01T00:00:00Z", "-")
        return pc.cast(text, TIMESTAMP)

    return first_of(year, mon), first_of(next_year, next_mon)


def _credits(w: _Work) -> tuple[pa.Array, dict[str, pa.Array], dict[str, pa.Array]]:
    """Per row: exact credit total, commitment details, and the credits as JSON.

    Credits are negative amounts [PF §1.2]. Each credit's amount is parsed exactly; a credit
    that is not a number makes its row a RowError (column ``credits.amount``).
    """
    ex = explode(w.col("credits"))
    amount_text = ex.field("amount")
    amounts, errors = parse_decimal(amount_text, "credits.amount")
    for e in errors:
        w.error(rows_with(ex, e.mask), e.column, e.reason)
    total = pc.coalesce(group_sum(ex, amounts), _ZERO)
    ctype = ex.field("type")
    # A row's commitment is its resource-based CUD when it has one, else its spend-based one
    # (whatever order Google lists the credits in); the other kind's credits stay in x_Credits.
    per_category = {}
    for category in ("Usage", "Spend"):
        kinds = [k for k, c in CUD_CREDIT_CATEGORY.items() if c == category]
        mask = pc.is_in(ctype, value_set=pa.array(kinds))
        kind_ex = ex.filter(mask)
        per_category[category] = {
            # The on-demand value the commitment covered: its CUD credits negate it [PF §1.2].
            "covered_cost": pc.negate(group_sum(kind_ex, amounts.filter(mask))),
            "credit_id": group_first(kind_ex, kind_ex.field("id")),
            "credit_name": group_first(kind_ex, pc.coalesce(kind_ex.field("full_name"),
                                                            kind_ex.field("name"))),
            "present": pc.is_valid(group_first(kind_ex, kind_ex.field("type"))),
        }
    resource, spend = per_category["Usage"], per_category["Spend"]
    category = pc.if_else(resource["present"], "Usage",
                          pc.if_else(spend["present"], "Spend", _NULL_STRING))
    commitment = {"category": category, **{
        name: pc.if_else(resource["present"], resource[name], spend[name])
        for name in ("covered_cost", "credit_id", "credit_name")}}
    # x_Credits keeps every credit as exported (amount as exact decimal text) [PF §1.4: users
    # need gross and net, and which credit types made the difference].
    members = json_members({"type": ctype, "name": ex.field("name"),
                            "amount": decimal_text(amounts),
                            "id": ex.field("id"), "full_name": ex.field("full_name")})
    texts = pc.binary_join_element_wise("{", members, "}", "")
    return total, commitment, {"x_Credits": join_per_row(ex, texts, "[", "]")}


def _charge(w: _Work, period_start: pa.Array) -> dict[str, pa.Array]:
    cost_type, sku = w.col("cost_type"), w.col("sku", "description")
    fee_resource = fill_false(pc.and_(pc.equal(cost_type, "regular"),
                                      pc.match_substring_regex(sku, CUD_FEE_RESOURCE)))
    fee_spend = fill_false(pc.and_(pc.equal(cost_type, "regular"),
                                   pc.match_substring_regex(sku, CUD_FEE_SPEND)))
    fee = pc.or_(fee_resource, fee_spend)
    category = pc.if_else(fee, "Purchase", map_values(cost_type, CHARGE_CATEGORY))
    frequency = pc.if_else(fee, "Recurring", map_values(cost_type, CHARGE_FREQUENCY))
    start, end = w.timestamp("usage_start_time"), w.timestamp("usage_end_time")
    # ChargeClass Correction [FOCUS chargeclass.md]: a row that corrects a period already
    # invoiced. GCP marks corrections with adjustment_info and bills them on a later
    # invoice.month than the usage's own (US/Pacific) month [PF §1.3], so: adjustment_info set
    # and the usage began before the invoice month. Late usage without adjustment_info is
    # billed late, not corrected, and stays unclassed.
    adjusted = pc.or_kleene(pc.is_valid(w.col("adjustment_info", "id")), pc.or_kleene(
        pc.is_valid(w.col("adjustment_info", "type")),
        pc.is_valid(w.col("adjustment_info", "mode"))))
    usage_local = pc.local_timestamp(pc.cast(start, pa.timestamp("us", PACIFIC)))
    # The period starts at midnight of the 1st; compared as wall-clock time in US/Pacific.
    period_naive = pc.cast(period_start, pa.timestamp("us"))
    earlier = pc.less(usage_local, period_naive)
    correction = fill_false(pc.and_(adjusted, earlier))
    w.flag("ChargePeriod:usage_before_invoice_month", pc.and_(
        fill_false(earlier), pc.invert(correction)))
    return {
        "ChargeCategory": category,
        "ChargeClass": pc.if_else(correction, "Correction", _NULL_STRING),
        "ChargeFrequency": frequency,
        "ChargeDescription": sku,                                   # [FC charge_description]
        "ChargePeriodStart": start,                                 # [FC charge_period_start]
        "ChargePeriodEnd": end,
        "x_LineItemType": cost_type,
        "_fee_resource": fee_resource, "_fee_spend": fee_spend,
    }


def _commitments(w: _Work, charge: dict[str, pa.Array], credit: dict[str, pa.Array],
                 ) -> dict[str, pa.Array]:
    """CommitmentDiscount* for usage a CUD covered and for CUD fee rows [PF §1.2, §1.4].

    The commitment is named by ``consumption_model.applied_subscription_instance_id`` (new
    spend-based model), else ``subscription.instance_id`` (detailed export, since 2024-01-25),
    else the CUD credit's id.
    """
    usage = fill_false(pc.equal(charge["ChargeCategory"], "Usage"))
    covered = fill_false(pc.and_(usage, pc.is_valid(credit["category"])))
    fee_resource, fee_spend = charge["_fee_resource"], charge["_fee_spend"]
    fee = pc.or_(fee_resource, fee_spend)
    named = pc.or_(covered, fee)
    ids = pc.coalesce(w.col("consumption_model", "applied_subscription_instance_id"),
                      w.col("subscription", "instance_id"), credit["credit_id"])
    ids = null_where(ids, pc.invert(named))
    w.flag("CommitmentDiscountId:missing", pc.and_(named, pc.is_null(ids)))
    has_id = pc.is_valid(ids)
    category = pc.if_else(fee_resource, "Usage", pc.if_else(fee_spend, "Spend",
                                                           credit["category"]))
    category = null_where(category, pc.invert(has_id))
    return {
        "CommitmentDiscountId": ids,
        "CommitmentDiscountName": null_where(pc.coalesce(credit["credit_name"],
                                                         w.col("sku", "description")),
                                             pc.invert(has_id)),
        "CommitmentDiscountCategory": category,
        "CommitmentDiscountType": map_values(category, CUD_TYPE),
        # Used on covered usage; the export does not say how much of a fee went unused.
        "CommitmentDiscountStatus": pc.if_else(pc.and_(covered, has_id), "Used", _NULL_STRING),
        "x_CommitmentPool": _amortization_pool(w, fee_resource, fee_spend, covered,
                                               credit["category"]),
        "x_CommitmentCoveredCost": null_where(credit["covered_cost"], pc.invert(covered)),
        "_covered": covered,
    }


def _amortization_pool(w: _Work, fee_resource: pa.Array, fee_spend: pa.Array,
                       covered: pa.Array, credit_category: pa.Array) -> pa.Array:
    """Which fees are spread over which covered usage (`commitment_amortization`).

    GCP bills a commitment as a recurring fee row and nets the usage it covers with CUD
    credits, so BilledCost is right but EffectiveCost must move the fee onto that usage
    [FOCUS effectivecost.md; EffectiveCost-C-005-C]. The export does not link a fee row to the
    usage rows it covered (the fee's subscription id is not on the credits), so fees pool by
    what a commitment can cover: a resource-based CUD is regional ("Usage/<region>"), a
    spend-based one spans regions ("Spend") [PF §1.2 credits.type; §1.4].
    """
    region = pc.coalesce(w.col("location", "region"), pa.scalar("global"))
    resource = pc.or_(fee_resource, fill_false(pc.and_(covered, pc.equal(credit_category,
                                                                          "Usage"))))
    spend = pc.or_(fee_spend, fill_false(pc.and_(covered, pc.equal(credit_category, "Spend"))))
    return pc.if_else(resource, pc.binary_join_element_wise("Usage/", region, ""),
                      pc.if_else(spend, "Spend", _NULL_STRING))


def _costs(w: _Work, cost: pa.Array, credit_total: pa.Array, charge: dict[str, pa.Array],
           ) -> tuple[dict[str, pa.Array], pa.Array]:
    net, errors = decimal_add(cost, credit_total, "BilledCost")
    w.add(errors)
    cost_type = w.col("cost_type")
    regular = fill_false(pc.equal(cost_type, "regular"))
    tax = fill_false(pc.equal(cost_type, "tax"))
    cost_at_list = w.number(w.col("cost_at_list"), "cost_at_list")
    # ListCost = cost_at_list [OC; PF §1.4]; the field exists since 2023-06-29, and before that
    # (or on tax/adjustment rows, which have no list price) it falls back: regular rows to
    # cost (as OpenCost does), others to BilledCost [FOCUS listcost.md: no list price ->
    # ListCost matches BilledCost].
    fallback = pc.if_else(regular, cost, net)
    w.flag("ListCost:from_cost", pc.and_(regular, pc.is_null(cost_at_list)))
    list_cost = pc.coalesce(cost_at_list, fallback)
    return {
        # BilledCost = cost + all credits [OC NetCost; PF §1.4]: credits (including PROMOTION,
        # "a form of payment") reduce what the invoice asks for.
        "BilledCost": net,
        # EffectiveCost = BilledCost here (GCP has no upfront purchase); the load then moves
        # each recurring CUD fee onto the usage its pool covered (x_CommitmentPool,
        # `costflow.transforms.commitment_amortization`), keeping every slice's total.
        "EffectiveCost": net,
        # ContractedCost: negotiated prices, before credits and commitment discounts: `cost`
        # ("negotiated discounts included, credits NOT included" [PF §1.2]).
        "ContractedCost": cost,
        "ListCost": list_cost,
        # Unit prices [DOC price.*]; null on Tax rows (ListUnitPrice-C-004-C, -C-005-C).
        "ListUnitPrice": null_where(w.number(w.col("price", "list_price"), "price.list_price"),
                                    tax),
        "ContractedUnitPrice": null_where(w.number(w.col("price", "effective_price"),
                                                   "price.effective_price"), tax),
        "x_GrossCost": cost,
    }, net


def _quantities(w: _Work, charge: dict[str, pa.Array]) -> dict[str, pa.Array]:
    tax = fill_false(pc.equal(charge["ChargeCategory"], "Tax"))
    usage_rows = fill_false(pc.equal(charge["ChargeCategory"], "Usage"))
    amount = w.quantity(w.col("usage", "amount"), "usage.amount", "ConsumedQuantity")
    pricing_amount = w.quantity(w.col("usage", "amount_in_pricing_units"),
                                "usage.amount_in_pricing_units", "PricingQuantity")
    pricing_unit, unit = w.col("usage", "pricing_unit"), w.col("usage", "unit")
    spot = fill_false(pc.match_substring_regex(w.col("sku", "description"), SPOT_SKU))
    pricing = pc.if_else(charge["_covered"], "Committed", pc.if_else(
        spot, "Dynamic", "Standard"))
    pricing = pc.if_else(pc.or_(usage_rows, fill_false(pc.equal(
        charge["ChargeCategory"], "Purchase"))), pricing, _NULL_STRING)
    return {
        # [FOCUS pricingcategory.md]: null on Tax (MUST), null on Adjustment (MAY).
        "PricingCategory": pricing,
        "PricingQuantity": null_where(pricing_amount, tax),         # [FC pricing_quantity]
        "PricingUnit": null_where(_unit_format(w, pricing_unit, "PricingUnit"), tax),
        "ConsumedQuantity": null_where(amount, pc.invert(usage_rows)),  # usage rows only
        "ConsumedUnit": null_where(_unit_format(w, unit, "ConsumedUnit"), pc.invert(usage_rows)),
        "x_PricingUnitDescription": null_where(pricing_unit, tax),
        "x_ConsumedUnitDescription": null_where(unit, pc.invert(usage_rows)),
    }


def _tags(w: _Work) -> pa.Array:
    """Tags [FOCUS tags.md]: user-defined keys as written, provider-defined ones prefixed.

    * ``labels`` (resource labels, user-defined): keys as written; they override inherited keys.
    * ``tags`` (resource-manager tags, user-defined): key ``<namespace>/<key>``, the tag's
      namespaced name in GCP; inherited ones included (FOCUS finalized tags).
    * ``project.labels`` (user-defined, inherited by every resource of the project): keys as
      written, lowest precedence, so a resource label of the same key wins.
    * ``system_labels`` (provider-defined): keys keep Google's own domain prefix, e.g.
      ``compute.googleapis.com/machine_spec``; user label keys cannot contain ``/`` or ``.``,
      so they can never collide.

    Built once per distinct combination of the four lists (a resource's hourly rows repeat
    them: 84 distinct objects in 1M generated rows).
    """
    return once_per_distinct_row(
        [w.col("labels"), w.col("system_labels"), w.col("tags"), w.col("project", "labels")],
        _merged_tags)


def _merged_tags(lists: list[pa.Array]) -> pa.Array:
    resource, system_labels, tag_list, project_labels = lists
    sources = []
    labels = explode(resource)
    sources.append(KeyValues(labels, labels.field("key"), labels.field("value"), 3))
    system = explode(system_labels)
    sources.append(KeyValues(system, system.field("key"), system.field("value"), 4))
    tags = explode(tag_list)
    tag_keys = pc.binary_join_element_wise(tags.field("namespace"), tags.field("key"), "/")
    sources.append(KeyValues(tags, pc.coalesce(tag_keys, tags.field("key")),
                             tags.field("value"), 2))
    project = explode(project_labels)
    sources.append(KeyValues(project, project.field("key"), project.field("value"), 1))
    return merged_json_object(sources, len(resource))


def _ancestors(w: _Work) -> pa.Array:
    """project.ancestors as exported (project, folders, organization) [DOC project.ancestors]:
    the resource hierarchy FinOps teams roll costs up by; FOCUS has no column for it. Built
    once per distinct list (every row of a project repeats it)."""
    return once_per_distinct_row([w.col("project", "ancestors")], _ancestors_json)


def _ancestors_json(lists: list[pa.Array]) -> pa.Array:
    ancestors = explode(lists[0])
    members = json_members({"resource_name": ancestors.field("resource_name"),
                            "display_name": ancestors.field("display_name")})
    texts = pc.binary_join_element_wise("{", members, "}", "")
    return join_per_row(ancestors, texts, "[", "]")


def _accounts_service_location(w: _Work) -> dict[str, pa.Array]:
    project_id = w.col("project", "id")
    service_id, service_name = w.col("service", "id"), w.col("service", "description")
    # ServiceCategory through mappings/gcp_services.csv, keyed by service.id, falling back to
    # service.description [FC service_category (by name)]; unmapped -> Other, flagged.
    positions = pc.coalesce(index_in(service_id, _SERVICE_IDS),
                            index_in(service_name, _SERVICE_NAMES))
    w.flag("ServiceCategory:unmapped", pc.is_null(positions))
    transaction = w.col("transaction_type")
    third_party = fill_false(pc.match_substring(transaction, "THIRD_PARTY"))
    adjustment = w.col("adjustment_info")
    adjustment_json = pc.binary_join_element_wise("{", json_members({
        "id": pc.struct_field(adjustment, "id"), "description": pc.struct_field(
            adjustment, "description"), "mode": pc.struct_field(adjustment, "mode"),
        "type": pc.struct_field(adjustment, "type")}), "}", "")
    has_adjustment = pc.or_kleene(pc.is_valid(pc.struct_field(adjustment, "id")),
                                  pc.is_valid(pc.struct_field(adjustment, "type")))
    sku_id = null_where(w.col("sku", "id"), fill_false(pc.equal(w.col("cost_type"), "tax")))
    rate = w.quantity(w.col("currency_conversion_rate"), "currency_conversion_rate",
                      "x_PricingToBillingRate")
    non_usd = fill_false(pc.not_equal(w.col("currency"), "USD"))
    return {
        "BillingAccountId": w.col("billing_account_id"),            # [FC billing_account_id]
        "BillingAccountType": constant("Billing Account", w.n),     # GCP "Cloud Billing account"
        # Sub account = project [FOCUS subaccountid.md names GCP projects]; null for
        # account-level charges (support, some tax) [PF §1.2].
        "SubAccountId": project_id,
        "SubAccountName": w.col("project", "name"),
        "SubAccountType": pc.if_else(pc.is_valid(project_id), "Project", _NULL_STRING),
        "BillingCurrency": w.col("currency"),                       # [FC billing_currency]
        # SKU prices are in USD; cost / currency_conversion_rate is the USD amount [DOC
        # currency_conversion_rate]. The shared step derives the PricingCurrency amounts.
        "PricingCurrency": pc.if_else(pc.and_(non_usd, pc.is_valid(rate)), "USD",
                                      _NULL_STRING),
        "x_PricingToBillingRate": rate,
        **{name: constant(GOOGLE, w.n) for name in (
            "ProviderName", "ServiceProviderName", "HostProviderName", "InvoiceIssuerName")},
        # Marketplace rows: the seller produced the service [DOC seller_name].
        "PublisherName": pc.if_else(third_party, pc.coalesce(w.col("seller_name"),
                                                             pa.scalar(GOOGLE)), GOOGLE),
        "ServiceName": pc.coalesce(service_name, service_id),
        "ServiceCategory": take_values(positions, _SERVICE_CATEGORIES, default="Other"),
        "ServiceSubcategory": take_values(positions, _SERVICE_SUBCATEGORIES,
                                          default="Other (Other)"),
        "x_ServiceCode": service_id,
        # location.region / .zone [DOC location]; global services and multi-regions ("us",
        # "europe") have no region: null rather than a made-up one.
        "RegionId": w.col("location", "region"),
        # Display name from mappings/gcp_regions.csv; an id not in it keeps the id (flagged).
        "RegionName": _region_name(w, w.col("location", "region")),
        "AvailabilityZone": w.col("location", "zone"),
        # resource.global_name is unique (//compute.googleapis.com/projects/.../instances/123);
        # resource.name is what the user named it [DOC resource]. Detailed export only.
        "ResourceId": pc.coalesce(w.col("resource", "global_name"), w.col("resource", "name")),
        "ResourceName": w.col("resource", "name"),
        "ResourceType": _resource_type(w, w.col("resource", "global_name")),
        # [FC sku_id]; null on Tax rows (SkuId-C-004-C).
        "SkuId": sku_id,
        # The SKU's description names what it meters ("N1 Predefined Instance Core running in
        # Americas") and is fixed per SKU (SkuMeter-C-005-C); null where SkuId is.
        "SkuMeter": null_where(w.col("sku", "description"), pc.is_null(sku_id)),
        "x_AdjustmentInfo": pc.if_else(has_adjustment, adjustment_json, _NULL_STRING),
    }


class _GcpBillingExport:
    """Cloud Billing export rows -> FOCUS 1.2 (+ 1.3 columns), one record batch at a time."""

    provider: ClassVar[str] = "gcp"
    source_format: ClassVar[str]
    basis_column: ClassVar[str] = "cost + SUM(credits.amount)"

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        return False  # this export has columns of its own: detect() decides

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [name for name in REQUIRED if name not in names]

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Map one batch; rows that cannot be mapped are flagged in ``errors``, never dropped."""
        w = _Work(batch)
        _check_required(w)
        period_start, period_end = _billing_period(w)
        cost = w.number(w.col("cost"), "cost")
        credit_total, credit, credit_columns = _credits(w)
        charge = _charge(w, period_start)
        commitments = _commitments(w, charge, credit)
        costs, net = _costs(w, cost, credit_total, charge)
        columns: dict[str, pa.Array] = {"BillingPeriodStart": period_start,
                                        "BillingPeriodEnd": period_end}
        columns.update(costs)
        columns.update(charge)
        columns.update(commitments)
        columns.update(_quantities(w, {**charge, **commitments}))
        columns.update(_accounts_service_location(w))
        columns.update(credit_columns)
        columns["Tags"] = _tags(w)
        columns["x_ExportTime"] = w.timestamp("export_time")
        columns["x_ProviderMetrics"] = json_object_from_columns(pa.RecordBatch.from_pydict(
            {k: w.col(*path) for k, path in PROVIDER_METRICS.items()}), {
            k: k for k in PROVIDER_METRICS})
        columns["x_ProjectAncestors"] = _ancestors(w)
        columns["x_DataQualityFlags"] = json_array_of_flags(w.flags, w.n)
        columns = {k: v for k, v in columns.items() if not k.startswith("_")}
        # Basis = cost + SUM(credits) [PF §1.4]; with no readable cost, the credits alone (what
        # BigQuery's SUM(cost) + SUM(credits) counts for that row).
        basis = pc.if_else(pc.is_valid(cost), net, credit_total)
        return Mapped(columns=columns, source_basis=basis, errors=w.errors)


class GcpStandardExport(_GcpBillingExport):
    """``gcp_billing_export_v1_<ACCOUNT>``: the standard usage cost table [PF §1.1]."""

    source_format: ClassVar[str] = "gcp_billing_export_v1"

    def detect(self, columns: Sequence[str]) -> bool:
        names = set(columns)
        return {"billing_account_id", "cost", "cost_type"} <= names and not (
            {"resource", "subscription"} & names)


class GcpDetailedExport(_GcpBillingExport):
    """``gcp_billing_export_resource_v1_<ACCOUNT>``: adds ``resource``, ``subscription``."""

    source_format: ClassVar[str] = "gcp_billing_export_resource_v1"

    def detect(self, columns: Sequence[str]) -> bool:
        names = set(columns)
        return {"billing_account_id", "cost", "cost_type"} <= names and bool(
            {"resource", "subscription"} & names)
