"""Azure Advisor cost recommendations into the provider-neutral recommendations table.

Why this module exists: Advisor is Azure's own list of ways to spend less (right-size or shut
down VMs, delete idle disks and public IPs, buy reservations or savings plans). FinOps users
want them next to the AWS and GCP ones, in one shape, with the savings as an exact amount.
This module is only the fetcher: it lists each subscription's Cost recommendations with the
official client (`AdvisorManagementClient(credential, subscription_id).recommendations.list(
filter="Category eq 'Cost'")`, which follows ``nextLink`` pages itself) and maps them to rows;
`costflow.recommendations.fetch_and_store` replaces the stored ones atomically.

    costflow recommendations fetch --provider azure --scope subscription=<id> [--scope ...]

Each subscription is its own *source* (``azure.advisor/subscriptions/<id>``), so fetching one
subscription never erases another's recommendations. Authentication: DefaultAzureCredential
(environment, managed identity, ``az login``).

Mapping sources: [PF §3.5] ../shared/reference/provider_formats.md §3.5 (resource shape,
extendedProperties keys; all their values are strings); [ADV-COST] Microsoft Learn "Cost
recommendations" (learn.microsoft.com/azure/advisor/advisor-reference-cost-recommendations):
reservation and savings-plan purchase recommendations are reported against the subscription
(impactedField ``Microsoft.Subscriptions/subscriptions``) and carry ``term``/``lookbackPeriod``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from costflow.errors import ConfigError
from costflow.recommendations import FetchRequest, FetchResult, rows_from_records

SOURCE = "azure.advisor"
COST_FILTER = "Category eq 'Cost'"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_PLACES = Decimal("1e-18")  # decimal128(38, 18): the declared scale of money
_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)", re.IGNORECASE)
_RESOURCE_GROUP = re.compile(r"/resourcegroups/(?P<rg>[^/]+)", re.IGNORECASE)

# Resource provider namespace / type prefix (lowercase) of impactedField -> our category
# [ADV-COST: compute, storage, networking and database sections]. Longest prefix wins, so
# disks and snapshots (Microsoft.Compute) are storage while VMs are compute.
_CATEGORY_BY_TYPE: dict[str, str] = {
    "microsoft.compute": "compute",
    "microsoft.classiccompute": "compute",
    "microsoft.web": "compute",
    "microsoft.containerservice": "compute",
    "microsoft.containerinstance": "compute",
    "microsoft.batch": "compute",
    "microsoft.databricks": "compute",
    "microsoft.machinelearningservices": "compute",
    "microsoft.compute/disks": "storage",
    "microsoft.compute/snapshots": "storage",
    "microsoft.storage": "storage",
    "microsoft.classicstorage": "storage",
    "microsoft.netapp": "storage",
    "microsoft.network": "network",
    "microsoft.cdn": "network",
    "microsoft.sql": "database",
    "microsoft.dbformysql": "database",
    "microsoft.dbforpostgresql": "database",
    "microsoft.dbformariadb": "database",
    "microsoft.documentdb": "database",
    "microsoft.cache": "database",
    "microsoft.synapse": "database",
    "microsoft.kusto": "database",
}
# extendedProperties keys only commitment purchase recommendations carry [PF §3.5; ADV-COST].
_COMMITMENT_KEYS = ("term", "reservedResourceType", "commitmentAmount")
_COMMITMENT_WORDS = re.compile(r"reserv|savings plan", re.IGNORECASE)


def category_of(impacted_field: str | None, extended: dict[str, str],
                problem: str | None) -> str:
    """Our category of one Advisor cost recommendation.

    Reservation and savings-plan purchases are ``commitment`` (they carry a term, or say so);
    otherwise the impacted resource type decides; anything unknown is ``other``.
    """
    if any(extended.get(k) for k in _COMMITMENT_KEYS) or _COMMITMENT_WORDS.search(problem or ""):
        return "commitment"
    kind = (impacted_field or "").lower()
    for prefix in sorted(_CATEGORY_BY_TYPE, key=len, reverse=True):
        if kind == prefix or kind.startswith(prefix + "/"):
            return _CATEGORY_BY_TYPE[prefix]
    return "other"


def _decimal(text: str | None, what: str, rec_id: str) -> Decimal | None:
    """An extendedProperties amount (a string [PF §3.5]) as an exact Decimal."""
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ConfigError(f"Advisor recommendation {rec_id}: extendedProperties.{what} is "
                          f"{text!r}, not a number (expected a decimal amount such as "
                          "'52.56').") from None
    if not value.is_finite():
        raise ConfigError(f"Advisor recommendation {rec_id}: extendedProperties.{what} is "
                          f"{text!r}, not a finite amount.")
    return value


def monthly_savings(extended: dict[str, str], rec_id: str) -> tuple[Decimal | None, str | None]:
    """(monthly savings, how it was obtained).

    ``savingsAmount`` is the monthly figure and is kept exactly; when only
    ``annualSavingsAmount`` is given it is divided by 12, rounded half-even to 18 places.
    """
    monthly = _decimal(extended.get("savingsAmount"), "savingsAmount", rec_id)
    if monthly is not None:
        return monthly, "savingsAmount"
    annual = _decimal(extended.get("annualSavingsAmount"), "annualSavingsAmount", rec_id)
    if annual is not None:
        return (annual / 12).quantize(_PLACES, rounding=ROUND_HALF_EVEN), "annualSavingsAmount/12"
    return None, None


def _state(suppression_ids: list[str] | None) -> str:
    # Advisor lists suppressed (postponed or dismissed) recommendations with suppressionIds.
    return "dismissed" if suppression_ids else "active"


def record(rec: Any, subscription_id: str) -> dict[str, Any]:
    """One SDK ``ResourceRecommendationBase`` -> a row dict of the recommendations schema."""
    extended: dict[str, str] = dict(rec.extended_properties or {})
    metadata = rec.resource_metadata
    resource_id = (metadata.resource_id if metadata else None) or None
    short = rec.short_description
    problem = short.problem if short else None
    solution = short.solution if short else None
    savings, savings_from = monthly_savings(extended, rec.id or rec.name)
    category = category_of(rec.impacted_field, extended, problem)
    sub_match = _SUBSCRIPTION.match(resource_id or rec.id or "")
    rg_match = _RESOURCE_GROUP.search(resource_id or "")
    # A subscription-level recommendation (reservations, savings plans) has no resource.
    subscription_level = ((rec.impacted_field or "").lower()
                          == "microsoft.subscriptions/subscriptions")
    details = rec.serialize(keep_readonly=True)
    if savings_from:
        details["costflow:estimated_monthly_savings_from"] = savings_from
    if rg_match:
        details["costflow:resource_group"] = rg_match.group("rg")
    return {
        "recommendation_id": rec.id or rec.name,
        "source": f"{SOURCE}/subscriptions/{subscription_id}",
        "category": category,
        "SubAccountId": sub_match.group("sub") if sub_match else subscription_id,
        "RegionId": (extended.get("region") or extended.get("location") or None),
        "ResourceId": None if subscription_level else resource_id,
        "ResourceName": None if subscription_level else (rec.impacted_value or None),
        "ResourceType": rec.impacted_field or None,
        "description": " ".join(p for p in (problem, solution) if p) or rec.description
        or rec.recommendation_type_id or "Azure Advisor cost recommendation",
        "current_configuration": extended.get("currentSku") or None,
        "recommended_configuration": (extended.get("targetSku") or extended.get("displaySKU")
                                      or extended.get("sku") or None),
        "estimated_monthly_savings": savings,
        "savings_currency": extended.get("savingsCurrency") or None,
        "state": _state(rec.suppression_ids),
        "priority": rec.impact or None,   # High | Medium | Low [PF §3.5]
        "last_refreshed_at": rec.last_updated,
        "details": details,
    }


def default_client(subscription_id: str) -> Any:
    """The official client for one subscription, authenticated by DefaultAzureCredential."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.advisor import AdvisorManagementClient

    return AdvisorManagementClient(DefaultAzureCredential(), subscription_id)


# Replaced by tests (recorded HTTP answers through the SDK's transport) and by embedders.
client_factory: Callable[[str], Any] = default_client


def subscriptions(scope: dict[str, list[str]]) -> list[str]:
    """The subscription GUIDs of ``--scope subscription=<id>``; ConfigError otherwise."""
    unknown = sorted(set(scope) - {"subscription"})
    subs = [s.strip() for s in scope.get("subscription", [])]
    if unknown or not subs:
        raise ConfigError("Azure Advisor needs --scope subscription=<subscription id> (repeat "
                          "for more)" + (f"; unknown scope key(s) {unknown}" if unknown else "")
                          + ".")
    bad = [s for s in subs if not _GUID.match(s)]
    if bad:
        raise ConfigError(f"--scope subscription={bad[0]} is not a subscription ID (expected a "
                          "GUID such as 00000000-0000-0000-0000-000000000001).")
    return list(dict.fromkeys(subs))


def list_cost_recommendations(client: Any) -> Iterable[Any]:
    return client.recommendations.list(filter=COST_FILTER)


def fetch(request: FetchRequest) -> FetchResult:
    """Every Cost recommendation of each subscription in ``request.scope``."""
    records, sources = [], []
    for sub in subscriptions(dict(request.scope)):
        client = client_factory(sub)
        for rec in list_cost_recommendations(client):
            if (rec.category or "Cost").lower() != "cost":
                continue  # the filter is server-side; never store another category
            records.append(record(rec, sub))
        sources.append(f"{SOURCE}/subscriptions/{sub}")
    return FetchResult(rows=rows_from_records(records, request), sources=sources)
