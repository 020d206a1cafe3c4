"""The AWS legacy CUR normalizer: the real sample, then hand-built rows for every tricky case.

Source truth for the real sample is computed independently, with the csv module and Decimal.
Hand-built rows copy a real S3 row of the sample and real CUR header names.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from costflow.providers import CATALOG
from costflow.providers.aws import cur as aws_cur
from costflow.providers.aws.cur import AwsCurLegacyNormalizer
from costflow.schemas.focus import COST_LINE_ITEMS, SERVICE_SUBCATEGORIES
from costflow.schemas.render import ARROW_TYPES
from costflow.transforms import arrow_ops

NORMALIZER = AwsCurLegacyNormalizer()
D = Decimal
SP_ARN = "arn:aws:savingsplans::123412340534:savingsplan/3f1b8b2e-6c3d-4a6e-9b1f-2f6f0c7d9a01"
RI_ARN = ("arn:aws:ec2:ca-central-1:123412340534:reserved-instances/"
          "7c1e2a4b-0d9f-4e7a-8c55-1b2a3c4d5e6f")
# Row 118 of the real sample (S3 GET requests), trimmed to the columns the mapping reads.
S3_ROW: dict[str, str] = {
    "identity/TimeInterval": "2023-11-05T00:00:00Z/2023-11-06T00:00:00Z",
    "bill/InvoicingEntity": "Amazon Web Services Canada, Inc.", "bill/BillingEntity": "AWS",
    "bill/BillType": "Anniversary", "bill/PayerAccountId": "123412340534",
    "bill/BillingPeriodStartDate": "2023-11-01T00:00:00.000Z",
    "bill/BillingPeriodEndDate": "2023-12-01T00:00:00.000Z",
    "lineItem/UsageAccountId": "123412340534", "lineItem/LineItemType": "Usage",
    "lineItem/UsageStartDate": "2023-11-05T00:00:00.000Z",
    "lineItem/UsageEndDate": "2023-11-05T18:00:00.000Z", "lineItem/ProductCode": "AmazonS3",
    "lineItem/UsageType": "CAN1-Requests-Tier2", "lineItem/Operation": "GetObject",
    "lineItem/UsageAmount": "9.0", "lineItem/CurrencyCode": "USD",
    "lineItem/UnblendedRate": "4.4E-7", "lineItem/UnblendedCost": "3.96E-6",
    "lineItem/LineItemDescription": "$0.0044 per 10,000 GET and all other requests",
    "product/ProductName": "Amazon Simple Storage Service", "product/location": "Canada (Central)",
    "product/productFamily": "API Request", "product/region": "ca-central-1",
    "product/regionCode": "ca-central-1", "product/sku": "56GRDxxxxxxUF5SE",
    "pricing/RateCode": "56GRD53C8EEUFxxx.xxxxxxxxxx.xxx6EN2CT7", "pricing/currency": "USD",
    "pricing/publicOnDemandCost": "3.96E-6", "pricing/publicOnDemandRate": "4.4E-7",
    "pricing/term": "OnDemand", "pricing/unit": "Requests",
}
EC2_ROW = {**S3_ROW, "lineItem/ProductCode": "AmazonEC2", "lineItem/Operation": "RunInstances",
           "lineItem/UsageType": "CAN1-BoxUsage:m5.large", "lineItem/UsageAmount": "1.0",
           "lineItem/UsageStartDate": "2023-11-05T10:00:00.000Z",
           "lineItem/UsageEndDate": "2023-11-05T11:00:00.000Z", "pricing/unit": "Hrs",
           "product/ProductName": "Amazon Elastic Compute Cloud",
           "product/productFamily": "Compute Instance", "lineItem/UnblendedRate": "0.107",
           "lineItem/UnblendedCost": "0.107", "pricing/publicOnDemandRate": "0.107",
           "pricing/publicOnDemandCost": "0.107",
           "lineItem/LineItemDescription": "$0.107 per On Demand Linux m5.large Instance Hour"}
# Real legacy CUR header names, including the commitment columns a month with RIs/SPs carries.
COMMITMENT_COLUMNS = [
    "reservation/ReservationARN", "reservation/EffectiveCost", "reservation/UnusedQuantity",
    "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee",
    "reservation/AmortizedUpfrontFeeForBillingPeriod", "savingsPlan/SavingsPlanARN",
    "savingsPlan/SavingsPlanEffectiveCost", "savingsPlan/TotalCommitmentToDate",
    "savingsPlan/UsedCommitment"]
BASE_COLUMNS = list(S3_ROW) + ["lineItem/ResourceId", "lineItem/AvailabilityZone", "bill/InvoiceId"]


def _batch(*rows: dict[str, str | None], commitment_columns: bool = True) -> pa.RecordBatch:
    names = BASE_COLUMNS + (COMMITMENT_COLUMNS if commitment_columns else [])
    names += [k for r in rows for k in r if k not in names]
    names = list(dict.fromkeys(names))
    return pa.RecordBatch.from_pydict(
        {n: pa.array([r.get(n) for r in rows], pa.string()) for n in names})


def _row(base: dict[str, str], **changes: str | None) -> dict[str, str | None]:
    return {**base, **{k.replace("__", "/"): v for k, v in changes.items()}}


def _col(mapped, name: str) -> list:
    return mapped.columns[name].to_pylist()


def _flags(mapped) -> list:
    return [None if f is None else json.loads(f) for f in _col(mapped, "x_DataQualityFlags")]


def _read_sample(path: Path) -> pa.RecordBatch:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=True,
        null_values=[""]))
    return table.combine_chunks().to_batches()[0]


def _sample_truth(path: Path) -> tuple[Decimal, Counter, int]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum((D(r["lineItem/UnblendedCost"]) for r in rows), D(0))
    return total, Counter(r["lineItem/LineItemType"] for r in rows), len(rows)


def _failed(mapped, n: int) -> pa.BooleanArray:
    failed = pa.repeat(pa.scalar(False), n)
    for error in mapped.errors:
        failed = pc.or_(failed, error.mask)
    return failed


@pytest.mark.needs_shared
def test_real_sample_maps_every_row_and_reconciles_exactly(cur_sample):
    batch = _read_sample(cur_sample)
    truth, _, rows = _sample_truth(cur_sample)
    mapped = NORMALIZER.map(batch)
    assert batch.num_rows == rows == 1281 and batch.num_columns == 94
    assert mapped.errors == []
    assert {len(v) for v in mapped.columns.values()} == {1281}
    assert sum(_col(mapped, "BilledCost")) == truth == D("1.6823086974")
    assert sum(mapped.source_basis.to_pylist()) == truth
    assert _col(mapped, "EffectiveCost") == _col(mapped, "BilledCost")  # no RI/SP in the sample


@pytest.mark.needs_shared
def test_real_sample_with_broken_rows_still_reconciles(cur_sample):
    batch = _read_sample(cur_sample)
    cost = batch.column(batch.schema.get_field_index("lineItem/UnblendedCost")).to_pylist()
    start = batch.column(batch.schema.get_field_index("lineItem/UsageStartDate")).to_pylist()
    cost[5], cost[118], start[4] = "12,50", "0.0000000000000000001", "yesterday"
    batch = batch.set_column(batch.schema.get_field_index("lineItem/UnblendedCost"),
                             "lineItem/UnblendedCost", pa.array(cost, pa.string()))
    batch = batch.set_column(batch.schema.get_field_index("lineItem/UsageStartDate"),
                             "lineItem/UsageStartDate", pa.array(start, pa.string()))
    mapped = NORMALIZER.map(batch)
    failed = _failed(mapped, batch.num_rows)
    assert pc.indices_nonzero(failed).to_pylist() == [4, 5, 118]
    assert sorted((e.column, e.reason) for e in mapped.errors) == [
        ("lineItem/UnblendedCost", arrow_ops.REASON_TOO_PRECISE),
        ("lineItem/UnblendedCost", arrow_ops.REASON_NOT_A_NUMBER),
        ("lineItem/UsageStartDate", arrow_ops.REASON_NOT_A_TIMESTAMP)]
    ok = pc.invert(failed)
    loaded = sum(mapped.columns["BilledCost"].filter(ok).to_pylist())
    flagged = [v for v in mapped.source_basis.filter(failed).to_pylist() if v is not None]
    text_total = sum((D(c) for i, c in enumerate(cost) if i not in (5, 118)), D(0))
    assert loaded + sum(flagged) == text_total
    assert flagged == [D("0.01")]  # row 4's cost; the two unparseable costs are not money


@pytest.mark.needs_shared
def test_real_sample_charge_categories_match_line_item_types(cur_sample):
    mapped = NORMALIZER.map(_read_sample(cur_sample))
    _, types, _ = _sample_truth(cur_sample)
    assert types == Counter({"Usage": 1269, "Tax": 12})
    assert Counter(_col(mapped, "ChargeCategory")) == Counter({"Usage": 1269, "Tax": 12})
    assert Counter(_col(mapped, "ChargeFrequency")) == Counter({"Usage-Based": 1281})
    assert Counter(_col(mapped, "PricingCategory")) == Counter({"Standard": 1269, None: 12})


@pytest.mark.needs_shared
def test_real_sample_obeys_the_schema(cur_sample):
    mapped = NORMALIZER.map(_read_sample(cur_sample))
    lineage = {"x_SourceProvider", "x_SourceFormat", "x_SourceUri", "x_SourceRowNumber",
               "x_RunId", "x_IngestedAt"}
    assert set(mapped.columns) <= set(COST_LINE_ITEMS.names) - lineage
    for col in COST_LINE_ITEMS:
        if col.name in lineage:
            continue
        values = mapped.columns.get(col.name)
        if values is None:
            assert col.nullable, f"{col.name} is NOT NULL but not mapped"
            continue
        assert values.type == ARROW_TYPES[col.type], col.name
        if not col.nullable:
            assert values.null_count == 0, col.name
        if col.allowed_values:
            assert set(values.to_pylist()) - {None} <= set(col.allowed_values), col.name
    pairs = set(zip(_col(mapped, "ServiceCategory"), _col(mapped, "ServiceSubcategory"),
                    strict=True))
    assert all(sub in SERVICE_SUBCATEGORIES[cat] for cat, sub in pairs)
    assert _col(mapped, "x_DataQualityFlags") == [None] * 1281  # every product code is mapped


@pytest.mark.needs_shared
def test_real_sample_rows_map_to_exact_values(cur_sample):
    mapped = NORMALIZER.map(_read_sample(cur_sample))
    row = {name: values[10].as_py() for name, values in mapped.columns.items()}
    # Row 10: Canada tax on S3. FOCUS: no pricing quantity/unit/category on Tax; the list cost
    # of a tax is the tax on what was billed, not AWS's 0.0 public on-demand cost.
    assert (row["ChargeCategory"], row["BilledCost"], row["ListCost"], row["ContractedCost"],
            row["EffectiveCost"]) == ("Tax", D("0.07"), D("0.07"), D("0.07"), D("0.07"))
    assert (row["PricingQuantity"], row["PricingUnit"], row["PricingCategory"],
            row["ConsumedQuantity"]) == (None, None, None, None)
    assert (row["ServiceName"], row["ServiceCategory"], row["ServiceSubcategory"]) == (
        "Amazon Simple Storage Service", "Storage", "Object Storage")
    assert row["ChargePeriodStart"] == datetime(2023, 11, 1, tzinfo=UTC)
    assert row["ChargePeriodEnd"] == datetime(2023, 12, 1, tzinfo=UTC)
    tiny = {name: values[69].as_py() for name, values in mapped.columns.items()}
    assert (tiny["BilledCost"], tiny["ListCost"]) == (D("5.2E-9"), D("5.1E-9"))
    assert (tiny["x_InvoicingEntity"], tiny["InvoiceIssuerName"], tiny["ProviderName"]) == (
        "Amazon Web Services Canada, Inc.", "AWS", "AWS")
    assert tiny["InvoiceId"] is None and tiny["Tags"] is None


@pytest.mark.needs_shared
def test_detect_and_required_columns_on_the_real_header(cur_sample):
    header = _read_sample(cur_sample).schema.names
    assert NORMALIZER.detect(header) is True
    assert NORMALIZER.missing_required(header) == []
    without = [h for h in header if h not in ("lineItem/UsageStartDate", "lineItem/CurrencyCode")]
    assert NORMALIZER.missing_required(without) == [
        "lineItem/UsageStartDate", "lineItem/CurrencyCode"]
    detected = CATALOG.formats.detect(header, "aws", str(cur_sample))
    assert isinstance(detected, AwsCurLegacyNormalizer)


def test_detect_rejects_other_headers_and_recognises_an_incomplete_cur():
    assert NORMALIZER.detect(["SubscriptionId", "CostInBillingCurrency", "Date"]) is False
    assert NORMALIZER.detect(["lineItem/UnblendedCost"]) is False
    assert NORMALIZER.detect(["bill_payer_account_id", "line_item_unblended_cost"]) is False
    assert NORMALIZER.detect(["BillingAccountId", "BilledCost", "ChargeCategory"]) is False
    incomplete = [name for name in BASE_COLUMNS if name != "lineItem/UnblendedCost"]
    assert NORMALIZER.detect(incomplete) is True
    assert NORMALIZER.missing_required(incomplete) == ["lineItem/UnblendedCost"]
    assert isinstance(CATALOG.formats.get("aws_cur_legacy"), AwsCurLegacyNormalizer)


def test_service_table_covers_the_sample_and_common_services():
    codes = set(aws_cur.SERVICE_CODES)
    sample_codes = {"AmazonS3", "AWSGlue", "AWSQueueService", "AmazonSNS", "AmazonCloudWatch",
                    "awskms", "AWSMigrationHubRefactorSpaces", "AWSCloudShell", "AmazonEFS",
                    "AWSSecretsManager", "AWSCloudTrail", "AmazonStates", "AWSIoT",
                    "AWSDataTransfer"}
    common = {"AmazonEC2", "AWSLambda", "AmazonRDS", "AmazonDynamoDB", "AmazonVPC", "AWSELB",
              "AmazonCloudFront", "AmazonRoute53", "AmazonEKS", "AmazonECS", "AmazonRedshift",
              "AmazonSageMaker", "AmazonBedrock", "AWSSupportBusiness", "ComputeSavingsPlans"}
    assert sample_codes | common <= codes
    assert len(codes) == 148


def test_service_table_refuses_a_subcategory_of_another_category(tmp_path):
    bad = tmp_path / "aws_services.csv"
    bad.write_text("product_code,service_category,service_subcategory\n"
                   "AmazonS3,Storage,Virtual Machines\n")
    with pytest.raises(ValueError, match="'Virtual Machines' is not a subcategory of 'Storage'"):
        aws_cur.load_services(bad)


def test_plain_usage_row_maps_every_column():
    mapped = NORMALIZER.map(_batch(S3_ROW))
    assert mapped.errors == []
    got = {name: values[0].as_py() for name, values in mapped.columns.items()}
    assert got == {
        "BilledCost": D("3.96E-6"), "EffectiveCost": D("3.96E-6"), "ListCost": D("3.96E-6"),
        "ListUnitPrice": D("4.4E-7"), "ContractedCost": D("3.96E-6"),
        "ContractedUnitPrice": D("4.4E-7"),
        "BillingAccountId": "123412340534", "BillingAccountName": None,
        "BillingAccountType": "Payer Account", "SubAccountId": "123412340534",
        "SubAccountName": None, "SubAccountType": "Linked Account", "BillingCurrency": "USD",
        "PricingCurrency": None, "InvoiceId": None, "ProviderName": "AWS",
        "PublisherName": "AWS", "ServiceProviderName": "AWS", "HostProviderName": "AWS",
        "InvoiceIssuerName": "AWS", "x_InvoicingEntity": "Amazon Web Services Canada, Inc.",
        "x_BillingEntity": "AWS", "ChargeCategory": "Usage", "ChargeClass": None,
        "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
        "ChargeDescription": "$0.0044 per 10,000 GET and all other requests",
        "BillingPeriodStart": datetime(2023, 11, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2023, 12, 1, tzinfo=UTC),
        "ChargePeriodStart": datetime(2023, 11, 5, tzinfo=UTC),
        "ChargePeriodEnd": datetime(2023, 11, 5, 18, tzinfo=UTC),
        "x_LineItemType": "Usage", "x_UsageType": "CAN1-Requests-Tier2",
        "x_Operation": "GetObject", "PricingQuantity": D("9"), "PricingUnit": "Requests",
        "ConsumedQuantity": D("9"), "ConsumedUnit": "Requests",
        "ServiceName": "Amazon Simple Storage Service", "ServiceCategory": "Storage",
        "ServiceSubcategory": "Object Storage", "x_ServiceCode": "AmazonS3",
        "RegionId": "ca-central-1", "RegionName": "Canada (Central)", "AvailabilityZone": None,
        "ResourceId": None, "SkuId": "56GRDxxxxxxUF5SE",
        "SkuPriceId": "56GRD53C8EEUFxxx.xxxxxxxxxx.xxx6EN2CT7", "SkuMeter": "API Request",
        "Tags": None, "x_DataQualityFlags": None, "x_CostCategories": None, "x_Discounts": None,
    }
    assert mapped.source_basis.to_pylist() == [D("3.96E-6")]


def test_savings_plan_amortization_adds_up_to_the_commitment():
    # One hour of a $1.00/hour Compute Savings Plan: two instances use $0.75 of it.
    sp = {"savingsPlan/SavingsPlanARN": SP_ARN}
    covered = [_row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanCoveredUsage",
                                "lineItem/UnblendedCost": cost, "pricing/publicOnDemandCost": cost,
                                "savingsPlan/SavingsPlanEffectiveCost": eff}, **sp)
               for cost, eff in (("0.50", "0.30"), ("0.70", "0.45"))]
    negations = [_row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanNegation",
                                  "lineItem/UnblendedCost": cost,
                                  "pricing/publicOnDemandCost": None,
                                  "pricing/publicOnDemandRate": None}, **sp)
                 for cost in ("-0.50", "-0.70")]
    fee = _row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanRecurringFee",
                           "lineItem/ProductCode": "ComputeSavingsPlans",
                           "product/ProductName": "Savings Plans for AWS Compute usage",
                           "lineItem/UnblendedCost": "1.00", "pricing/publicOnDemandCost": None,
                           "pricing/publicOnDemandRate": None, "pricing/unit": None,
                           "savingsPlan/TotalCommitmentToDate": "1.00",
                           "savingsPlan/UsedCommitment": "0.75"}, **sp)
    mapped = NORMALIZER.map(_batch(*covered, *negations, fee))
    assert mapped.errors == []
    effective = _col(mapped, "EffectiveCost")
    assert effective == [D("0.30"), D("0.45"), D(0), D(0), D("0.25")]
    assert sum(effective) == D("1.00")  # covered usage + unused commitment = the commitment
    assert sum(_col(mapped, "BilledCost")) == D("1.00")
    assert _col(mapped, "ChargeCategory") == ["Usage"] * 4 + ["Purchase"]
    assert _col(mapped, "ChargeFrequency") == ["Usage-Based"] * 4 + ["Recurring"]
    assert _col(mapped, "PricingCategory") == ["Committed"] * 4 + ["Standard"]
    assert _col(mapped, "CommitmentDiscountId") == [SP_ARN] * 5
    assert _col(mapped, "CommitmentDiscountName") == ["3f1b8b2e-6c3d-4a6e-9b1f-2f6f0c7d9a01"] * 5
    assert _col(mapped, "CommitmentDiscountCategory") == ["Spend"] * 5
    assert _col(mapped, "CommitmentDiscountType") == ["Savings Plan"] * 5
    assert _col(mapped, "CommitmentDiscountStatus") == ["Used"] * 4 + ["Unused"]
    assert _col(mapped, "CommitmentDiscountQuantity") == [D("0.30"), D("0.45"), None, None,
                                                          D("0.25")]
    assert _col(mapped, "CommitmentDiscountUnit") == ["USD"] * 5
    assert _col(mapped, "ListCost") == [D("0.50"), D("0.70"), D(0), D(0), D("1.00")]
    assert _col(mapped, "ContractedCost") == [D("0.50"), D("0.70"), D(0), D(0), D("1.00")]
    assert _col(mapped, "ConsumedQuantity") == [D(1), D(1), None, None, None]
    assert _col(mapped, "ServiceCategory")[4] == "Compute"
    assert _flags(mapped) == [None] * 4 + [["ListCost:from_BilledCost"]]


def test_savings_plan_upfront_fee_is_amortized_away():
    fee = _row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanUpfrontFee",
                           "lineItem/ProductCode": "ComputeSavingsPlans",
                           "lineItem/UnblendedCost": "8760.00", "pricing/publicOnDemandCost": None,
                           "savingsPlan/SavingsPlanARN": SP_ARN})
    mapped = NORMALIZER.map(_batch(fee))
    assert mapped.errors == []
    assert (_col(mapped, "BilledCost"), _col(mapped, "EffectiveCost")) == ([D("8760")], [D(0)])
    assert _col(mapped, "ChargeFrequency") == ["One-Time"]
    assert _col(mapped, "CommitmentDiscountStatus") == [None]
    assert _col(mapped, "CommitmentDiscountQuantity") == [D("8760")]


def test_reserved_instance_amortization_adds_up_to_the_purchase():
    # A partial-upfront RI for November: $36.00 upfront amortized + $72.00 recurring for 720 h,
    # i.e. $0.15 per hour; 700 hours used (two rows), 20 hours unused.
    ri = {"reservation/ReservationARN": RI_ARN, "pricing/term": "Reserved",
          "pricing/publicOnDemandRate": "0.2"}
    used = [_row(EC2_ROW, **{"lineItem/LineItemType": "DiscountedUsage", "lineItem/UsageAmount": h,
                             "lineItem/UnblendedRate": "0.0", "lineItem/UnblendedCost": "0.0",
                             "pricing/publicOnDemandCost": public,
                             "reservation/EffectiveCost": eff}, **ri)
            for h, public, eff in (("400", "80.0", "60.00"), ("300", "60.0", "45.00"))]
    fee = _row(EC2_ROW, **{**ri, "lineItem/LineItemType": "RIFee", "lineItem/UsageAmount": "720",
                           "lineItem/UnblendedCost": "72.00", "pricing/publicOnDemandCost": None,
                           "pricing/publicOnDemandRate": None,
                           "reservation/AmortizedUpfrontFeeForBillingPeriod": "36.00",
                           "reservation/UnusedQuantity": "20",
                           "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": "1.00",
                           "reservation/UnusedRecurringFee": "2.00"})
    upfront = _row(EC2_ROW, **{**ri, "lineItem/LineItemType": "Fee",
                               "lineItem/UnblendedCost": "438.00",
                               "pricing/publicOnDemandCost": None,
                               "pricing/publicOnDemandRate": None})
    support = _row(S3_ROW, **{"lineItem/LineItemType": "Fee", "lineItem/UnblendedCost": "29.00",
                              "lineItem/ProductCode": "AWSSupportBusiness",
                              "product/ProductName": "AWS Support (Business)",
                              "pricing/publicOnDemandCost": "29.00"})
    mapped = NORMALIZER.map(_batch(*used, fee, upfront, support))
    assert mapped.errors == []
    effective = _col(mapped, "EffectiveCost")
    assert effective == [D("60"), D("45"), D("3"), D(0), D("29")]
    assert sum(effective[:4]) == D("36.00") + D("72.00")
    assert _col(mapped, "BilledCost") == [D(0), D(0), D("72"), D("438"), D("29")]
    assert _col(mapped, "ChargeCategory") == ["Usage", "Usage", "Purchase", "Purchase",
                                              "Purchase"]
    assert _col(mapped, "ChargeFrequency") == ["Usage-Based", "Usage-Based", "Recurring",
                                               "One-Time", "One-Time"]
    assert _col(mapped, "PricingCategory") == ["Committed", "Committed", "Standard", "Standard",
                                               "Standard"]
    assert _col(mapped, "CommitmentDiscountId") == [RI_ARN] * 4 + [None]
    assert _col(mapped, "CommitmentDiscountCategory") == ["Usage"] * 4 + [None]
    assert _col(mapped, "CommitmentDiscountType") == ["Reserved Instance"] * 4 + [None]
    assert _col(mapped, "CommitmentDiscountStatus") == ["Used", "Used", "Unused", None, None]
    assert _col(mapped, "CommitmentDiscountQuantity") == [D(400), D(300), D(20), None, None]
    assert _col(mapped, "CommitmentDiscountUnit") == ["Hours"] * 4 + [None]
    # Before the RI, covered hours cost their on-demand price.
    assert _col(mapped, "ContractedCost") == [D(80), D(60), D(72), D(438), D(29)]
    assert _col(mapped, "ContractedUnitPrice") == [D("0.2"), D("0.2"), None, None, None]
    assert _col(mapped, "ListCost") == [D(80), D(60), D(72), D(438), D(29)]
    assert _flags(mapped) == [None, None, ["ListCost:from_BilledCost"],
                              ["ListCost:from_BilledCost"], None]


def test_missing_amortization_input_is_a_row_error_not_a_guess():
    covered = _row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanCoveredUsage",
                               "savingsPlan/SavingsPlanARN": SP_ARN})
    rifee = _row(EC2_ROW, **{"lineItem/LineItemType": "RIFee", "lineItem/UnblendedCost": "72.00",
                             "reservation/ReservationARN": RI_ARN,
                             "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": "1.00"})
    mapped = NORMALIZER.map(_batch(S3_ROW, covered, rifee))
    assert [(e.column, e.mask.to_pylist()) for e in mapped.errors] == [
        ("savingsPlan/SavingsPlanEffectiveCost", [False, True, False]),
        ("reservation/UnusedRecurringFee", [False, False, True])]
    assert mapped.errors[0].reason.startswith("is empty on a Savings Plan line item that needs")
    assert _col(mapped, "EffectiveCost") == [D("3.96E-6"), None, None]


@pytest.mark.parametrize(("line_item_type", "cost", "expected"), [
    # type, cost -> ChargeCategory, ChargeClass, ChargeFrequency, ListCost, ContractedCost
    ("Tax", "0.07", ("Tax", None, "Usage-Based", D("0.07"), D("0.07"))),
    ("Credit", "-5.00", ("Credit", None, "One-Time", D("-5"), D("-5"))),
    ("Refund", "-3.00", ("Adjustment", "Correction", "One-Time", D("-3"), D("-3"))),
    ("EdpDiscount", "-0.12", ("Credit", None, "Usage-Based", D(0), D("-0.12"))),
    ("PrivateRateDiscount", "-0.02", ("Credit", None, "Usage-Based", D(0), D("-0.02"))),
    ("BundledDiscount", "-0.01", ("Credit", None, "Usage-Based", D(0), D("-0.01"))),
    ("Discount", "-1.10", ("Credit", None, "Usage-Based", D(0), D("-1.1"))),
])
def test_non_usage_line_item_types(line_item_type, cost, expected):
    row = _row(S3_ROW, **{"lineItem/LineItemType": line_item_type, "lineItem/UnblendedCost": cost,
                          "pricing/publicOnDemandCost": "0.0", "pricing/publicOnDemandRate": None,
                          "pricing/unit": None if line_item_type == "Tax" else "Requests"})
    mapped = NORMALIZER.map(_batch(row))
    assert mapped.errors == []
    got = tuple(_col(mapped, c)[0] for c in ("ChargeCategory", "ChargeClass", "ChargeFrequency",
                                             "ListCost", "ContractedCost"))
    assert got == expected
    assert _col(mapped, "BilledCost") == _col(mapped, "EffectiveCost") == [D(cost)]
    assert _col(mapped, "PricingCategory") == [None]
    assert _col(mapped, "ConsumedQuantity") == [None]
    assert _col(mapped, "ListUnitPrice") == [None]
    assert _col(mapped, "PricingQuantity") == [None if line_item_type == "Tax" else D(9)]
    assert "CommitmentDiscountId" not in mapped.columns  # no commitment: left null


def test_spot_and_reserved_terms_set_the_pricing_category():
    spot = _row(EC2_ROW, **{"lineItem/UsageType": "CAN1-SpotUsage:m5.large", "pricing/term": None})
    reserved = _row(EC2_ROW, **{"pricing/term": "Reserved"})
    mapped = NORMALIZER.map(_batch(EC2_ROW, spot, reserved))
    assert _col(mapped, "PricingCategory") == ["Standard", "Dynamic", "Committed"]


def test_tiny_cost_is_kept_exactly():
    row = _row(S3_ROW, **{"lineItem/UnblendedCost": "4.97e-9", "pricing/publicOnDemandCost": None})
    mapped = NORMALIZER.map(_batch(row))
    assert mapped.errors == []
    assert _col(mapped, "BilledCost") == [D("0.00000000497")]
    assert mapped.source_basis.to_pylist() == [D("0.00000000497")]
    assert mapped.columns["BilledCost"].type == pa.decimal128(38, 18)
    assert _col(mapped, "ListCost") == [D("0.00000000497")]
    assert _flags(mapped) == [["ListCost:from_BilledCost"]]


def test_bad_costs_and_dates_are_flagged_on_their_rows_only():
    rows = [S3_ROW,
            _row(S3_ROW, **{"lineItem/UnblendedCost": "0.0000000000000000001"}),
            _row(S3_ROW, **{"lineItem/UnblendedCost": "12,50"}),
            _row(S3_ROW, **{"lineItem/UsageStartDate": "yesterday"}),
            _row(S3_ROW, **{"lineItem/UsageAmount": "lots"}),
            _row(S3_ROW, **{"bill/PayerAccountId": None})]
    mapped = NORMALIZER.map(_batch(*rows))
    found = {(e.column, e.reason): pc.indices_nonzero(e.mask).to_pylist() for e in mapped.errors}
    assert found == {
        ("lineItem/UnblendedCost", arrow_ops.REASON_TOO_PRECISE): [1],
        ("lineItem/UnblendedCost", arrow_ops.REASON_NOT_A_NUMBER): [2],
        ("lineItem/UsageStartDate", arrow_ops.REASON_NOT_A_TIMESTAMP): [3],
        ("lineItem/UsageAmount", arrow_ops.REASON_NOT_A_NUMBER): [4],
        ("bill/PayerAccountId",
         "is empty (expected the payer account ID, which is BillingAccountId)"): [5],
    }
    assert _col(mapped, "BilledCost") == [D("3.96E-6"), None, None, D("3.96E-6"), D("3.96E-6"),
                                          D("3.96E-6")]
    assert mapped.source_basis.to_pylist() == _col(mapped, "BilledCost")
    assert _col(mapped, "ChargePeriodStart")[3] is None
    assert _col(mapped, "x_LineItemType") == ["Usage"] * 6  # order and count kept


def test_unknown_line_item_type_is_a_row_error():
    mapped = NORMALIZER.map(_batch(S3_ROW, _row(S3_ROW, **{"lineItem/LineItemType": "SppDiscount"}),
                                   _row(S3_ROW, **{"lineItem/LineItemType": None})))
    found = {e.reason.split(" (")[0]: e.mask.to_pylist() for e in mapped.errors}
    assert found == {"is not a line item type this normalizer knows": [False, True, False],
                     "is empty": [False, False, True]}
    unknown = next(e for e in mapped.errors if e.reason.startswith("is not"))
    assert unknown.column == "lineItem/LineItemType"
    assert "Usage, DiscountedUsage, SavingsPlanCoveredUsage" in unknown.reason
    assert _col(mapped, "ChargeCategory") == ["Usage", None, None]
    assert _col(mapped, "x_LineItemType") == ["Usage", "SppDiscount", None]


def test_eur_billing_passes_through_and_pricing_currency_only_when_different():
    eur_usd = _row(S3_ROW, **{"lineItem/CurrencyCode": "EUR", "lineItem/UnblendedCost": "3.64E-6"})
    eur_eur = _row(eur_usd, **{"pricing/currency": "EUR"})
    mapped = NORMALIZER.map(_batch(eur_usd, eur_eur))
    assert mapped.errors == []
    assert _col(mapped, "BillingCurrency") == ["EUR", "EUR"]
    assert _col(mapped, "PricingCurrency") == ["USD", None]
    assert _col(mapped, "BilledCost") == [D("3.64E-6"), D("3.64E-6")]
    assert _flags(mapped) == [["ListCost:currency_unverified"], None]


def test_month_without_reservation_or_savings_plan_columns():
    tax = _row(S3_ROW, **{"lineItem/LineItemType": "Tax", "lineItem/UnblendedCost": "0.01",
                          "pricing/unit": None})
    mapped = NORMALIZER.map(_batch(S3_ROW, tax, commitment_columns=False))
    assert mapped.errors == []
    assert _col(mapped, "EffectiveCost") == [D("3.96E-6"), D("0.01")]
    assert "CommitmentDiscountId" not in mapped.columns  # left out = null
    covered = _row(EC2_ROW, **{"lineItem/LineItemType": "SavingsPlanCoveredUsage"})
    mapped = NORMALIZER.map(_batch(S3_ROW, covered, commitment_columns=False))
    assert [(e.column, e.mask.to_pylist()) for e in mapped.errors] == [
        ("savingsPlan/SavingsPlanEffectiveCost", [False, True])]
    assert _col(mapped, "CommitmentDiscountId") == [None, None]
    assert _flags(mapped) == [None, ["CommitmentDiscountId:missing"]]


def test_tags_from_every_resource_tag_column():
    note = 'He said "hi" \\ then\nleft; naïve café 東京 🚀\t'
    rows = [_row(S3_ROW, **{"resourceTags/user:Environment": "prod",
                            "resourceTags/aws:createdBy": "IAMUser:AIDAEXAMPLE:alice",
                            "resourceTags/user:Note": note}),
            S3_ROW,  # no tag at all
            _row(S3_ROW, **{"resourceTags/user:Note": "C:\\path\\", "resourceTags/user:Empty": ""})]
    mapped = NORMALIZER.map(_batch(*rows))
    assert mapped.errors == []
    tags = _col(mapped, "Tags")
    assert json.loads(tags[0]) == {"user:Environment": "prod",
                                   "aws:createdBy": "IAMUser:AIDAEXAMPLE:alice", "user:Note": note}
    assert tags[1] is None
    assert json.loads(tags[2]) == {"user:Note": "C:\\path\\"}


def test_unmapped_product_code_is_other_and_flagged():
    row = _row(S3_ROW, **{"lineItem/ProductCode": "prod-abc123marketplace",
                          "product/ProductName": None})
    mapped = NORMALIZER.map(_batch(row, _row(row, **{"lineItem/ProductCode": None})))
    assert _col(mapped, "ServiceName") == ["prod-abc123marketplace", None]
    assert _col(mapped, "ServiceCategory") == ["Other", "Other"]
    assert _col(mapped, "ServiceSubcategory") == ["Other (Other)", "Other (Other)"]
    assert _flags(mapped) == [["ServiceCategory:unmapped"], ["ServiceCategory:unmapped"]]
    (error,) = mapped.errors
    assert (error.column, error.mask.to_pylist()) == ("lineItem/ProductCode", [False, True])


def test_empty_batch_maps_to_empty_columns():
    mapped = NORMALIZER.map(_batch(S3_ROW).slice(0, 0))
    assert mapped.errors == [] and len(mapped.source_basis) == 0
    assert {len(values) for values in mapped.columns.values()} == {0}
    assert mapped.columns["BilledCost"].type == pa.decimal128(38, 18)
