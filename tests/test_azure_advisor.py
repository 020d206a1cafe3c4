"""Azure Advisor cost recommendations through the real SDK, answered by recorded HTTP responses."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.advisor import AdvisorManagementClient

from costflow.errors import ConfigError
from costflow.providers import CATALOG
from costflow.providers.azure import advisor as azure_advisor
from costflow.recommendations import FetchRequest
from costflow.services.recommendation_fetch import fetch_and_store
from costflow.warehouse import connect
from tests.test_azure_query import FakeCredential, Recorded

SUB = "1caaa5a3-2b66-438e-8ab4-bce37d518c5d"
OTHER = "00000000-0000-0000-0000-000000000002"
BASE = f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.Advisor"
NEXT = f"{BASE}/recommendations?api-version=2020-01-01&$skiptoken=eyJwYWdlIjoy"
RG = f"/subscriptions/{SUB}/resourceGroups"
VM = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
DISK = f"{RG}/rg-data/providers/Microsoft.Compute/disks/disk-old"
PIP = f"{RG}/rg-web/providers/Microsoft.Network/publicIPAddresses/pip-1"


def _rec(resource: str, guid: str, field: str, value: str, impact: str, problem: str,
         extended: dict[str, str], **more) -> dict:
    """Shaped like Microsoft.Advisor/recommendations 2020-01-01 [PF §3.5]: strings only."""
    return {"id": f"{resource}/providers/Microsoft.Advisor/recommendations/{guid}",
            "name": guid, "type": "Microsoft.Advisor/recommendations",
            "properties": {"category": "Cost", "impact": impact, "impactedField": field,
                           "impactedValue": value, "lastUpdated": "2026-11-25T07:12:44.1254325Z",
                           "recommendationTypeId": "e10b1381-5f0a-47ff-8c7b-37bd13d7c974",
                           "shortDescription": {"problem": problem, "solution": problem},
                           "extendedProperties": extended,
                           "resourceMetadata": {"resourceId": resource, "source": None},
                           **more}}


RIGHT_SIZE = _rec(VM, "9d0c9a9f-4e3a-4d3b-8a8e-1f2c3d4e5f60", "Microsoft.Compute/virtualMachines",
                  "vm-web-01", "Medium", "Right-size or shutdown underutilized virtual machines",
                  {"currentSku": "Standard_D8s_v3", "targetSku": "Standard_D4s_v3",
                   "savingsAmount": "140.16", "annualSavingsAmount": "1681.92",
                   "savingsCurrency": "USD", "region": "westeurope", "MaxCpuP95": "11.5",
                   "recommendationType": "SkuChange"})
IDLE_DISK = _rec(DISK, "1b2c3d4e-0000-4000-8000-000000000001", "Microsoft.Compute/disks",
                 "disk-old", "Low", "Delete unattached disks",
                 {"annualSavingsAmount": "100", "savingsCurrency": "USD"})
RESERVATION = _rec(f"/subscriptions/{SUB}", "7f0a6c47-3ef1-4b4a-9c3a-2c7d1e9b8a10",
                   "Microsoft.Subscriptions/subscriptions", SUB, "High",
                   "Consider virtual machine reserved instance to save over your on-demand costs",
                   {"displaySKU": "Standard_D2s_v3", "term": "P3Y", "lookbackPeriod": "30",
                    "displayQty": "4", "reservedResourceType": "VirtualMachines",
                    "savingsAmount": "1234.567890123456789", "annualSavingsAmount": "14814.81",
                    "savingsCurrency": "EUR", "region": "westeurope"})
IDLE_IP = _rec(PIP, "2c3d4e5f-0000-4000-8000-000000000002", "Microsoft.Network/publicIPAddresses",
               "pip-1", "Low", "Delete idle public IP addresses",
               {"savingsAmount": "3.65", "savingsCurrency": "USD"},
               suppressionIds=["5b6c7d8e-0000-4000-8000-000000000003"])
PAGE_1 = {"value": [RIGHT_SIZE, IDLE_DISK], "nextLink": NEXT}
PAGE_2 = {"value": [RESERVATION, IDLE_IP], "nextLink": None}
REQUEST = FetchRequest("azure", "recs-1", datetime(2026, 11, 26, 10, tzinfo=UTC),
                       {"subscription": [SUB]})


def _client(sub: str, answers: list[tuple[int, dict, dict]]
            ) -> tuple[AdvisorManagementClient, Recorded]:
    adapter = Recorded(answers)
    session = requests.Session()
    session.mount("https://", adapter)
    client = AdvisorManagementClient(FakeCredential(), sub,
                                     transport=RequestsTransport(session=session),
                                     retry_backoff_factor=0.01)
    return client, adapter


@pytest.fixture
def recorded(monkeypatch):
    """Point the fetcher at recorded answers, per subscription; returns the adapters."""
    answers: dict[str, list] = {}
    adapters: dict[str, Recorded] = {}

    def factory(sub: str) -> AdvisorManagementClient:
        client, adapters[sub] = _client(sub, answers[sub])
        return client

    monkeypatch.setattr(azure_advisor, "client_factory", factory)
    return answers, adapters


def test_pages_are_followed_and_every_field_is_mapped(recorded) -> None:
    answers, adapters = recorded
    answers[SUB] = [(200, {}, PAGE_1), (200, {}, PAGE_2)]
    result = azure_advisor.fetch(REQUEST)
    first, second = adapters[SUB].seen
    query = urllib.parse.parse_qs(urllib.parse.urlparse(first.url).query)
    assert query["$filter"] == ["Category eq 'Cost'"]
    assert first.url.startswith(f"{BASE}/recommendations?")
    assert "$skiptoken=eyJwYWdlIjoy" in second.url
    assert result.sources == [f"azure.advisor/subscriptions/{SUB}"]
    rows = {r["ResourceType"]: r for r in result.rows.to_pylist()}
    assert len(rows) == 4
    vm = rows["Microsoft.Compute/virtualMachines"]
    assert (vm["category"], vm["current_configuration"], vm["recommended_configuration"]) == (
        "compute", "Standard_D8s_v3", "Standard_D4s_v3")
    assert (vm["estimated_monthly_savings"], vm["savings_currency"]) == (Decimal("140.16"), "USD")
    assert (vm["ResourceId"], vm["ResourceName"], vm["SubAccountId"], vm["RegionId"]) == (
        VM, "vm-web-01", SUB, "westeurope")
    assert (vm["priority"], vm["state"], vm["x_SourceProvider"]) == ("Medium", "active", "azure")
    assert vm["last_refreshed_at"] == datetime(2026, 11, 25, 7, 12, 44, 125432, tzinfo=UTC)
    assert vm["recommendation_id"] == RIGHT_SIZE["id"]
    details = json.loads(vm["details"])
    assert details["properties"]["extendedProperties"]["MaxCpuP95"] == "11.5"
    assert details["costflow:resource_group"] == "rg-web"
    disk = rows["Microsoft.Compute/disks"]
    # Only the annual figure is given: /12, half-even to the declared 18 places.
    assert disk["category"] == "storage"
    assert disk["estimated_monthly_savings"] == Decimal("8.333333333333333333")
    assert json.loads(disk["details"])["costflow:estimated_monthly_savings_from"] == (
        "annualSavingsAmount/12")
    ri = rows["Microsoft.Subscriptions/subscriptions"]
    assert (ri["category"], ri["priority"], ri["recommended_configuration"]) == (
        "commitment", "High", "Standard_D2s_v3")
    assert (ri["estimated_monthly_savings"], ri["savings_currency"]) == (
        Decimal("1234.567890123456789"), "EUR")
    assert ri["ResourceId"] is None and ri["ResourceName"] is None and ri["SubAccountId"] == SUB
    ip = rows["Microsoft.Network/publicIPAddresses"]
    assert (ip["category"], ip["state"], ip["estimated_monthly_savings"]) == (
        "network", "dismissed", Decimal("3.65"))


@pytest.mark.parametrize("field, extended, problem, expected", [
    ("Microsoft.Sql/servers/databases", {}, "Right-size SQL databases", "database"),
    ("Microsoft.Storage/storageAccounts", {}, "Use lifecycle management", "storage"),
    ("Microsoft.Compute/virtualMachineScaleSets", {}, "Right-size VMSS", "compute"),
    ("Microsoft.Subscriptions/subscriptions", {}, "Consider a compute savings plan",
     "commitment"),
    ("Microsoft.Compute/virtualMachines", {"term": "P1Y"}, "Buy", "commitment"),
    ("Microsoft.Logic/workflows", {}, "Something new", "other"),
    (None, {}, None, "other"),
])
def test_categories(field, extended, problem, expected) -> None:
    assert azure_advisor.category_of(field, extended, problem) == expected


def test_end_to_end_into_duckdb_replaces_per_subscription(recorded, tmp_path: Path) -> None:
    answers, _ = recorded
    url = f"duckdb:///{tmp_path}/w.duckdb"
    other_rec = _rec(f"/subscriptions/{OTHER}/resourceGroups/x/providers/Microsoft.Compute/"
                     "virtualMachines/vm-x", "3d4e5f60-0000-4000-8000-000000000004",
                     "Microsoft.Compute/virtualMachines", "vm-x", "Low", "Shut down",
                     {"savingsAmount": "10.5", "savingsCurrency": "USD"})
    answers[SUB] = [(200, {}, PAGE_1), (200, {}, PAGE_2)]
    answers[OTHER] = [(200, {}, {"value": [other_rec], "nextLink": None})]
    assert "azure" in CATALOG.with_recommender()
    done = fetch_and_store("azure", url, {"subscription": [SUB, OTHER]})
    assert done["recommendations"] == 5
    # The next fetch of SUB alone lists only the disk: the rest of SUB disappears, OTHER stays.
    answers[SUB] = [(200, {}, {"value": [IDLE_DISK], "nextLink": None})]
    done = fetch_and_store("azure", url, {"subscription": [SUB]})
    assert done["sources"] == [f"azure.advisor/subscriptions/{SUB}"]
    warehouse = connect(url)
    try:
        stored = warehouse.query(
            "SELECT SubAccountId, category, estimated_monthly_savings AS s, savings_currency AS c "
            "FROM cost_analytics.recommendations WHERE x_SourceProvider = @p "
            "ORDER BY SubAccountId", {"p": "azure"}).to_pylist()
    finally:
        warehouse.close()
    assert [(r["SubAccountId"], r["category"], r["s"], r["c"]) for r in stored] == [
        (OTHER, "compute", Decimal("10.5"), "USD"),
        (SUB, "storage", Decimal("8.333333333333333333"), "USD")]


def test_http_errors_surface(recorded) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    answers, _ = recorded
    answers[SUB] = [(401, {}, {"error": {"code": "InvalidAuthenticationToken",
                                         "message": "The access token is invalid."}})]
    with pytest.raises(ClientAuthenticationError):
        azure_advisor.fetch(REQUEST)


@pytest.mark.parametrize("scope, message", [
    ({}, "needs --scope subscription="),
    ({"region": ["westeurope"]}, "unknown scope key"),
    ({"subscription": ["not-a-guid"]}, "is not a subscription ID"),
])
def test_bad_scopes_are_config_errors(scope, message) -> None:
    with pytest.raises(ConfigError, match=message):
        azure_advisor.fetch(FetchRequest("azure", "r", REQUEST.fetched_at, scope))


def test_unparseable_savings_names_the_recommendation(recorded) -> None:
    answers, _ = recorded
    bad = _rec(VM, "9d0c9a9f-4e3a-4d3b-8a8e-1f2c3d4e5f61", "Microsoft.Compute/virtualMachines",
               "vm", "Low", "x", {"savingsAmount": "12,50", "savingsCurrency": "EUR"})
    answers[SUB] = [(200, {}, {"value": [bad], "nextLink": None})]
    with pytest.raises(ConfigError, match=r"5f61: extendedProperties.savingsAmount is '12,50'"):
        azure_advisor.fetch(REQUEST)
