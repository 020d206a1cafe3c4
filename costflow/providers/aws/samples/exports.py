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
* FOCUS 1.2 export [PF §2.5]: the CUR rows normalized, with AWS's ``x_`` columns.

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
from dataclasses import dataclass
from pathlib import Path

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


def to_focus(table: pa.Table) -> pa.Table:
    """The legacy CSV month as AWS's FOCUS 1.2 export: costs double, maps as MAP [PF §2.5]."""
    from costflow.providers.aws.cur import AwsCurLegacyNormalizer

    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        raise ValueError("an empty month has no FOCUS export")
    mapped = AwsCurLegacyNormalizer().map(batch)
    out: dict[str, pa.Array] = {}
    for name in FOCUS_EXPORT_COLUMNS:
        values = mapped.columns.get(name, pa.nulls(batch.num_rows, pa.string()))
        if pa.types.is_decimal(values.type):
            values = pc.cast(pc.cast(values, pa.string()), pa.float64())
        elif name in ("Tags", "x_CostCategories", "x_Discounts"):
            values = pa.array([list(json.loads(v).items()) if v else None
                               for v in values.to_pylist()], pa.map_(pa.string(), pa.string()))
        out[name] = values
    return pa.table(out)


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
