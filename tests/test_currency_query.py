"""Costs in a reporting currency: a mixed USD/EUR warehouse answers in EUR and in USD, equal to
a hand-computed Decimal oracle over the same rates; amounts without a rate are reported."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from costflow.cli import main
from costflow.errors import ConfigError
from costflow.services.rates import store_rates
from costflow.services.rates_convert import convert_costs
from costflow.services.rates_ecb import parse_ecb_text
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import DEC_D, NOV_D, build
from tests.rates_fixtures import ECB_HIST, EUR_USD

N = {d: date(2026, 11, d) for d in range(1, 31)}


def inverse(rate: Decimal) -> Decimal:
    """The documented rounding of a derived rate: half-even to 18 places."""
    return (Decimal(1) / rate).quantize(Decimal("1e-18"), rounding=ROUND_HALF_EVEN)


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    path = tmp_path_factory.mktemp("currency") / "w.duckdb"
    warehouse = build(path)
    store_rates(warehouse, parse_ecb_text(ECB_HIST, "eurofxref-hist.csv"), "ecb")
    return warehouse


def by_provider(result: object) -> dict[str, Decimal]:
    return {r["provider"]: r["cost"] for r in result.rows}  # type: ignore[attr-defined]


def test_in_eur_equals_the_oracle_and_reports_the_missing_rate(wh: DuckDBWarehouse) -> None:
    result = convert_costs(wh, NOV_D, DEC_D, ["provider"], "EUR")
    usd_eur_3, usd_eur_4 = inverse(EUR_USD[N[3]]), inverse(EUR_USD[N[4]])
    oracle = {
        "AWS": Decimal("6.00") * usd_eur_3 + Decimal("2.50") * usd_eur_3
        + Decimal("4.00") * usd_eur_4,
        "Google Cloud": Decimal("4.25") * usd_eur_3,
        "Microsoft": Decimal("7.00"),
    }
    assert by_provider(result) == oracle
    assert result.total == sum(oracle.values())
    # GCP's 1.75 USD on Nov 20: the latest rate (Nov 6) is 14 days older: reported, not dropped.
    (missing,) = result.unconvertible
    assert (missing.values, missing.currency, missing.cost, missing.rows,
            missing.days_without_rate) == ({"provider": "Google Cloud"}, "USD",
                                           Decimal("1.75"), 1, [N[20]])
    assert {(r.from_currency, r.to_currency, r.rate_date, r.source, r.how, r.rate)
            for r in result.rates} == {("USD", "EUR", N[3], "ecb", "inverse", usd_eur_3),
                                       ("USD", "EUR", N[4], "ecb", "inverse", usd_eur_4)}
    # With a 14-day lookback the Nov 6 rate serves Nov 20.
    longer = convert_costs(wh, NOV_D, DEC_D, ["provider"], "EUR", max_age_days=14)
    assert not longer.unconvertible
    assert by_provider(longer)["Google Cloud"] == (
        oracle["Google Cloud"] + Decimal("1.75") * inverse(EUR_USD[N[6]]))


def test_in_usd_by_day_equals_the_oracle(wh: DuckDBWarehouse) -> None:
    result = convert_costs(wh, NOV_D, DEC_D, ["day", "service"], "USD")
    assert not result.unconvertible
    got = {(r["day"], r["service"]): r["cost"] for r in result.rows}
    assert got[(N[4], "Virtual Machines")] == Decimal("7.00") * EUR_USD[N[4]]  # 8.0465 exactly
    assert got[(N[4], "Virtual Machines")] == Decimal("8.0465")
    assert result.total == Decimal("6.00") + Decimal("2.50") + Decimal("4.00") + \
        Decimal("4.25") + Decimal("1.75") + Decimal("8.0465")
    ((pair, rate),) = {((r.from_currency, r.to_currency), r.rate) for r in result.rates}
    assert pair == ("EUR", "USD") and rate == EUR_USD[N[4]]
    # A filter and month grouping keep their meaning.
    monthly = convert_costs(wh, NOV_D, DEC_D, ["month"], "USD", {"currency": ["EUR"]})
    assert monthly.rows == [{"month": NOV_D, "currency": "USD", "cost": Decimal("8.0465"),
                             "rows": 1}]


def test_bad_requests_are_refused(wh: DuckDBWarehouse, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="three-letter ISO 4217"):
        convert_costs(wh, NOV_D, DEC_D, ["service"], "eur")
    empty = DuckDBWarehouse(tmp_path / "norates.duckdb")
    empty.ensure_schema()
    with empty.connection() as con:
        con.execute("DROP TABLE cost_analytics.exchange_rates")
    from tests.query_fixture import ROWS, insert
    insert(empty, ROWS)
    with pytest.raises(ConfigError, match="no exchange rates yet"):
        convert_costs(empty, NOV_D, DEC_D, ["service"], "EUR")


def test_cli_answers_in_eur(wh: DuckDBWarehouse, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["-q", "query", "costs", "--start", "2026-11-01", "--end", "2026-12-01",
            "--group-by", "provider", "--currency", "EUR", "--warehouse", wh.url]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "UNCONVERTIBLE provider=Google Cloud: 1.75 USD" in text
    assert "rates USD->EUR:" in text and "inverse, source ecb" in text
    assert main([*argv, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["currency"] == "EUR" and data["unconvertible"][0]["cost"] == "1.75"
    assert Decimal(data["total"]) == convert_costs(wh, NOV_D, DEC_D, ["provider"], "EUR").total


def test_provider_answers_a_mixed_currency_question(wh: DuckDBWarehouse) -> None:
    import asyncio

    from costflow.services.providers import MixedCurrencyError, WarehouseCostProvider
    from costflow.services.tenancy import Tenant

    provider = WarehouseCostProvider(wh, Tenant.unrestricted_owner())
    with pytest.raises(MixedCurrencyError, match="get_costs_in_currency"):
        asyncio.run(provider.get_costs(NOV_D, DEC_D, "TOTAL", ["provider"]))
    result = asyncio.run(provider.get_costs_in_currency(NOV_D, DEC_D, "USD", ["provider"],
                                                        granularity="MONTHLY"))
    assert [(r["month"], r["provider"], r["cost"]) for r in result.rows] == [
        (NOV_D, "AWS", Decimal("12.50")), (NOV_D, "Google Cloud", Decimal("6.00")),
        (NOV_D, "Microsoft", Decimal("8.0465"))]
