"""Exchange rates: ECB and CSV files parse exactly, loads replace keys, the lookup policy."""

from __future__ import annotations

import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.cli import main
from costflow.errors import ConfigError
from costflow.services.rates import RateBook, store_rates
from costflow.services.rates_csv import parse_rates_csv_text
from costflow.services.rates_ecb import parse_ecb, parse_ecb_text
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.rates_fixtures import ECB_DAILY, ECB_HIST, EUR_USD

D = date(2026, 11, 3)


def test_ecb_daily_file_parses_every_currency_exactly() -> None:
    rates = parse_ecb_text(ECB_DAILY, "eurofxref.csv")
    assert len(rates) == 30
    assert {r.day for r in rates} == {date(2026, 11, 6)}
    assert {r.from_currency for r in rates} == {"EUR"}
    by_code = {r.to_currency: r.rate for r in rates}
    assert by_code["USD"] == Decimal("1.1536")
    assert by_code["IDR"] == Decimal("19208.55")
    assert str(by_code["GBP"]) == "0.87915"  # decimal text kept, never a float


def test_ecb_history_skips_na_and_reads_the_zip(tmp_path: Path) -> None:
    rates = parse_ecb_text(ECB_HIST, "eurofxref-hist.csv")
    assert not [r for r in rates if r.to_currency == "CYP"]
    assert len(rates) == 5 * 3 + 4  # USD, JPY, BGN every day; GBP N/A on Nov 4
    assert {r.day: r.rate for r in rates if r.to_currency == "USD"} == EUR_USD
    archive = tmp_path / "eurofxref-hist.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("eurofxref-hist.csv", ECB_HIST)
    assert parse_ecb(archive) == rates


@pytest.mark.parametrize(("text", "message"), [
    ("Datum,USD,\n2026-11-06,1.1,\n", "line 1 is not an ECB"),
    ("Date,USD,\n2026-13-06,1.1,\n", "line 2, column Date"),
    ("Date,USD,JPY,\n2026-11-06,1.1,abc,\n", "line 2, column JPY: 'abc' is not a number"),
    ("Date,USD,JPY,\n2026-11-06,1.1\n", "line 2 has 2 values"),
    ("Date,USD,\n2026-11-06,-1.1,\n", "line 2, column USD: rate -1.1 is not a positive"),
    ("Date,usd,\n2026-11-06,1.1,\n", "line 1, column 2: currency 'usd'"),
])
def test_ecb_errors_name_line_and_column(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ecb_text(text, "f.csv")


def test_plain_csv_and_its_errors() -> None:
    rates = parse_rates_csv_text("date,from,to,rate\n2026-11-03,USD,EUR,0.8673\n", "r.csv")
    assert [(r.day, r.from_currency, r.to_currency, r.rate) for r in rates] == [
        (D, "USD", "EUR", Decimal("0.8673"))]
    for text, message in (("d,f,t,r\n", "line 1 must be the header"),
                          ("date,from,to,rate\n2026-11-03,USD,USD,1\n", "to itself"),
                          ("date,from,to,rate\n2026-11-03,USD,EUR,0.1234567890123456789\n",
                           "more than 18 decimal places")):
        with pytest.raises(ConfigError, match=message):
            parse_rates_csv_text(text, "r.csv")


def _book(**kwargs: object) -> RateBook:
    rows = [{"date": d, "from_currency": "EUR", "to_currency": "USD", "rate": r, "source": "ecb"}
            for d, r in EUR_USD.items()]
    rows += [{"date": D, "from_currency": "EUR", "to_currency": "JPY",
              "rate": Decimal("177.05"), "source": "ecb"},
             {"date": D, "from_currency": "EUR", "to_currency": "USD",
              "rate": Decimal("1.16"), "source": "csv"}]
    return RateBook(rows, **kwargs)  # type: ignore[arg-type]


def test_lookup_policy() -> None:
    book = _book()
    # The charge day's rate; the user's CSV beats the ECB for the same day and pair.
    stated = book.lookup("EUR", "USD", D)
    assert (stated.rate, stated.rate_date, stated.source, stated.how) == (
        Decimal("1.16"), D, "csv", "stated")
    # A weekend day takes the latest earlier rate; 7 days is the default limit.
    assert book.lookup("EUR", "USD", date(2026, 11, 13)).rate_date == date(2026, 11, 6)
    assert book.lookup("EUR", "USD", date(2026, 11, 14)) is None
    assert book.lookup("EUR", "USD", date(2026, 11, 1)) is None  # never a later rate
    assert _book(max_age_days=0).lookup("EUR", "USD", date(2026, 11, 7)) is None
    # Inverse and cross rates, rounded half-even to 18 places.
    inverse = book.lookup("USD", "EUR", date(2026, 11, 4))
    assert inverse.how == "inverse"
    assert inverse.rate == Decimal("0.869943453675511092")  # 1 / 1.1495
    cross = book.lookup("USD", "JPY", D)
    assert cross.how == "cross via EUR" and cross.source == "csv+ecb"
    assert cross.rate == Decimal("152.629310344827586207")  # 177.05 / 1.16
    assert book.lookup("USD", "USD", D).rate == 1
    with pytest.raises(ConfigError, match="max rate age"):
        RateBook([], max_age_days=-1)


def test_loading_twice_replaces_and_cli_reports(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(ECB_HIST)
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    for _ in range(2):
        assert main(["-q", "rates", "load", "ecb", str(path), "--warehouse", url]) == 0
    assert "loaded 19 ecb rate(s)" in capsys.readouterr().out
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    count = "SELECT COUNT(*) AS n FROM cost_analytics.exchange_rates"
    assert warehouse.query(count).column("n")[0].as_py() == 19
    # A corrected rate replaces its key only; another source's rate for the key stays.
    rates = parse_ecb_text(ECB_HIST.replace("2026-11-03,1.1530", "2026-11-03,1.1531"), "fix")
    store_rates(warehouse, [r for r in rates if r.day == D and r.to_currency == "USD"], "ecb")
    store_rates(warehouse, parse_rates_csv_text("date,from,to,rate\n2026-11-03,EUR,USD,1.2\n",
                                                "r.csv"), "csv")
    got = warehouse.query(
        "SELECT source, rate FROM cost_analytics.exchange_rates WHERE date = @d "
        "AND to_currency = 'USD' ORDER BY source", {"d": D}).to_pylist()
    assert got == [{"source": "csv", "rate": Decimal("1.2")}, {"source": "ecb",
                                                               "rate": Decimal("1.1531")}]
    assert warehouse.query(count).column("n")[0].as_py() == 20
    bad = tmp_path / "bad.csv"
    bad.write_text("date,from,to,rate\n2026-11-03,EUR,USD,x\n")
    assert main(["-q", "rates", "load", "csv", str(bad), "--warehouse", url]) == 2
    assert "bad.csv: line 2, column rate" in capsys.readouterr().err


def test_rates_the_bills_carry(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from costflow.services.rates_bills import load_bill_rates
    from tests.query_fixture import gcp_row, insert

    def eur_row(day: int, rate: str) -> dict[str, object]:
        return gcp_row("8.673", "acme-eu", "Compute Engine", "europe-west1", day, {},
                       BillingCurrency="EUR", PricingCurrency="USD",
                       x_PricingToBillingRate=Decimal(rate),
                       BillingPeriodStart=datetime(2026, 11, 1, tzinfo=UTC))

    warehouse = DuckDBWarehouse(tmp_path / "bills.duckdb")
    warehouse.ensure_schema()
    insert(warehouse, [eur_row(3, "0.8673"), eur_row(3, "0.8673"), eur_row(4, "0.8661"),
                       eur_row(5, "0.8661"), eur_row(5, "0.8700"),
                       gcp_row("1.00", "acme-us", "BigQuery", "US", 3, {})])
    for _ in range(2):
        loaded, conflicts = load_bill_rates(warehouse)
    assert loaded == {"bill:gcp": 2}
    assert [(c.day, c.from_currency, c.to_currency, c.rates) for c in conflicts] == [
        (date(2026, 11, 5), "USD", "EUR", 2)]
    got = warehouse.query("SELECT date, from_currency, to_currency, rate, source FROM "
                          "cost_analytics.exchange_rates ORDER BY date").to_pylist()
    assert [(r["date"].day, r["from_currency"], r["to_currency"], r["rate"], r["source"])
            for r in got] == [(3, "USD", "EUR", Decimal("0.8673"), "bill:gcp"),
                              (4, "USD", "EUR", Decimal("0.8661"), "bill:gcp")]
