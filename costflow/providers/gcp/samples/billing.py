"""Realistic GCP Cloud Billing export rows, and the files BigQuery would extract them to.

Why: no real GCP billing export may be published, so fixtures and demo data are built from the
documented BigQuery schema (../shared/reference/provider_formats.md §1.2): nested ``service``,
``sku``, ``project`` (labels, ancestors), repeated ``labels``/``system_labels``/``tags``/
``credits``, ``invoice.month`` as 'YYYYMM', timestamps rendered ``YYYY-MM-DD HH:MM:SS UTC`` in
JSON, costs as JSON numbers (FLOAT64, shortest round-trip text), NUMERIC ``price`` fields as
strings. The same rows are written as newline-delimited JSON (plain or gzip), Parquet and Avro
with the types BigQuery's own extract gives them (FLOAT64 doubles, NUMERIC decimal(38, 9),
TIMESTAMP micros), and `truth` returns the exact ``cost + SUM(credits.amount)`` per
(billing account, invoice month) computed from the JSON text, to compare a load with.

    rows = fixture_rows()                 # every cost_type, corrections, two currencies, ...
    write_jsonl(rows, "export.json.gz"); write_parquet(rows, "export.parquet")
    rows = generate_rows(300, seed=7)     # random, deterministic dict rows tests can edit
    # The demo and the benchmark write millions of rows with gcp_billing_bulk (vectorized).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from costflow.providers.gcp.export_schema import (
    BOOLEAN_PATHS,
    NUMERIC_PATHS,
    schema_with_leaf_types,
)

USD_ACCOUNT, EUR_ACCOUNT = "01338E-BE3FD6-363B4C", "0A7F21-9C44D2-5E8B10"
EUR_RATE = 0.921834  # currency_conversion_rate: USD -> EUR
PRICE_FIELDS = frozenset(p for p in NUMERIC_PATHS if p.startswith("price."))

SERVICES = {
    "compute": ("6F81-5844-456A", "Compute Engine"),
    "bigquery": ("24E6-581D-38E5", "BigQuery"),
    "storage": ("95FF-2EF5-5EA1", "Cloud Storage"),
    "gke": ("CCD8-9BF1-090E", "Kubernetes Engine"),
    "support": ("2062-016F-44A2", "Support"),
    "sql": ("9662-B51E-5089", "Cloud SQL"),
    "marketplace": ("A3F7-2B19-64C0", "Elastic Cloud (Elasticsearch managed service)"),
}


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _kv(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def _project(pid: str, number: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"id": pid, "number": number, "name": pid.replace("-", " ").title(),
            "labels": _kv(labels), "ancestry_numbers": "/583041925877/261046257137/",
            "ancestors": [
                {"resource_name": f"projects/{number}", "display_name": pid},
                {"resource_name": "folders/261046257137", "display_name": "production"},
                {"resource_name": "organizations/583041925877", "display_name": "example.com"}]}


WEB = _project("web-prod", "831052298467", {"team": "web", "env": "prod"})
DATA = _project("data-lake", "402213659901", {"team": "data", "cost-center": "cc-4410"})
EU_APP = _project("eu-shop-prod", "117263554120", {"team": "shop", "env": "prod"})


def row(*, account: str = USD_ACCOUNT, service: str = "compute", sku: tuple[str, str] = (
        "2E27-4F75-95CD", "N2 Instance Core running in Americas"), start: datetime,
        hours: int = 1, project: dict[str, Any] | None = WEB, labels: dict[str, str] | None = None,
        system_labels: dict[str, str] | None = None, location: dict[str, str | None] | None = None,
        resource: tuple[str, str] | None = None, cost: float, credits: Iterable[dict] = (),
        invoice: str = "202610", cost_type: str = "regular", currency: str = "USD",
        rate: float = 1.0, usage: tuple[float, str, float, str] | None = (1.0, "seconds",
                                                                            1.0, "hour"),
        cost_at_list: float | None = None, adjustment: dict[str, str] | None = None,
        export_delay_h: int = 5, tags: list[dict[str, Any]] | None = None,
        subscription: str | None = None, consumption_model: dict[str, str] | None = None,
        transaction_type: str | None = "GOOGLE", seller: str | None = None,
        price: dict[str, str] | None = None) -> dict[str, Any]:
    """One export row as BigQuery's JSON extract writes it (nulls included)."""
    sid, sdesc = SERVICES[service]
    end = start + timedelta(hours=hours)
    return {
        "billing_account_id": account,
        "service": {"id": sid, "description": sdesc},
        "sku": {"id": sku[0], "description": sku[1]},
        "usage_start_time": _ts(start), "usage_end_time": _ts(end),
        "project": project,
        "labels": _kv(labels or {}),
        "system_labels": _kv(system_labels or {}),
        "location": location,
        "resource": {"name": resource[0], "global_name": resource[1]} if resource else None,
        "tags": tags or [],
        "price": price,
        "subscription": {"instance_id": subscription} if subscription else None,
        "transaction_type": transaction_type if cost_type == "regular" else None,
        "seller_name": seller,
        "export_time": _ts(end + timedelta(hours=export_delay_h)),
        "cost": cost,
        "currency": currency,
        "currency_conversion_rate": rate,
        "usage": ({"amount": usage[0], "unit": usage[1], "amount_in_pricing_units": usage[2],
                   "pricing_unit": usage[3]} if usage else None),
        "credits": list(credits),
        "invoice": {"month": invoice, "publisher_type": "GOOGLE"},
        "cost_type": cost_type,
        "adjustment_info": adjustment,
        "cost_at_list": cost_at_list,
        "consumption_model": consumption_model,
    }


def credit(kind: str, amount: float, name: str, cid: str, full_name: str | None = None) -> dict:
    return {"name": name, "amount": amount, "full_name": full_name, "id": cid, "type": kind}


def _loc(region: str | None, zone: str | None = None, location: str | None = None,
         country: str | None = None) -> dict[str, str | None]:
    return {"location": location or zone or region, "country": country or "US",
            "region": region, "zone": zone}


def fixture_rows() -> list[dict[str, Any]]:
    """The done-when fixture set: every cost_type, multi-credit rows, a EUR billing account,
    usage invoiced in the next month, a correction of a prior month, global services without
    location, tiny and negative amounts, CUD usage and fee, Marketplace, an older row without
    ``cost_at_list``."""
    t = datetime(2026, 10, 5, 7, tzinfo=UTC)
    vm = ("web-1", "//compute.googleapis.com/projects/web-prod/zones/us-central1-a/instances/"
                   "4561849927712345678")
    machine = {"compute.googleapis.com/machine_spec": "n2-standard-4",
               "compute.googleapis.com/cores": "4", "compute.googleapis.com/memory": "16384"}
    cud = "projects/831052298467/regions/us-central1/commitments/2470112847553251231"
    return [
        # Multi-credit VM usage: sustained use + free tier; labels at every level.
        row(start=t, cost=0.194236, cost_at_list=0.21048, resource=vm,
            labels={"app": "checkout", "env": "staging"}, system_labels=machine,
            location=_loc("us-central1", "us-central1-a"),
            tags=[{"key": "env", "value": "prod", "inherited": True,
                   "namespace": "583041925877"}],
            credits=[credit("SUSTAINED_USAGE_DISCOUNT", -0.038847, "Sustained Usage Discount",
                            "SustainedUsageDiscount"),
                     credit("FREE_TIER", -0.0001, "Free tier", "FreeTier")],
            usage=(3600.0, "seconds", 1.0, "hour"),
            price={"effective_price": "0.194236", "tier_start_amount": "0", "unit": "hour",
                   "pricing_unit_quantity": "1", "list_price": "0.21048",
                   "effective_price_default": "0.194236",
                   "list_price_consumption_model": "0.21048"}),
        # Usage a resource-based CUD covered (credit nets it to zero).
        row(start=t + timedelta(hours=1), cost=0.097118, cost_at_list=0.10524, resource=vm,
            system_labels=machine, location=_loc("us-central1", "us-central1-a"),
            subscription="2470112847553251231",
            credits=[credit("COMMITTED_USAGE_DISCOUNT", -0.097118,
                            "Committed Usage Discount: CPU", cud,
                            "Committed use discount - 1 year CPU")]),
        # The CUD's monthly fee.
        row(start=datetime(2026, 10, 1, 7, tzinfo=UTC), hours=24 * 31,
            sku=("5E9C-2AD4-B3E1", "Commitment v1: Cpu in Americas for 1 Year"), cost=42.31,
            cost_at_list=42.31, location=_loc("us-central1"), subscription="2470112847553251231",
            usage=(2678400.0, "seconds", 744.0, "hour")),
        # BigQuery analysis in the US multi-region: promotion + spending-based discount.
        row(service="bigquery", project=DATA, sku=("3362-E469-6BEE", "Analysis"),
            start=t, cost=6.25, cost_at_list=6.25,
            location={"location": "US", "country": None, "region": None, "zone": None},
            labels={"goog-k8s-cluster-name": "etl", "team": "analytics"},
            usage=(1099511627776.0, "bytes", 1.0, "tebibyte"),
            credits=[credit("PROMOTION", -5.0, "Free trial credit", "PROMO-FT-300"),
                     credit("DISCOUNT", -0.125, "Spending based discount", "SBD-1"),
                     credit("FREE_TIER", -1.125, "BigQuery free tier", "FreeTier")]),
        # Support: global, no project, no location.
        row(service="support", sku=("B1E1-2A3C-44F1", "Enhanced Support"), project=None,
            start=datetime(2026, 10, 1, 7, tzinfo=UTC), hours=24 * 31, cost=500.0,
            cost_at_list=500.0, usage=None, location=None),
        # Tax on the October invoice.
        row(service="compute", sku=("1A2B-TAX0-0001", "Sales tax"), cost_type="tax",
            start=datetime(2026, 10, 1, 7, tzinfo=UTC), hours=24 * 31, cost=3.87, usage=None,
            location=None),
        # Goodwill adjustment on the current month: an adjustment, not a correction.
        row(sku=("ADJ-0000-0001", "Goodwill"), cost_type="adjustment", start=t, cost=-12.5,
            usage=None, adjustment={"id": "ADJ-881", "description": "Goodwill credit",
                                    "mode": "MANUAL_ADJUSTMENT", "type": "GOODWILL"}),
        # Rounding error: tiny negative.
        row(sku=("ROUND-000", "Rounding error"), cost_type="rounding_error", start=t,
            cost=-1e-06, usage=None, location=None),
        # Tiny amounts: micro-cost with a micro-credit.
        row(service="storage", project=DATA, sku=("D9C8-9A6E-11A1", "Class A Operations"),
            start=t, cost=2.4e-07, cost_at_list=2.4e-07, location=_loc(
                None, None, "us", None), usage=(6.0, "requests", 6e-06, "mebibyte"),
            credits=[credit("FREE_TIER", -2.4e-07, "Free tier", "FreeTier")]),
        # Older row: no cost_at_list (before 2023-06-29) -> ListCost falls back to cost.
        row(service="storage", project=DATA, sku=("E5F0-6A5B-F7EF", "Standard Storage US"),
            start=t, cost=0.1, location=_loc(None, None, "us"),
            usage=(1.5e+12, "byte-seconds", 0.0005, "gibibyte month")),
        # Late usage: the last hour of October (UTC Nov 1 06:00 = Oct 31 23:00 Pacific),
        # invoiced on November's invoice, no adjustment_info: late, not a correction.
        row(start=datetime(2026, 11, 1, 5, tzinfo=UTC), invoice="202611", cost=0.194236,
            cost_at_list=0.21048, resource=vm, location=_loc("us-central1", "us-central1-a"),
            export_delay_h=40),
        # Correction of September usage, appended to the October invoice: negation ...
        row(start=datetime(2026, 9, 20, 7, tzinfo=UTC), invoice="202610", cost=-0.388472,
            cost_at_list=-0.42096, resource=vm, location=_loc("us-central1", "us-central1-a"),
            credits=[credit("SUSTAINED_USAGE_DISCOUNT", 0.077694, "Sustained Usage Discount",
                            "SustainedUsageDiscount")],
            adjustment={"id": "COR-2209", "description": "Usage correction for September",
                        "mode": "COMPLETE_NEGATION_WITH_REMONETIZATION",
                        "type": "USAGE_CORRECTION"}, export_delay_h=24 * 20),
        # ... and remonetization with the corrected usage.
        row(start=datetime(2026, 9, 20, 7, tzinfo=UTC), invoice="202610", cost=0.291354,
            cost_at_list=0.31572, resource=vm, location=_loc("us-central1", "us-central1-a"),
            credits=[credit("SUSTAINED_USAGE_DISCOUNT", -0.05827, "Sustained Usage Discount",
                            "SustainedUsageDiscount")],
            adjustment={"id": "COR-2209", "description": "Usage correction for September",
                        "mode": "COMPLETE_NEGATION_WITH_REMONETIZATION",
                        "type": "USAGE_CORRECTION"}, export_delay_h=24 * 20),
        # Marketplace (third-party reseller).
        row(service="marketplace", project=DATA, sku=("0F2A-77C1-8811", "Standard plan"),
            start=t, hours=24, cost=31.2, cost_at_list=31.2, location=None,
            transaction_type="THIRD_PARTY_RESELLER", seller="Elasticsearch B.V."),
        # EUR billing account: spend-based CUD (new model) and VAT.
        row(account=EUR_ACCOUNT, project=EU_APP, service="sql", currency="EUR", rate=EUR_RATE,
            sku=("0E2F-7D47-8F5A", "Cloud SQL for PostgreSQL: Zonal - vCPU in Frankfurt"),
            start=t, cost=0.063377, cost_at_list=0.068754,
            location=_loc("europe-west3", "europe-west3-b", country="DE"),
            labels={"app": "shop-db"}, consumption_model={
                "id": "D97B-0795-975B", "description": "Compute Flexible CUD Consumption Model",
                "applied_subscription_instance_id": "a8f1c2d3-flex-cud-eu"},
            credits=[credit("FEE_UTILIZATION_OFFSET", -0.017112, "Flex CUD fee offset",
                            "FeeUtilizationOffset"),
                     credit("DISCOUNT", -0.000634, "Spending based discount", "SBD-EU")]),
        row(account=EUR_ACCOUNT, project=EU_APP, service="sql", currency="EUR", rate=EUR_RATE,
            sku=("VAT-DE-0001", "VAT"), cost_type="tax", start=datetime(
                2026, 10, 1, 7, tzinfo=UTC), hours=24 * 31, cost=0.012, usage=None,
            location=None),
    ]


CPU_CUD_ID, RAM_CUD_ID = "2470112847553251231", "2470112847553251232"
FLEX_CUD_ID = "9c1e7d2a-55f0-4c3e-8a8e-0f6d1b2c3a4e"


def commitment_rows(days: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A month of committed-use discounts as the export shows them: (fee rows, usage rows).

    * Resource-based CUDs in us-central1 (CPU and RAM): one fee row per day per commitment
      ("Commitment v1: ..." SKUs, ``subscription.instance_id``), and VM hours whose cost a
      COMMITTED_USAGE_DISCOUNT credit nets fully (inside the commitment) or partly (beyond it).
    * An idle resource-based CUD in europe-west1: fees, nothing covered.
    * A legacy spend-based (flexible) CUD: a "Commitment - dollar based v1" fee and Compute
      usage in two regions with COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE credits.
    * A September CUD-covered hour negated on the October invoice (a correction).
    * Uncovered VM hours beside them.
    """
    fees, usage = [], []
    vm_core = ("2E27-4F75-95CD", "N2 Instance Core running in Americas")
    vm_ram = ("5A1F-9B3C-8D44", "N2 Instance Ram running in Americas")
    central = _loc("us-central1", "us-central1-a")
    for day in range(days):
        midnight = datetime(2026, 10, 1 + day, 7, tzinfo=UTC)  # 00:00 US/Pacific
        for sub, sku, cost, region in (
                (CPU_CUD_ID, ("5E9C-2AD4-B3E1", "Commitment v1: Cpu in Americas for 1 Year"),
                 1.364839, "us-central1"),
                (RAM_CUD_ID, ("8F1D-6C22-A0B7", "Commitment v1: Ram in Americas for 1 Year"),
                 0.182712, "us-central1"),
                ("2470112847553259999", ("7B3E-1F90-C4D2",
                                         "Commitment v1: Cpu in EMEA for 1 Year"),
                 0.5, "europe-west1")):
            fees.append(row(start=midnight, hours=24, sku=sku, cost=cost, cost_at_list=cost,
                            location=_loc(region), subscription=sub, project=None,
                            usage=(86400.0, "seconds", 24.0, "hour")))
        fees.append(row(start=midnight, hours=24, sku=(
            "0D4B-88A1-51E3", "Commitment - dollar based v1: Flexible CUD for Compute for 1 "
            "Year"), cost=2.0, cost_at_list=2.0, location=None, subscription=FLEX_CUD_ID,
            project=None, usage=(86400.0, "seconds", 24.0, "hour")))
        for hour in range(4):
            start = midnight + timedelta(hours=8 + hour)
            for vm, cost, credit_amount in (("web-1", 0.097118, -0.097118),
                                            ("web-2", 0.194236, -0.097118)):
                usage.append(row(start=start, sku=vm_core, cost=cost, cost_at_list=cost,
                                 resource=(vm, f"//compute.googleapis.com/projects/web-prod/"
                                               f"zones/us-central1-a/instances/{vm}"),
                                 location=central, credits=[credit(
                                     "COMMITTED_USAGE_DISCOUNT", credit_amount,
                                     "Committed Usage Discount: CPU", "CUD-CPU-1Y",
                                     "Committed use discount - 1 year CPU")]))
            usage.append(row(start=start, sku=vm_ram, cost=0.013018, cost_at_list=0.013018,
                             location=central, usage=(3600.0, "seconds", 4.0, "gibibyte hour"),
                             credits=[credit("COMMITTED_USAGE_DISCOUNT", -0.013018,
                                             "Committed Usage Discount: RAM", "CUD-RAM-1Y")]))
            for region in ("us-east1", "europe-west4"):
                usage.append(row(start=start, sku=("CP-7731", "E2 Instance Core running in "
                                                   "Americas"), cost=0.65, cost_at_list=0.65,
                                 location=_loc(region), credits=[credit(
                                     "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", -0.303333,
                                     "Committed use discount: dollar based", "FLEX-CUD")]))
            usage.append(row(start=start, sku=vm_core, cost=0.031642, location=central,
                             project=DATA))  # not covered
    usage.append(row(start=datetime(2026, 9, 20, 7, tzinfo=UTC), sku=vm_core, cost=-0.097118,
                     location=central, adjustment={
                         "id": "COR-3120", "description": "Usage correction for September",
                         "mode": "COMPLETE_NEGATION", "type": "USAGE_CORRECTION"},
                     credits=[credit("COMMITTED_USAGE_DISCOUNT", 0.097118,
                                     "Committed Usage Discount: CPU", "CUD-CPU-1Y")],
                     export_delay_h=24 * 20))
    return fees, usage


def generate_rows(count: int, *, seed: int = 7, month: str = "202610",
                  late_fraction: float = 0.02) -> list[dict[str, Any]]:
    """``count`` random, deterministic rows over the invoice ``month`` (plus late rows)."""
    rnd = random.Random(seed)
    year, mon = int(month[:4]), int(month[4:])
    base = datetime(year, mon, 1, 7, tzinfo=UTC)
    projects = [WEB, DATA]
    out = []
    for i in range(count):
        late = rnd.random() < late_fraction
        start = base + timedelta(hours=rnd.randrange(0, 24 * 28))
        cost = round(rnd.uniform(0, 3), 6)
        credits = []
        if rnd.random() < 0.4:
            credits.append(credit("SUSTAINED_USAGE_DISCOUNT", -round(cost * 0.2, 6),
                                  "Sustained Usage Discount", "SustainedUsageDiscount"))
        if rnd.random() < 0.2:
            credits.append(credit("FREE_TIER", -round(min(cost, 0.01), 6), "Free tier",
                                  "FreeTier"))
        kind = rnd.choices(["regular", "tax", "adjustment", "rounding_error"],
                           [0.95, 0.02, 0.02, 0.01])[0]
        account, currency, rate = ((EUR_ACCOUNT, "EUR", EUR_RATE) if i % 5 == 0 else
                                   (USD_ACCOUNT, "USD", 1.0))
        out.append(row(
            account=account, currency=currency, rate=rate, invoice=month,
            service=rnd.choice(["compute", "bigquery", "storage", "gke", "sql"]),
            project=projects[i % 2], start=start, cost=cost if kind != "adjustment" else -cost,
            cost_type=kind, credits=credits if kind == "regular" else [],
            cost_at_list=round(cost * 1.08, 6) if kind == "regular" else None,
            labels={"env": rnd.choice(["prod", "dev"]), "app": f"app-{i % 7}"},
            system_labels={"compute.googleapis.com/cores": str(2 ** (i % 4))},
            location=_loc("us-central1", "us-central1-a") if i % 3 else None,
            usage=(3600.0, "seconds", 1.0, "hour") if kind == "regular" else None,
            export_delay_h=48 if late else 5,
            adjustment=({"id": f"ADJ-{i}", "description": "Goodwill", "mode": "MANUAL_ADJUSTMENT",
                         "type": "GOODWILL"} if kind == "adjustment" else None)))
    return out


def _json_ready(record: dict[str, Any]) -> dict[str, Any]:
    """Price NUMERIC fields as strings, as BigQuery's JSON extract writes NUMERIC."""
    price = record.get("price")
    return record if not price else {**record, "price": {k: v for k, v in price.items()}}


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Newline-delimited JSON (gzip when the name ends in .gz), one export row per line."""
    path = Path(path)
    text = "".join(json.dumps(_json_ready(r), separators=(",", ":")) + "\n" for r in rows)
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _typed(path: str) -> pa.DataType | None:
    """The Arrow type BigQuery's Parquet extract gives a canonical (text) field."""
    if path in PRICE_FIELDS:
        return pa.decimal128(38, 9)
    if path in NUMERIC_PATHS:
        return pa.float64()
    if path in BOOLEAN_PATHS:
        return pa.bool_()
    if path in ("usage_start_time", "usage_end_time", "export_time"):
        return pa.timestamp("us", tz="UTC")
    return None


TYPED_SCHEMA = schema_with_leaf_types(_typed)


def _typed_value(value: Any, type_: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_struct(type_):
        return {f.name: _typed_value(value.get(f.name), f.type) for f in type_}
    if pa.types.is_list(type_):
        return [_typed_value(v, type_.value_type) for v in value]
    if pa.types.is_timestamp(type_):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    if pa.types.is_decimal(type_):
        return Decimal(str(value))
    return value


def typed_records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with BigQuery's value types (datetime, float, Decimal) instead of JSON text."""
    return [{f.name: _typed_value(r.get(f.name), f.type) for f in TYPED_SCHEMA} for r in rows]


def write_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Parquet as BigQuery extracts it: nested and repeated fields, FLOAT64 doubles."""
    table = pa.Table.from_pylist(typed_records(rows), schema=TYPED_SCHEMA)
    pq.write_table(table, path)
    return Path(path)


def avro_schema() -> dict[str, Any]:
    """The Avro schema of BigQuery's Avro extract of the export table."""
    counter = iter(range(10_000))

    def of(type_: pa.DataType, name: str) -> Any:
        if pa.types.is_struct(type_):
            return {"type": "record", "name": f"{name}_{next(counter)}",
                    "fields": [{"name": f.name, "type": ["null", of(f.type, f.name)],
                                "default": None} for f in type_]}
        if pa.types.is_list(type_):
            return {"type": "array", "items": of(type_.value_type, name)}
        if pa.types.is_timestamp(type_):
            return {"type": "long", "logicalType": "timestamp-micros"}
        if pa.types.is_decimal(type_):
            return {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 9}
        return {pa.float64(): "double", pa.bool_(): "boolean"}.get(type_, "string")

    fields = []
    for f in TYPED_SCHEMA:
        avro_type = of(f.type, f.name)
        if pa.types.is_list(f.type):  # REPEATED fields are plain arrays in BigQuery's Avro
            fields.append({"name": f.name, "type": avro_type})
        else:
            fields.append({"name": f.name, "type": ["null", avro_type], "default": None})
    return {"type": "record", "name": "Root", "fields": fields}


def write_avro(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Avro as BigQuery extracts it (nullable unions, timestamp-micros, decimal NUMERIC)."""
    import fastavro

    schema = fastavro.parse_schema(avro_schema())
    with open(path, "wb") as f:
        fastavro.writer(f, schema, typed_records(rows), codec="deflate")
    return Path(path)


def truth(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """Exact SUM(cost) + SUM(credits.amount) per (billing account, invoice month), from the
    numbers' JSON text (the shortest round-trip text of each FLOAT64)."""
    out: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        key = (r["billing_account_id"], r["invoice"]["month"])
        amount = Decimal(repr(r["cost"])) + sum(
            (Decimal(repr(c["amount"])) for c in r["credits"]), Decimal(0))
        out[key] = out.get(key, Decimal(0)) + amount
    return out
