"""Commitment-fee amortization: exact shares, remainders, pools, files and idle commitments.

The arithmetic is checked on small staged tables whose values are chosen so rounding matters
(a fee of 1 over three equal weights does not divide in 18 decimals); the staged-file pass is
checked on Parquet files written with the pipeline's own row schema. The end-to-end ingest of
GCP export files is in tests/test_gcp_amortization_e2e.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costflow.pipelines.amortize import SUFFIX, amortize_staged
from costflow.transforms.arrow_ops import DECIMAL
from costflow.transforms.commitment_amortization import (
    COLUMNS,
    AmortizationError,
    PoolTotals,
)
from costflow.transforms.decimal_units import decimals_of, units_of
from costflow.transforms.finalize import ROW_SCHEMA
from tests.warehouse_rows import cost_row

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNT, OTHER = "01338E-BE3FD6-363B4C", "0A7F21-9C44D2-5E8B10"
URI = "gs://acme-billing/export/billing-000000000000.json.gz"
EXACT = Context(prec=80)
POOL = "Usage/us-central1"
SMALL = pa.schema([ROW_SCHEMA.field(name)
                   for name in dict.fromkeys((*COLUMNS, "BilledCost", "EffectiveCost"))])


def fee(cost: str, row: int, *, pool: str = POOL, account: str = ACCOUNT, period=OCT) -> dict:
    return {"x_SourceProvider": "gcp", "BillingAccountId": account, "BillingPeriodStart": period,
            "x_CommitmentPool": pool, "ChargeCategory": "Purchase", "BilledCost": Decimal(cost),
            "x_CommitmentCoveredCost": None, "x_SourceUri": URI, "x_SourceRowNumber": row,
            "EffectiveCost": Decimal(cost)}


def covered(billed: str, weight: str | None, row: int, *, pool: str | None = POOL,
            account: str = ACCOUNT, period=OCT, uri: str = URI) -> dict:
    return {"x_SourceProvider": "gcp", "BillingAccountId": account, "BillingPeriodStart": period,
            "x_CommitmentPool": pool, "ChargeCategory": "Usage", "BilledCost": Decimal(billed),
            "x_CommitmentCoveredCost": None if weight is None else Decimal(weight),
            "x_SourceUri": uri, "x_SourceRowNumber": row, "EffectiveCost": Decimal(billed)}


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SMALL)


def amortized(*tables: pa.Table) -> list[pa.Table]:
    totals = PoolTotals()
    for t in tables:
        totals.add(t)
    allocation = totals.allocation()
    return [allocation.apply(t) for t in tables]


def effective(t: pa.Table) -> list[Decimal]:
    return t.column("EffectiveCost").to_pylist()


def test_a_fee_moves_onto_covered_usage_by_weight_and_the_remainder_to_one_row() -> None:
    rows = [fee("1", 1), covered("0", "0.5", 2), covered("0", "0.5", 3),
            covered("0.25", "0.5", 4)]
    (out,) = amortized(table(rows))

    third = Decimal("0.333333333333333333")
    # Equal weights tie: the anchor is the first by source URI and row, and takes the 1e-18.
    assert effective(out) == [Decimal(0), third + Decimal("1e-18"), third,
                              Decimal("0.25") + third]
    assert sum(effective(out)) == sum(r["BilledCost"] for r in rows)  # nothing created or lost
    assert out.column("BilledCost").to_pylist() == [r["BilledCost"] for r in rows]


def test_the_largest_weight_takes_the_remainder_and_shares_follow_weights() -> None:
    rows = [fee("42.31", 1), covered("0", "0.097118", 2), covered("0", "0.291354", 3),
            covered("0.01", "0.194236", 4)]
    (out,) = amortized(table(rows))

    weights = [Decimal("0.097118"), Decimal("0.291354"), Decimal("0.194236")]
    total = sum(weights)
    floors = [(Decimal("42.31") * w / total).quantize(Decimal("1e-18"), rounding="ROUND_FLOOR")
              for w in weights]
    remainder = Decimal("42.31") - sum(floors)
    assert Decimal(0) < remainder < Decimal("3e-18")
    assert effective(out) == [Decimal(0), floors[0], floors[1] + remainder,
                              Decimal("0.01") + floors[2]]


def test_pools_are_separate_per_slice_and_per_pool() -> None:
    rows = [fee("10", 1), covered("0", "1", 2),
            fee("7", 3, pool="Usage/europe-west1"), covered("0", "1", 4, pool="Usage/europe-west1"),
            covered("0", "1", 5, account=OTHER),         # other billing account: no fee there
            covered("0", "1", 6, period=NOV)]            # other invoice month: no fee there
    (out,) = amortized(table(rows))

    assert effective(out) == [0, 10, 0, 7, 0, 0]


def test_rows_split_across_files_in_any_order_get_the_same_amounts() -> None:
    rows = [fee("3.333333", i) for i in range(1, 4)] + [
        covered("0", f"0.{i:06d}", 10 + i) for i in range(1, 40)]
    (whole,) = amortized(table(rows))
    expected = dict(zip([r["x_SourceRowNumber"] for r in rows], effective(whole), strict=True))

    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    parts = [table(shuffled[i:i + 7]) for i in range(0, len(shuffled), 7)]
    got = {}
    for part in amortized(*parts):
        got.update(zip(part.column("x_SourceRowNumber").to_pylist(), effective(part),
                       strict=True))

    assert got == expected
    assert sum(expected.values()) == Decimal("9.999999")


def test_corrections_and_uncovered_rows_keep_their_effective_cost() -> None:
    rows = [fee("5", 1), covered("0", "2", 2),
            covered("-0.4", "-0.4", 3),          # a negated covered row (a correction)
            covered("0.3", None, 4, pool=None),  # usage no commitment covered
            {**covered("-1", "0", 5), "ChargeCategory": "Adjustment"}]
    (out,) = amortized(table(rows))

    assert effective(out) == [Decimal(0), Decimal(5), Decimal("-0.4"), Decimal("0.3"),
                              Decimal(-1)]


def test_an_idle_commitment_keeps_its_fee_and_is_reported() -> None:
    rows = [fee("12.5", 1, pool="Usage/asia-east1"), covered("0", "1", 2)]
    totals = PoolTotals()
    totals.add(table(rows))

    assert not totals.allocation()  # nothing to move
    assert totals.unamortized() == [(("gcp", ACCOUNT, OCT, "Usage/asia-east1"),
                                     Decimal("12.5"))]
    assert effective(totals.allocation().apply(table(rows))) == [Decimal("12.5"), Decimal(0)]


def test_a_negative_fee_moves_too() -> None:
    (out,) = amortized(table([fee("-0.000000000000000002", 1), covered("0", "1", 2),
                              covered("0", "1", 3), covered("0", "1", 4)]))
    # floor(-2/3) = -1 unit each; the anchor (row 2) takes the +1 remainder back.
    assert effective(out) == [0, Decimal(0), Decimal("-1e-18"), Decimal("-1e-18")]
    assert sum(effective(out)) == Decimal("-2e-18")


def _staged(path: Path, rows: list[dict]) -> str:
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), path)
    return str(path)


def _gcp_row(row: int, billed: str, category: str = "Usage", pool: str | None = None,
             weight: str | None = None) -> dict:
    return cost_row(billed, account=ACCOUNT, period=OCT, row_number=row, source_uri=URI,
                    x_SourceProvider="gcp", ChargeCategory=category, x_CommitmentPool=pool,
                    x_CommitmentCoveredCost=None if weight is None else Decimal(weight))


def test_staged_files_with_pool_rows_are_rewritten_and_the_others_kept(tmp_path) -> None:
    with_fee = _staged(tmp_path / "a.parquet", [_gcp_row(1, "30", "Purchase", POOL),
                                                _gcp_row(2, "1.5")])
    with_usage = _staged(tmp_path / "b.parquet", [_gcp_row(3, "0", pool=POOL, weight="2"),
                                                  _gcp_row(4, "0", pool=POOL, weight="1")])
    plain = _staged(tmp_path / "c.parquet", [_gcp_row(5, "9")])

    result = amortize_staged([with_fee, with_usage, plain], [with_fee, with_usage])

    assert result.row_files == [str(tmp_path / f"a{SUFFIX}"), str(tmp_path / f"b{SUFFIX}"),
                                plain]
    assert not Path(with_fee).exists() and not Path(with_usage).exists()
    rows = pa.concat_tables(pq.read_table(f) for f in result.row_files)
    assert rows.schema == ROW_SCHEMA
    assert dict(zip(rows.column("x_SourceRowNumber").to_pylist(),
                    rows.column("EffectiveCost").to_pylist(), strict=True)) == {
        1: 0, 2: Decimal("1.5"), 3: 20, 4: 10, 5: 9}
    assert result.pools == [{"slice": f"gcp/{ACCOUNT}/2026-10", "pool": POOL, "fee_moved": "30",
                             "fee_rows": 1, "covered_rows": 2, "covered_cost": "3"}]
    assert result.warnings == []


def test_runs_without_pool_files_read_nothing(tmp_path) -> None:
    files = [str(tmp_path / "never-written.parquet")]  # reading it would fail

    result = amortize_staged(files, [])

    assert result.row_files == files
    assert (result.pools, result.warnings) == ([], [])


def test_decimal_words_round_trip_exactly_for_slices_negatives_and_nulls() -> None:
    values = pa.array([Decimal("-99999999999999999999.999999999999999999"), None,
                       Decimal("-0.000000000000000001"), Decimal("0"),
                       Decimal("12345678901234567890.123456789012345678")], DECIMAL)
    for part in (values, values.slice(1), values.slice(2, 2), pa.chunked_array([values[:2],
                                                                                values[2:]])):
        units = units_of(part)
        expected = [0 if v is None else int(v.scaleb(18, context=EXACT))
                    for v in part.to_pylist()]
        assert list(units) == expected
        assert decimals_of(units).to_pylist() == [v if v is not None else Decimal(0)
                                                  for v in part.to_pylist()]


def test_fees_and_weights_beyond_28_digits_stay_exact() -> None:
    fee_text = "12345678901.123456789012345678"        # 29 significant digits
    rows = [fee(fee_text, 1), fee("0.000000000000000001", 2),
            covered("0", "98765432109.876543210987654321", 3), covered("0", "1e-18", 4)]
    (out,) = amortized(table(rows))
    assert sum(effective(out)) == Decimal(fee_text) + Decimal("1e-18")
    assert effective(out)[:2] == [0, 0]


def test_the_share_is_added_to_effective_cost_not_to_billed_cost() -> None:
    row = covered("0", "1", 2)
    row["EffectiveCost"] = Decimal("0.4")  # e.g. an amortized cost the provider gave
    (out,) = amortized(table([fee("3", 1), row]))
    assert effective(out) == [0, Decimal("3.4")]


def test_a_share_that_does_not_fit_the_warehouse_is_refused() -> None:
    rows = [fee("50000000000000000000", 1), covered("60000000000000000000", "1", 2)]
    totals = PoolTotals()
    totals.add(table(rows))
    with pytest.raises(AmortizationError, match=rf"{URI} row 2: .*does not fit DECIMAL"):
        totals.allocation().apply(table(rows))


def test_verify_refuses_an_allocation_that_did_not_see_every_row() -> None:
    rows = [fee("1", 1), covered("0", "1", 2), covered("0", "3", 3)]
    totals = PoolTotals()
    totals.add(table(rows))
    allocation = totals.allocation()
    allocation.apply(table(rows[:2]))  # the anchor (row 3, the largest weight) never applied
    with pytest.raises(AmortizationError, match="changed its EffectiveCost total"):
        allocation.verify()


def test_staging_writes_pool_rows_to_a_file_of_their_own(tmp_path) -> None:
    from costflow.pipelines.elements import NormalizedBatch
    from costflow.pipelines.staging import StageParquet
    from costflow.transforms.finalize import DEAD_LETTER_SCHEMA

    rows = pa.Table.from_pylist([_gcp_row(1, "30", "Purchase", POOL), _gcp_row(2, "1.5"),
                                 _gcp_row(3, "0", pool=POOL, weight="2")], schema=ROW_SCHEMA)
    stage = StageParquet(str(tmp_path / "run"))
    stage.start_bundle()
    list(stage.process(NormalizedBatch(URI, 3, rows, DEAD_LETTER_SCHEMA.empty_table(), {})))
    (part,) = [w.value for w in stage.finish_bundle()]

    (pool_file,) = part.pool_row_files
    assert pool_file.endswith(".pool.parquet") and pool_file in part.row_files
    assert len(part.row_files) == 2
    numbers = {f: pq.read_table(f).column("x_SourceRowNumber").to_pylist()
               for f in part.row_files}
    assert numbers[pool_file] == [1, 3]
    assert [n for f, n in numbers.items() if f != pool_file] == [[2]]
