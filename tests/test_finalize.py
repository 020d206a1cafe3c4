"""The shared finishing step: hard rules, dead letters, lineage and per-slice totals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from costflow.reconcile import SliceKey
from costflow.transforms.contract import BatchContext, Mapped, RowError
from costflow.transforms.finalize import DEAD_LETTER_SCHEMA, ROW_SCHEMA, finalize

DEC = pa.decimal128(38, 18)
TS = pa.timestamp("us", tz="UTC")
NOV, DEC_1 = datetime(2023, 11, 1, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=UTC)
CTX = BatchContext(source_uri="/data/cur-1.csv.gz", source_format="aws_cur_legacy",
                   provider="aws", first_row_number=101, run_id="run-1",
                   ingested_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC))


def _mapped(costs: list[str | None], accounts: list[str | None], categories: list[str],
            errors: list[RowError] | None = None) -> tuple[pa.RecordBatch, Mapped]:
    n = len(costs)
    raw = pa.record_batch({"lineItem/UnblendedCost": pa.array(costs, pa.string()),
                           "bill/PayerAccountId": pa.array(accounts, pa.string())})
    cost = pa.array([Decimal(c) if c is not None else None for c in costs], DEC)
    def rep(v, t=None):
        return pa.array([v] * n, t or pa.string())
    columns = {
        "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
        "BillingAccountId": pa.array(accounts, pa.string()), "BillingAccountType": rep("Payer"),
        "BillingCurrency": rep("USD"), "BillingPeriodStart": rep(NOV, TS),
        "BillingPeriodEnd": rep(DEC_1, TS), "ChargePeriodStart": rep(NOV, TS),
        "ChargePeriodEnd": rep(datetime(2023, 11, 1, 1, tzinfo=UTC), TS),
        "ChargeCategory": pa.array(categories, pa.string()), "ChargeFrequency": rep("Usage-Based"),
        "InvoiceIssuerName": rep("AWS"), "ProviderName": rep("AWS"), "PublisherName": rep("AWS"),
        "ServiceProviderName": rep("AWS"), "HostProviderName": rep("AWS"),
        "ServiceName": rep("Amazon Elastic Compute Cloud"), "ServiceCategory": rep("Compute"),
        "ServiceSubcategory": rep("Virtual Machines"),
    }
    return raw, Mapped(columns=columns, source_basis=cost, errors=errors or [])


def test_clean_batch_loads_every_row_with_lineage():
    raw, mapped = _mapped(["1.5", "0.00000000497"], ["123412340534"] * 2, ["Usage", "Tax"])
    out = finalize(raw, mapped, CTX)
    assert out.rows.schema == ROW_SCHEMA
    assert out.rows.num_rows == 2 and out.dead_letters.num_rows == 0
    assert out.rows.column("x_SourceRowNumber").to_pylist() == [101, 102]
    assert set(out.rows.column("x_SourceUri").to_pylist()) == {"/data/cur-1.csv.gz"}
    assert set(out.rows.column("x_RunId").to_pylist()) == {"run-1"}
    stats = out.slices[SliceKey("aws", "123412340534", NOV)]
    assert (stats.rows_read, stats.rows_loaded, stats.rows_dead_lettered) == (2, 2, 0)
    assert stats.source_basis == Decimal("1.50000000497") == stats.billed_cost
    assert stats.difference == 0


def test_normalizer_errors_and_hard_rules_become_dead_letters():
    bad_cost = RowError(pa.array([False, True, False]), "lineItem/UnblendedCost",
                        "is not a decimal number")
    raw, mapped = _mapped(["2.25", None, "3"], ["123412340534"] * 3,
                          ["Usage", "Usage", "Discount"], [bad_cost])
    out = finalize(raw, mapped, CTX)
    assert out.rows.num_rows == 1
    dead = out.dead_letters
    assert dead.schema == DEAD_LETTER_SCHEMA
    assert dead.column("x_SourceRowNumber").to_pylist() == [102, 103]
    assert dead.column("ErrorColumn").to_pylist() == ["lineItem/UnblendedCost", "ChargeCategory"]
    assert dead.column("ErrorReason")[1].as_py().startswith(
        "ChargeCategory is not an allowed value (allowed: Usage, Purchase")
    assert json.loads(dead.column("RawRecord")[0].as_py()) == {
        "lineItem/UnblendedCost": None, "bill/PayerAccountId": "123412340534"}
    assert dead.column("SourceCost").to_pylist() == [None, Decimal("3")]
    stats = out.slices[SliceKey("aws", "123412340534", NOV)]
    assert (stats.rows_read, stats.rows_loaded, stats.rows_dead_lettered) == (3, 1, 2)
    assert stats.source_basis == Decimal("5.25")
    assert stats.billed_cost == Decimal("2.25")
    assert stats.dead_lettered_cost == Decimal("3")
    assert stats.rows_basis_unparseable == 1
    assert stats.difference == 0


def test_every_reason_of_a_row_is_kept():
    raw, mapped = _mapped(["1"], ["123412340534"], ["Nonsense"])
    mapped.columns["ServiceSubcategory"] = pa.array(["Object Storage"])
    out = finalize(raw, mapped, CTX)
    reason = out.dead_letters.column("ErrorReason")[0].as_py()
    assert "ChargeCategory is not an allowed value" in reason
    assert "ServiceSubcategory does not belong to the row's ServiceCategory" in reason


def test_null_required_column_and_unattributable_slice():
    raw, mapped = _mapped(["4", "5"], [None, "999999999999"], ["Usage", "Usage"])
    out = finalize(raw, mapped, CTX)
    assert out.rows.column("BillingAccountId").to_pylist() == ["999999999999"]
    assert out.dead_letters.column("ErrorReason")[0].as_py() == (
        "BillingAccountId is empty, but the column may not be null")
    unknown = out.slices[SliceKey("aws", None, NOV)]
    assert not SliceKey("aws", None, NOV).attributable
    assert (unknown.rows_read, unknown.rows_dead_lettered, unknown.dead_lettered_cost) == (
        1, 1, Decimal("4"))


def test_period_order_is_a_hard_rule():
    raw, mapped = _mapped(["1"], ["123412340534"], ["Usage"])
    mapped.columns["ChargePeriodEnd"] = pa.array([NOV], TS)
    out = finalize(raw, mapped, CTX)
    assert out.dead_letters.column("ErrorReason").to_pylist() == [
        "ChargePeriodEnd is not after ChargePeriodStart"]


def test_wrongly_typed_normalizer_output_is_a_bug_not_data():
    raw, mapped = _mapped(["1"], ["123412340534"], ["Usage"])
    mapped.columns["BilledCost"] = pc.cast(mapped.columns["BilledCost"], pa.float64())
    try:
        finalize(raw, mapped, CTX)
    except TypeError as exc:
        assert "BilledCost is double" in str(exc)
    else:
        raise AssertionError("a float BilledCost must be refused")
