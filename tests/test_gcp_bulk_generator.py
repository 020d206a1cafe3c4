"""The vectorized GCP billing-export generator (`costflow.providers.gcp.samples.bulk`).

Every property is checked on the written files, read back independently (``json`` with exact
decimals for the JSON lines, ``pyarrow.parquet`` for Parquet), not on the generator's own
statistics; the truth is recomputed row by row from the file text; and an ingest of both files
must load every row and reconcile exactly to that truth.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from costflow.providers.gcp.samples import bulk
from costflow.providers.gcp.samples.billing import EUR_ACCOUNT, TYPED_SCHEMA, USD_ACCOUNT
from costflow.warehouse import connect

ROWS = 3_000
MONTH = "202610"


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in f]


def ts(text: str) -> datetime:
    return datetime.strptime(text.removesuffix(" UTC").split(".")[0],
                             "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def net_by_slice(rows: list[dict]) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        key = (r["billing_account_id"], r["invoice"]["month"])
        amount = Decimal(r["cost"]) + sum((Decimal(c["amount"]) for c in r["credits"]),
                                          Decimal(0))
        out[key] = out.get(key, Decimal(0)) + amount
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bulk.BulkExport]:
    d = tmp_path_factory.mktemp("gcp_bulk")
    return {"jsonl": bulk.write_jsonl(d / "export-000000000000.json.gz", ROWS, chunk_rows=1000),
            "parquet": bulk.write_parquet(d / "export-000000000000.parquet", ROWS,
                                          chunk_rows=1000)}


@pytest.fixture(scope="module")
def rows(files) -> list[dict]:
    return read_jsonl(files["jsonl"].path)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    def table(seed: int):
        return [c.record_batch() for c in bulk.generate(600, seed=seed, chunk_rows=250)]

    first, again, other = table(3), table(3), table(4)
    assert [b.num_rows for b in first] == [250, 250, 100]
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    assert not first[1].equals(other[1])
    assert first[0].schema == TYPED_SCHEMA


def test_rows_count_and_the_json_has_the_exports_fields(files, rows) -> None:
    assert len(rows) == ROWS == files["jsonl"].rows == files["parquet"].rows
    assert list(rows[0]) == TYPED_SCHEMA.names
    assert pq.ParquetFile(files["parquet"].path).metadata.num_rows == ROWS


def test_every_cost_type_two_currencies_and_labels_at_every_level(rows) -> None:
    assert {r["cost_type"] for r in rows} == {"regular", "tax", "adjustment", "rounding_error"}
    assert {(r["billing_account_id"], r["currency"]) for r in rows} == {
        (USD_ACCOUNT, "USD"), (EUR_ACCOUNT, "EUR")}
    assert {r["currency_conversion_rate"] for r in rows if r["currency"] == "EUR"} == {
        Decimal("0.921834")}
    assert any(r["project"] and r["project"]["labels"] and r["labels"] and r["system_labels"]
               and r["tags"] for r in rows)
    assert any(r["project"] is None for r in rows)  # account-level charges (support)
    tax = [r for r in rows if r["cost_type"] == "tax"]
    assert all(r["usage"] is None and r["price"] is None and r["cost"] > 0 for r in tax)
    rounding = [r for r in rows if r["cost_type"] == "rounding_error"]
    assert all(0 < abs(r["cost"]) < Decimal("0.00001") for r in rounding)


def test_multi_credit_rows_are_negative_and_at_most_three(rows) -> None:
    counts = [len(r["credits"]) for r in rows]
    assert max(counts) == 3 and sum(c >= 2 for c in counts) > 50
    regular = [r for r in rows if r["cost_type"] == "regular"]
    assert all(c["amount"] < 0 for r in regular for c in r["credits"])
    assert all(-sum(c["amount"] for c in r["credits"]) <= r["cost"] for r in regular)
    types = {c["type"] for r in rows for c in r["credits"]}
    assert {"SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT", "FEE_UTILIZATION_OFFSET",
            "DISCOUNT", "FREE_TIER", "PROMOTION"} == types


def test_late_rows_are_invoiced_next_month_and_exported_days_later(rows) -> None:
    late = [r for r in rows if r["invoice"]["month"] == "202611"]
    assert len(late) > 20
    month_end = datetime(2026, 11, 1, 7, tzinfo=UTC)  # Oct 31 24:00 US/Pacific (PDT)
    for r in late:
        assert month_end - timedelta(days=1) <= ts(r["usage_start_time"]) < month_end
        assert ts(r["export_time"]) - ts(r["usage_end_time"]) >= timedelta(days=2)
        assert r["adjustment_info"] is None and r["cost_type"] == "regular"


def test_corrections_of_the_previous_month_carry_adjustment_info(rows) -> None:
    corrections = [r for r in rows if r["adjustment_info"]
                   and ts(r["usage_start_time"]) < datetime(2026, 10, 1, 7, tzinfo=UTC)]
    assert corrections and all(r["cost_type"] == "adjustment" and r["invoice"]["month"] == MONTH
                               for r in corrections)
    modes = {r["adjustment_info"]["mode"] for r in corrections}
    assert {"COMPLETE_NEGATION_WITH_REMONETIZATION", "PARTIAL_CORRECTION"} <= modes
    negations = [r for r in corrections if r["cost"] < 0 and r["credits"]]
    assert negations and all(c["amount"] > 0 for r in negations for c in r["credits"])


def test_cud_fee_rows_and_covered_usage_share_region_and_commitment(rows) -> None:
    cpu_fees = [r for r in rows if r["sku"]["description"].startswith(
        "Commitment v1: Cpu in Americas for 1 Year")]
    assert len(cpu_fees) == 2 * 31  # two regions, one fee row per (Pacific) day of October
    assert all(r["cost_type"] == "regular" and r["location"]["region"]
               and r["subscription"]["instance_id"] and r["cost"] > 0 for r in cpu_fees)
    commitments = {(r["location"]["region"], r["subscription"]["instance_id"]) for r in rows
                   if r["sku"]["description"].startswith("Commitment v1:")}
    assert {region for region, _ in commitments} == {"us-central1", "us-east1"}
    covered = [r for r in rows if any(c["type"] == "COMMITTED_USAGE_DISCOUNT"
                                      for c in r["credits"])]
    full = partial = 0
    for r in covered:
        assert r["invoice"]["month"] in (MONTH, "202611")
        commitment = (r["location"]["region"], r["subscription"]["instance_id"])
        assert commitment in commitments  # same region, same commitment as a fee row
        cud = [c for c in r["credits"] if c["type"] == "COMMITTED_USAGE_DISCOUNT"]
        assert len(cud) == 1 and cud[0]["id"].endswith("/commitments/" + commitment[1])
        net = r["cost"] + cud[0]["amount"]
        assert net >= 0
        full += net == 0
        partial += net > 0
    assert full > 10 and partial > 10
    assert {r["location"]["region"] for r in covered
            if "Core" in r["sku"]["description"]} == {"us-central1", "us-east1"}


def test_truth_equals_the_sum_of_the_files_text(files, rows) -> None:
    assert net_by_slice(rows) == files["jsonl"].truth == files["parquet"].truth
    assert set(files["jsonl"].truth) == {(USD_ACCOUNT, MONTH), (EUR_ACCOUNT, MONTH),
                                         (USD_ACCOUNT, "202611"), (EUR_ACCOUNT, "202611")}


def test_parquet_holds_the_same_rows_as_the_json_lines(files, rows) -> None:
    table = pq.read_table(files["parquet"].path)
    assert table.schema.remove_metadata() == TYPED_SCHEMA
    parquet = table.select(["cost", "credits", "usage_start_time", "billing_account_id"])
    for record, line in zip(parquet.to_pylist(), rows, strict=True):
        assert Decimal(repr(record["cost"])) == line["cost"]
        assert [Decimal(repr(c["amount"])) for c in record["credits"]] == [
            c["amount"] for c in line["credits"]]
        assert record["usage_start_time"] == ts(line["usage_start_time"])
        assert record["billing_account_id"] == line["billing_account_id"]


def test_too_few_rows_for_the_months_fixed_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="rows must be at least 126"):
        next(bulk.generate(10))


def test_ingest_of_both_formats_loads_every_row_and_reconciles_exactly(tmp_path, ingest) -> None:
    # Two invoice months so that one run can take both files without overlapping slices.
    parquet = bulk.write_parquet(tmp_path / "p" / "export.parquet", 1_500, month="202610")
    jsonl = bulk.write_jsonl(tmp_path / "j" / "export.json.gz", 1_500, month="202612")
    report = ingest(parquet.path, jsonl.path, provider="gcp")
    assert report["totals"]["rows_loaded"] == 3_000
    assert report["totals"]["rows_dead_lettered"] == 0
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    try:
        found = wh.query("""
            SELECT BillingAccountId AS account, BillingPeriodStart AS period,
                   SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective
            FROM cost_analytics.cost_line_items GROUP BY 1, 2""").to_pylist()
    finally:
        wh.close()
    billed = {(r["account"], r["period"].strftime("%Y%m")): r["billed"] for r in found}
    assert billed == {**parquet.truth, **jsonl.truth}
    assert len(billed) == 8
    # The CUD fees moved onto covered usage: EffectiveCost per month is still BilledCost.
    assert all(r["effective"] == r["billed"] for r in found)
    assert {p["pool"] for p in report["amortization"]} >= {"Usage/us-central1"}
