"""`costflow mcp` with a real MCP client session over stdio (the official SDK on both ends).

The test starts the server as a subprocess on the fixture warehouse, lists its tools and checks
each tool's answer against the hand-computed totals of tests.query_fixture; bad arguments come
back as tool errors an agent can read.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.query_fixture import AWS_ACCT, build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("mcp") / "warehouse.duckdb"
    build(path)
    return f"duckdb:///{path}"


def session(url: str, *flags: str) -> Client:
    return Client(StdioServerParameters(
        command=sys.executable, args=["-m", "costflow.cli", "-q", "mcp", "--warehouse", url,
                                      *flags], cwd=str(ROOT)), read_timeout_seconds=60)


def answer(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_every_tool_answers_correctly(warehouse_url: str) -> None:
    async def scenario() -> None:
        async with session(warehouse_url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"get_costs", "compare_periods", "get_forecast",
                                  "get_recommendations", "get_resources", "list_dimensions",
                                  "dimension_values", "describe_schema", "run_query",
                                  "get_commitment_coverage", "get_commitment_utilization",
                                  "get_anomalies", "get_costs_in_currency", "get_allocation"}
            assert "start_date" in tools["get_costs"].input_schema["required"]

            costs = answer(await client.call_tool("get_costs", {
                "start_date": "2026-11-01", "end_date": "2026-12-01", "group_by": ["provider"]}))
            assert [(r["currency"], r["total_cost"], [(b["value"], b["cost"])
                                                      for b in r["breakdown"]])
                    for r in costs["results"]] == [
                ("EUR", "7", [("Microsoft", "7")]),
                ("USD", "18.5", [("AWS", "12.5"), ("Google Cloud", "6")])]

            compared = answer(await client.call_tool("compare_periods", {
                "base_start": "2026-11-01", "base_end": "2026-12-01",
                "compare_start": "2026-12-01", "compare_end": "2027-01-01", "top": 2}))
            usd = compared["currencies"][1]
            assert (usd["base_total"], usd["compare_total"], usd["change"]) == (
                "18.5", "100", "81.5")
            assert usd["top_drivers"][0] == {"value": "Amazon Elastic Compute Cloud",
                                             "base": "10", "compare": "100", "change": "90"}
            assert len(usd["top_drivers"]) == 2

            recs = answer(await client.call_tool("get_recommendations", {"category": "compute"}))
            assert [r["estimated_monthly_savings"] for r in recs["recommendations"]] == [
                "52.56", "48.91"]

            resources = answer(await client.call_tool("get_resources", {
                "resource_type": "Virtual Machine", "start_date": "2026-11-01",
                "end_date": "2026-12-01"}))
            assert [(r["provider"], r["cost"]) for r in resources["resources"]] == [
                ("aws", "10"), ("azure", "7"), ("gcp", "4.25")]

            dims = answer(await client.call_tool("list_dimensions", {}))
            assert dims["dimensions"]["service"] == "ServiceName"
            assert dims["default_metric"] == "BilledCost"

            values = answer(await client.call_tool("dimension_values", {
                "dimension": "tag:team", "start_date": "2026-11-01", "end_date": "2026-12-01"}))
            assert values["values"] == [
                {"value": "web", "currency": "USD", "cost": "14.25"},
                {"value": "web", "currency": "EUR", "cost": "7"},
                {"value": "data", "currency": "USD", "cost": "2.5"},
                {"value": None, "currency": "USD", "cost": "1.75"}]

            schema = answer(await client.call_tool("describe_schema", {}))
            assert "amortized" in schema["metrics"]["EffectiveCost"].lower()
            assert "EffectiveCost" in schema["guide"] and "ListCost" in schema["guide"]

            short = await client.call_tool("get_forecast", {"start_date": "2026-12-01",
                                                            "end_date": "2027-01-01",
                                                            "currency": "USD"})
            assert short.is_error and "not enough history" in short.content[0].text

    asyncio.run(scenario())


def test_bad_arguments_are_tool_errors(warehouse_url: str) -> None:
    async def scenario() -> None:
        async with session(warehouse_url) as client:
            for arguments, message in [
                ({"start_date": "2026-11-01", "end_date": "2026-12-01",
                  "group_by": ["service'; DROP TABLE x; --"]}, "unknown dimension"),
                ({"start_date": "tomorrow", "end_date": "2026-12-01"}, "not a date"),
                ({"start_date": "2026-11-01", "end_date": "2026-12-01",
                  "metric": "BilledCost) --"}, "allowed: BilledCost"),
                ({"start_date": "2026-11-01", "end_date": "2026-12-01",
                  "provider": "oracle"}, "unknown provider"),
                ({"start_date": "2026-11-01"}, "end_date"),
            ]:
                result = await client.call_tool("get_costs", arguments)
                assert result.is_error, arguments
                assert message in result.content[0].text, result.content[0].text

    asyncio.run(scenario())


def test_the_server_is_held_to_its_tenant(warehouse_url: str) -> None:
    async def scenario() -> None:
        async with session(warehouse_url, "--billing-account", AWS_ACCT) as client:
            costs = answer(await client.call_tool("get_costs", {
                "start_date": "2026-11-01", "end_date": "2026-12-01", "group_by": ["provider"],
                "provider": "all"}))
            assert [(r["currency"], r["total_cost"]) for r in costs["results"]] == [
                ("USD", "12.5")]
            recs = answer(await client.call_tool("get_recommendations", {}))
            assert {r["provider"] for r in recs["recommendations"]} == {"aws"}

    asyncio.run(scenario())
