"""The PricingCurrency columns (FOCUS 1.2: PricingCurrency-C-004-M, PricingCurrencyEffectiveCost-
C-003-M): filled from the billing columns where the currencies agree, converted with the source's
own rate where they differ, left null where no rate is known, and moved with amortization."""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pytest

from costflow.providers.gcp.samples import billing as gs
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.render import arrow_schema
from costflow.transforms.commitment_amortization import AmortizationError, PoolTotals
from costflow.transforms.pricing_currency import RATE, complete_pricing_currency
from tests.conftest import normalize_file

SCHEMA = pa.schema([f.with_nullable(True) for f in arrow_schema(COST_LINE_ITEMS)])


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in SCHEMA} for r in rows],
                                schema=SCHEMA)


def _complete(table: pa.Table) -> pa.Table:
    """complete_pricing_currency where every conversion fits (no row error)."""
    out, errors = complete_pricing_currency(table)
    assert errors == []
    return out


def test_same_currency_copies_the_billing_amounts_exactly():
    tiny = Decimal("0.000000004970000000")  # CUR amounts go below 1e-8
    out = _complete(_table([
        {"BillingCurrency": "USD", "EffectiveCost": tiny, "ListUnitPrice": Decimal("0.0464"),
         "ContractedUnitPrice": Decimal("0.04")},
        {"BillingCurrency": "EUR", "PricingCurrency": "EUR", "EffectiveCost": Decimal("-3.5")},
    ])).to_pylist()
    assert [r["PricingCurrency"] for r in out] == ["USD", "EUR"]
    assert [r[RATE] for r in out] == [Decimal(1), Decimal(1)]
    assert out[0]["PricingCurrencyEffectiveCost"] == tiny
    assert out[0]["PricingCurrencyListUnitPrice"] == Decimal("0.0464")
    assert out[0]["PricingCurrencyContractedUnitPrice"] == Decimal("0.04")
    assert out[1]["PricingCurrencyEffectiveCost"] == Decimal("-3.5")


def test_other_currency_divides_by_the_sources_rate_and_never_guesses():
    out = _complete(_table([
        # GCP: EUR billing, USD pricing, currency_conversion_rate 0.921834 (USD -> EUR).
        {"BillingCurrency": "EUR", "PricingCurrency": "USD", RATE: Decimal("0.921834"),
         "EffectiveCost": Decimal("12.345678")},
        # AWS pricing/currency differs and the CUR gives no rate: nothing is invented.
        {"BillingCurrency": "EUR", "PricingCurrency": "USD", "EffectiveCost": Decimal("1")},
        # What the source stated is kept.
        {"BillingCurrency": "EUR", "PricingCurrency": "USD", RATE: Decimal("2"),
         "EffectiveCost": Decimal("1"), "PricingCurrencyEffectiveCost": Decimal("0.4")},
    ])).to_pylist()
    expected = (Decimal("12.345678") / Decimal("0.921834")).quantize(Decimal("1e-18"))
    assert out[0]["PricingCurrencyEffectiveCost"] == expected
    assert out[0]["PricingCurrencyEffectiveCost"] * Decimal("0.921834") == pytest.approx(
        Decimal("12.345678"), abs=Decimal("1e-17"))
    assert out[1]["PricingCurrencyEffectiveCost"] is None and out[1][RATE] is None
    assert out[2]["PricingCurrencyEffectiveCost"] == Decimal("0.4")


def test_amortization_moves_the_pricing_currency_cost_with_the_effective_cost():
    """A CUD fee spread over covered usage: PricingCurrencyEffectiveCost follows, in both
    currencies, and the source-derived value of untouched rows stays."""
    base = {"x_SourceProvider": "gcp", "BillingAccountId": "A", "x_SourceUri": "f",
            "BillingPeriodStart": pa.scalar(0, pa.timestamp("us", tz="UTC")).as_py(),
            "x_CommitmentPool": "Spend", "ChargeClass": None}
    rows = []
    for i, (currency, rate) in enumerate((("USD", None), ("EUR", Decimal("0.5")))):
        rows += [
            {**base, "BillingAccountId": currency, "x_SourceRowNumber": 10 * i + 1,
             "ChargeCategory": "Purchase", "EffectiveCost": Decimal("10"),
             "BillingCurrency": currency, RATE: rate,
             "PricingCurrency": "USD" if rate else None},
            {**base, "BillingAccountId": currency, "x_SourceRowNumber": 10 * i + 2,
             "ChargeCategory": "Usage", "EffectiveCost": Decimal("0"),
             "x_CommitmentCoveredCost": Decimal("4"), "BillingCurrency": currency, RATE: rate,
             "PricingCurrency": "USD" if rate else None}]
    table = _complete(_table(rows))
    assert table.column("PricingCurrencyEffectiveCost").to_pylist() == [
        Decimal(10), Decimal(0), Decimal(20), Decimal(0)]
    totals = PoolTotals()
    totals.add(table)
    allocation = totals.allocation()
    out = allocation.apply(table)
    allocation.verify()
    assert out.column("EffectiveCost").to_pylist() == [0, 10, 0, 10]
    assert out.column("PricingCurrencyEffectiveCost").to_pylist() == [
        Decimal(0), Decimal(10), Decimal(0), Decimal(20)]


def test_gcp_rows_in_eur_are_priced_in_usd_through_the_whole_normalizer(tmp_path):
    """The generator's fixture rows (real-shaped export records, USD and EUR accounts)."""
    records = gs.fixture_rows()
    path = tmp_path / "gcp_billing_export_resource_v1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = normalize_file(path, "gcp").rows.to_pylist()
    eur = [r for r in rows if r["BillingCurrency"] == "EUR"]
    usd = [r for r in rows if r["BillingCurrency"] == "USD"]
    assert eur and usd
    rate = Decimal(str(gs.EUR_RATE))
    for row in eur:
        assert (row["PricingCurrency"], row[RATE]) == ("USD", rate)
        assert row["PricingCurrencyEffectiveCost"] == (
            row["EffectiveCost"] / rate).quantize(Decimal("1e-18"))
    for row in usd:
        assert (row["PricingCurrency"], row[RATE]) == ("USD", Decimal(1))
        assert row["PricingCurrencyEffectiveCost"] == row["EffectiveCost"]


def test_division_is_exact_half_even_at_the_18th_place_against_decimal():
    """`divide_half_even` against Python's Decimal at ample precision, ties included."""
    import random
    from decimal import ROUND_HALF_EVEN, localcontext

    import numpy as np

    from costflow.transforms.decimal_units import divide_half_even

    rng = random.Random(7)
    pairs = [(rng.randrange(-10 ** 30, 10 ** 30), rng.choice([1, -1]) * rng.randrange(1, 10 ** 21))
             for _ in range(3000)]
    pairs += [(5, 10 ** 19), (15, 10 ** 19), (-5, 10 ** 19), (-25, 10 ** 19),  # exact ties
              (1, 3 * 10 ** 18), (-1, 3 * 10 ** 18), (10 ** 18, 4 * 10 ** 36)]
    quotients = divide_half_even(np.array([a for a, _ in pairs], dtype=object),
                                 np.array([b for _, b in pairs], dtype=object))
    with localcontext() as ctx:
        ctx.prec = 200
        expected = [(Decimal(a) * 10 ** 18 / Decimal(b)).quantize(Decimal(1),
                                                                 rounding=ROUND_HALF_EVEN)
                    for a, b in pairs]
    assert [int(q) for q in quotients] == [int(e) for e in expected]
    assert [int(q) for q in quotients[-7:-3]] == [0, 2, 0, -2]  # ties go to the even unit


@pytest.mark.parametrize("copies", [1, 400])  # per row, and once per distinct pair
def test_a_conversion_decimal_cannot_hold_is_a_row_error_on_that_row_alone(copies):
    huge = Decimal("12345678901234567890")  # / 1e-18 = 1.2e37: DECIMAL(38, 18) holds < 1e20
    rows = [{"BillingCurrency": "EUR", "PricingCurrency": "USD", RATE: Decimal("1e-18"),
             "EffectiveCost": huge, "ListUnitPrice": Decimal("0.5")},
            {"BillingCurrency": "EUR", "PricingCurrency": "USD", RATE: Decimal("0.5"),
             "EffectiveCost": huge, "ListUnitPrice": Decimal("0.5")},
            {"BillingCurrency": "USD", "EffectiveCost": huge}] * copies
    out, errors = complete_pricing_currency(_table(rows))
    assert [e.column for e in errors] == ["PricingCurrencyEffectiveCost"]
    assert "EffectiveCost / x_PricingToBillingRate" in errors[0].reason
    assert errors[0].mask.to_pylist() == [True, False, False] * copies
    assert out.column("PricingCurrencyEffectiveCost").to_pylist() == [
        None, huge * 2, huge] * copies
    # The unit price on the same rows fits: converted, no error of its own.
    assert out.column("PricingCurrencyListUnitPrice").to_pylist()[:2] == [
        Decimal("5E+17"), Decimal(1)]


def test_such_a_row_is_dead_lettered_with_its_reason_and_the_rest_load(tmp_path):
    """A GCP export row billed in EUR at a corrupt currency_conversion_rate of 1e-18: its
    conversion does not fit, so it is dead-lettered (its cost counted there); the run goes on."""
    records = gs.fixture_rows()
    eur = [i for i, r in enumerate(records) if r["currency"] == "EUR" and r["cost"]]
    records[eur[0]] = {**records[eur[0]], "currency_conversion_rate": 1e-18, "cost": 1e6}
    path = tmp_path / "gcp_billing_export_resource_v1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = normalize_file(path, "gcp")
    dead = result.dead_letters.to_pylist()
    assert [(d["x_SourceRowNumber"], d["ErrorColumn"]) for d in dead] == [
        (eur[0] + 1, "PricingCurrencyEffectiveCost")]
    assert "DECIMAL(38, 18) cannot hold" in dead[0]["ErrorReason"]
    raw = json.loads(dead[0]["RawRecord"])
    assert Decimal(raw["currency_conversion_rate"]) == Decimal("1e-18")
    assert Decimal(raw["cost"]) == Decimal(1e6)
    assert result.rows.num_rows == len(records) - 1


def test_amortization_refuses_a_moved_cost_that_no_longer_fits_naming_the_row():
    """Two fees of 60 at a rate of 1e-18 fit (6e19 each); the covered row they move to holds
    120, whose conversion (1.2e20) does not: the run stops there, naming the row."""
    base = {"x_SourceProvider": "gcp", "BillingAccountId": "A", "x_SourceUri": "gs://b/x.json",
            "BillingPeriodStart": pa.scalar(0, pa.timestamp("us", tz="UTC")).as_py(),
            "x_CommitmentPool": "Spend", "BillingCurrency": "EUR", "PricingCurrency": "USD",
            RATE: Decimal("1e-18")}
    table = _complete(_table([
        {**base, "x_SourceRowNumber": 1, "ChargeCategory": "Purchase", "EffectiveCost": 60},
        {**base, "x_SourceRowNumber": 2, "ChargeCategory": "Purchase", "EffectiveCost": 60},
        {**base, "x_SourceRowNumber": 3, "ChargeCategory": "Usage", "EffectiveCost": 0,
         "x_CommitmentCoveredCost": Decimal("4")}]))
    totals = PoolTotals()
    totals.add(table)
    with pytest.raises(AmortizationError, match=r"gs://b/x\.json row 3: its amortized "
                       r"EffectiveCost \(120"):
        totals.allocation().apply(table)


def test_repeated_unit_prices_convert_like_single_ones():
    """Thousands of rows sharing a few (price, rate) pairs: each converted as if alone."""
    rates = [Decimal("0.921834"), Decimal("1.0873"), Decimal("156.2334")]
    rows = [{"BillingCurrency": "EUR", "PricingCurrency": "USD", RATE: rates[i % 3],
             "EffectiveCost": (Decimal(i) / 7).quantize(Decimal("1e-18")) if i % 5 else None,
             "ListUnitPrice": Decimal("0.0464") + i % 2} for i in range(2000)]
    out = _complete(_table(rows)).to_pylist()
    for row, got in zip(rows, out, strict=True):
        alone = _complete(_table([row])).to_pylist()[0]
        assert got["PricingCurrencyListUnitPrice"] == alone["PricingCurrencyListUnitPrice"]
        assert got["PricingCurrencyEffectiveCost"] == alone["PricingCurrencyEffectiveCost"]
