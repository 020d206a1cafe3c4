"""One CUR mapping, three spellings: legacy Parquet, CUR 2.0 CSV and CUR 2.0 Parquet of the same
generated month give identical FOCUS rows; plus the CUR 2.0 / FOCUS export specifics (maps,
marketplace, currencies, final bills, spelling of column names)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costflow.providers import CATALOG
from costflow.providers.aws.cur_shapes import athena_name, cur2_name
from costflow.providers.aws.samples import exports as ax
from costflow.providers.aws.samples.cur import generate_cur
from costflow.sources.contract import PlanRequest
from costflow.sources.files import inspect

D = Decimal


def _mapped(path: Path):
    source = inspect(str(path), PlanRequest("aws", None, CATALOG))
    batches = [b for _, b in CATALOG.read_batches(source)]
    batch = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    return source.source_format, CATALOG.formats.get(source.source_format).map(batch)


def test_legacy_parquet_cur2_csv_and_cur2_parquet_give_identical_focus_rows(tmp_path):
    info = generate_cur(tmp_path / "cur.csv.gz", 2500, final=True)
    legacy = ax.read_legacy_csv(info.path)
    paths = {
        "lp": ax.write_table(ax.to_legacy_parquet(legacy), tmp_path / "lp.parquet"),
        "c2p": ax.write_table(ax.to_cur2(legacy), tmp_path / "c2.snappy.parquet"),
        "c2c": ax.write_table(ax.to_cur2(legacy), tmp_path / "c2.csv.gz"),
    }
    results = {k: _mapped(p) for k, p in paths.items()}
    assert {k: r[0] for k, r in results.items()} == {
        "lp": "aws_cur_legacy_parquet", "c2p": "aws_cur2", "c2c": "aws_cur2"}
    base = results["lp"][1]
    assert base.errors == []
    assert sum(base.columns["BilledCost"].to_pylist()) == info.unblended_total
    for key in ("c2p", "c2c"):
        other = results[key][1]
        assert other.errors == []
        assert sorted(other.columns) == sorted(base.columns)
        for name, values in base.columns.items():
            assert other.columns[name].equals(values), (key, name)
    tags = [t for t in base.columns["Tags"].to_pylist() if t]
    assert tags and all(json.loads(t) for t in tags)
    assert any("user_environment" in t for t in tags)


def test_column_spellings_follow_athena_and_cur2_rules():
    assert athena_name("savingsPlan/SavingsPlanARN") == "savings_plan_savings_plan_a_r_n"
    assert cur2_name("savingsPlan/SavingsPlanARN") == "savings_plan_savings_plan_arn"
    assert athena_name("lineItem/UnblendedCost") == "line_item_unblended_cost"
    assert athena_name("resourceTags/user:Cost Center") == "resource_tags_user_cost_center"
    assert cur2_name("pricing/publicOnDemandCost") == "pricing_public_on_demand_cost"
    assert cur2_name("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod") == (
        "reservation_unused_amortized_upfront_fee_for_billing_period")


CUR2_ROW = {
    "bill_payer_account_id": "123412340534", "bill_payer_account_name": "Payer",
    "bill_billing_period_start_date": "2023-11-01T00:00:00.000Z",
    "bill_billing_period_end_date": "2023-12-01T00:00:00.000Z", "bill_invoice_id": None,
    "bill_billing_entity": "AWS", "bill_invoicing_entity": "Amazon Web Services EMEA SARL",
    "line_item_line_item_type": "Usage", "line_item_usage_account_id": "210987654321",
    "line_item_usage_account_name": "dev", "line_item_usage_start_date": "2023-11-05T10:00:00Z",
    "line_item_usage_end_date": "2023-11-05T11:00:00Z", "line_item_product_code": "AmazonEC2",
    "line_item_usage_type": "EU-BoxUsage:m5.large", "line_item_operation": "RunInstances",
    "line_item_currency_code": "EUR", "line_item_unblended_cost": "0.0973",
    "line_item_unblended_rate": "0.0973", "line_item_usage_amount": "1.0",
    "line_item_resource_id": "i-0abc", "line_item_legal_entity": "Amazon Web Services EMEA SARL",
    "pricing_public_on_demand_cost": "0.107", "pricing_public_on_demand_rate": "0.107",
    "pricing_currency": "USD", "pricing_term": "OnDemand", "pricing_unit": "Hrs",
    "product_region_code": "eu-west-1", "product_location": "EU (Ireland)",
    "product": '{"product_name": "Amazon Elastic Compute Cloud", "region": "eu-west-1"}',
    "resource_tags": '{"user_team": "data", "user_empty": ""}',
    "cost_category": '{"Business Unit": "Analytics"}',
    "discount": '{"bundled_discount": 0, "total_discount": -0.0123}',
}


def _batch(*rows: dict) -> pa.RecordBatch:
    names = list(rows[0])
    return pa.RecordBatch.from_pydict({n: pa.array([r[n] for r in rows], pa.string())
                                       for n in names})


def test_cur2_csv_maps_currencies_cost_categories_and_discounts():
    final = {**CUR2_ROW, "bill_invoice_id": "EUINIE23-123"}
    normalizer = CATALOG.formats.get("aws_cur2")
    mapped = normalizer.map(_batch(CUR2_ROW, final))
    c = {k: v.to_pylist() for k, v in mapped.columns.items()}
    assert mapped.errors == []
    assert c["BilledCost"] == [D("0.0973")] * 2 and c["BillingCurrency"] == ["EUR"] * 2
    assert c["PricingCurrency"] == ["USD"] * 2
    assert c["InvoiceId"] == [None, "EUINIE23-123"]  # null until the bill is final
    assert c["ServiceName"] == ["Amazon Elastic Compute Cloud"] * 2  # from the product map
    assert c["SubAccountName"] == ["dev"] * 2 and c["BillingAccountName"] == ["Payer"] * 2
    assert c["Tags"] == ['{"user_team":"data"}'] * 2
    assert c["x_CostCategories"] == ['{"Business Unit":"Analytics"}'] * 2
    assert c["x_Discounts"] == ['{"bundled_discount":"0","total_discount":"-0.0123"}'] * 2
    assert json.loads(c["x_DataQualityFlags"][0]) == ["ListCost:currency_unverified"]


def test_marketplace_rows_keep_aws_as_issuer_and_name_the_seller():
    saas = {**CUR2_ROW, "bill_billing_entity": "AWS Marketplace", "line_item_resource_id": None,
            "line_item_legal_entity": "Example Software Ltd", "line_item_product_code": "abc123"}
    ami = {**saas, "line_item_resource_id": "i-0def"}
    mapped = CATALOG.formats.get("aws_cur2").map(_batch(CUR2_ROW, saas, ami))
    c = {k: v.to_pylist() for k, v in mapped.columns.items()}
    assert c["InvoiceIssuerName"] == c["ProviderName"] == ["AWS"] * 3  # BilledCost-C-005-C
    assert c["PublisherName"] == ["AWS", "Example Software Ltd", "Example Software Ltd"]
    assert c["ServiceProviderName"] == ["AWS", "Example Software Ltd", "Example Software Ltd"]
    assert c["HostProviderName"] == ["AWS", "Example Software Ltd", "AWS"]
    assert "HostProviderName:assumed_seller" in c["x_DataQualityFlags"][1]


def test_bad_map_json_is_a_row_error_naming_the_column():
    bad = {**CUR2_ROW, "resource_tags": "{not json"}
    mapped = CATALOG.formats.get("aws_cur2").map(_batch(CUR2_ROW, bad))
    assert [(e.column, e.mask.to_pylist()) for e in mapped.errors] == [
        ("resource_tags", [False, True])]


def test_cur2_missing_required_names_the_snake_case_column():
    normalizer = CATALOG.formats.get("aws_cur2")
    columns = [c for c in CUR2_ROW if c != "line_item_unblended_cost"]
    assert normalizer.detect(columns) and normalizer.missing_required(columns) == [
        "line_item_unblended_cost"]
    assert not CATALOG.formats.get("aws_cur_legacy_parquet").detect(columns)


def test_focus_export_parquet_keeps_x_columns_and_reconciles(tmp_path):
    info = generate_cur(tmp_path / "cur.csv.gz", 400, month="2023-11")
    # ax.to_focus builds the export from the CUR columns alone (no costflow normalizer); the
    # expected values come from the written file read with pyarrow alone (doubles as their
    # shortest decimal text, the x_ columns as written) and from the CUR generator's own total.
    focus = ax.to_focus(ax.read_legacy_csv(info.path))
    path = tmp_path / "focus.snappy.parquet"
    pq.write_table(focus, path)
    written = pq.read_table(path).to_pydict()
    fmt, mapped = _mapped(path)
    assert fmt == "aws_focus" and mapped.errors == []
    assert mapped.columns["BilledCost"].to_pylist() == [D(repr(v)) for v in written["BilledCost"]]
    assert sum(mapped.columns["BilledCost"].to_pylist()) == info.unblended_total
    assert mapped.columns["x_ServiceCode"].to_pylist() == written["x_ServiceCode"]
    assert mapped.columns["x_ServiceCode"].null_count == 0
    assert mapped.columns["HostProviderName"].to_pylist() == ["AWS"] * 400
    assert CATALOG.formats.get("focus", "aws").source_format == "aws_focus"  # --format focus


def test_focus_export_csv_timestamps_without_zone_are_utc():
    row = {"BilledCost": "1.5", "BillingAccountId": "1", "BillingCurrency": "USD",
           "BillingPeriodStart": "2024-01-01 00:00:00.000", "BillingPeriodEnd":
           "2024-02-01T00:00:00Z", "ChargeCategory": "Usage", "ChargePeriodStart":
           "2024-01-02 00:00:00", "ChargePeriodEnd": "2024-01-03 00:00:00", "ProviderName": "AWS",
           "x_ServiceCode": "AmazonS3", "Tags": '{"env":"prod"}'}
    mapped = CATALOG.formats.get("aws_focus").map(_batch(row))
    assert mapped.errors == []
    assert str(mapped.columns["BillingPeriodStart"][0]) == "2024-01-01 00:00:00+00:00"
    assert mapped.columns["Tags"].to_pylist() == ['{"env":"prod"}']


@pytest.mark.parametrize("value", ["1e-05", "0.1", "12345.678901", "1.443347E-4", "5.2E-9"])
def test_parquet_doubles_are_read_as_their_exact_decimal_text(value):
    from costflow.transforms.arrow_text import as_text

    (text,) = as_text(pa.array([float(value)])).to_pylist()
    assert D(text) == D(value)  # the exporter's decimal, not the binary double's expansion


@pytest.mark.needs_shared
def test_aws_legal_entities_are_not_marketplace_sellers_in_the_official_sample():
    """AWS's FOCUS export names its own legal entity in PublisherName and InvoiceIssuerName;
    only a seller invoiced by AWS (the sample's Red Hat row) is a Marketplace publisher."""
    import csv

    from tests.conftest import require_shared

    path = require_shared("samples/focus/focus_1_0_sample.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["ProviderName"] == "AWS"]
    batch = pa.RecordBatch.from_pydict({k: [r[k] or None for r in rows] for k in rows[0]})
    mapped = CATALOG.formats.get("aws_focus").map(batch)
    expected = [r["PublisherName"] if r["PublisherName"] != r["InvoiceIssuerName"] else "AWS"
                for r in rows]
    assert sorted(set(expected)) == ["AWS", "Red Hat Inc."]
    assert mapped.columns["ServiceProviderName"].to_pylist() == expected
