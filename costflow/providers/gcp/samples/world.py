"""The world a bulk GCP billing export is drawn from: accounts, projects, resources, SKUs.

Why this module exists: `costflow.providers.gcp.samples.bulk` writes millions of export rows
without per-row Python, so every nested value that does not change from row to row (a project
with its labels and ancestors, a VM's resource names, labels, system labels and tags, a SKU, a
location, a price, a commitment) lives once here, in a small Arrow *catalog* typed exactly like
the export's own field (`costflow.providers.gcp.samples.billing.TYPED_SCHEMA`), and rows pick
positions in it. Each catalog ends with a null entry (or an empty list for REPEATED fields), so
"none" is a
position too.

Two billing accounts, as in `costflow.providers.gcp.samples.billing`: a USD account in the Americas
(``us-central1``, ``us-east1``, the ``US`` multi-region) with resource-based committed use
discounts, and a EUR account in Frankfurt/Belgium with a spend-based (flex) CUD consumption
model. SKU names, units and list prices follow Google's public price list and the detailed
export schema [../shared/reference/provider_formats.md §1.2]; IDs are made up in Google's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from costflow.providers.gcp.samples.billing import (
    DATA,
    EU_APP,
    EUR_ACCOUNT,
    EUR_RATE,
    SERVICES,
    TYPED_SCHEMA,
    USD_ACCOUNT,
    WEB,
)

PACIFIC = ZoneInfo("America/Los_Angeles")  # Google's billing days and months [PF §1.3]
GIB = 2**30
ACCOUNTS = ((USD_ACCOUNT, "USD", 1.0), (EUR_ACCOUNT, "EUR", EUR_RATE))
ACCOUNT_SHARE = (0.8, 0.2)  # share of the random rows per account
ORG = "583041925877"
# Services the export names beyond those of `gcp_billing.SERVICES` (ids from the mapping table
# costflow/providers/gcp/mappings/gcp_services.csv).
EXTRA_SERVICES = {"networking": ("E505-1604-58F8", "Networking"),
                  "logging": ("5490-F7B7-8DF6", "Cloud Logging")}
CREDIT_TYPES = ("COMMITTED_USAGE_DISCOUNT", "FEE_UTILIZATION_OFFSET", "SUSTAINED_USAGE_DISCOUNT",
                "DISCOUNT", "FREE_TIER", "PROMOTION")
COST_TYPES = ("regular", "tax", "adjustment", "rounding_error")


def _type(path: str) -> pa.DataType:
    """The export's own Arrow type of a (dotted) field."""
    head, *rest = path.split(".")
    t = TYPED_SCHEMA.field(head).type
    for name in rest:
        t = t.value_type if pa.types.is_list(t) else t
        t = t.field(name).type
    return t


def _catalog(path: str, values: list) -> pa.Array:
    return pa.array(values, _type(path))


def _kv(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def _project(pid: str, number: str, folder: tuple[str, str], labels: dict[str, str]) -> dict:
    """A project record as the export nests it (ancestors ordered node -> root)."""
    return {"id": pid, "number": number, "name": pid.replace("-", " ").title(),
            "labels": _kv(labels), "ancestry_numbers": f"/{ORG}/{folder[0]}/",
            "ancestors": [{"resource_name": f"projects/{number}", "display_name": pid},
                          {"resource_name": f"folders/{folder[0]}", "display_name": folder[1]},
                          {"resource_name": f"organizations/{ORG}",
                           "display_name": "example.com"}]}


# (account index, project record); the first project of each account is its main one.
PROJECTS = (
    (0, WEB), (0, DATA),
    (0, _project("ml-training", "559120834471", ("261046257137", "production"),
                 {"team": "ml", "env": "prod", "cost-center": "cc-5120"})),
    (0, _project("web-staging", "730662148205", ("884120553390", "staging"),
                 {"team": "web", "env": "staging"})),
    (1, EU_APP),
    (1, _project("eu-shop-staging", "264410987332", ("884120553390", "staging"),
                 {"team": "shop", "env": "staging"})),
)
# name -> (location, country, region, zone); zones and regions of the two accounts.
LOCATIONS: dict[str, tuple[str, str | None, str | None, str | None]] = {
    **{z: (z, "US", z[:-2], z) for z in ("us-central1-a", "us-central1-b", "us-central1-c",
                                          "us-east1-b", "us-east1-c")},
    **{z: (z, "DE", z[:-2], z) for z in ("europe-west3-a", "europe-west3-b")},
    "europe-west1-b": ("europe-west1-b", "BE", "europe-west1", "europe-west1-b"),
    "us-central1": ("us-central1", "US", "us-central1", None),
    "us-east1": ("us-east1", "US", "us-east1", None),
    "europe-west3": ("europe-west3", "DE", "europe-west3", None),
    "US": ("US", None, None, None),  # multi-regions have no country or region
    "EU": ("EU", None, None, None),
    "global": ("global", None, None, None),
}
LOCATION_NAMES = tuple(LOCATIONS)
ZONES = {0: ("us-central1-a", "us-central1-b", "us-central1-c", "us-east1-b", "us-east1-c"),
         1: ("europe-west3-a", "europe-west3-b", "europe-west1-b")}


@dataclass(frozen=True)
class Sku:
    """One SKU template: what a usage row of it looks like and costs.

    ``size`` names the resource attribute usage scales with (``cores``, ``ram``, ``disk``,
    ``bucket``, ``one``) for hourly *rate* SKUs; ``count`` SKUs draw a log-uniform count in
    ``count_range`` instead. ``conv`` base units make one pricing unit.
    """

    account: int
    service: str
    sku_id: str
    description: str
    kind: str | None  # resource kind the SKU is used by (None: no resource)
    unit: str
    pricing_unit: str
    conv: int
    price: str  # effective price per pricing unit (NUMERIC text)
    list_price: str
    weight: float
    size: str | None = None
    count_range: tuple[float, float] = (1, 1)
    location: str | None = None  # location of resource-less rows
    credits: tuple[float, ...] = (0, 0, 0.0, 0.2, 0.0, 0.05)  # P(credit) per CREDIT_TYPES
    cud: int = -1  # 0: vCPU commitment, 1: RAM commitment
    daily: bool = False
    reseller: bool = False


H, GH, GM = 3600, GIB * 3600, GIB * 730 * 3600  # hour, GiB-hour, GiB-month (730 h)
SUD = (0, 0, 0.6, 0.25, 0.05, 0.1)
SKUS = (
    Sku(0, "compute", "2E27-4F75-95CD", "N2 Instance Core running in Americas", "vm-n2",
        "seconds", "hour", H, "0.030030", "0.031611", 14, "cores", credits=SUD, cud=0),
    Sku(0, "compute", "F449-33EC-A5EF", "N2 Instance Ram running in Americas", "vm-n2",
        "byte-seconds", "gibibyte hour", GH, "0.004025", "0.004237", 14, "ram", credits=SUD,
        cud=1),
    Sku(0, "compute", "CF4E-A0C7-E3BF", "E2 Instance Core running in Americas", "vm-e2",
        "seconds", "hour", H, "0.021811", "0.021811", 7, "cores"),
    Sku(0, "compute", "F268-6CBF-3A1A", "E2 Instance Ram running in Americas", "vm-e2",
        "byte-seconds", "gibibyte hour", GH, "0.002923", "0.002923", 7, "ram"),
    Sku(0, "compute", "2F4B-8A9C-1D7E", "Spot Preemptible N2 Instance Core running in Americas",
        "vm-n2", "seconds", "hour", H, "0.00765", "0.00765", 3, "cores"),
    Sku(0, "compute", "D973-5D65-BAB2", "Storage PD Capacity", "vm", "byte-seconds",
        "gibibyte month", GM, "0.04", "0.04", 7, "disk"),
    Sku(0, "compute", "9DE9-9092-B3BC", "Network Inter Region Data Transfer Out from Americas "
        "to Americas", "vm", "bytes", "gibibyte", GIB, "0.01", "0.01", 4,
        count_range=(1e5, 4e10)),
    Sku(0, "gke", "B561-BFBD-1264", "Regional Kubernetes Clusters", "gke", "seconds", "hour",
        H, "0.1", "0.1", 3, "one", credits=(0, 0, 0, 0.2, 0.5, 0)),
    Sku(0, "bigquery", "3362-E469-6BEE", "Analysis", None, "bytes", "tebibyte", 2**40, "6.25",
        "6.25", 5, count_range=(1e7, 2e12), location="US", credits=(0, 0, 0, 0.3, 0.1, 0.15)),
    Sku(0, "bigquery", "A0AB-A0C0-D3F2", "Active Logical Storage", None, "byte-seconds",
        "gibibyte month", GM, "0.02", "0.02", 3, count_range=(GIB * H, 2000 * GIB * H),
        location="US"),
    Sku(0, "storage", "E5F0-6A5B-F7EF", "Standard Storage US Multi-region", "bucket",
        "byte-seconds", "gibibyte month", GM, "0.026", "0.026", 6, "bucket"),
    Sku(0, "storage", "D9C8-9A6E-11A1", "Multi-Region Standard Class A Operations", "bucket",
        "requests", "10 thousand requests", 10_000, "0.1", "0.1", 4, count_range=(1, 2e5),
        credits=(0, 0, 0, 0.2, 0.3, 0.05)),
    Sku(0, "sql", "CF0D-1B2C-3A4E", "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas", "sql",
        "seconds", "hour", H, "0.0413", "0.0413", 4, "cores"),
    Sku(0, "sql", "7A1E-55B2-0C9D", "Cloud SQL for PostgreSQL: Zonal - RAM in Americas", "sql",
        "byte-seconds", "gibibyte hour", GH, "0.007", "0.007", 4, "ram"),
    Sku(0, "networking", "C3B2-7A10-1F55", "Cloud NAT Gateway Uptime charge", None, "seconds",
        "hour", H, "0.0014", "0.0014", 2, "one", location="us-central1"),
    Sku(0, "logging", "143F-A1B0-E0BE", "Log Storage cost", None, "bytes", "gibibyte", GIB,
        "0.5", "0.5", 2, count_range=(1e4, 5e9), location="global",
        credits=(0, 0, 0, 0.2, 0.6, 0)),
    Sku(0, "marketplace", "0F2A-77C1-8811", "Standard plan", None, "seconds", "hour", H,
        "0.25", "0.25", 0.05, "one", credits=(0, 0, 0, 0, 0, 0), daily=True, reseller=True),
    Sku(1, "compute", "6B8F-E63D-832B", "N2 Instance Core running in Frankfurt", "vm-n2",
        "seconds", "hour", H, "0.035612", "0.035612", 14, "cores", credits=SUD),
    Sku(1, "compute", "4E9C-9B6E-5D63", "N2 Instance Ram running in Frankfurt", "vm-n2",
        "byte-seconds", "gibibyte hour", GH, "0.004773", "0.004773", 14, "ram", credits=SUD),
    Sku(1, "sql", "0E2F-7D47-8F5A", "Cloud SQL for PostgreSQL: Zonal - vCPU in Frankfurt",
        "sql", "seconds", "hour", H, "0.046154", "0.050062", 6, "cores",
        credits=(0, 0.6, 0, 0.3, 0, 0)),
    Sku(1, "storage", "A7C4-1E3B-92D0", "Standard Storage Frankfurt", "bucket",
        "byte-seconds", "gibibyte month", GM, "0.0212", "0.0212", 5, "bucket"),
    Sku(1, "bigquery", "3362-E469-6BEE", "Analysis", None, "bytes", "tebibyte", 2**40,
        "5.761463", "5.761463", 3, count_range=(1e7, 1e12), location="EU",
        credits=(0, 0, 0, 0.3, 0.1, 0)),
)
# Resource-based CUD: per USD region a vCPU and a RAM commitment; (sku id, description,
# committed quantity per hour, 1-year commitment price per pricing unit).
CUD_REGIONS = ("us-central1", "us-east1")
CUD_FEES = (("5E9C-2AD4-B3E1", "Commitment v1: Cpu in Americas for 1 Year", 48, "0.018915",
             "seconds", "hour", H),
            ("6A0D-3BE5-C4F2", "Commitment v1: Ram in Americas for 1 Year", 192, "0.002535",
             "byte-seconds", "gibibyte hour", GH))
FLEX_CUD = {"id": "D97B-0795-975B", "description": "Compute Flexible CUD Consumption Model",
            "applied_subscription_instance_id": "a8f1c2d3-flex-cud-eu"}
# Special SKUs of rows that are not usage; the same as `gcp_billing.fixture_rows` uses.
TAX_SKUS = (("1A2B-TAX0-0001", "Sales tax"), ("VAT-DE-0001", "VAT"))
ROUNDING_SKU = ("ROUND-000", "Rounding error")
SUPPORT = ((0, "B1E1-2A3C-44F1", "Enhanced Support", 500), (1, "B1E1-2A3C-44F2",
                                                            "Standard Support", 29))
# adjustment_info events: (id, description, mode, type, of the previous month?, sign).
ADJUSTMENTS = (
    ("COR-USG-1", "Usage correction", "COMPLETE_NEGATION_WITH_REMONETIZATION",
     "USAGE_CORRECTION", True, -1),
    ("COR-USG-1", "Usage correction", "COMPLETE_NEGATION_WITH_REMONETIZATION",
     "USAGE_CORRECTION", True, 1),
    ("COR-PRC-2", "Price correction", "PARTIAL_CORRECTION", "PRICE_CORRECTION", True, -1),
    ("ADJ-GW-3", "Goodwill credit", "MANUAL_ADJUSTMENT", "GOODWILL", False, -1),
    ("ADJ-SLA-4", "SLA violation credit", "MANUAL_ADJUSTMENT", "SLA_VIOLATION", False, -1),
)


def month_hours(month: str) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Hourly UTC instants from the start of the previous (US/Pacific) invoice month to the
    end of the next one, as epoch microseconds; the indices of ``month``'s first hour and of
    the next month's first hour; and the index of every Pacific midnight (day boundaries)."""
    year, mon = int(month[:4]), int(month[4:])

    def first(y: int, m: int) -> datetime:
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
        return datetime(y, m, 1, tzinfo=PACIFIC).astimezone(UTC)

    begin, start, end, stop = (first(year, mon + k) for k in (-1, 0, 1, 2))
    count = int((stop - begin) / timedelta(hours=1))
    hours = int(begin.timestamp()) * 10**6 + np.arange(count, dtype=np.int64) * 3600 * 10**6
    days, day = [], begin
    while day < stop:
        days.append(int((day - begin) / timedelta(hours=1)))
        local = day.astimezone(PACIFIC)
        # Aware-datetime arithmetic is wall-clock time: the next Pacific midnight.
        day = (datetime(local.year, local.month, local.day, tzinfo=PACIFIC)
               + timedelta(days=1)).astimezone(UTC)
    days.append(count)
    h0, h1 = (int((t - begin) / timedelta(hours=1)) for t in (start, end))
    return hours, h0, h1, np.array(days, np.int64)


@dataclass(frozen=True)
class Resources:
    """Resource rows of the world (one per VM, bucket, Cloud SQL instance or GKE cluster)."""

    account: np.ndarray
    kind: np.ndarray  # object array of kind names
    project: np.ndarray  # index into PROJECTS
    location: np.ndarray  # index into LOCATION_NAMES
    size: dict[str, np.ndarray]  # attribute -> per-resource size (cores, GiB, ...)
    records: list[dict]  # {"name", "global_name"}
    labels: list[dict[str, str]]
    system_labels: list[dict[str, str]]
    tags: list[list[dict]]


def _resources(rng: np.random.Generator) -> Resources:
    """VMs, buckets, Cloud SQL instances and GKE clusters of both accounts, deterministic."""
    rows: list[tuple] = []
    apps = ("checkout", "search", "catalog", "etl", "api", "trainer")
    for account, counts in ((0, {"vm": 48, "bucket": 8, "sql": 4, "gke": 2}),
                            (1, {"vm": 16, "bucket": 4, "sql": 3})):
        projects = [i for i, (a, _) in enumerate(PROJECTS) if a == account]
        for kind, count in counts.items():
            for n in range(count):
                p = projects[int(rng.integers(len(projects)))]
                rows.append((account, kind, p, n, apps[int(rng.integers(len(apps)))]))
    out = Resources(np.array([r[0] for r in rows]), np.array([r[1] for r in rows], object),
                    np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64),
                    {k: np.ones(len(rows), np.int64) for k in ("cores", "ram", "disk",
                                                               "bucket", "one")},
                    [], [], [], [])
    kinds = out.kind
    for i, (account, kind, p, n, app) in enumerate(rows):
        project = PROJECTS[p][1]
        pid, env = project["id"], next((kv["value"] for kv in project["labels"]
                                        if kv["key"] == "env"), "prod")
        out.project[i] = p
        labels = {"app": app, "env": env}
        system: dict[str, str] = {}
        tags: list[dict] = []
        if rng.random() < 0.5:
            tags.append({"key": "env", "value": env, "inherited": True, "namespace": ORG})
        if kind == "vm":
            zone = ZONES[account][int(rng.integers(len(ZONES[account])))]
            cores = int(rng.choice([2, 4, 8, 16]))
            family = "e2" if account == 0 and rng.random() < 0.3 else "n2"
            gke = account == 0 and n < 12
            name = (f"gke-prod-default-pool-{rng.integers(16**8):08x}-{rng.integers(16**4):04x}"
                    if gke else f"{app}-{n}")
            if gke:
                labels.update({"goog-k8s-cluster-name": "prod", "goog-k8s-node-pool-name":
                               "default-pool"})
            instance = int(rng.integers(10**18, 9 * 10**18))
            record = {"name": name, "global_name": f"//compute.googleapis.com/projects/{pid}/"
                      f"zones/{zone}/instances/{instance}"}
            out.size["cores"][i], out.size["ram"][i] = cores, cores * 4
            out.size["disk"][i] = int(rng.choice([10, 50, 100, 200, 500]))
            system = {"compute.googleapis.com/machine_spec": f"{family}-standard-{cores}",
                      "compute.googleapis.com/cores": str(cores),
                      "compute.googleapis.com/memory": str(cores * 4096)}
            location = zone
            kinds[i] = f"vm-{family}"
        elif kind == "bucket":
            name = f"{pid}-{app}-{n}"
            record = {"name": name,
                      "global_name": f"//storage.googleapis.com/projects/_/buckets/{name}"}
            out.size["bucket"][i] = int(rng.integers(1, 1500))
            location = "US" if account == 0 else "europe-west3"
            system = {"storage.googleapis.com/object_state": "LIVE"}
        elif kind == "sql":
            zone = ZONES[account][int(rng.integers(len(ZONES[account])))]
            name = f"{app}-db-{n}"
            record = {"name": name, "global_name": f"//cloudsql.googleapis.com/projects/{pid}/"
                      f"instances/{name}"}
            cores = int(rng.choice([2, 4, 8]))
            out.size["cores"][i], out.size["ram"][i] = cores, cores * 4
            location = zone
        else:  # gke: regional clusters
            location = CUD_REGIONS[n % 2]
            name = ("prod", "batch")[n % 2]
            record = {"name": name, "global_name": f"//container.googleapis.com/projects/{pid}/"
                      f"locations/{location}/clusters/{name}"}
        if account == 0 and rng.random() < 0.3:
            tags.append({"key": "cost-center", "value": f"cc-{4400 + n % 5}",
                         "inherited": False, "namespace": project["number"]})
        out.location[i] = LOCATION_NAMES.index(location)
        out.records.append(record)
        out.labels.append(labels)
        out.system_labels.append(system)
        out.tags.append(tags)
    return out


@dataclass(frozen=True)
class World:
    """Catalogs (Arrow, typed like the export's fields; last entry null/empty) and the
    per-SKU and per-resource numbers rows are drawn with."""

    month: str
    next_month: str
    hours: pa.Array  # usage_start/end catalog: hourly instants (timestamp us UTC)
    hours_us: np.ndarray
    h0: int  # first hour of the invoice month
    h1: int  # first hour of the next month
    days: np.ndarray  # hour index of every Pacific midnight
    accounts: pa.Array
    currencies: pa.Array
    rates: pa.Array
    services: pa.Array
    skus: pa.Array
    projects: pa.Array
    locations: pa.Array
    resources: pa.Array
    labels: pa.Array
    system_labels: pa.Array
    tags: pa.Array
    prices: pa.Array
    subscriptions: pa.Array
    units: pa.Array
    transaction_types: pa.Array
    sellers: pa.Array
    invoices: pa.Array
    cost_types: pa.Array
    adjustments: pa.Array
    consumption_models: pa.Array
    credit_names: pa.Array
    credit_full_names: pa.Array
    credit_ids: pa.Array
    credit_types: pa.Array
    res: Resources
    sku: dict[str, np.ndarray]  # per SKU template: account, service, unit, conv, price, ...
    pool: np.ndarray  # resource indices, grouped per SKU template
    pool_start: np.ndarray
    pool_size: np.ndarray
    account_projects: list[np.ndarray]
    commitments: list[tuple[int, int, str]]  # (region index, cud kind, instance id)
    special_skus: dict[str, int]  # position in `skus` of fee, tax, rounding and support SKUs
    adjustment_rules: np.ndarray  # per ADJUSTMENTS: previous month?, sign


def _next(month: str, step: int = 1) -> str:
    y, m = int(month[:4]), int(month[4:]) - 1 + step
    return f"{y + m // 12}{m % 12 + 1:02d}"


def build_world(seed: int, month: str) -> World:
    """The deterministic world of ``seed`` for invoice ``month`` ('YYYYMM')."""
    if not (len(month) == 6 and month.isdigit() and 1 <= int(month[4:]) <= 12):
        raise ValueError(f"month must be YYYYMM, got {month!r}")
    rng = np.random.default_rng([seed, 0x6C0D])
    res = _resources(rng)
    hours_us, h0, h1, days = month_hours(month)
    services = {**SERVICES, **EXTRA_SERVICES}
    service_keys = list(services)
    units = sorted({u for s in SKUS for u in (s.unit, s.pricing_unit)}
                   | {u for f in CUD_FEES for u in f[4:6]})
    commitments = [(r, k, str(int(rng.integers(10**18, 9 * 10**18))))
                   for r in range(len(CUD_REGIONS)) for k in range(len(CUD_FEES))]
    sku_records = [{"id": s.sku_id, "description": s.description} for s in SKUS]
    special: dict[str, int] = {}
    for k, fee in enumerate(CUD_FEES):
        special[f"fee{k}"] = len(sku_records)
        sku_records.append({"id": fee[0], "description": fee[1]})
    for a, (sid, desc) in enumerate(TAX_SKUS):
        special[f"tax{a}"] = len(sku_records)
        sku_records.append({"id": sid, "description": desc})
    special["rounding"] = len(sku_records)
    sku_records.append({"id": ROUNDING_SKU[0], "description": ROUNDING_SKU[1]})
    for a, sid, desc, _ in SUPPORT:
        special[f"support{a}"] = len(sku_records)
        sku_records.append({"id": sid, "description": desc})

    def price(effective: str, listed: str, unit: str) -> dict:
        eff, lst = Decimal(effective), Decimal(listed)
        return {"effective_price": eff, "tier_start_amount": Decimal(0), "unit": unit,
                "pricing_unit_quantity": Decimal(1), "list_price": lst,
                "effective_price_default": eff, "list_price_consumption_model": lst}

    prices = [price(s.price, s.list_price, s.pricing_unit) for s in SKUS]
    prices += [price(f[3], f[3], f[5]) for f in CUD_FEES]
    kinds = res.kind
    pool: list[int] = []
    starts, sizes = [], []
    for s in SKUS:
        # "vm" SKUs (disks, egress) go with any VM, "vm-n2" ones with N2 VMs only.
        fits = np.array([s.kind is not None and k.startswith(s.kind) for k in kinds])
        members = np.flatnonzero((res.account == s.account) & fits)
        starts.append(len(pool))
        sizes.append(len(members))
        pool.extend(members.tolist())
    prev_name = datetime(int(_next(month, -1)[:4]), int(_next(month, -1)[4:]), 1)
    suffix = f" for {prev_name:%B %Y}"
    web_number = WEB["number"]
    # Credit catalog entries (name, full_name, id, type): one per commitment, then fee offset,
    # sustained use, each account's spending-based discount, free tier, promotion.
    credit_rows: list[tuple[str, str | None, str, str]] = [
        ("Committed Usage Discount: " + ("CPU", "RAM")[k],
         "Committed use discount - 1 year " + ("CPU", "RAM")[k],
         f"projects/{web_number}/regions/{CUD_REGIONS[r]}/commitments/{iid}", CREDIT_TYPES[0])
        for r, k, iid in commitments]
    credit_rows += [("Flex CUD fee offset", None, "FeeUtilizationOffset", CREDIT_TYPES[1]),
                    ("Sustained Usage Discount", None, "SustainedUsageDiscount",
                     CREDIT_TYPES[2]),
                    ("Spending based discount", None, "SBD-1", CREDIT_TYPES[3]),
                    ("Spending based discount", None, "SBD-EU", CREDIT_TYPES[3]),
                    ("Free tier", None, "FreeTier", CREDIT_TYPES[4]),
                    ("Google for Startups Cloud Program credit", None, "PROMO-STARTUP-2026",
                     CREDIT_TYPES[5])]
    locations = [dict(zip(("location", "country", "region", "zone"), v, strict=True))
                 for v in LOCATIONS.values()]
    sku_table = {
        "account": np.array([s.account for s in SKUS]),
        "service": np.array([service_keys.index(s.service) for s in SKUS]),
        "unit": np.array([units.index(s.unit) for s in SKUS]),
        "pricing_unit": np.array([units.index(s.pricing_unit) for s in SKUS]),
        "conv": np.array([s.conv for s in SKUS], np.float64),
        "price": np.array([float(s.price) for s in SKUS]),
        "list_price": np.array([float(s.list_price) for s in SKUS]),
        "weight": np.array([s.weight for s in SKUS]),
        "byte_unit": np.array([s.unit.startswith("byte-") for s in SKUS]),
        "size": np.array([s.size or "" for s in SKUS], object),
        "count_lo": np.log(np.array([s.count_range[0] for s in SKUS])),
        "count_hi": np.log(np.array([s.count_range[1] for s in SKUS])),
        "credits": np.array([s.credits for s in SKUS]),
        "cud": np.array([s.cud for s in SKUS]),
        "daily": np.array([s.daily for s in SKUS]),
        "reseller": np.array([s.reseller for s in SKUS]),
        "location": np.array([LOCATION_NAMES.index(s.location) if s.location
                              else len(LOCATION_NAMES) for s in SKUS]),
    }
    return World(
        month=month, next_month=_next(month), h0=h0, h1=h1, days=days, hours_us=hours_us,
        hours=pa.array(hours_us, pa.int64()).cast(_type("usage_start_time")),
        accounts=pa.array([a[0] for a in ACCOUNTS]),
        currencies=pa.array([a[1] for a in ACCOUNTS]),
        rates=pa.array([a[2] for a in ACCOUNTS], pa.float64()),
        services=_catalog("service", [{"id": services[k][0], "description": services[k][1]}
                                      for k in service_keys]),
        skus=_catalog("sku", sku_records),
        projects=_catalog("project", [p for _, p in PROJECTS] + [None]),
        locations=_catalog("location", locations + [None]),
        resources=_catalog("resource", res.records + [None]),
        prices=_catalog("price", prices + [None]),
        labels=_catalog("labels", [_kv(x) for x in res.labels] + [[]]),
        system_labels=_catalog("system_labels", [_kv(x) for x in res.system_labels] + [[]]),
        tags=_catalog("tags", res.tags + [[]]),
        subscriptions=_catalog("subscription", [{"instance_id": c[2]} for c in commitments]
                               + [None]),
        units=pa.array(units),
        transaction_types=pa.array(["GOOGLE", "THIRD_PARTY_RESELLER", None]),
        sellers=pa.array(["Elasticsearch B.V.", None]),
        invoices=_catalog("invoice", [{"month": month, "publisher_type": "GOOGLE"},
                                      {"month": _next(month), "publisher_type": "GOOGLE"}]),
        cost_types=pa.array(COST_TYPES),
        adjustments=_catalog("adjustment_info", [
            {"id": f"{a[0]}-{month}", "description": a[1] + (suffix if a[4] else ""),
             "mode": a[2], "type": a[3]} for a in ADJUSTMENTS] + [None]),
        consumption_models=_catalog("consumption_model", [FLEX_CUD, None]),
        credit_names=pa.array([c[0] for c in credit_rows]),
        credit_full_names=pa.array([c[1] for c in credit_rows], pa.string()),
        credit_ids=pa.array([c[2] for c in credit_rows]),
        credit_types=pa.array([c[3] for c in credit_rows]),
        res=res, sku=sku_table, pool=np.array(pool, np.int64),
        pool_start=np.array(starts), pool_size=np.array(sizes),
        account_projects=[np.array([i for i, (a, _) in enumerate(PROJECTS) if a == acct])
                          for acct in range(len(ACCOUNTS))],
        commitments=commitments, special_skus=special,
        adjustment_rules=np.array([(a[4], a[5]) for a in ADJUSTMENTS], np.int64),
    )
