"""The GCP billing export normalizer on single batches: exact money, timestamps, bad rows."""

from __future__ import annotations

import copy
import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from costflow.providers import CATALOG
from costflow.providers.gcp.export_schema import READER_SCHEMA, conform
from costflow.providers.gcp.samples import billing as gs


def _batch(rows: list[dict]) -> pa.RecordBatch:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    table = pajson.read_json(io.BytesIO(data), parse_options=pajson.ParseOptions(
        explicit_schema=READER_SCHEMA, unexpected_field_behavior="ignore"))
    return table.combine_chunks().to_batches()[0]


def _map(rows: list[dict]):
    return CATALOG.formats.get("gcp_billing_export_resource_v1").map(_batch(rows))


def test_json_numbers_become_exact_decimals_not_floats() -> None:
    r = gs.fixture_rows()[9]                               # cost 0.1, no credits
    noise = 0.1 + 0.2 - 0.3 - 0.1
    r["credits"] = [gs.credit("PROMOTION", noise, "x", "y"),
                    gs.credit("PROMOTION", 1.2345e-17, "x", "y")]
    mapped = _map([r])
    # 0.1 is Decimal('0.1'), not 0.1000000000000000055511...; float noise keeps its exact
    # shortest text; a value needing more than 18 decimals is refused rather than rounded.
    assert mapped.columns["x_GrossCost"].to_pylist() == [Decimal("0.1")]
    assert json.loads(mapped.columns["x_Credits"][0].as_py())[0]["amount"] == repr(noise)
    assert [e.column for e in mapped.errors] == ["credits.amount"]
    assert "decimal places" in mapped.errors[0].reason


def test_rfc3339_and_bigquery_timestamps_agree() -> None:
    a = gs.fixture_rows()[0]
    b = copy.deepcopy(a)
    b["usage_start_time"] = "2026-10-05T07:00:00Z"
    b["usage_end_time"] = "2026-10-05T09:00:00+01:00"
    cols = _map([a, b]).columns
    assert cols["ChargePeriodStart"][0] == cols["ChargePeriodStart"][1]
    assert cols["ChargePeriodEnd"][0] == cols["ChargePeriodEnd"][1]


def test_bad_values_are_row_errors_not_exceptions() -> None:
    rows = gs.fixture_rows()[:4]
    rows[1]["invoice"]["month"] = "2026-10"
    rows[2]["cost_type"] = "refund"
    rows[3]["usage_start_time"] = "yesterday"
    mapped = _map(rows)
    by_column = {e.column: e.mask.to_pylist() for e in mapped.errors}
    assert by_column["invoice.month"] == [False, True, False, False]
    assert by_column["cost_type"] == [False, False, True, False]
    assert by_column["usage_start_time"] == [False, False, False, True]


def test_basis_is_cost_plus_credits_per_row() -> None:
    mapped = _map(gs.fixture_rows()[:4])
    assert mapped.source_basis.to_pylist() == [
        Decimal("0.155289"), Decimal("0"), Decimal("42.31"), Decimal("0")]


def test_conform_fills_fields_missing_from_older_exports() -> None:
    r = {k: v for k, v in gs.fixture_rows()[0].items() if k not in ("price", "tags")}
    r["project"] = {k: v for k, v in r["project"].items() if k != "ancestors"}
    batch = pa.RecordBatch.from_pylist([r])             # inferred types: doubles, no price
    out = conform(batch)
    assert out.column("price").to_pylist() == [None]
    assert out.column("cost").to_pylist() == ["0.194236"]
    assert out.column("project").to_pylist()[0]["ancestors"] is None


def test_detection_standard_vs_detailed() -> None:
    standard = [k for k in gs.fixture_rows()[0] if k not in ("resource", "subscription")]
    assert CATALOG.formats.detect(standard, "gcp", "x").source_format == "gcp_billing_export_v1"
    assert CATALOG.formats.detect(list(gs.fixture_rows()[0]), "gcp", "x").source_format == \
        "gcp_billing_export_resource_v1"


def test_export_amounts_without_a_focus_column_and_the_hierarchy_are_kept() -> None:
    rows = gs.fixture_rows()
    eur = rows[14]  # the EUR account's Cloud SQL row
    eur["cost_at_effective_price_default"] = 0.068754
    eur["cost_at_list_consumption_model"] = 0.063377
    mapped = _map([rows[0], eur, rows[4]])
    metrics = [None if m is None else json.loads(m)
               for m in mapped.columns["x_ProviderMetrics"].to_pylist()]
    # Exact texts: the USD -> EUR rate lets a user turn any EUR amount back into USD.
    assert metrics[1] == {"CurrencyConversionRate": "0.921834",
                          "CostAtEffectivePriceDefault": "0.068754",
                          "CostAtListConsumptionModel": "0.063377"}
    assert metrics[0] == {"CurrencyConversionRate": "1", "EffectivePriceDefault": "0.194236",
                          "ListPriceConsumptionModel": "0.21048", "TierStartAmount": "0",
                          "PricingUnitQuantity": "1"}
    ancestors = [None if a is None else json.loads(a)
                 for a in mapped.columns["x_ProjectAncestors"].to_pylist()]
    assert [a["display_name"] for a in ancestors[0]] == ["web-prod", "production",
                                                          "example.com"]
    assert ancestors[0][-1]["resource_name"].startswith("organizations/")
    assert ancestors[2] is None  # support: no project


def test_float_computed_quantities_are_rounded_not_dead_lettered() -> None:
    r = gs.fixture_rows()[0]
    # What BigQuery stores for 1 second of a per-day SKU, and a byte-seconds conversion.
    r["usage"] = {"amount": 1.0, "unit": "seconds", "amount_in_pricing_units":
                  1.1574074074074073e-05, "pricing_unit": "day"}
    mapped = _map([r])
    assert mapped.errors == []
    assert mapped.columns["PricingQuantity"].to_pylist() == [Decimal("0.000011574074074074")]
    assert "PricingQuantity:rounded" in json.loads(
        mapped.columns["x_DataQualityFlags"][0].as_py())
    assert mapped.columns["BilledCost"].to_pylist() == [Decimal("0.155289")]  # money exact


def test_a_row_with_resource_and_spend_cud_credits_is_pooled_the_same_in_any_order() -> None:
    fees, usage = gs.commitment_rows(days=1)
    row = usage[0]  # web-1, fully covered by the resource CUD
    row["cost"] = 0.147118
    flex = gs.credit("COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", -0.05,
                     "Committed use discount: dollar based", "FLEX-CUD")
    swapped = copy.deepcopy(row)
    row["credits"] = row["credits"] + [flex]
    swapped["credits"] = [flex] + swapped["credits"]
    cols = _map([row, swapped]).columns
    for name in ("x_CommitmentPool", "x_CommitmentCoveredCost", "CommitmentDiscountCategory",
                 "CommitmentDiscountName", "BilledCost"):
        assert cols[name][0] == cols[name][1], name
    assert cols["x_CommitmentPool"][0].as_py() == "Usage/us-central1"
    # The weight is the resource CUD's own credit; the flex credit stays visible in x_Credits.
    assert cols["x_CommitmentCoveredCost"][0].as_py() == Decimal("0.097118")
    assert {c["type"] for c in json.loads(cols["x_Credits"][0].as_py())} == {
        "COMMITTED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"}


def _with_timestamps(batch: pa.RecordBatch, type_: pa.DataType) -> pa.RecordBatch:
    """``batch`` as a Parquet/Avro flavour delivers it: the three timestamps typed ``type_``."""
    from costflow.transforms.arrow_ops import parse_timestamp

    columns = dict(zip(batch.schema.names, batch.columns, strict=True))
    for name in ("usage_start_time", "usage_end_time", "export_time"):
        text = pa.compute.replace_substring_regex(columns[name], r"\s*UTC$", "Z")
        instants, errors = parse_timestamp(text, name)
        assert not errors
        columns[name] = instants.cast(type_) if type_.tz else pa.compute.cast(
            instants.cast(pa.int64()), pa.int64()).cast(type_)
    return pa.RecordBatch.from_pydict(columns)


def test_typed_timestamps_give_the_instants_their_text_gives() -> None:
    """Zone-aware timestamps (Parquet, Avro, BigQuery) skip the detour through text; they must
    map to the same instants as the JSON text, in any zone and unit; a naive timestamp names
    no zone and is refused, as its text is, never assumed to be UTC."""
    normalizer = CATALOG.formats.get("gcp_billing_export_resource_v1")
    batch = _batch(gs.fixture_rows()[:6])
    want = normalizer.map(batch).columns
    keys = ("ChargePeriodStart", "ChargePeriodEnd", "x_ExportTime")
    for type_ in (pa.timestamp("us", tz="UTC"), pa.timestamp("ms", tz="America/New_York"),
                  pa.timestamp("ns", tz="UTC"), pa.timestamp("s", tz="+05:30")):
        mapped = normalizer.map(_with_timestamps(batch, type_))
        assert not mapped.errors, type_
        for key in keys:
            assert mapped.columns[key].to_pylist() == want[key].to_pylist(), (type_, key)
    naive = normalizer.map(_with_timestamps(batch, pa.timestamp("us")))
    assert {e.column for e in naive.errors} >= {"usage_start_time", "usage_end_time"}
    finer = _with_timestamps(batch, pa.timestamp("ns", tz="UTC"))  # one value 1 ns past
    starts = finer.column(finer.schema.get_field_index("usage_start_time"))
    nudged = pa.compute.add(starts.cast(pa.int64()), pa.array([1, 0, 0, 0, 0, 0]))
    finer = finer.set_column(finer.schema.get_field_index("usage_start_time"),
                             "usage_start_time", nudged.cast(starts.type))
    refused = normalizer.map(finer).errors
    assert [(e.column, e.mask.to_pylist()) for e in refused] == [
        ("usage_start_time", [True, False, False, False, False, False])]
    assert "microsecond" in refused[0].reason


def test_tags_and_ancestors_built_once_per_distinct_row_match_every_row(tmp_path) -> None:
    """The bulk export repeats a resource's labels and a project's ancestry on many rows;
    building the JSON once per distinct combination must give each row what it would alone."""
    import pyarrow.parquet as pq

    from costflow.providers.gcp import billing
    from costflow.providers.gcp.samples import bulk

    bulk.write_parquet(tmp_path / "export.parquet", 6000, seed=11)
    (batch,) = pq.read_table(tmp_path / "export.parquet").to_batches(max_chunksize=6000)
    work = billing._Work(batch)
    lists = [work.col("labels"), work.col("system_labels"), work.col("tags"),
             work.col("project", "labels")]
    tags = billing._tags(work)
    assert tags.equals(billing._merged_tags(lists))
    ancestors = billing._ancestors(work)
    assert ancestors.equals(billing._ancestors_json([work.col("project", "ancestors")]))
    assert 1 < len(pc.unique(tags)) < 1000  # repeats, so the distinct path ran
    assert 1 < len(pc.unique(ancestors)) < 1000
