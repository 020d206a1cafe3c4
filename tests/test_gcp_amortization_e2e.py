"""GCP committed-use discounts end to end: fees move onto covered usage as EffectiveCost.

The export rows come from `costflow.providers.gcp.samples.billing.commitment_rows` (resource
CUDs for CPU and RAM, an idle one, a legacy flexible CUD, a correction); the fee rows and the
usage rows are written to two different files so the amortization has to work across files.
Expected amounts are recomputed here from the export's own numbers (fee sums, CUD credit sums),
independently of the pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from costflow.providers.gcp.samples import billing as gs
from costflow.warehouse import connect
from tests.conftest import Ingest

UNIT = Decimal("1e-18")
ROWS = """
SELECT x_SourceUri AS uri, x_SourceRowNumber AS n, ChargeCategory AS category,
       ChargeDescription AS sku, x_CommitmentPool AS pool, x_CommitmentCoveredCost AS weight,
       BilledCost AS billed, EffectiveCost AS effective
FROM cost_analytics.cost_line_items ORDER BY x_SourceUri, x_SourceRowNumber
"""


def _exact(value: float) -> Decimal:
    return Decimal(repr(value))  # the JSON text BigQuery writes for a FLOAT64


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("cud")
    fees, usage = gs.commitment_rows()
    files = [gs.write_jsonl(fees, tmp / "export" / "billing-000000000000.json.gz"),
             gs.write_jsonl(usage, tmp / "export" / "billing-000000000001.json.gz")]
    ingest = Ingest(tmp)
    report = ingest(*files, provider="gcp")
    wh = connect(ingest.url())
    rows = wh.query(ROWS).to_pylist()
    again = ingest(*files, provider="gcp")
    rows_again = wh.query(ROWS).to_pylist()
    wh.close()
    return {"fees": fees, "usage": usage, "report": report, "rows": rows, "again": again,
            "rows_again": rows_again}


def test_fee_rows_end_at_zero_and_covered_usage_carries_the_fee(loaded) -> None:
    rows = loaded["rows"]
    fees = [r for r in rows if r["category"] == "Purchase"]
    assert len(fees) == 12  # 3 days x (CPU, RAM, idle EMEA, flexible)
    idle = [r for r in fees if r["pool"] == "Usage/europe-west1"]
    assert [r["effective"] for r in idle] == [Decimal("0.5")] * 3  # nothing it could cover
    assert {r["effective"] for r in fees if r not in idle} == {Decimal(0)}

    # Each pool's fee, from the export, lands on its covered rows to the last unit.
    fee_by_pool: dict[str, Decimal] = defaultdict(Decimal)
    for f in loaded["fees"]:
        pool = ("Spend" if "dollar based" in f["sku"]["description"]
                else f"Usage/{f['location']['region']}")
        fee_by_pool[pool] += _exact(f["cost"])
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["category"] == "Usage" and r["pool"]:
            moved[r["pool"]] += r["effective"] - r["billed"]
    assert dict(moved) == {"Usage/us-central1": fee_by_pool["Usage/us-central1"],
                           "Spend": fee_by_pool["Spend"]}
    assert fee_by_pool["Usage/us-central1"] == Decimal("4.642653")  # 3 x (1.364839 + 0.182712)


def test_shares_follow_the_cud_credits_and_totals_do_not_move(loaded) -> None:
    rows = loaded["rows"]
    assert sum(r["effective"] for r in rows) == sum(r["billed"] for r in rows)
    central = [r for r in rows if r["pool"] == "Usage/us-central1" and r["category"] == "Usage"
               and r["weight"] > 0]
    total_weight = sum(r["weight"] for r in central)
    # CPU and RAM credits over 3 days x 4 hours; the correction's positive credit is no weight.
    assert total_weight == 12 * (2 * Decimal("0.097118") + Decimal("0.013018"))
    fee = Decimal("4.642653")
    shares = [r["effective"] - r["billed"] for r in central]
    floors = [(fee * r["weight"] / total_weight).quantize(UNIT, rounding=ROUND_FLOOR)
              for r in central]
    off = [s - f for s, f in zip(shares, floors, strict=True) if s != f]
    assert len(off) <= 1 and sum(off, Decimal(0)) == fee - sum(floors)  # one remainder row
    correction = [r for r in rows if r["weight"] is not None and r["weight"] < 0]
    assert [(r["billed"], r["effective"]) for r in correction] == [(Decimal(0), Decimal(0))]
    uncovered = [r for r in rows if r["category"] == "Usage" and r["pool"] is None]
    assert uncovered and all(r["effective"] == r["billed"] for r in uncovered)


def test_the_run_report_says_what_moved_and_what_stayed(loaded) -> None:
    report = loaded["report"]
    assert report["status"] == "succeeded" and report["totals"]["rows_dead_lettered"] == 0
    pools = {p["pool"]: p for p in report["amortization"]}
    assert set(pools) == {"Usage/us-central1", "Spend"}
    assert pools["Usage/us-central1"] | {"covered_cost": None} == {
        "slice": f"gcp/{gs.USD_ACCOUNT}/2026-10", "pool": "Usage/us-central1",
        "fee_moved": "4.642653", "fee_rows": 6, "covered_rows": 36, "covered_cost": None}
    assert pools["Spend"]["fee_moved"] == "6" and pools["Spend"]["covered_rows"] == 24
    idle = [w for w in report["warnings"] if "found no covered usage" in w]
    assert idle == [f"commitment fee 1.5 of slice gcp/{gs.USD_ACCOUNT}/2026-10 (pool "
                    "Usage/europe-west1) found no covered usage in the billing period: it "
                    "stays on its fee rows as EffectiveCost (an unused commitment)"]


def test_a_rerun_allocates_identically(loaded) -> None:
    assert loaded["again"]["status"] == "succeeded"
    assert loaded["rows_again"] == loaded["rows"]


def test_the_export_file_pair_is_what_the_test_thinks(tmp_path: Path) -> None:
    fees, usage = gs.commitment_rows(days=1)
    assert {f["cost_type"] for f in fees + usage} == {"regular"}
    assert all(f["sku"]["description"].startswith("Commitment") for f in fees)
    assert sum(1 for u in usage if u["credits"]) == 4 * 5 + 1
