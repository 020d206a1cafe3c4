"""Deterministic, realistic Azure Cost Management exports (EA and MCA, actual and amortized).

Why this module exists: the demo and the benchmark need Azure exports of any size whose exact
totals are known, written in the blob layout Azure uses, so the whole path (latest run per month,
actual/amortized pairing, every header variant, CSV, CSV.gz and Parquet) is exercised on data we
can reconcile to the last decimal.

Layout [PF §3.3]: ``<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<runId>/part_0_0001.csv``
(``.csv.gz`` or ``.parquet``) with a ``manifest.json`` (API 2023-07-01-preview shape) in the run
folder. Columns: the EA 2024-08-01 PascalCase list (57) or the MCA 2023-12-01-preview camelCase
list (65) [PF §3.1]. Dates are ``MM/dd/yyyy``; EA Tags are written without outer braces, as EA
exports often are [PF §3.1].

What is in a month: on-demand usage of a small catalog of real meters over a few subscriptions;
VM hours covered by a monthly-billed reservation (actual: cost 0 with PricingModel Reservation,
plus one Purchase row; amortized: the reservation price per hour, an UnusedReservation row, no
purchase). Costs are integers (quantity x price in 10^-8 units) rendered as exact decimal text,
so the returned totals are exact. Rows are built with numpy and pyarrow, never per row in Python.
"""

from __future__ import annotations

import calendar
import json
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from costflow.samples.csv_text import line_bytes

SCALE = 8  # cost units: 10^-8 of the billing currency (quantity 10^-4 x price 10^-4)
_Q, _P = 10_000, 10_000

# (MeterCategory, MeterSubCategory, MeterName, ConsumedService, resource type, UnitOfMeasure,
#  PayG price, resource name prefix). Real meter names and units from EA exports
# (finops-toolkit EA_*_Small.csv test assets, ../shared/samples/azure); prices are illustrative.
_CATALOG = (
    ("Virtual Machines", "Dv3/DSv3 Series", "D4s v3", "Microsoft.Compute",
     "virtualMachines", "1 Hour", "0.2300", "vm"),
    ("Storage", "Premium SSD Managed Disks", "P10 LRS Disk", "Microsoft.Compute",
     "disks", "1/Month", "0.6528", "disk"),
    ("Storage", "Tables", "LRS Data Stored", "Microsoft.Storage",
     "storageAccounts", "1 GB/Month", "0.0450", "st"),
    ("Bandwidth", "", "Standard Data Transfer Out", "Microsoft.Network",
     "publicIPAddresses", "1 GB", "0.0870", "pip"),
    ("SQL Database", "General Purpose - Compute Gen5", "vCore", "Microsoft.Sql",
     "servers", "1 Hour", "0.5044", "sql"),
    ("Azure App Service", "Premium v3 Plan", "P1 v3 App", "Microsoft.Web",
     "serverFarms", "1 Hour", "0.1800", "plan"),
)
_PROVIDER_NS = {"virtualMachines": "Microsoft.Compute", "disks": "Microsoft.Compute",
                "storageAccounts": "Microsoft.Storage", "publicIPAddresses": "Microsoft.Network",
                "servers": "Microsoft.Sql", "serverFarms": "Microsoft.Web"}
_REGIONS = ("westeurope", "eastus", "northeurope")
_RI_PRICE = "0.1380"  # reservation hourly rate of D4s v3 (60 % of pay-as-you-go)

EA_COLUMNS = (
    "InvoiceSectionName", "AccountName", "AccountOwnerId", "SubscriptionId", "SubscriptionName",
    "ResourceGroup", "ResourceLocation", "Date", "ProductName", "MeterCategory",
    "MeterSubCategory", "MeterId", "MeterName", "MeterRegion", "UnitOfMeasure", "Quantity",
    "EffectivePrice", "CostInBillingCurrency", "CostCenter", "ConsumedService", "ResourceId",
    "Tags", "OfferId", "AdditionalInfo", "ServiceInfo1", "ServiceInfo2", "ResourceName",
    "ReservationId", "ReservationName", "UnitPrice", "ProductOrderId", "ProductOrderName",
    "Term", "PublisherType", "PublisherName", "ChargeType", "Frequency", "PricingModel",
    "AvailabilityZone", "BillingAccountId", "BillingAccountName", "BillingCurrencyCode",
    "BillingPeriodStartDate", "BillingPeriodEndDate", "BillingProfileId", "BillingProfileName",
    "InvoiceSectionId", "IsAzureCreditEligible", "PartNumber", "PayGPrice", "PlanName",
    "ServiceFamily", "CostAllocationRuleName", "benefitId", "benefitName", "AccountId",
    "ResourceLocationNormalized")
MCA_COLUMNS = (
    "invoiceId", "previousInvoiceId", "billingAccountId", "billingAccountName",
    "billingProfileId", "billingProfileName", "invoiceSectionId", "invoiceSectionName",
    "resellerName", "resellerMpnId", "costCenter", "billingPeriodEndDate",
    "billingPeriodStartDate", "servicePeriodEndDate", "servicePeriodStartDate", "date",
    "serviceFamily", "productOrderId", "productOrderName", "consumedService", "meterId",
    "meterName", "meterCategory", "meterSubCategory", "meterRegion", "ProductId", "ProductName",
    "SubscriptionId", "subscriptionName", "publisherType", "publisherId", "publisherName",
    "resourceGroupName", "ResourceId", "resourceLocation", "location", "effectivePrice",
    "quantity", "unitOfMeasure", "chargeType", "billingCurrency", "pricingCurrency",
    "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency",
    "paygCostInUsd", "exchangeRatePricingToBilling", "exchangeRateDate", "isAzureCreditEligible",
    "serviceInfo1", "serviceInfo2", "additionalInfo", "tags", "PayGPrice", "frequency", "term",
    "reservationId", "reservationName", "pricingModel", "unitPrice", "costAllocationRuleName",
    "benefitId", "benefitName", "provider")
# Generated value -> column, per schema (columns not listed are written empty).
_EA_NAMES = {"sub": "SubscriptionId", "sub_name": "SubscriptionName", "rg": "ResourceGroup",
             "loc": "ResourceLocation", "date": "Date", "product": "ProductName",
             "cat": "MeterCategory", "subcat": "MeterSubCategory", "meter_id": "MeterId",
             "meter": "MeterName", "unit": "UnitOfMeasure", "qty": "Quantity",
             "eff_price": "EffectivePrice", "cost": "CostInBillingCurrency",
             "svc": "ConsumedService", "rid": "ResourceId", "tags": "Tags",
             "rname": "ResourceName", "res_id": "ReservationId", "res_name": "ReservationName",
             "unit_price": "UnitPrice", "charge": "ChargeType", "freq": "Frequency",
             "model": "PricingModel", "account": "BillingAccountId",
             "account_name": "BillingAccountName", "currency": "BillingCurrencyCode",
             "pstart": "BillingPeriodStartDate", "pend": "BillingPeriodEndDate",
             "profile": "BillingProfileId", "profile_name": "BillingProfileName",
             "payg": "PayGPrice", "benefit_id": "benefitId", "benefit_name": "benefitName",
             "publisher": "PublisherName", "publisher_type": "PublisherType"}
_MCA_NAMES = {"sub": "SubscriptionId", "sub_name": "subscriptionName", "rg": "resourceGroupName",
              "loc": "resourceLocation", "date": "date", "product": "ProductName",
              "cat": "meterCategory", "subcat": "meterSubCategory", "meter_id": "meterId",
              "meter": "meterName", "unit": "unitOfMeasure", "qty": "quantity",
              "eff_price": "effectivePrice", "cost": "costInBillingCurrency",
              "svc": "consumedService", "rid": "ResourceId", "tags": "tags",
              "res_id": "reservationId", "res_name": "reservationName",
              "unit_price": "unitPrice", "charge": "chargeType", "freq": "frequency",
              "model": "pricingModel", "account": "billingAccountId",
              "account_name": "billingAccountName", "currency": "billingCurrency",
              "pricing_currency": "pricingCurrency", "pstart": "billingPeriodStartDate",
              "pend": "billingPeriodEndDate", "profile": "billingProfileId",
              "profile_name": "billingProfileName", "payg": "PayGPrice",
              "benefit_id": "benefitId", "benefit_name": "benefitName",
              "publisher": "publisherName", "publisher_type": "publisherType"}


@dataclass(frozen=True)
class GeneratedExport:
    """One written export run; totals are exact sums of the cost column."""

    dataset: str            # "actual" or "amortized"
    run_dir: Path
    files: list[Path]
    rows: int
    total: Decimal
    totals_by_subscription: dict[str, Decimal]


def decimal_text(units: np.ndarray, scale: int) -> pa.Array:
    """Exact decimal text of ``units * 10**-scale`` (``12.34000000``), vectorized."""
    magnitude = np.abs(units)
    whole = pc.cast(pa.array(magnitude // 10**scale), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(magnitude % 10**scale), pa.string()), scale, "0")
    sign = pc.if_else(pa.array(units < 0), "-", "")
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def _take(values: list[str], index: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(index))


def _month_bounds(month: str) -> tuple[date, date]:
    year, mon = (int(p) for p in month.split("-"))
    return date(year, mon, 1), date(year, mon, calendar.monthrange(year, mon)[1])


def _rows(rng: np.random.Generator, rows: int, month: str, subs: list[str],
          mca: bool) -> tuple[dict[str, pa.Array], dict[str, pa.Array], np.ndarray, np.ndarray,
                              np.ndarray]:
    """Shared columns, prices, (actual, amortized) cost units, covered mask, quantity units."""
    first, last = _month_bounds(month)
    days = last.day
    item = rng.integers(0, len(_CATALOG), rows)
    sub = rng.integers(0, len(subs), rows)
    resource = rng.integers(0, 8, rows)
    day = rng.integers(1, days + 1, rows)
    region = rng.integers(0, len(_REGIONS), rows)
    qty_units = rng.integers(1, 24 * _Q, rows)
    price_units = np.array([round(Decimal(c[6]) * _P) for c in _CATALOG], dtype=np.int64)[item]
    covered = (item == 0) & (sub == 0) & (resource < 3)       # VMs under the reservation
    ri_units = round(Decimal(_RI_PRICE) * _P)
    payg_cost = qty_units * price_units
    actual = np.where(covered, 0, payg_cost)
    amortized = np.where(covered, qty_units * ri_units, payg_cost)
    sub_names = [f"sub-{i:02d}" for i in range(len(subs))]
    kinds = [c[4] for c in _CATALOG]
    rg = pc.binary_join_element_wise("rg-", _take(["web", "data", "ops"], resource % 3), "")
    rname = pc.binary_join_element_wise(
        _take([c[7] for c in _CATALOG], item), "-", pc.cast(pa.array(resource), pa.string()), "")
    rid = pc.binary_join_element_wise(
        "/subscriptions/", _take(subs, sub), "/resourceGroups/", rg, "/providers/",
        _take([_PROVIDER_NS[k] for k in kinds], item), "/", _take(kinds, item), "/", rname, "")
    tags = (['{"env": "prod", "team": "web"}', '{"env": "dev"}', ""] if mca else
            ['"env": "prod","team": "web"', '"env": "dev"', ""])
    dates = pc.binary_join_element_wise(
        f"{first.month:02d}/", pc.utf8_lpad(pc.cast(pa.array(day), pa.string()), 2, "0"),
        f"/{first.year}", "")
    n = rows
    ri_id = "/providers/Microsoft.Capacity/reservationOrders/0b0c0d0e/reservations/9f8e7d6c"
    model = pc.if_else(pa.array(covered), "Reservation", "OnDemand")
    shared = {
        "sub": _take(subs, sub), "sub_name": _take(sub_names, sub), "rg": rg,
        "loc": _take(list(_REGIONS), region), "date": dates,
        "product": pc.binary_join_element_wise(_take([c[0] for c in _CATALOG], item), " ",
                                               _take([c[2] for c in _CATALOG], item), ""),
        "cat": _take([c[0] for c in _CATALOG], item),
        "subcat": _take([c[1] for c in _CATALOG], item),
        "meter_id": _take([str(uuid.UUID(int=i + 1)) for i in range(len(_CATALOG))], item),
        "meter": _take([c[2] for c in _CATALOG], item),
        "unit": _take([c[5] for c in _CATALOG], item),
        "qty": decimal_text(qty_units, 4), "svc": _take([c[3] for c in _CATALOG], item),
        "rid": rid, "rname": rname, "tags": _take(tags, resource % 3),
        "unit_price": decimal_text(price_units, 4), "payg": decimal_text(price_units, 4),
        "charge": pa.repeat(pa.scalar("Usage"), n), "freq": pa.repeat(pa.scalar("UsageBased"), n),
        "model": model,
        "res_id": pc.if_else(pa.array(covered), ri_id, pa.scalar(None, pa.string())),
        "res_name": pc.if_else(pa.array(covered), "ri-d4sv3", pa.scalar(None, pa.string())),
        "benefit_id": pc.if_else(pa.array(covered), ri_id, pa.scalar(None, pa.string())),
        "benefit_name": pc.if_else(pa.array(covered), "ri-d4sv3", pa.scalar(None, pa.string())),
        "publisher": pa.repeat(pa.scalar("Microsoft"), n),
        "publisher_type": pa.repeat(pa.scalar("Azure"), n),
    }
    prices = {"actual": decimal_text(np.where(covered, 0, price_units), 4),
              "amortized": decimal_text(np.where(covered, ri_units, price_units), 4)}
    return shared, prices, np.stack([actual, amortized]), covered, qty_units


def _commitment_rows(month: str, sub: str, covered_qty: int, dataset: str,
                     ) -> dict[str, list[str | None]]:
    """Actual: the monthly reservation Purchase. Amortized: the UnusedReservation hours.

    Enough instances are reserved to cover every covered hour, so some hours go unused; the
    monthly fee is then exactly the covered amortized cost plus the unused cost.
    """
    first, last = _month_bounds(month)
    ri_units = round(Decimal(_RI_PRICE) * _P)
    month_hours = last.day * 24 * _Q
    instances = covered_qty // month_hours + 1
    fee = instances * month_hours * ri_units
    unused = fee - covered_qty * ri_units
    unused_hours = Decimal(unused) / (ri_units * _Q)
    ri_id = "/providers/Microsoft.Capacity/reservationOrders/0b0c0d0e/reservations/9f8e7d6c"
    purchase = dataset == "actual"
    units = fee if purchase else unused
    return {
        "sub": [sub], "sub_name": ["sub-00"], "date": [f"{first:%m/%d/%Y}"],
        "product": ["Reserved VM Instance, Standard_D4s_v3, West Europe, 1 Year"],
        "cat": ["Virtual Machines"], "meter": ["D4s v3"], "unit": ["1 Hour"],
        "qty": [str(instances) if purchase else str(unused_hours.quantize(Decimal("0.0001")))],
        "cost": [str(decimal_text(np.array([units]), SCALE)[0])],
        "charge": ["Purchase" if purchase else "UnusedReservation"],
        "freq": ["Recurring" if purchase else "UsageBased"], "model": ["Reservation"],
        "res_id": [ri_id], "res_name": ["ri-d4sv3"], "benefit_id": [ri_id],
        "benefit_name": ["ri-d4sv3"], "svc": ["Microsoft.Capacity"],
        "publisher": ["Microsoft"], "publisher_type": ["Azure"], "_units": [str(units)],
    }


def _table(columns: tuple[str, ...], names: dict[str, str], values: dict[str, pa.Array],
           n: int) -> pa.Table:
    by_column = {names[k]: v for k, v in values.items() if k in names}
    empty = pa.nulls(n, pa.string())
    return pa.table({c: by_column.get(c, empty) for c in columns})


def write_export(root: str | Path, month: str, rows: int, *, schema: str = "ea",
                 seed: int = 11, container: str = "csv", run_time: str | None = None,
                 currency: str = "EUR", subscriptions: int = 3,
                 ) -> tuple[GeneratedExport, GeneratedExport]:
    """Write an actual-cost and an amortized-cost export run of ``month``; returns both.

    Args:
        root: the export container folder (``<root>/<export>/<YYYYMMDD-YYYYMMDD>/...``).
        month: ``YYYY-MM``.
        rows: usage rows per export (each export also has one commitment row).
        schema: ``ea`` (PascalCase) or ``mca`` (camelCase).
        seed: same seed, same bytes.
        container: ``csv``, ``csv.gz`` or ``parquet`` (typed columns: costs decimal, Date a
            timestamp, quantities double).
        run_time: export run folder name ``YYYYMMDDHHMM`` (default: the 3rd of the next month).
        currency: billing currency code.
        subscriptions: how many subscriptions the usage spreads over.
    """
    if schema not in ("ea", "mca") or container not in ("csv", "csv.gz", "parquet"):
        raise ValueError(f"schema {schema!r} / container {container!r} not supported")
    rng = np.random.default_rng(seed)
    subs = [str(uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | i)) for i in range(subscriptions)]
    mca = schema == "mca"
    columns, names = (MCA_COLUMNS, _MCA_NAMES) if mca else (EA_COLUMNS, _EA_NAMES)
    first, last = _month_bounds(month)
    shared, prices, costs, covered, qty_units = _rows(rng, rows, month, subs, mca)
    account = "8611537" if not mca else "a1b2c3d4-0000-4000-8000-000000000001:e5f6_2019-05-31"
    profile = "8611537" if not mca else "AB12-CD34-EF5-GH6"
    stamp = run_time or f"{(last.replace(day=28)).strftime('%Y%m')}280600"
    runs = []
    for position, dataset in enumerate(("actual", "amortized")):
        units = costs[position]
        extra = _commitment_rows(month, subs[0], int(qty_units[covered].sum()), dataset)
        values = dict(shared)
        values["cost"] = decimal_text(units, SCALE)
        values["eff_price"] = prices[dataset]
        n = rows + 1
        for key in set(values) | set(extra):
            if key == "_units":
                continue
            head = values.get(key, pa.nulls(rows, pa.string()))
            values[key] = pa.concat_arrays([head.cast(pa.string()),
                                            pa.array(extra.get(key, [None]), pa.string())])
        constants = {"account": account, "account_name": "Contoso", "currency": currency,
                     "pricing_currency": currency, "profile": profile,
                     "profile_name": "Contoso Billing", "pstart": f"{first:%m/%d/%Y}",
                     "pend": f"{last:%m/%d/%Y}"}
        values.update({k: pa.repeat(pa.scalar(v), n) for k, v in constants.items()})
        table = _table(columns, names, values, n)
        export = f"{schema}-{dataset}"
        run_id = str(uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | position))
        run_dir = Path(root) / export / f"{first:%Y%m%d}-{last:%Y%m%d}" / stamp / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        part = run_dir / f"part_0_0001.{'snappy.parquet' if container == 'parquet' else container}"
        _write(table, part, container, names)
        all_units = np.concatenate([units, [int(extra["_units"][0] or 0)]])
        sub_of_row = np.concatenate([pc.index_in(shared["sub"], pa.array(subs)).to_numpy(), [0]])
        by_sub = {sub: Decimal(int(all_units[sub_of_row == i].sum())).scaleb(-SCALE)
                  for i, sub in enumerate(subs)}
        total = Decimal(int(all_units.sum())).scaleb(-SCALE)
        _manifest(run_dir, part, export, dataset, run_id, stamp, first, last, n, subs[0],
                  container)
        runs.append(GeneratedExport(dataset, run_dir, [part], n, total, by_sub))
    return runs[0], runs[1]


def _write(table: pa.Table, path: Path, container: str, names: dict[str, str]) -> None:
    if container == "parquet":
        typed = {names["cost"]: pa.decimal128(38, SCALE), names["qty"]: pa.float64(),
                 names["unit_price"]: pa.float64(), names["payg"]: pa.float64(),
                 names["eff_price"]: pa.float64()}
        arrays = []
        for name, col in zip(table.column_names, table.columns, strict=True):
            if name in typed:
                col = pc.cast(col, typed[name])
            elif name == names["date"]:
                col = pc.assume_timezone(pc.strptime(col, format="%m/%d/%Y", unit="us"), "UTC")
            arrays.append(col)
        pq.write_table(pa.table(dict(zip(table.column_names, arrays, strict=True))), path,
                       compression="snappy")
        return
    data = csv_bytes(table)
    if container == "csv.gz":
        with pa.CompressedOutputStream(str(path), "gzip") as out:
            out.write(data)
    else:
        path.write_bytes(data)


def _escaped(col: pa.Array) -> pa.Array:
    """CSV field text: quoted only when needed (RFC 4180), empty for null, as Azure writes."""
    text = pc.fill_null(pc.cast(col, pa.string()), "")
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(text, '[,"\r\n]'), quoted, text)


def csv_bytes(table: pa.Table) -> bytes:
    """The table as CSV text with a header line, vectorized (one join per row, in Arrow)."""
    header = ",".join(table.column_names) + "\n"
    fields = [_escaped(c.combine_chunks()) for c in table.columns]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "\n", "")
    return header.encode() + line_bytes(lines).to_pybytes()


def _manifest(run_dir: Path, part: Path, export: str, dataset: str, run_id: str, stamp: str,
              first: date, last: date, rows: int, sub: str, container: str) -> None:
    """manifest.json, API 2023-07-01-preview shape [PF §3.3]."""
    manifest = {
        "manifestVersion": "2024-04-01",
        "exportConfig": {
            "exportName": export,
            "resourceId": f"/subscriptions/{sub}/providers/Microsoft.CostManagement/exports/"
                          f"{export}",
            "dataVersion": "2021-10-01", "apiVersion": "2023-07-01-preview",
            "type": "ActualCost" if dataset == "actual" else "AmortizedCost",
            "timeFrame": "MonthToDate", "granularity": "Daily"},
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "CreateNewReport",
                           "fileFormat": "Parquet" if container == "parquet" else "Csv",
                           "compressionMode": {"csv.gz": "gzip", "parquet": "snappy"}.get(
                               container, "none"),
                           "containerUri": "/subscriptions/x/resourceGroups/finops/providers/"
                                           "Microsoft.Storage/storageAccounts/costexports",
                           "rootFolderPath": ""},
        "runInfo": {"executionType": "Scheduled",
                    "submittedTime": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:"
                                     f"{stamp[10:12]}:00.0000000Z",
                    "runId": run_id, "startDate": f"{first:%Y-%m-%d}T00:00:00",
                    "endDate": f"{last:%Y-%m-%d}T00:00:00"},
        "blobs": [{"blobName": f"{export}/{run_dir.parent.parent.name}/{stamp}/{run_id}/"
                               f"{part.name}", "byteCount": part.stat().st_size,
                   "dataRowCount": rows}],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
