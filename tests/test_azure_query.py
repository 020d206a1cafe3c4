"""Cost Management Query API through the real SDK, answered by recorded HTTP responses."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.costmanagement import CostManagementClient

from costflow.errors import ConfigError
from costflow.providers import CATALOG
from costflow.providers.azure.query_api import parse_uri, plan_query, read_query
from costflow.sources.contract import PlanRequest
from costflow.transforms.contract import BatchContext
from costflow.transforms.finalize import finalize

AZURE_REQUEST = PlanRequest("azure", None, CATALOG)  # a planner call restricted to azure

SUB = "00000000-0000-0000-0000-000000000001"
URI = f"azure-query://subscriptions/{SUB}?start=2026-10-01&end=2026-11-01"
COLUMNS = [{"name": "Cost", "type": "Number"}, {"name": "UsageDate", "type": "Number"},
           {"name": "ChargeType", "type": "String"}, {"name": "ServiceName", "type": "String"},
           {"name": "Currency", "type": "String"}]
NEXT = (f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.CostManagement/"
        "query?api-version=2024-08-01&$skiptoken=page2token")
# Recorded answers (shape of Azure/azure-rest-api-specs BillingAccountQueryGrouping.json).
PAGE_1 = {"id": "q1", "name": "q1", "type": "Microsoft.CostManagement/query", "properties": {
    "nextLink": NEXT, "columns": COLUMNS, "rows": [
        [12.345678901234567, 20261001, "Usage", "Virtual Machines", "EUR"],
        [0.5, 20261001, "Usage", "Storage", "EUR"]]}}
PAGE_2 = {"id": "q1", "name": "q1", "type": "Microsoft.CostManagement/query", "properties": {
    "nextLink": None, "columns": COLUMNS, "rows": [
        [100, 20261015, "Purchase", "Azure Reservations", "EUR"],
        [2.25, 20261031, "Usage", "Virtual Machines", "EUR"]]}}


class Recorded(requests.adapters.BaseAdapter):
    """A requests adapter replaying recorded responses and keeping the requests it saw."""

    def __init__(self, answers: list[tuple[int, dict, dict]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' adapter signature
        self.seen.append(request)
        status, headers, body = self.answers.pop(0)
        data = json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(data)),
                       **headers}
        raw = urllib3.HTTPResponse(body=io.BytesIO(data), headers=all_headers, status=status,
                                   preload_content=False)
        response = requests.Response()
        response.status_code = status
        response.headers.update(all_headers)
        response.raw = raw
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class FakeCredential:
    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken("token", 4102444800)

    def get_token_info(self, *scopes, options=None):  # noqa: ANN001
        from azure.core.credentials import AccessTokenInfo
        return AccessTokenInfo("token", 4102444800)


def _client(answers: list[tuple[int, dict, dict]]) -> tuple[CostManagementClient, Recorded]:
    adapter = Recorded(answers)
    session = requests.Session()
    session.mount("https://", adapter)
    client = CostManagementClient(FakeCredential(), transport=RequestsTransport(session=session),
                                  retry_backoff_factor=0.01)
    return client, adapter


def test_pages_and_throttling_are_followed(tmp_path: Path) -> None:
    throttled = (429, {"Retry-After": "0"}, {"error": {"code": "429", "message": "Too many"}})
    client, adapter = _client([(200, {}, PAGE_1), throttled, (200, {}, PAGE_2)])
    plan = plan_query(URI, AZURE_REQUEST, client=client, cache_dir=str(tmp_path))
    # Three HTTP calls: page 1, the throttled page 2, and its retry.
    assert len(adapter.seen) == 3
    assert "$skiptoken=page2token" in adapter.seen[2].url
    body = json.loads(adapter.seen[0].body)
    assert body["type"] == "ActualCost" and body["dataset"]["granularity"] == "Daily"
    assert [g["name"] for g in body["dataset"]["grouping"]] == ["ChargeType", "ServiceName"]
    assert body["timePeriod"]["from"].startswith("2026-10-01")
    assert json.loads(adapter.seen[2].body) == body  # the same query re-posted
    [source] = plan.files
    assert source.source_format == "azure_cost_query" and source.uri == URI
    batches = list(read_query(source, CATALOG))
    normalizer = CATALOG.formats.get("azure_cost_query")
    rows = []
    for first, batch in batches:
        ctx = BatchContext(URI, source.source_format, "azure", first, "r",
                           datetime(2026, 11, 2, tzinfo=UTC))
        done = finalize(batch, normalizer.map(batch), ctx)
        assert done.dead_letters.num_rows == 0
        rows += done.rows.to_pylist()
        [(key, stats)] = done.slices.items()
        assert key.billing_account_id == SUB
        assert stats.source_basis == stats.billed_cost == Decimal("115.095678901234567")
    # Numbers are read from the JSON text: no float rounding of 12.345678901234567.
    assert rows[0]["BilledCost"] == Decimal("12.345678901234567")
    assert [r["ChargeCategory"] for r in rows] == ["Usage", "Usage", "Purchase", "Usage"]
    assert rows[2]["ServiceCategory"] == "Management and Governance"
    assert [r["ChargePeriodStart"].date() for r in rows] == [
        date(2026, 10, 1), date(2026, 10, 1), date(2026, 10, 15), date(2026, 10, 31)]
    assert {r["BillingCurrency"] for r in rows} == {"EUR"}
    assert all("aggregated:query_api" in r["x_DataQualityFlags"] for r in rows)
    assert {r["SubAccountId"] for r in rows} == {SUB}
    assert any("aggregated, not line items" in n for n in plan.notes)


def test_empty_answer_loads_nothing(tmp_path: Path) -> None:
    empty = {"properties": {"nextLink": None, "columns": COLUMNS, "rows": []}}
    client, _ = _client([(200, {}, empty)])
    plan = plan_query(URI, AZURE_REQUEST, client=client, cache_dir=str(tmp_path))
    assert plan.files == [] and plan.empty_files == [URI]


@pytest.mark.parametrize("uri", [f"azure-query://subscriptions/{SUB}",
                                 "azure-query://resourceGroups/x?start=2026-10-01&end=2026-11-01",
                                 f"azure-query://subscriptions/{SUB}?start=2026-11-01&end=2026-10-01"])
def test_bad_query_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_uri(uri)


def test_part_of_a_month_is_queried_as_whole_months(tmp_path: Path) -> None:
    # A load replaces the subscription's whole month: asking for Oct 5..Oct 20 must not
    # replace October with two weeks of it.
    uri = f"azure-query://subscriptions/{SUB}?start=2026-10-05&end=2026-10-20"
    spec = parse_uri(uri, today=date(2026, 11, 26))
    assert (spec.start, spec.end, spec.widened) == (date(2026, 10, 1), date(2026, 11, 1), True)
    # The current month ends tomorrow: there is no cost after today.
    spec = parse_uri(f"azure-query://subscriptions/{SUB}?start=2026-11-01&end=2026-12-01",
                     today=date(2026, 11, 26))
    assert (spec.end, spec.widened) == (date(2026, 11, 27), True)
    client, adapter = _client([(200, {}, PAGE_2)])
    plan = plan_query(uri, AZURE_REQUEST, client=client, cache_dir=str(tmp_path))
    body = json.loads(adapter.seen[0].body)
    assert body["timePeriod"]["from"].startswith("2026-10-01")
    assert body["timePeriod"]["to"].startswith("2026-10-31T23:59:59")
    assert any("read as whole months (2026-10-01..2026-11-01" in n for n in plan.notes)
