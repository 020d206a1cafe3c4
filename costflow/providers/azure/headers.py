"""One alias table for every Azure Cost Management export header variant.

Why this module exists: Azure writes the same cost data under many headers. EA exports use
PascalCase (``CostInBillingCurrency``; the newer "c360" schema shortens it to ``Cost``), MCA
exports camelCase (``costInBillingCurrency``), the legacy pay-as-you-go "usage only" export has
its own names (``UsageDateTime``, ``PreTaxCost``, ``SubscriptionGuid``), localized portals write
``Ressourcengruppe (ResourceGroup)``, and files may start with a UTF-8 BOM. Rather than one
normalizer per variant, every header is reduced to a canonical key and looked up here.

Header resolution follows OpenCost's ``billingexportparser.go`` [PF §3.1]: strip the BOM, take
the text in parentheses when there is one, lowercase, then try the aliases of each canonical
column in order of preference.

Sources: [PF §3.1] ../shared/reference/provider_formats.md §3.1 (column lists per variant and
the alias table); MicrosoftDocs cost-usage-details-ea.md / -mca.md; finops-toolkit
``actualcost_c360-2025-04.json``; opencost ``headersets/*.csv``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_PAREN = re.compile(r"\(([^()]*)\)\s*$")

# canonical name -> header keys (after `header_key`), in order of preference [PF §3.1 table].
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("usagedatetime", "date"),
    "subscription_id": ("subscriptionid", "subscriptionguid"),
    "subscription_name": ("subscriptionname",),
    "billing_account_id": ("billingaccountid",),
    "billing_account_name": ("billingaccountname",),
    "billing_profile_id": ("billingprofileid",),
    "billing_profile_name": ("billingprofilename",),
    "period_start": ("billingperiodstartdate",),
    "period_end": ("billingperiodenddate",),
    "resource_group": ("resourcegroup", "resourcegroupname"),
    "location": ("resourcelocation", "location"),
    "meter_region": ("meterregion",),
    "resource_id": ("resourceid", "instanceid", "instancename"),
    "resource_name": ("resourcename",),
    # EA CostInBillingCurrency, legacy PreTaxCost, c360 Cost [PF §3.1].
    "cost": ("costinbillingcurrency", "pretaxcost", "cost"),
    "payg_cost": ("paygcostinbillingcurrency",),   # MCA list cost [PF §3.1]
    "currency": ("billingcurrencycode", "billingcurrency", "currency"),
    "pricing_currency": ("pricingcurrency",),
    # MCA: billing = pricing-currency amount x this rate [PF §3.1].
    "pricing_to_billing_rate": ("exchangeratepricingtobilling",),
    "quantity": ("quantity", "usagequantity"),
    "unit": ("unitofmeasure",),
    "effective_price": ("effectiveprice",),
    "unit_price": ("unitprice", "resourcerate"),
    "payg_price": ("paygprice",),
    "meter_id": ("meterid",),
    "meter_name": ("metername",),
    "meter_category": ("metercategory",),
    "meter_subcategory": ("metersubcategory",),
    "consumed_service": ("consumedservice",),
    "resource_type": ("resourcetype",),
    "product_name": ("productname", "product"),
    "product_id": ("productid",),
    "part_number": ("partnumber",),
    "charge_type": ("chargetype",),
    "frequency": ("frequency",),
    "pricing_model": ("pricingmodel",),
    "reservation_id": ("reservationid",),
    "reservation_name": ("reservationname",),
    "benefit_id": ("benefitid",),
    "benefit_name": ("benefitname",),
    "availability_zone": ("availabilityzone",),
    "tags": ("tags",),
    "additional_info": ("additionalinfo",),
    "invoice_id": ("invoiceid",),
    "publisher_name": ("publishername",),
    "service_name": ("servicename",),       # legacy pay-as-you-go only
    "service_family": ("servicefamily",),
}

# A header is an Azure cost export when it has a date, a cost and a subscription [PF §3.1].
REQUIRED = ("date", "cost", "subscription_id", "currency")
# Checked per file while planning. The currency is checked once every file is planned
# (`costflow.providers.azure.exports.finish_plan`), where the user's --billing_currency
# assertion for exports without a currency column (opencost's values/ samples) is known.
PLANNED_REQUIRED = ("date", "cost", "subscription_id")
_SIGNATURE = ("date", "cost", "subscription_id")

# Columns whose values differ between the actual-cost and amortized-cost exports of the same
# usage: never part of a row's identity when the two are joined [PF §3.1 "Actual vs amortized"].
AMORTIZATION_VARIANT = frozenset({
    "costinbillingcurrency", "pretaxcost", "cost", "costinpricingcurrency", "costinusd",
    "effectiveprice", "exchangeratepricingtobilling", "exchangeratedate"})


def header_key(name: str) -> str:
    """``'\\ufeffRessourcengruppe (ResourceGroup) '`` -> ``'resourcegroup'``."""
    text = name.lstrip("\ufeff").strip()
    match = _PAREN.search(text)
    if match and match.group(1).strip():
        text = match.group(1)
    return text.strip().lower()


def resolve(columns: Sequence[str]) -> dict[str, str]:
    """canonical name -> the file's own column name, for every canonical column present."""
    by_key: dict[str, str] = {}
    for name in columns:
        by_key.setdefault(header_key(name), name)
    found: dict[str, str] = {}
    for canonical, aliases in ALIASES.items():
        for alias in aliases:
            if alias in by_key:
                found[canonical] = by_key[alias]
                break
    return found


def is_azure_export(columns: Sequence[str]) -> bool:
    """True when the header reads as an Azure cost export (any variant)."""
    names = resolve(columns)
    return all(c in names for c in _SIGNATURE)


def missing(columns: Sequence[str]) -> list[str]:
    """Required canonical columns absent, named by their preferred Azure spellings."""
    names = resolve(columns)
    return [" or ".join(_SPELLING[c]) for c in PLANNED_REQUIRED if c not in names]


def currency_spellings() -> str:
    """How errors name the currency column: ``BillingCurrencyCode or ... or Currency``."""
    return " or ".join(_SPELLING["currency"])


# How the error names a missing canonical column: the spellings users will recognise.
_SPELLING: Mapping[str, tuple[str, ...]] = {
    "date": ("Date", "UsageDateTime"),
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "subscription_id": ("SubscriptionId", "SubscriptionGuid"),
    "currency": ("BillingCurrencyCode", "BillingCurrency", "Currency"),
}


def identity_columns(actual: Sequence[str], amortized: Sequence[str]) -> list[tuple[str, str]]:
    """(actual column, amortized column) pairs that identify a row in both exports.

    Every column the two headers share (matched by `header_key`) except the ones amortization
    changes (`AMORTIZATION_VARIANT`).
    """
    amortized_by_key = {header_key(n): n for n in amortized}
    pairs = []
    for name in actual:
        key = header_key(name)
        if key in AMORTIZATION_VARIANT or key not in amortized_by_key:
            continue
        pairs.append((name, amortized_by_key[key]))
    return pairs
