"""The schema declaration and its committed renderings."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from costflow.schemas import render
from costflow.schemas.focus import (
    COST_LINE_ITEMS,
    FOCUS_COLUMNS,
    LINEAGE_COLUMNS,
    SERVICE_SUBCATEGORIES,
    focus_columns,
)

FOCUS_1_3_ADDITIONS = {"ServiceProviderName", "HostProviderName", "AllocatedMethodId",
                       "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName",
                       "AllocatedTags", "ContractApplied"}


@pytest.mark.parametrize("path", sorted(render.rendered_files(), key=str), ids=lambda p: p.name)
def test_committed_rendering_is_current(path):
    expected = render.rendered_files()[path]
    assert path.exists(), f"{path} missing: run `make schema`"
    assert path.read_text() == expected, f"{path} drifted from the schema: run `make schema`"


def test_focus_column_counts_match_the_spec():
    assert len(focus_columns("1.2")) == 57
    assert len(focus_columns("1.3")) == 65
    assert {c.name for c in focus_columns("1.3")} - {c.name for c in focus_columns("1.2")} \
        == FOCUS_1_3_ADDITIONS
    levels = [c.feature_level for c in focus_columns("1.2")]
    assert (levels.count("Mandatory"), levels.count("Conditional"),
            levels.count("Recommended")) == (21, 32, 4)


def test_money_is_exact_decimal_everywhere():
    schema = render.arrow_schema(COST_LINE_ITEMS)
    bq = {f["name"]: f for f in render.bigquery_schema(COST_LINE_ITEMS)}
    for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity"):
        assert schema.field(name).type == pa.decimal128(38, 18)
        assert bq[name]["type"] == "BIGNUMERIC"
    assert not any(pa.types.is_floating(f.type) for f in schema)


def test_json_columns_are_json_in_both_engines():
    bq = {f["name"]: f["type"] for f in render.bigquery_schema(COST_LINE_ITEMS)}
    for name in ("Tags", "SkuPriceDetails", "AllocatedTags", "ContractApplied"):
        assert bq[name] == "JSON"
        assert f"  {name} JSON" in render.duckdb_ddl()


def test_lineage_columns_are_required_on_every_row():
    for column in LINEAGE_COLUMNS:
        assert column.name.startswith("x_") and not column.nullable


def test_every_non_focus_column_is_prefixed():
    focus = {c.name for c in FOCUS_COLUMNS}
    assert all(c.name in focus or c.name.startswith("x_") for c in COST_LINE_ITEMS)


def test_bigquery_layout_partition_and_cluster():
    ddl = render.bigquery_ddl()
    table = ddl.split("CREATE TABLE IF NOT EXISTS cost_analytics.cost_line_items")[1]
    table = table.split("\nCREATE ")[0]
    assert "PARTITION BY DATE(ChargePeriodStart)" in table
    assert "CLUSTER BY x_SourceProvider, BillingAccountId" in table


def test_subcategories_are_declared_as_allowed_values():
    allowed = set(COST_LINE_ITEMS.column("ServiceSubcategory").allowed_values)
    assert allowed == {s for subs in SERVICE_SUBCATEGORIES.values() for s in subs}
    assert set(COST_LINE_ITEMS.column("ServiceCategory").allowed_values) == set(
        SERVICE_SUBCATEGORIES)


def test_bigquery_json_schema_files_are_valid_json_with_modes():
    for path, text in render.rendered_files().items():
        if path.suffix == ".json":
            fields = json.loads(text)
            assert {f["mode"] for f in fields} <= {"NULLABLE", "REQUIRED"}


def test_render_check_exits_nonzero_on_drift(tmp_path, monkeypatch):
    target = tmp_path / "schema.md"
    target.write_text("stale\n")
    monkeypatch.setattr(render, "rendered_files", lambda: {target: "fresh\n"})
    monkeypatch.setattr(render, "ROOT", tmp_path)
    assert render.main(["--check"]) == 1
    assert render.main(["--write"]) == 0
    assert target.read_text() == "fresh\n"
    assert render.main(["--check"]) == 0
