"""The seeded organisation a synthetic CUR bills: accounts, resources, tags and commitments.

Everything here depends on the seed only (and on the first month generated, for the purchase date
of one reservation), never on the month being written, so a multi-month delivery describes the
same accounts, the same instances with the same tags, and the same Reserved Instances and Savings
Plans month after month, as a real payer's reports do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from costflow.providers.aws.samples.cur_catalog import REGIONS, TAG_COLUMNS, Catalog
from costflow.samples.csv_text import csv_escape

POOL = 32  # resources per (account, template); a row's resource is one of them
_POOL_SIZE = {"i": 24, "vol": 24, "snap": 16, "nat": 2, "eip": 4, "bucket": 6, "rds": 3,
              "lambda": 12, "logs": 10, "ddb": 4, "eks": 2, "ecs": 16, "sqs": 6, "sns": 3,
              "kms": 4, "secret": 6, "r53": 2, "glue": 2, "": 1}
_NAMES = ("orders", "billing", "search", "checkout", "ingest", "reports", "auth", "catalog",
          "ml-features", "web-assets", "analytics-raw", "backups")
_CORE = {"AmazonEC2", "AmazonVPC", "AmazonS3", "AmazonCloudWatch", "awskms"}
_PAYER_CODES = {"AmazonS3", "AmazonCloudWatch", "awskms", "AmazonRoute53"}
# Tag values: some need CSV quoting (comma, quote) and some are not ASCII, as real tags are.
_ENVIRONMENTS = ("prod", "staging", "dev", "sandbox")
_TEAMS = ("platform", "data-eng", "payments", 'Data "Lake" Ops', "Équipe Données",
          "データ基盤", "growth, web", "sre")
_COST_CENTERS = ("CC-1042", "CC-2210", "CC-3307, Shared Services", "CC-4410", "KST-Zürich-07")
_CREATORS = ("IAMUser:AIDAQ7EXAMPLE3XKZ:terraform", "AssumedRole:AROAQ7EXAMPLEM4N2:ci-deploy",
             "AssumedRole:AROAQ7EXAMPLEK9P1:alice@example.com")


def stable_hex(*parts: object, size: int = 8) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=size).hexdigest()


@dataclass(frozen=True)
class Reservation:
    """A Reserved Instance (or RDS reserved DB instance) bought by the payer.

    ``amortized`` and ``recurring`` are per reserved hour, in 1e-12 USD: every DiscountedUsage
    hour costs ``amortized + recurring`` (reservation/EffectiveCost).
    """

    arn: str
    template: int
    amortized: int
    recurring: int
    purchase_option: str
    utilization: float  # target share of reserved hours used; sizes NumberOfReservations
    start: datetime
    end: datetime
    share: float        # share of DiscountedUsage rows


@dataclass(frozen=True)
class SavingsPlan:
    """A Savings Plan of the payer; ``rate`` is the per-template SP rate in 1e-12 USD (0 = none)."""

    arn: str
    offering_type: str
    payment_option: str
    upfront_share: int  # percent of the hourly commitment paid upfront (amortized)
    usage_type: str
    description: str
    rate: np.ndarray
    start: datetime
    end: datetime


@dataclass(frozen=True)
class World:
    """Accounts, per-account usage weights, resource pools and commitments of one seed.

    Pools are laid out as ``(account * n_templates + template) * POOL + k``.
    """

    payer: str
    accounts: tuple[str, ...]
    weights: np.ndarray            # (accounts, templates) usage weight, 0 = never used
    pool_size: np.ndarray          # per template, resources in use (<= POOL)
    resource_ids: pa.Array
    zones: pa.Array
    tags: dict[str, pa.Array]
    subscriptions: pa.Array        # (account * n_codes + code) -> reservation/SubscriptionId
    tax_pairs: tuple[tuple[int, int], ...]
    reservations: tuple[Reservation, ...]
    savings_plans: tuple[SavingsPlan, ...]


def _resource_id(kind: str, account: str, region: str, name: str, h: str) -> str:
    arn = f"arn:aws:{{}}:{region}:{account}:"
    return {
        "i": f"i-0{h[:16]}", "vol": f"vol-0{h[:16]}", "bucket": f"{name}-{account[-4:]}",
        "snap": arn.format("ec2") + f"snapshot/snap-0{h[:16]}",
        "nat": arn.format("ec2") + f"natgateway/nat-0{h[:16]}",
        "eip": arn.format("ec2") + f"elastic-ip/eipalloc-0{h[:16]}",
        "rds": arn.format("rds") + f"db:{name}-db", "lambda": arn.format("lambda") +
        f"function:{name}-handler", "logs": arn.format("logs") + f"log-group:/aws/lambda/{name}",
        "ddb": arn.format("dynamodb") + f"table/{name}", "eks": arn.format("eks") +
        f"cluster/{name}", "ecs": arn.format("ecs") + f"task/{name}/{h[:32]}",
        "sqs": arn.format("sqs") + f"{name}-queue", "sns": arn.format("sns") + f"{name}-events",
        "kms": arn.format("kms") + f"key/{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
        "secret": arn.format("secretsmanager") + f"secret:{name}/db-{h[:6]}",
        "r53": f"arn:aws:route53:::hostedzone/Z0{h[:18].upper()}",
        "glue": arn.format("glue") + f"crawler/{name}-crawler",
    }[kind]


def build_world(catalog: Catalog, *, seed: int, payer: str, linked_accounts: int,
                anchor: datetime) -> World:
    """Draw the organisation for ``seed``.

    Args:
        catalog: the product templates.
        seed: random seed; the same seed always gives the same world.
        payer: payer (management) account id.
        linked_accounts: number of member accounts besides the payer.
        anchor: start of the first billing month generated; one reservation is bought then.
    """
    rng = np.random.default_rng([seed, 1])
    n_t = len(catalog)
    linked = [str(x) for x in rng.choice(9 * 10**11, linked_accounts, replace=False) + 10**11]
    accounts = (payer, *linked)
    share = np.concatenate([[0.04], rng.dirichlet(np.full(linked_accounts, 2.0)) * 0.96])
    weights = np.zeros((len(accounts), n_t))
    region_code = [REGIONS[r][0] if r >= 0 else "" for r in catalog.region]
    for a in range(len(accounts)):
        if a == 0:
            codes, regions = _PAYER_CODES, {"us-east-1", ""}
        elif a == 1:  # the main production account uses everything everywhere
            codes, regions = set(catalog.codes), {r[0] for r in REGIONS} | {""}
        else:
            codes = _CORE | {c for c in catalog.codes if rng.random() < 0.6}
            regions = {"", str(rng.choice([r[0] for r in REGIONS], p=[r[3] for r in REGIONS]))}
            regions |= {r[0] for r in REGIONS if rng.random() < 0.35}
        allowed = np.array([catalog.codes[c] in codes and region_code[t] in regions
                            for t, c in enumerate(catalog.code)])
        weights[a] = allowed * catalog.weight * share[a]

    pool_size = np.array([_POOL_SIZE[k] for k in catalog.resource], dtype=np.int64)
    ids, zones = [], []
    for a, account in enumerate(accounts):
        for t in range(n_t):
            kind, region = catalog.resource[t], region_code[t] or "us-east-1"
            for k in range(POOL):
                if not kind or weights[a, t] == 0 or k >= pool_size[t]:
                    ids.append("")
                    zones.append("")
                    continue
                h = stable_hex(seed, account, t, k, size=16)
                name = _NAMES[(int(h[:4], 16) + k) % len(_NAMES)]
                ids.append(csv_escape(_resource_id(kind, account, region, name, h)))
                zones.append(region + "abc"[k % 3] if catalog.zonal[t] else "")
    n_pool = len(ids)
    tagged = np.repeat(np.tile(catalog.tagged, len(accounts)), POOL)
    account_of = np.repeat(np.arange(len(accounts)), n_t * POOL)
    tags: dict[str, pa.Array] = {}
    for column, values, present in zip(
            TAG_COLUMNS, (_CREATORS, _COST_CENTERS, _ENVIRONMENTS, _TEAMS),
            (0.2, 0.35, 0.8, 0.55), strict=True):
        choice = rng.integers(0, len(values), n_pool)
        if column.endswith("Environment"):  # mostly one environment per account
            choice = np.where(rng.random(n_pool) < 0.85, account_of % len(values), choice)
        keep = tagged & (rng.random(n_pool) < present)
        text = pa.array([csv_escape(v) for v in ("", *values)], pa.string())
        tags[column] = text.take(pa.array(np.where(keep, choice + 1, 0)))

    subscriptions = pa.array([str(10**8 + int(stable_hex(seed, a, c), 16) % (9 * 10**8))
                              for a in range(len(accounts)) for c in range(len(catalog.codes))])
    tax_pairs = tuple((a, c) for a in range(len(accounts)) for c in range(len(catalog.codes))
                      if weights[a][catalog.code == c].sum() > 0)
    return World(payer, accounts, weights, pool_size, pa.array(ids, pa.string()),
                 pa.array(zones, pa.string()), tags, subscriptions, tax_pairs,
                 _reservations(catalog, seed, payer, anchor),
                 _savings_plans(catalog, seed, payer, anchor))


def _months_before(month_start: datetime, months: int, day: int = 1) -> datetime:
    index = month_start.year * 12 + month_start.month - 1 - months
    return month_start.replace(year=index // 12, month=index % 12 + 1, day=day)


def _reservations(catalog: Catalog, seed: int, payer: str,
                  anchor: datetime) -> tuple[Reservation, ...]:
    # (template key, amortized upfront $/h, recurring $/h, payment, utilization, months ago,
    # share of DiscountedUsage rows). Rates follow the 1-year standard RI price list.
    specs = (
        (("AmazonEC2", "BoxUsage:m5.large", "RunInstances"), 283, 280, "Partial Upfront",
         0.93, 0, 0.5),
        (("AmazonEC2", "USW2-BoxUsage:c5.xlarge", "RunInstances"), 0, 1070, "No Upfront",
         0.8, 5, 0.3),
        (("AmazonRDS", "InstanceUsage:db.r5.large", "CreateDBInstance:0014"), 1495, 0,
         "All Upfront", 1.0, 8, 0.2),
    )
    out = []
    for i, (key, amortized, recurring, option, util, ago, share) in enumerate(specs):
        start = _months_before(anchor, ago, day=1 if ago == 0 else 14)
        h = stable_hex(seed, "ri", i, size=16)
        if key[0] == "AmazonEC2":
            region = "us-east-1" if i == 0 else "us-west-2"
            arn = (f"arn:aws:ec2:{region}:{payer}:reserved-instances/"
                   f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")
        else:
            arn = f"arn:aws:rds:us-east-1:{payer}:ri:orders-ri-{h[:8]}"
        out.append(Reservation(arn, catalog.index[key], amortized * 10**8, recurring * 10**8,
                               option, util, start, start.replace(year=start.year + 1), share))
    return tuple(out)


def _savings_plans(catalog: Catalog, seed: int, payer: str,
                   anchor: datetime) -> tuple[SavingsPlan, ...]:
    compute = np.where(catalog.sp_discount > 0,
                       catalog.rate_units * np.rint(100 - catalog.sp_discount * 100)
                       .astype(np.int64) // 100, 0)
    m5 = np.array([catalog.static["lineItem/UsageType"][t] in ("BoxUsage:m5.large",
                                                             "BoxUsage:m5.xlarge")
                   for t in range(len(catalog))])
    instance = np.where(m5, catalog.rate_units * 65 // 100, 0)
    plans = []
    for i, (otype, option, upfront, rate, ago) in enumerate((
            ("ComputeSavingsPlans", "No Upfront", 0, compute, 3),
            ("EC2InstanceSavingsPlans", "Partial Upfront", 50, instance, 1))):
        h = stable_hex(seed, "sp", i, size=16)
        start = _months_before(anchor, ago, day=9)
        short = "1yrNoUpfront" if upfront == 0 else "1yrPartialUpfront"
        usage = f"ComputeSP:{short}" if i == 0 else f"EC2SP:m5.{short}"
        desc = f"1 year {option} {'Compute' if i == 0 else 'EC2 Instance'} Savings Plan"
        plans.append(SavingsPlan(
            f"arn:aws:savingsplans::{payer}:savingsplan/"
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            otype, option, upfront, usage, desc, rate, start,
            start.replace(year=start.year + 1)))
    return tuple(plans)


@dataclass(frozen=True)
class MonthPlan:
    """What one billing month of one report looks like before any row is drawn.

    Attributes:
        seed: the world's seed (with the month it seeds the month's random stream).
        label: ``YYYY-MM``.
        start: first hour of the month (UTC).
        hours_in_month: hours in the billing period.
        hours_covered: hours with usage so far (the whole month when final).
        final: the month is invoiced; ``bill/InvoiceId`` is set.
        first: the first month generated for this world (reservation purchase, domain renewal).
        stamps: ``lineItem/Usage*Date`` text for hour 0..hours_in_month.
        intervals: ``identity/TimeInterval`` text per hour.
        constants: values shared by every row (bill/*, currency, legal entity).
        sp_windows: per Savings Plan, (first hour, number of hours) with covered usage.
        hourly_rows, month_end_rows: how the requested row count splits.
    """

    seed: int
    label: str
    start: datetime
    hours_in_month: int
    hours_covered: int
    final: bool
    first: bool
    stamps: pa.Array
    intervals: pa.Array
    constants: dict[str, str]
    sp_windows: tuple[tuple[int, int], ...]
    hourly_rows: int
    month_end_rows: int

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def month_number(self) -> int:
        return self.start.month

    def stamp(self, hour: int) -> str:
        """``lineItem/UsageStartDate``-style text of an hour offset (may be hours_in_month)."""
        return self.stamps[hour].as_py()


INVOICING_ENTITY = "Amazon Web Services Canada, Inc."  # the real sample's entity


def plan_month(world: World, *, seed: int, month: str, rows: int, final: bool, first: bool,
               currency: str = "USD", covered_days: int | None = None) -> MonthPlan:
    """Split ``rows`` of ``month`` between hourly rows and month-end rows.

    Savings Plan fee rows are hourly: with few rows, the plans are bought late in the month
    (their window shrinks, at least a day) so that fee rows stay about 2 % of the file.

    Raises:
        ValueError: when ``rows`` cannot even hold the month-end rows.
    """
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = _months_before(start, -1)
    hours = int((end - start).total_seconds() // 3600)
    covered = hours if covered_days is None else min(hours, 24 * covered_days)
    moments = [start + timedelta(hours=h) for h in range(hours + 1)]
    stamps = pa.array([m.strftime("%Y-%m-%dT%H:%M:%S.000Z") for m in moments], pa.string())
    short = [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments]
    intervals = pa.array([f"{a}/{b}" for a, b in zip(short, short[1:], strict=False)])
    n_sp = 2 if rows >= 100_000 else 1
    active = int(min(covered, max(24, rows * 0.02 // n_sp)))
    windows = tuple((covered - active, active) for _ in range(n_sp))
    fees = 1 + (2 if first else 0)  # support every month; RI upfront + domain in the first
    month_end = len(world.reservations) + fees + n_sp * active + len(world.tax_pairs)
    if rows <= month_end:
        raise ValueError(f"rows={rows} is too small for {month}: the month-end rows alone "
                         f"(RIFee, Fee, SavingsPlanRecurringFee, Tax) need {month_end}; "
                         f"ask for at least {month_end + 1}")
    invoice = str(10**9 + int(stable_hex(seed, "invoice", month), 16) % (9 * 10**9))
    entity = csv_escape(INVOICING_ENTITY)
    constants = {
        "bill/InvoiceId": invoice if final else "", "bill/InvoicingEntity": entity,
        "bill/BillingEntity": "AWS",
        "bill/BillType": "Anniversary", "bill/PayerAccountId": world.payer,
        "bill/BillingPeriodStartDate": stamps[0].as_py(),
        "bill/BillingPeriodEndDate": stamps[hours].as_py(),
        "lineItem/CurrencyCode": currency, "pricing/currency": currency,
        "lineItem/LegalEntity": entity,
    }
    return MonthPlan(seed, month, start, hours, covered, final, first, stamps, intervals,
                     constants, windows, rows - month_end, month_end)
