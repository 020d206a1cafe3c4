"""Generated Azure exports (EA/MCA; CSV, CSV.gz, Parquet) ingest and reconcile exactly."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from costflow.providers.azure.samples.export import (
    EA_COLUMNS,
    MCA_COLUMNS,
    decimal_text,
    write_export,
)

# What the tests read back from the warehouse after each ingest.
QUERIES = {
    "by_sub": "SELECT SubAccountId AS sub, SUM(BilledCost) AS billed, SUM(EffectiveCost) AS eff, "
              "COUNT(*) AS n FROM cost_analytics.cost_line_items GROUP BY 1 ORDER BY 1",
    "detail": "SELECT ChargeCategory AS c, CommitmentDiscountStatus AS s, SUM(BilledCost) AS b, "
              "SUM(EffectiveCost) AS e, SUM(ListCost) AS l, COUNT(*) AS n "
              "FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2",
}


def _parts(root: Path) -> str:
    # A glob of the parts, not the folder: costflow.providers.gcp.export_files (work in progress
    # elsewhere) plans every *.json in a folder as JSON lines, manifest.json included.
    return f"{root}/**/part_*"


@pytest.mark.parametrize("schema, container", [("ea", "csv"), ("mca", "csv.gz"),
                                               ("ea", "parquet")])
def test_a_generated_month_ingests_and_reconciles(tmp_path: Path, schema: str,
                                                  container: str, ingest) -> None:
    root = tmp_path / "exports"
    actual, amortized = write_export(root, "2026-10", 3_000, schema=schema, container=container,
                                     seed=5)
    report, found = ingest(_parts(root), provider="azure", queries=QUERIES)
    by_sub = found["by_sub"]
    assert report["status"] == "succeeded"
    [slice_] = report["slices"]
    assert Decimal(slice_["source_basis"]) == actual.total
    assert Decimal(slice_["warehouse_billed_cost"]) == actual.total
    assert slice_["rows_dead_lettered"] == 0
    assert {r["sub"]: r["billed"] for r in by_sub} == actual.totals_by_subscription
    # Actual and amortized are joined, never added: EffectiveCost sums to the amortized total.
    assert sum(r["eff"] for r in by_sub) == amortized.total
    assert sum(r["n"] for r in by_sub) == actual.rows + 1  # + the amortized-only unused row
    assert any("paired_with" in s for s in report["sources"])


def test_csv_and_parquet_of_the_same_data_load_the_same_numbers(tmp_path: Path, ingest) -> None:
    out = {}
    for container in ("csv", "parquet"):
        root = tmp_path / container / "exports"
        write_export(root, "2026-10", 500, container=container, seed=9)
        _, found = ingest(_parts(root), provider="azure", tmp=tmp_path / container,
                          queries=QUERIES)
        out[container] = found
    assert out["csv"] == out["parquet"]
    detail = out["csv"]["detail"]
    purchase = next(r for r in detail if r["c"] == "Purchase")
    assert purchase["e"] == 0 and purchase["b"] > 0  # the fee is amortized, not re-counted
    unused = next(r for r in detail if r["s"] == "Unused")
    assert unused["b"] == 0 and unused["e"] > 0


def test_layout_manifest_and_headers(tmp_path: Path) -> None:
    actual, amortized = write_export(tmp_path, "2026-02", 50, schema="mca",
                                     container="csv.gz", seed=1)
    month_dir = actual.run_dir.parent.parent
    assert month_dir.name == "20260201-20260228" and month_dir.parent.name == "mca-actual"
    manifest = json.loads((actual.run_dir / "manifest.json").read_text())
    assert manifest["exportConfig"]["type"] == "ActualCost"
    assert manifest["runInfo"]["runId"] == actual.run_dir.name
    assert manifest["blobs"][0]["blobName"].endswith("/part_0_0001.csv.gz")
    header = gzip.decompress(actual.files[0].read_bytes()).decode().split("\n")[0].split(",")
    assert tuple(header) == MCA_COLUMNS and len(header) == 65
    again, _ = write_export(tmp_path / "again", "2026-02", 50, schema="mca",
                            container="csv.gz", seed=1)
    assert gzip.decompress(again.files[0].read_bytes()) == gzip.decompress(
        actual.files[0].read_bytes())
    assert again.total == actual.total
    ea, _ = write_export(tmp_path / "ea", "2026-02", 5, container="parquet")
    schema = pq.read_schema(ea.files[0])
    assert tuple(schema.names) == EA_COLUMNS and len(EA_COLUMNS) == 57
    assert str(schema.field("CostInBillingCurrency").type) == "decimal128(38, 8)"


def test_decimal_text_is_exact() -> None:
    text = decimal_text(np.array([0, 5, -123456789, 10**12 + 1]), 8).to_pylist()
    assert text == ["0.00000000", "0.00000005", "-1.23456789", "10000.00000001"]
