"""Budgets from costflow.yaml: actuals against an oracle summed from the rows the test wrote,
the forecast for the rest of the period, thresholds, and alerts delivered once per (budget,
threshold, period) to a real local webhook, through `costflow budgets check`, the Python API
and the post-sync hook.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from costflow.cli import main
from costflow.config import parse_config
from costflow.config.problems import ConfigFileError
from costflow.metadata import connect as connect_metadata
from costflow.services.alerts import deliver
from costflow.services.budgets import check_budgets, evaluate, tenant_scope
from tests.budgets_fixtures import (
    AWS_ACCT,
    AZ_BILLING,
    GCP_BILLING,
    LAST,
    Webhook,
    build_warehouse,
)

AS_OF = date(2026, 11, 15)
HOOK = "api-keys/acme/slack-webhook"

CONFIG = """
version: 1
warehouse: duckdb:///{root}/w.duckdb
metadata: local:///{root}/meta.sqlite
secrets: local:///{root}/secrets
tenants:
  - id: acme
    billing_accounts: ["{aws}", "{gcp}", "{az}"]
    policies:
      budgets:
        - name: aws-monthly
          amount: "1500.00"
          currency: USD
          scope: {{provider: [AWS]}}
          forecast: {forecast}
          webhook: secret://{hook}
        - name: web-team
          amount: "1000"
          currency: USD
          period: month
          scope: {{"tag:team": [web]}}
          thresholds: [50, 80, 100]
          forecast: false
          webhook: secret://{hook}
        - name: eu
          amount: "5000"
          currency: EUR
          period: quarter
          forecast: false
{accounts}"""


def write_config(root: Path, accounts: str = "", forecast: bool = True) -> Path:
    """The config; ``forecast`` for aws-monthly (the only budget that forecasts: an ETS fit
    takes seconds, so the tests that are not about the forecast leave it out)."""
    path = root / "costflow.yaml"
    path.write_text(CONFIG.format(root=root, aws=AWS_ACCT, gcp=GCP_BILLING, az=AZ_BILLING,
                                  hook=HOOK, accounts=accounts, forecast=str(forecast).lower()))
    return path


def oracle(rows: list[dict[str, Any]], start: date, end: date, currency: str,
           keep: Any) -> Decimal:
    """Exact sum of BilledCost over the rows the test wrote, filtered in plain Python."""
    return sum((r["BilledCost"] for r in rows
                if start <= r["ChargePeriodStart"].date() < end
                and r["BillingCurrency"] == currency and keep(r)), Decimal(0))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("COSTFLOW_SECRETS_KEY", Fernet.generate_key().decode())
    monkeypatch.chdir(tmp_path)
    warehouse, rows = build_warehouse(tmp_path / "w.duckdb")
    warehouse.close()
    path = write_config(tmp_path, forecast=False)
    return {"root": tmp_path, "rows": rows, "config_path": path,
            "config": parse_config(path.read_text(), str(path))}


def store_hook(root: Path, url: str) -> None:
    from costflow.secrets import connect

    manager = connect(f"local:///{root}/secrets")
    asyncio.run(manager.create_secret(HOOK, url))
    manager.close()


def test_check_twice_alerts_each_threshold_once(world: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root, rows = world["root"], world["rows"]
    nov, dec = date(2026, 11, 1), date(2026, 12, 1)
    aws = oracle(rows, nov, dec, "USD", lambda r: r["ProviderName"] == "AWS")
    web = oracle(rows, nov, dec, "USD", lambda r: json.loads(r["Tags"]).get("team") == "web")
    eu = oracle(rows, date(2026, 10, 1), date(2027, 1, 1), "EUR", lambda r: True)
    # The scenario the thresholds below rely on, from the oracle alone.
    assert Decimal("750") <= aws < Decimal("1200") and web >= Decimal("1000")
    with Webhook().running() as hook:
        store_hook(root, hook.url)
        argv = ["budgets", "check", "--config", str(world["config_path"]),
                "--as-of", AS_OF.isoformat(), "--json"]
        assert main(argv) == 1
        first = json.loads(capsys.readouterr().out)
        assert main(argv[:-1]) == 1     # the table form: rounded, separated; no new alert
        table = capsys.readouterr().out
    budgets = {b["budget"]: b for b in first["budgets"]}
    assert Decimal(budgets["aws-monthly"]["actual"]) == aws
    assert Decimal(budgets["web-team"]["actual"]) == web
    assert Decimal(budgets["eu"]["actual"]) == eu
    assert budgets["aws-monthly"]["last_day"] == LAST.isoformat()
    assert budgets["aws-monthly"]["crossed"] == ["actual-50"]       # 69 %: not 80
    assert budgets["web-team"]["crossed"] == ["actual-50", "actual-80", "actual-100"]
    assert budgets["eu"]["crossed"] == [] and budgets["eu"]["period_start"] == "2026-10-01"
    assert budgets["aws-monthly"]["other_currency_rows"] == 0
    # Four crossings: four POSTs on the first run, none on the second.
    assert [a["status"] for a in first["alerts"]] == ["sent"] * 4
    assert table.count("[already-sent via stdout, webhook]") == 4
    assert len(hook.received) == 4 and hook.attempts == 4
    texts = sorted(m["text"] for m in hook.received)
    assert any("Budget web-team of acme" in t and "passed 100 %" in t for t in texts)
    assert all(m["blocks"][0]["type"] == "section" for m in hook.received)
    assert f"{aws.quantize(Decimal('0.01')):,}" in table        # e.g. 1,035.80


def test_the_forecast_for_the_rest_of_the_month_breaches(world: dict[str, Any]) -> None:
    from costflow.warehouse import connect

    root, rows = world["root"], world["rows"]
    config = parse_config(write_config(root, forecast=True).read_text())
    tenant = config.tenant("acme")
    warehouse = connect(f"duckdb:///{root}/w.duckdb", reader=True)
    try:
        status = evaluate(warehouse, tenant_scope(tenant), tenant.budgets[0], AS_OF)
    finally:
        warehouse.close()
    aws = oracle(rows, date(2026, 11, 1), date(2026, 12, 1), "USD",
                 lambda r: r["ProviderName"] == "AWS")
    assert status.actual == aws and status.forecast_rest is not None
    assert status.projected == aws + status.forecast_rest
    # Nov 15-30 at the October/November weekly rhythm (about 72/day weekdays, 48 weekends).
    assert Decimal("900") < status.forecast_rest < Decimal("1500")
    assert status.forecast_upper is not None and status.forecast_upper >= status.forecast_rest
    assert [c.name for c in status.crossed] == ["actual-50", "forecast-100"]


def test_a_500_is_retried_and_a_failed_alert_is_sent_by_the_next_check(
        world: dict[str, Any]) -> None:
    root, config = world["root"], world["config"]
    from costflow.warehouse import connect

    tenant = config.tenant("acme")
    store = connect_metadata(f"local:///{root}/meta.sqlite")
    warehouse = connect(f"duckdb:///{root}/w.duckdb", reader=True)
    web = [evaluate(warehouse, tenant_scope(tenant), tenant.budgets[1], AS_OF)]
    try:
        # The first alert meets 503, 503, 503 (1 + 2 retries): failed, nothing recorded.
        # The second meets a 500, then success on its retry; the third goes through.
        with Webhook([503, 503, 503, 500]).running() as hook:
            store_hook(root, hook.url)
            first = deliver(web, store, f"local:///{root}/secrets", backoff=0.01, retries=2)
            assert [(d.status, d.attempts) for d in first] == [
                ("failed", 3), ("sent", 2), ("sent", 1)]
            assert "HTTP 503" in (first[0].error or "")
            assert hook.url not in (first[0].error or "")        # a credential
            assert hook.attempts == 6 and len(hook.received) == 2
            # The next check sends the failed one, and only it.
            again = deliver(web, store, f"local:///{root}/secrets", backoff=0.01, retries=2)
            assert [d.status for d in again] == ["sent", "already-sent", "already-sent"]
            assert len(hook.received) == 3
            assert sorted(m["text"] for m in hook.received) == sorted(
                a.alert.text for a in first)
    finally:
        store.close()
        warehouse.close()


def test_a_webhook_missing_from_the_secret_store_fails_the_check_with_the_fix(
        world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["budgets", "check", "--config", str(world["config_path"]), "--as-of",
            AS_OF.isoformat()]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert out.count("[failed]") == 4
    assert "costflow secrets set api-keys/acme/slack-webhook --from-file FILE" in out
    assert main([*argv, "--no-notify"]) == 1     # evaluated only: crossed, nothing sent
    assert "[failed]" not in capsys.readouterr().out


def test_a_4xx_is_not_retried(world: dict[str, Any]) -> None:
    root, config = world["root"], world["config"]
    from costflow.warehouse import connect

    tenant = config.tenant("acme")
    warehouse = connect(f"duckdb:///{root}/w.duckdb", reader=True)
    status = evaluate(warehouse, tenant_scope(tenant), tenant.budgets[1], AS_OF)
    warehouse.close()
    with Webhook([404]).running() as hook, \
            connect_metadata(f"local:///{root}/meta.sqlite") as store:
        store_hook(root, hook.url)
        done = deliver([status], store, f"local:///{root}/secrets", backoff=0.01)
        assert [(d.status, d.attempts) for d in done] == [("failed", 1), ("sent", 1),
                                                          ("sent", 1)]
        assert hook.attempts == 3 and "HTTP 404" in (done[0].error or "")


def test_two_checks_at_once_send_each_alert_once(world: dict[str, Any]) -> None:
    root, config = world["root"], world["config"]
    from costflow.warehouse import connect

    warehouse = connect(f"duckdb:///{root}/w.duckdb", reader=True)
    tenant = config.tenant("acme")
    statuses = [evaluate(warehouse, tenant_scope(tenant), tenant.budgets[1], AS_OF)]
    warehouse.close()
    results: list[list[str]] = []
    with Webhook().running() as hook:
        store_hook(root, hook.url)

        def one(name: str) -> None:
            with connect_metadata(f"local:///{root}/meta.sqlite") as store:
                results.append([d.status for d in deliver(
                    statuses, store, f"local:///{root}/secrets", owner=name)])

        threads = [threading.Thread(target=one, args=(f"checker-{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(hook.received) == 3
    assert sum(r.count("sent") for r in results) == 3
    assert all(set(r) <= {"sent", "already-sent", "in-progress"} for r in results)


def test_sync_checks_budgets_after_its_loads(world: dict[str, Any]) -> None:
    from costflow.sync import SyncRequest, render_summary, run_sync

    root = world["root"]
    # One account whose credentials are not in the secret store: it fails at once, without
    # an ingest process, and the budget check still runs after it.
    account = f"""accounts:
  - id: "{AWS_ACCT}"
    provider: aws
    tenant: acme
    credentials: secret://cloud-creds/acme/aws
    sources: [{{uri: "{root}/exports"}}]
"""
    path = write_config(root, account, forecast=False)
    config = parse_config(path.read_text(), str(path))
    with Webhook().running() as hook:
        store_hook(root, hook.url)
        result = run_sync(config, SyncRequest())
    assert result.exit_status == 3                       # the load failed; budgets don't change it
    assert result.budgets is not None and result.budget_error is None
    today = [s for s in result.budgets.statuses]
    assert {s.budget.name for s in today} == {"aws-monthly", "web-team", "eu"}
    # Whatever today's period holds, every crossing reached the webhook exactly once.
    crossings = sum(len(s.crossed) for s in today)
    assert len(hook.received) == crossings
    summary = json.loads(render_summary(result, "json"))
    assert {b["budget"] for b in summary["budgets"]["budgets"]} == {
        "aws-monthly", "web-team", "eu"}
    assert "budgets:" in render_summary(result, "table")


@pytest.mark.parametrize(("budget", "message"), [
    ('{name: b, amount: 12.5, currency: USD}', "budgets[0].amount is a decimal number"),
    ('{name: b, amount: "12.5", currency: usd}', "budgets[0].currency: is not an ISO 4217"),
    ('{name: b, amount: "1", currency: USD, period: week}', "budgets[0].period"),
    ('{name: b, amount: "1", currency: USD, webhook: "https://hooks.slack.com/x"}',
     "must be a reference to the secret store"),
    ('{name: b, amount: "-1", currency: USD}', "must be a positive amount"),
    ('{name: b, amount: "1", currency: USD, thresholds: [80, 80]}', "lists a percentage twice"),
])
def test_bad_budgets_are_refused_naming_the_line(budget: str, message: str) -> None:
    text = ("version: 1\ntenants:\n  - id: acme\n    policies:\n      budgets:\n"
            f"        - {budget}\n")
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "costflow.yaml")
    assert message in str(err.value) and "costflow.yaml line" in str(err.value)


def test_unknown_scope_dimension_names_the_budget(world: dict[str, Any]) -> None:
    root = world["root"]
    text = ("version: 1\ntenants:\n  - id: acme\n    billing_accounts: [x]\n    policies:\n"
            "      budgets:\n        - {name: b, amount: '1', currency: USD, "
            "scope: {colour: [red]}}\n")
    config = parse_config(text, "costflow.yaml")
    from costflow.errors import ConfigError
    from costflow.warehouse import connect

    warehouse = connect(f"duckdb:///{root}/w.duckdb", reader=True)
    try:
        with pytest.raises(ConfigError, match="budget b of tenant acme: scope: unknown filter"):
            check_budgets(warehouse, config.tenants, AS_OF, notify=False)
    finally:
        warehouse.close()
