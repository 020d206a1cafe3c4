"""Generated AWS exports in every shape AWS delivers, laid out as AWS lays them out in S3.

Why: the ingest must give the same FOCUS rows for one month whether it arrives as legacy CUR
CSV, legacy Parquet (Athena spelling), CUR 2.0 CSV or Parquet, or AWS's FOCUS export, and must
pick only the current delivery of each billing period from a bucket. Proving that needs the same
month in every shape, and buckets shaped like real deliveries. The month is generated once as
legacy CSV (`costflow.providers.aws.samples.cur`, the independent truth) and re-spelled here:

* legacy Parquet [PF §2.2]: snake_case with every capital split, costs as doubles, timestamps as
  zoneless Parquet timestamps, tags as ``resource_tags_*`` columns;
* CUR 2.0 [PF §2.4]: acronym-preserving snake_case, product attributes that are not flattened
  columns in the ``product`` map, tags in ``resource_tags`` (Parquet MAP, JSON text in CSV);
* FOCUS 1.2 export [PF §2.5]: built column by column from the CUR line items the way AWS's
  Data Exports derives it (never by costflow's own normalizer), with AWS's ``x_`` columns.

Layouts: `write_legacy_delivery` (CREATE_NEW_REPORT: ``<name>/<period>/<assemblyId>/`` data and
a top-level manifest naming the current assembly [PF §2.3]) and `write_data_export` (Data
Exports: ``<export>/data/BILLING_PERIOD=YYYY-MM/<ts>-<executionId>/`` plus
``<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`` [PF §2.4]).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from costflow.providers.aws.cur_shapes import athena_name, cur2_name
from costflow.transforms.arrow_text import as_text, map_json

# CUR 2.0 product attributes flattened into their own columns [PF §2.4, tailpipe column list];
# every other product/* attribute lives in the ``product`` map.
CUR2_FLAT_PRODUCT = frozenset({
    "product_comment", "product_fee_code", "product_fee_description", "product_from_location",
    "product_from_location_type", "product_from_region_code", "product_instance_family",
    "product_instance_type", "product_instancesku", "product_location", "product_location_type",
    "product_operation", "product_pricing_unit", "product_product_family", "product_region_code",
    "product_servicecode", "product_sku", "product_to_location", "product_to_location_type",
    "product_to_region_code", "product_usagetype"})
_MONEY = ("Cost", "Rate", "Amount", "Fee", "Value", "Commitment", "Quantity", "Units",
          "Factor", "Discount", "ToDate", "ForBillingPeriod", "ForUsage")
_FAMILIES = {"resourceTags/": "resource_tags", "costCategory/": "cost_category",
             "discount/": "discount"}
_STRING = pa.string()
SHAPES = ("legacy_parquet", "cur2_csv", "cur2_parquet")


def _is_money(name: str) -> bool:
    return "/" in name and name.split("/", 1)[1].endswith(_MONEY)


def _is_time(name: str) -> bool:
    return name.endswith(("Date", "StartTime", "EndTime"))


def read_legacy_csv(path: str | Path) -> pa.Table:
    """A generated legacy CUR file as an all-string table (empty fields null)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        data = f.read()
    names = next(csv.reader(io.StringIO(data[:data.index(b"\n")].decode("utf-8"))))
    return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=True,
        null_values=[""]))


def _typed(name: str, values: pa.ChunkedArray, *, zoned: bool) -> pa.ChunkedArray:
    if _is_money(name):
        return pc.cast(values, pa.float64())
    if _is_time(name):
        stamps = pc.cast(values, pa.timestamp("ms", tz="UTC"))
        return stamps if zoned else pc.cast(stamps, pa.timestamp("ms"))
    return values


def _string_map(names: list[str], keys: list[str], table: pa.Table,
                value_type: pa.DataType = _STRING) -> pa.Array:
    """One map per row from several string columns (null / empty values left out)."""
    rows: list[list[tuple[str, object]]] = [[] for _ in range(table.num_rows)]
    for name, key in zip(names, keys, strict=True):
        values = table.column(name).to_pylist()
        for i, v in enumerate(values):
            if v not in (None, ""):
                rows[i].append((key, float(v) if pa.types.is_floating(value_type) else v))
    return pa.array(rows, pa.map_(pa.string(), value_type))


def to_legacy_parquet(table: pa.Table) -> pa.Table:
    """The legacy CSV month in the legacy Parquet/Athena spelling and types [PF §2.2]."""
    return pa.table({athena_name(n): _typed(n, table.column(n), zoned=False)
                     for n in table.column_names})


def to_cur2(table: pa.Table) -> pa.Table:
    """The legacy CSV month as CUR 2.0 (typed, with MAP columns) [PF §2.4]."""
    out: dict[str, pa.Array | pa.ChunkedArray] = {}
    product_names, product_keys = [], []
    families: dict[str, tuple[list[str], list[str]]] = {v: ([], []) for v in _FAMILIES.values()}
    for name in table.column_names:
        family = next((m for p, m in _FAMILIES.items() if name.startswith(p)), None)
        if family is not None:
            families[family][0].append(name)
            # Keys as legacy Parquet spells the column suffix (user:CostCenter -> user_costcenter).
            families[family][1].append(athena_name(name).removeprefix(family + "_"))
            continue
        target = cur2_name(name)
        if name.startswith("product/") and target not in CUR2_FLAT_PRODUCT:
            product_names.append(name)
            product_keys.append(target.removeprefix("product_"))
            continue
        out[target] = _typed(name, table.column(name), zoned=True)
    out.setdefault("bill_payer_account_name", pa.nulls(table.num_rows, pa.string()))
    out.setdefault("line_item_usage_account_name", pa.nulls(table.num_rows, pa.string()))
    out["product"] = _string_map(product_names, product_keys, table)
    for family, (names, keys) in families.items():
        value_type = pa.float64() if family == "discount" else pa.string()
        out[family] = _string_map(names, keys, table, value_type)
    return pa.table(out)


# Columns of AWS's FOCUS 1.2 export that the warehouse declares too [PF §2.5].
FOCUS_EXPORT_COLUMNS = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountQuantity", "CommitmentDiscountStatus",
    "CommitmentDiscountType", "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
    "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuMeter", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType",
    "Tags", "x_CostCategories", "x_Discounts", "x_Operation", "x_ServiceCode", "x_UsageType")


# How AWS's FOCUS export fills its columns from the CUR line items. [AWS-F12] = the AWS Data
# Exports table dictionary "FOCUS 1.2 with AWS columns" (docs.aws.amazon.com/cur/latest/userguide/
# table-dictionary-focus-1-2-aws-columns); [SAMPLE] = the AWS rows of FOCUS-Sample-Data
# (../shared/samples/focus/focus_1_0_sample.csv), AWS's own export anonymized; [FOCUS] = the
# FOCUS 1.2 column files (../shared/reference/focus_columns.md); [PF] = provider_formats.md.
_MS_UTC = pa.timestamp("ms", tz="UTC")      # [AWS-F12] timestamp_milliseconds
_STRING_MAP = pa.map_(pa.string(), pa.string())
_EXACT = pa.decimal128(28, 12)              # CUR money text has at most 12 decimals
# lineItem/LineItemType -> (ChargeCategory, ChargeFrequency, PricingCategory). [FOCUS]
# chargecategory: usage, purchases (fees, reservation and Savings Plan fees) and tax as named;
# Credit is what the provider grants (promotional credits [SAMPLE], discounts, the Savings Plan
# negation that offsets covered usage [PF §2.1]); a CUR Refund does not say what it refunds, so
# it is an Adjustment. chargefrequency: never Usage-Based for a Purchase; a CUR Fee does not say
# whether it recurs (RI upfront, domain renewal), so One-Time; Tax follows the usage it is levied
# on. pricingcategory: Committed when a commitment discount priced the usage, null for Tax,
# Other for credits [SAMPLE].
_LINE_ITEM_TYPES: dict[str, tuple[str, str, str | None]] = {
    "Usage": ("Usage", "Usage-Based", "Standard"),
    "DiscountedUsage": ("Usage", "Usage-Based", "Committed"),
    "SavingsPlanCoveredUsage": ("Usage", "Usage-Based", "Committed"),
    "Fee": ("Purchase", "One-Time", "Standard"),
    "RIFee": ("Purchase", "Recurring", "Standard"),
    "SavingsPlanRecurringFee": ("Purchase", "Recurring", "Standard"),
    "SavingsPlanUpfrontFee": ("Purchase", "One-Time", "Standard"),
    "Tax": ("Tax", "Usage-Based", None),
    "Credit": ("Credit", "One-Time", "Other"),
    "SavingsPlanNegation": ("Credit", "Usage-Based", "Other"),
    "EdpDiscount": ("Credit", "Usage-Based", "Other"),
    "BundledDiscount": ("Credit", "Usage-Based", "Other"),
    "PrivateRateDiscount": ("Credit", "Usage-Based", "Other"),
    "Discount": ("Credit", "Usage-Based", "Other"),
    "Refund": ("Adjustment", "One-Time", "Other"),
}
# lineItem/ProductCode -> (ServiceCategory, ServiceSubcategory) [FOCUS servicecategory,
# servicesubcategory: one category per service]; a product not listed is Other.
_SERVICES: dict[str, tuple[str, str]] = {
    "AmazonEC2": ("Compute", "Virtual Machines"),
    "AWSLambda": ("Compute", "Serverless Compute"),
    "AmazonECS": ("Compute", "Containers"),
    "AmazonEKS": ("Compute", "Containers"),
    "ComputeSavingsPlans": ("Compute", "Other (Compute)"),
    "AmazonS3": ("Storage", "Object Storage"),
    "AmazonRDS": ("Databases", "Relational Databases"),
    "AmazonDynamoDB": ("Databases", "NoSQL Databases"),
    "AmazonVPC": ("Networking", "Network Infrastructure"),
    "AmazonRoute53": ("Networking", "Network Routing"),
    "AmazonRegistrar": ("Networking", "Other (Networking)"),
    "AWSQueueService": ("Integration", "Messaging"),
    "AmazonSNS": ("Integration", "Messaging"),
    "awskms": ("Security", "Secret Management"),
    "AWSSecretsManager": ("Security", "Secret Management"),
    "AmazonCloudWatch": ("Management and Governance", "Observability"),
    "AWSSupportBusiness": ("Management and Governance", "Support"),
    "AWSGlue": ("Analytics", "Data Processing"),
}
# pricing/unit in the FOCUS unit spelling AWS's export uses (Hours, GB-Months, Lambda-GB-Seconds
# [SAMPLE]; [FOCUS] UnitFormat); other units are kept as the price list writes them.
_UNITS = {"Hrs": "Hours", "hours": "Hours", "GB-Mo": "GB-Months", "DPU-Hour": "DPU-Hours",
          "Lambda-GB-Second": "Lambda-GB-Seconds"}


def _text(table: pa.Table, name: str) -> pa.Array:
    """A CUR column as strings; a column this month's CUR lacks is all null [PF §2.1]."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, _STRING)
    return table.column(name).combine_chunks()


def _double(values: pa.Array) -> pa.Array:
    """Decimal text as the nearest double (its shortest repr is that text again, so a reader
    summing the doubles' decimal text gets the CUR's exact total)."""
    return pc.cast(pc.cast(values, _STRING), pa.float64())


def _exact(table: pa.Table, name: str) -> pa.Array:
    return pc.cast(_text(table, name), _EXACT)


def _lookup(keys: pa.Array, mapping: Mapping[str, str | None]) -> pa.Array:
    """``mapping[key]`` per row (null where the key is not in ``mapping``)."""
    index = pc.index_in(keys, value_set=pa.array(list(mapping), _STRING))
    return pa.array(list(mapping.values()), _STRING).take(index)


def _by_type(kind: pa.Array, default: pa.Array, values: dict[str, pa.Array]) -> pa.Array:
    """``values[lineItem/LineItemType]`` per row, ``default`` for the types not named."""
    out = default
    for name, chosen in values.items():
        out = pc.if_else(pc.equal(kind, name), chosen, out)
    return out


def _where(mask: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(mask, values, pa.nulls(len(values), values.type))


def _map_of(table: pa.Table, prefix: str, key: Callable[[str], str]) -> pa.Array:
    """The ``<prefix>*`` columns as one MAP per row (null values left out, no entry: null)."""
    names = [c for c in table.column_names if c.startswith(prefix)]
    n, k = table.num_rows, len(names)
    if not k:
        return pa.nulls(n, _STRING_MAP)
    row_major = np.arange(n * k).reshape(k, n).T.ravel()  # entry j of row i at i * k + j
    values = pa.concat_arrays([_text(table, c) for c in names]).take(row_major)
    keys = pa.array([key(c) for c in names] * n, _STRING)
    keep = pc.is_valid(values)
    counts = keep.to_numpy(zero_copy_only=False).reshape(n, k).sum(axis=1)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    return pa.MapArray.from_arrays(offsets, keys.filter(keep), values.filter(keep),
                                   mask=pa.array(counts == 0))


def to_focus(table: pa.Table) -> pa.Table:
    """The legacy CSV month as AWS's FOCUS 1.2 export [PF §2.5], one row per CUR line item.

    Built from the CUR columns alone, column by column, the way AWS's export derives them; costs
    and quantities are doubles (AWS writes doubles), Tags / x_CostCategories / x_Discounts are
    MAP<string,string>, periods timestamp_milliseconds in UTC [AWS-F12].
    """
    n = table.num_rows
    if not n:
        raise ValueError("an empty month has no FOCUS export")
    kind = _text(table, "lineItem/LineItemType")
    unknown = set(pc.unique(kind).to_pylist()) - set(_LINE_ITEM_TYPES)
    if unknown:
        raise ValueError(f"no FOCUS mapping for lineItem/LineItemType {sorted(unknown)}")

    def is_(*types: str) -> pa.Array:
        return pc.is_in(kind, value_set=pa.array(types, _STRING))

    def text(name: str) -> pa.Array:
        return _text(table, name)

    def number(name: str) -> pa.Array:
        return _double(text(name))

    def stamp(name: str) -> pa.Array:
        return pc.cast(text(name), _MS_UTC)

    category = _lookup(kind, {t: v[0] for t, v in _LINE_ITEM_TYPES.items()})
    usage, purchase = pc.equal(category, "Usage"), pc.equal(category, "Purchase")
    product = text("lineItem/ProductCode")
    unit = pc.coalesce(_lookup(text("pricing/unit"), _UNITS), text("pricing/unit"))
    # [FOCUS] pricingquantity: null on Tax; PricingUnit goes with it.
    quantity = _where(pc.invert(is_("Tax")), number("lineItem/UsageAmount"))
    ri_arn, sp_arn = text("reservation/ReservationARN"), text("savingsPlan/SavingsPlanARN")
    commitment = pc.coalesce(ri_arn, sp_arn)
    is_ri, has_commitment = pc.is_valid(ri_arn), pc.is_valid(commitment)
    zero = pa.scalar(0, _EXACT)
    # Amortized cost [PF §2.1 effective cost table; FOCUS effectivecost]: covered usage carries
    # its commitment's effective cost, the fees only their unused part, upfront fees 0.
    effective = _by_type(kind, _exact(table, "lineItem/UnblendedCost"), {
        "SavingsPlanCoveredUsage": _exact(table, "savingsPlan/SavingsPlanEffectiveCost"),
        "DiscountedUsage": _exact(table, "reservation/EffectiveCost"),
        "SavingsPlanRecurringFee": pc.cast(pc.subtract(
            _exact(table, "savingsPlan/TotalCommitmentToDate"),
            _exact(table, "savingsPlan/UsedCommitment")), _EXACT),
        "RIFee": pc.cast(pc.add(
            _exact(table, "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"),
            _exact(table, "reservation/UnusedRecurringFee")), _EXACT),
        "SavingsPlanNegation": zero, "SavingsPlanUpfrontFee": zero,
    })
    effective = pc.if_else(pc.and_(is_("Fee"), is_ri), zero, effective)
    # Negotiated price before commitment discounts [FOCUS contractedunitprice, contractedcost]:
    # the CUR zeroes the rate of RI-covered usage, whose pre-commitment price is on-demand.
    ri_usage = is_("DiscountedUsage")
    contracted_price = _where(pc.or_(usage, purchase), pc.if_else(
        ri_usage, number("pricing/publicOnDemandRate"), number("lineItem/UnblendedRate")))
    services = {code: pair[0] for code, pair in _SERVICES.items()}
    subcategories = {code: pair[1] for code, pair in _SERVICES.items()}
    sku = text("product/sku")
    out = {
        "AvailabilityZone": text("lineItem/AvailabilityZone"),
        "BilledCost": number("lineItem/UnblendedCost"),               # invoice basis
        "BillingAccountId": text("bill/PayerAccountId"),
        "BillingAccountName": text("bill/PayerAccountName"),           # not in legacy CUR
        "BillingAccountType": pa.array(["Payer Account"] * n, _STRING),  # consolidated billing
        "BillingCurrency": text("lineItem/CurrencyCode"),
        "BillingPeriodEnd": stamp("bill/BillingPeriodEndDate"),
        "BillingPeriodStart": stamp("bill/BillingPeriodStartDate"),
        "ChargeCategory": category,
        # AWS marks no row as a correction (its FOCUS 1.0 conformance gaps, ChargeClass).
        "ChargeClass": pa.nulls(n, _STRING),
        "ChargeDescription": text("lineItem/LineItemDescription"),
        "ChargeFrequency": _lookup(kind, {t: v[1] for t, v in _LINE_ITEM_TYPES.items()}),
        "ChargePeriodEnd": stamp("lineItem/UsageEndDate"),
        "ChargePeriodStart": stamp("lineItem/UsageStartDate"),
        # Reserved Instances are usage-based, Savings Plans spend-based [FOCUS; SAMPLE].
        "CommitmentDiscountCategory": _where(has_commitment, pc.if_else(is_ri, "Usage", "Spend")),
        "CommitmentDiscountId": commitment,
        "CommitmentDiscountName": pa.nulls(n, _STRING),  # AWS leaves it empty [SAMPLE]
        # [FOCUS] commitmentdiscountquantity: hours / spend used by the row, or bought per
        # charge period by the recurring fee; null on every other row.
        "CommitmentDiscountQuantity": _by_type(kind, pa.nulls(n, pa.float64()), {
            "DiscountedUsage": number("lineItem/UsageAmount"),
            "SavingsPlanCoveredUsage": number("savingsPlan/SavingsPlanEffectiveCost"),
            "RIFee": number("reservation/TotalReservedUnits"),
            "SavingsPlanRecurringFee": number("savingsPlan/TotalCommitmentToDate")}),
        "CommitmentDiscountStatus": _where(pc.and_(usage, has_commitment),
                                           pa.array(["Used"] * n, _STRING)),
        "CommitmentDiscountType": _where(has_commitment, pc.if_else(
            is_ri, "Reserved Instance", "Savings Plan")),
        "CommitmentDiscountUnit": _where(has_commitment, pc.if_else(
            is_ri, pa.array(["Hours"] * n, _STRING), text("lineItem/CurrencyCode"))),
        # [FOCUS] consumedquantity: what a Usage row metered; null on other categories.
        "ConsumedQuantity": _where(usage, number("lineItem/UsageAmount")),
        "ConsumedUnit": _where(usage, unit),
        "ContractedCost": _double(pc.if_else(ri_usage, text("pricing/publicOnDemandCost"),
                                             text("lineItem/UnblendedCost"))),
        "ContractedUnitPrice": contracted_price,
        "EffectiveCost": _double(effective),
        "InvoiceId": text("bill/InvoiceId"),                  # empty until the bill is final
        "InvoiceIssuerName": text("bill/InvoicingEntity"),    # [SAMPLE]
        "ListCost": number("pricing/publicOnDemandCost"),
        "ListUnitPrice": number("pricing/publicOnDemandRate"),
        "PricingCategory": _lookup(kind, {t: v[2] for t, v in _LINE_ITEM_TYPES.items()}),
        "PricingCurrency": text("pricing/currency"),
        "PricingQuantity": quantity,
        "PricingUnit": _where(pc.is_valid(quantity), unit),
        "ProviderName": pa.array(["AWS"] * n, _STRING),       # [SAMPLE]
        "PublisherName": text("lineItem/LegalEntity"),        # the seller of record [SAMPLE]
        "RegionId": text("product/regionCode"),
        "RegionName": text("product/location"),
        "ResourceId": text("lineItem/ResourceId"),
        "ResourceName": pa.nulls(n, _STRING),                 # AWS has no resource names
        "ResourceType": pa.nulls(n, _STRING),
        "ServiceCategory": pc.coalesce(_lookup(product, services), "Other"),
        "ServiceName": pc.coalesce(text("product/ProductName"), product),
        "ServiceSubcategory": pc.coalesce(_lookup(product, subcategories), "Other (Other)"),
        "SkuId": sku,
        "SkuMeter": _where(pc.is_valid(sku), text("product/productFamily")),
        "SkuPriceId": text("pricing/RateCode"),
        "SubAccountId": text("lineItem/UsageAccountId"),
        "SubAccountName": text("lineItem/UsageAccountName"),  # not in legacy CUR
        "SubAccountType": _where(pc.is_valid(text("lineItem/UsageAccountId")),
                                 pa.array(["Linked Account"] * n, _STRING)),
        # User tags keep their key without "user:"; AWS-made tags keep "aws:" [SAMPLE; FOCUS tags].
        "Tags": _map_of(table, "resourceTags/",
                        lambda c: c.removeprefix("resourceTags/").removeprefix("user:")),
        "x_CostCategories": _map_of(table, "costCategory/",
                                    lambda c: c.removeprefix("costCategory/")),
        # Keys as CUR 2.0 spells its discount map (discount/TotalDiscount -> total_discount).
        "x_Discounts": _map_of(table, "discount/",
                               lambda c: athena_name(c).removeprefix("discount_")),
        "x_Operation": text("lineItem/Operation"),
        "x_ServiceCode": product,
        "x_UsageType": text("lineItem/UsageType"),
    }
    return pa.table({name: out[name] for name in FOCUS_EXPORT_COLUMNS})


def as_csv_table(table: pa.Table) -> pa.Table:
    """A typed export as its CSV twin would write it: text values, maps as JSON objects."""
    columns = {}
    for name in table.column_names:
        values = table.column(name).combine_chunks()
        if pa.types.is_map(values.type):
            text, _ = map_json(values, name)
            # AWS writes JSON numbers for double maps (discount); strings otherwise.
            if pa.types.is_floating(values.type.item_type):
                text = pc.replace_substring_regex(text, r'":"(-?[0-9.eE+-]+)"', r'":\1')
            columns[name] = text
        else:
            columns[name] = as_text(values)
    return pa.table(columns)


def write_table(table: pa.Table, path: Path) -> Path:
    """Write Parquet (``.parquet``) or CSV (``.csv`` / ``.csv.gz``) with nulls as empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".parquet"):
        pq.write_table(table, path, compression="snappy")
        return path
    buffer = io.BytesIO()
    pacsv.write_csv(as_csv_table(table), buffer,
                    pacsv.WriteOptions(quoting_style="needed"))
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


@dataclass(frozen=True)
class Delivery:
    """One written delivery: its id, the data files and the manifest."""

    delivery_id: str
    files: list[Path]
    manifest: Path


def write_legacy_delivery(root: Path, report: str, month: str, assembly_id: str,
                          tables: list[pa.Table], payer: str) -> Delivery:
    """A legacy CUR assembly (CREATE_NEW_REPORT) with both manifests [PF §2.3].

    ``root`` is the bucket; ``report`` is ``<prefix>/<report-name>``. ``reportKeys`` are bucket
    keys, as AWS writes them.

    The top-level ``<period>/<report>-Manifest.json`` is overwritten to name this assembly; the
    assembly's own manifest sits beside its files.
    """
    period = _legacy_period(month)
    base = root / report / period
    report = report.rsplit("/", 1)[-1]  # "<prefix>/<name>": the name
    files = [write_table(t, base / assembly_id / f"{report}-{i + 1}.csv.gz")
             for i, t in enumerate(tables)]
    start, end = period.split("-")
    manifest = {
        "assemblyId": assembly_id, "account": payer,
        "columns": [{"category": c.split("/")[0], "name": c.split("/", 1)[1]}
                    for c in tables[0].column_names],
        "charset": "UTF-8", "compression": "GZIP", "contentType": "text/csv",
        "reportId": f"{report}-id", "reportName": report,
        "billingPeriod": {"start": f"{start}T000000.000Z", "end": f"{end}T000000.000Z"},
        "bucket": root.name, "reportKeys": [f.relative_to(root).as_posix() for f in files],
    }
    for target in (base / assembly_id / f"{report}-Manifest.json",
                   base / f"{report}-Manifest.json"):
        target.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Delivery(assembly_id, files, base / f"{report}-Manifest.json")


def write_data_export(root: Path, export: str, month: str, execution_id: str, stamp: str,
                      tables: list[pa.Table], *, parquet: bool = True) -> Delivery:
    """A Data Exports delivery (CUR 2.0 or FOCUS), Create-new mode, with its manifest [PF §2.4].

    Args:
        root: bucket root.
        export: export name (its prefix, e.g. ``cur2/my-export``).
        month: billing period ``YYYY-MM``.
        execution_id: the execution's UUID.
        stamp: ``YYYYMMDDTHHMMSSZ`` of the execution (folder prefix).
        tables: one table per data file.
        parquet: ``.snappy.parquet`` files, else ``.csv.gz``.
    """
    name = export.rsplit("/", 1)[-1]
    suffix = ".snappy.parquet" if parquet else ".csv.gz"
    data = root / export / "data" / f"BILLING_PERIOD={month}" / f"{stamp}-{execution_id}"
    files = [write_table(t, data / f"{name}-{i + 1:05d}{suffix}") for i, t in enumerate(tables)]
    manifest = {
        "executionId": execution_id, "exportArn": f"arn:aws:bcm-data-exports::0:export/{name}",
        "billingPeriod": month, "dataFiles": [f"s3://{root.name}/{f.relative_to(root).as_posix()}"
                                              for f in files],
        "columns": [{"name": c} for c in tables[0].column_names],
    }
    target = root / export / "metadata" / f"BILLING_PERIOD={month}" / f"{name}-Manifest.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Delivery(execution_id, files, target)


def _legacy_period(month: str) -> str:
    year, mon = (int(p) for p in month.split("-"))
    nxt = (year + mon // 12, mon % 12 + 1)
    return f"{year:04d}{mon:02d}01-{nxt[0]:04d}{nxt[1]:02d}01"
