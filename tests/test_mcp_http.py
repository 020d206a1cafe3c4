"""`costflow mcp --transport http` with the MCP SDK's streamable HTTP client, over the network.

uvicorn serves `McpHttpApp` on 127.0.0.1 (ephemeral port) in a thread, over the query fixture
warehouse (tests.query_fixture: AWS account 111111111111, a GCP billing account, an Azure one),
with two tenants in its config and keys in a local metadata store. The tests list and call
tools with real clients, two tenants at once (each answer checked against the warehouse
directly), revoke a key mid-session, burst over the rate limit and read the audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from costflow.config.models import CostflowConfig, TenantConfig
from costflow.metadata import connect as connect_metadata
from costflow.services import api_keys
from costflow.services.mcp_http import AUDIT_LOGGER, McpHttpApp, RateLimiter, count_rows, redact
from costflow.services.mcp_server import connect_reader
from tests.query_fixture import AWS_ACCT, GCP_BILLING, build

CONFIG = CostflowConfig(tenants=(TenantConfig(id="acme", billing_accounts=(AWS_ACCT,)),
                                 TenantConfig(id="globex", billing_accounts=(GCP_BILLING,))))
NOV = {"start_date": "2026-11-01", "end_date": "2026-12-01"}


@dataclass
class Served:
    app: McpHttpApp
    url: str
    base: str
    keys: dict[str, str]
    store: Any
    warehouse_url: str
    audit: list[dict[str, Any]]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(record.getMessage())
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    where: Path = tmp_path_factory.mktemp("mcp-http")
    build(where / "w.duckdb")
    url = f"duckdb:///{where}/w.duckdb"
    store = connect_metadata(f"local:///{where}/metadata.sqlite")
    keys = {name: api_keys.create_key(store, tenant, name)[1] for name, tenant in
            [("acme-agent", "acme"), ("globex-agent", "globex"), ("acme-burst", "acme"),
             ("acme-revoked", "acme")]}
    app = McpHttpApp(connect_reader(url), CONFIG, store,
                     limiter=RateLimiter(rate=50.0, burst=200))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    handler = _Lines()
    logging.getLogger(AUDIT_LOGGER).addHandler(handler)
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        yield Served(app, f"{base}/mcp", base, keys, store, url, handler.lines)
    finally:
        server.should_exit = True
        thread.join(10)
        logging.getLogger(AUDIT_LOGGER).removeHandler(handler)
        store.close()


def client(served: Served, key: str | None, statuses: list[int] | None = None) -> Client:
    """An SDK client sending ``key``; ``statuses`` collects every HTTP status it receives."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = create_mcp_http_client(headers=headers)
    if statuses is not None:
        async def seen(response: Any) -> None:
            statuses.append(response.status_code)

        http.event_hooks["response"].append(seen)
    return Client(streamable_http_client(served.url, http_client=http),
                  read_timeout_seconds=30)


def answer(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def direct(served: Served, sql: str) -> list[dict[str, Any]]:
    wh = connect_reader(served.warehouse_url)
    try:
        return wh.query(sql).to_pylist()
    finally:
        wh.close()


def test_two_tenants_at_once_see_only_their_accounts(served: Served) -> None:
    async def as_tenant(key: str) -> dict[str, Any]:
        async with client(served, key) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            costs = answer(await c.call_tool("get_costs", {**NOV, "group_by":
                                                           ["billing_account"]}))
            rows = answer(await c.call_tool("run_query", {"sql": (
                "SELECT BillingAccountId, SUM(BilledCost) AS cost FROM focus "
                "GROUP BY 1 ORDER BY 1")}))
            recs = answer(await c.call_tool("get_recommendations", {}))
            resources = answer(await c.call_tool("get_resources", NOV))
            values = answer(await c.call_tool("dimension_values", {
                **NOV, "dimension": "sub_account"}))
            return {"tools": tools, "costs": costs, "rows": rows, "recs": recs,
                    "resources": resources, "values": values}

    async def both() -> list[dict[str, Any]]:
        return list(await asyncio.gather(as_tenant(served.keys["acme-agent"]),
                                         as_tenant(served.keys["globex-agent"])))

    acme, globex = asyncio.run(both())
    assert {"get_costs", "run_query", "get_commitment_coverage",
            "get_commitment_utilization", "get_budgets"} <= acme["tools"]
    for seen, account in ((acme, AWS_ACCT), (globex, GCP_BILLING)):
        truth = direct(served, f"""
            SELECT SUM(BilledCost) AS cost, ARRAY_AGG(DISTINCT SubAccountId) AS subs
            FROM cost_analytics.cost_line_items WHERE BillingAccountId = '{account}'
              AND ChargePeriodStart >= TIMESTAMP '2026-11-01'
              AND ChargePeriodStart < TIMESTAMP '2026-12-01'""")[0]
        ((result,),) = [seen["costs"]["results"]]
        assert [b["value"] for b in result["breakdown"]] == [account]
        assert Decimal(result["total_cost"]) == truth["cost"]
        assert {r["BillingAccountId"] for r in seen["rows"]["rows"]} == {account}
        assert {v["value"] for v in seen["values"]["values"]} == set(truth["subs"])
        assert {r["billing_account_id"] for r in seen["recs"]["recommendations"]} <= {account}
        assert {r["sub_account_id"] for r in seen["resources"]["resources"]} <= set(
            truth["subs"])
    assert acme["recs"]["recommendations"] and globex["recs"]["recommendations"]


def test_no_key_bad_key_revoked_key_get_401(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        for headers, words in [
            ({}, "needs a bearer key"),
            ({"Authorization": "Bearer not-a-key"}, "not a costflow key"),
            ({"Authorization": "Bearer cfk_0123456789ab_" + "A" * 43},
             "not a key of this deployment"),
            ({"Authorization": "Basic " + served.keys["acme-agent"]}, "needs a bearer key"),
            ({"Authorization": f"Bearer {served.keys['acme-agent'][:-1]}x"},
             "not a key of this deployment")]:
            got = http.post("/mcp", json=body, headers={**headers,
                                                        "Accept": "application/json"})
            assert got.status_code == 401 and words in got.json()["error"], (headers, got.text)

    statuses: list[int] = []

    async def revoked_mid_session() -> str:
        key = served.keys["acme-revoked"]
        async with client(served, key, statuses) as c:
            answer(await c.call_tool("list_dimensions", {}))
            (record,) = [k for k in api_keys.list_keys(served.store)
                         if k.name == "acme-revoked"]
            api_keys.revoke_key(served.store, record.key_id)
            before = len(statuses)
            try:
                await c.call_tool("list_dimensions", {})
            except MCPError as err:  # the SDK reports the refused request as an error
                return f"{err} after HTTP {statuses[before:]}"
            return "answered"

    outcome = asyncio.run(revoked_mid_session())
    assert outcome.endswith("after HTTP [401]"), outcome
    with httpx.Client(base_url=served.base, timeout=10) as http:
        got = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        headers={"Authorization": f"Bearer {served.keys['acme-revoked']}"})
        assert got.status_code == 401 and "was revoked" in got.json()["error"]


def test_a_burst_over_the_rate_limit_gets_429(served: Served) -> None:
    """With the limiter's clock held still (no refill), a key gets exactly its burst."""
    limiter = served.app.limiter
    frozen = time.monotonic()
    limiter.clock = lambda: frozen
    key = served.keys["acme-burst"]
    ping = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    try:
        with httpx.Client(base_url=served.base, timeout=10) as http:
            codes = [http.post("/mcp", json={"jsonrpc": "2.0", "id": i, "method": "ping"},
                               headers=ping).status_code for i in range(limiter.burst + 3)]
            # within the burst every request reaches the MCP transport (which answers a ping
            # outside a session with 400); past it, none does
            assert set(codes[:limiter.burst]) == {400}
            assert codes[limiter.burst:] == [429, 429, 429]
            got = http.post("/mcp", json={}, headers={"Authorization": f"Bearer {key}"})
            assert got.status_code == 429 and got.headers["retry-after"] == "1"
            assert "rate limit of key" in got.json()["error"]
            # another key is not limited by this one's burst
            other = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                              headers={**ping, "Authorization":
                                       f"Bearer {served.keys['globex-agent']}"})
            assert other.status_code == 400

        statuses: list[int] = []

        async def sdk_client() -> str:
            outcome = "answered"
            try:
                async with client(served, key, statuses) as c:
                    await c.list_tools()
            except* MCPError as group:  # the session cannot even start
                outcome = str(group.exceptions[0])
            return outcome

        assert asyncio.run(sdk_client()) != "answered" and statuses and set(statuses) == {429}
    finally:
        limiter.clock = time.monotonic


def test_audit_lines_name_the_call_and_hold_no_secret(served: Served) -> None:
    planted = "AKIAABCDEFGHIJKLMNOP"

    async def calls() -> None:
        async with client(served, served.keys["globex-agent"]) as c:
            answer(await c.call_tool("run_query", {"sql": (
                f"SELECT ServiceName FROM focus WHERE COALESCE(ResourceName, '') <> '{planted}'")}))
            bad = await c.call_tool("get_costs", {"start_date": "x", "end_date": "y"})
            assert bad.is_error

    before = len(served.audit)
    asyncio.run(calls())
    lines = served.audit[before:]
    assert [(line["tool"], line["tenant"], line["key_name"], line["error"])
            for line in lines] == [("run_query", "globex", "globex-agent", False),
                                   ("get_costs", "globex", "globex-agent", True)]
    assert lines[0]["rows"] == 2 and lines[0]["duration_ms"] > 0
    assert lines[0]["arguments"]["sql"] == "[redacted]"
    text = json.dumps(served.audit)
    assert planted not in text
    assert not any(key in text for key in served.keys.values())


def test_redaction_and_row_counting() -> None:
    assert redact({"sql": "SELECT 1", "api_key": "abc", "nested": {"client_secret": "x"},
                   "note": ["-----BEGIN RSA PRIVATE KEY-----", "fine"]}) == {
        "sql": "SELECT 1", "api_key": "[redacted]", "nested": {"client_secret": "[redacted]"},
        "note": ["[redacted]", "fine"]}
    assert count_rows({"results": [{"breakdown": [1, 2]}, {"breakdown": [3]}]}) == 3
    assert count_rows({"columns": ["a"], "rows": [{}, {}]}) == 2
    assert count_rows({"guide": "text"}) is None


def test_a_per_cloud_server_answers_for_its_provider_only(served: Served) -> None:
    """--provider gcp: the stdio server (build_server) and every tenant's HTTP server."""
    from costflow.services.mcp_server import build_server
    from costflow.services.tenancy import Tenant

    warehouse = connect_reader(served.warehouse_url)
    http_app = McpHttpApp(warehouse, CONFIG, served.store, provider_scope="gcp")
    owner = build_server(warehouse, Tenant.unrestricted_owner(), "gcp")

    async def check(server: Any) -> list[str]:
        async with Client(server) as c:
            rows = answer(await c.call_tool("run_query", {
                "sql": "SELECT DISTINCT x_SourceProvider AS p FROM focus"}))
            costs = answer(await c.call_tool("get_costs", {**NOV, "group_by": ["provider"]}))
            coverage = answer(await c.call_tool("get_commitment_coverage", NOV))
            refused = await c.call_tool("run_query", {"sql": "SELECT 1 AS x FROM focus",
                                                      "provider": "aws"})
            assert refused.is_error and "provider 'gcp' only" in refused.content[0].text
            dims = answer(await c.call_tool("list_dimensions", {}))
            assert dims["providers"] == ["gcp"]
            return ([r["p"] for r in rows["rows"]]
                    + [b["value"] for r in costs["results"] for b in r["breakdown"]]
                    + [c["provider"] for c in coverage["coverage"]])

    try:
        assert set(asyncio.run(check(owner))) == {"gcp", "Google Cloud"}
        assert asyncio.run(check(http_app.servers["globex"])) == ["gcp", "Google Cloud", "gcp"]
        assert asyncio.run(check(http_app.servers["acme"])) == []  # acme has no GCP rows
    finally:
        warehouse.close()
