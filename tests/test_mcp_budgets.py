"""MCP `get_budgets` (issue 16): the tenant's budgets from the config, evaluated on the warehouse.

A real MCP client talks to `costflow mcp --config ... --tenant acme` over stdio (the SDK on both
ends); the expected actuals are summed in plain Python from the rows the fixture wrote
(`tests.budgets_fixtures`), never read back through costflow.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from costflow.cli import main
from costflow.config import parse_config
from costflow.services.mcp_http import tenant_of
from costflow.services.mcp_server import build_server
from costflow.warehouse import connect
from tests.budgets_fixtures import AWS_ACCT, AZ_BILLING, GCP_BILLING, build_warehouse

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-15"
NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)

CONFIG = """
version: 1
warehouse: duckdb:///{root}/w.duckdb
tenants:
  - id: acme
    billing_accounts: ["{aws}", "{gcp}", "{az}"]
    policies:
      budgets:
        - name: aws-monthly
          amount: "1500.00"
          currency: USD
          scope: {{provider: [AWS]}}
          thresholds: [50, 80, 100]
          forecast: false
        - name: web-team
          amount: "1000"
          currency: USD
          scope: {{"tag:team": [web]}}
          forecast: false
  - id: google-only
    billing_accounts: ["{gcp}"]
    policies:
      budgets:
        - name: everything
          amount: "300"
          currency: USD
          thresholds: [100]
          forecast: false
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("mcp-budgets")
    warehouse, rows = build_warehouse(root / "w.duckdb")
    warehouse.close()
    path = root / "costflow.yaml"
    path.write_text(CONFIG.format(root=root, aws=AWS_ACCT, gcp=GCP_BILLING, az=AZ_BILLING))
    return {"root": root, "rows": rows, "path": path,
            "config": parse_config(path.read_text(), str(path))}


def oracle(rows: list[dict[str, Any]], keep: Any) -> Decimal:
    return sum((r["BilledCost"] for r in rows if NOV <= r["ChargePeriodStart"].date() < DEC
                and r["BillingCurrency"] == "USD" and keep(r)), Decimal(0))


def crossed(actual: Decimal, amount: str, thresholds: list[int]) -> list[str]:
    return [f"actual-{p}" for p in thresholds if actual * 100 >= Decimal(amount) * p]


def answer(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_get_budgets_over_stdio_equals_the_oracle(world: dict[str, Any]) -> None:
    rows = world["rows"]
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "costflow.cli", "-q", "mcp", "--config",
                                      str(world["path"]), "--tenant", "acme"], cwd=str(ROOT))

    async def scenario() -> Any:
        async with Client(params, read_timeout_seconds=60) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "get_budgets" in tools
            return answer(await client.call_tool("get_budgets", {"as_of": AS_OF}))

    found = asyncio.run(scenario())
    assert found["tenant"] == "acme" and found["as_of"] == AS_OF
    budgets = {b["budget"]: b for b in found["budgets"]}
    aws = oracle(rows, lambda r: r["ProviderName"] == "AWS")
    web = oracle(rows, lambda r: json.loads(r["Tags"]).get("team") == "web")
    assert Decimal("750") <= aws < Decimal("1200") and web >= Decimal("1000")  # the scenario
    for name, expected, amount in (("aws-monthly", aws, "1500.00"), ("web-team", web, "1000")):
        status = budgets[name]
        assert Decimal(status["actual"]) == expected
        assert (status["period_start"], status["period_end"]) == ("2026-11-01", "2026-12-01")
        assert status["crossed"] == crossed(expected, amount, status["thresholds"])
    assert budgets["aws-monthly"]["crossed"] == ["actual-50"] and found["crossed"] is True


def test_budgets_read_only_the_servers_tenant_and_need_the_config(world: dict[str, Any]) -> None:
    rows, config = world["rows"], world["config"]
    warehouse = connect(f"duckdb:///{world['root']}/w.duckdb", reader=True)
    google = build_server(warehouse, tenant_of(config, "google-only"),
                          tenant_config=config.tenant("google-only"))
    scoped = build_server(warehouse, tenant_of(config, "acme"), "aws",
                          tenant_config=config.tenant("acme"))
    bare = build_server(warehouse, tenant_of(config, "acme"))

    async def scenario() -> tuple[Any, Any, set[str]]:
        async with Client(google) as client:
            mine = answer(await client.call_tool("get_budgets", {"as_of": AS_OF}))
            bad_day = await client.call_tool("get_budgets", {"as_of": "15/11/2026"})
            assert bad_day.is_error and "YYYY-MM-DD" in bad_day.content[0].text
        async with Client(scoped) as client:
            refused = await client.call_tool("get_budgets", {"as_of": AS_OF})
        async with Client(bare) as client:
            names = {t.name for t in (await client.list_tools()).tools}
        return mine, refused, names

    mine, refused, names = asyncio.run(scenario())
    (status,) = mine["budgets"]
    expected = oracle(rows, lambda r: r["BillingAccountId"] == GCP_BILLING)
    assert Decimal(status["actual"]) == expected and expected > 0
    assert status["crossed"] == crossed(expected, "300", [100])
    assert refused.is_error and "provider 'aws' only" in refused.content[0].text
    assert "get_budgets" not in names and "get_costs" in names
    warehouse.close()


def test_tenant_flag_refuses_account_flags(world: dict[str, Any],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "--config", str(world["path"]), "--tenant", "acme",
                 "--billing-account", AWS_ACCT]) == 2
    assert "drop --billing-account" in capsys.readouterr().err
