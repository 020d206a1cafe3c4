"""Rows of the bulk GCP billing export, drawn as numpy columns (no per-row Python).

Why this module exists: `costflow.providers.gcp.samples.bulk` writes millions of rows; this module
decides what each row is — kind (usage, late usage, tax, correction, goodwill, rounding error),
SKU, resource, project, location, usage window and quantity, cost, credits — as a `Plan`:
positions in the catalogs of `costflow.providers.gcp.samples.world` plus integer micros. Money is
drawn in micros so that every amount is an exact decimal with at most 6 places. The choices
follow the export's documented semantics [../shared/reference/provider_formats.md §1.2-§1.4]:
credits are negative and a correction's negation carries positive ones; late usage is invoiced
on the next month; corrections of the previous month carry ``adjustment_info``; a resource
CUD's daily fee has ``subscription.instance_id`` and its credits cover usage in its region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from costflow.providers.gcp.samples.billing import SERVICES
from costflow.providers.gcp.samples.world import (
    ACCOUNT_SHARE,
    CREDIT_TYPES,
    CUD_FEES,
    CUD_REGIONS,
    EXTRA_SERVICES,
    GIB,
    LOCATION_NAMES,
    LOCATIONS,
    SKUS,
    SUPPORT,
    World,
)

K = len(CREDIT_TYPES)
REGULAR, TAX, CORRECTION, GOODWILL, ROUNDING = range(5)
# Share of the random rows per kind (the rest is regular usage).
KIND_SHARE = {TAX: 0.012, CORRECTION: 0.01, GOODWILL: 0.004, ROUNDING: 0.002}
COST_TYPE_OF = np.array([0, 1, 2, 2, 3])  # kind -> index in world.cost_types
CUD_COVERED = 0.45  # share of eligible usage (N2 in a CUD region) a commitment covers
HOUR_US = 3600 * 10**6
_FIELDS = ("account", "service", "sku", "start", "end", "project", "resource", "location",
           "price", "subscription", "transaction", "seller", "invoice", "cost_type",
           "adjustment", "consumption_model", "export_us", "cost", "cost_at_list", "has_list",
           "usage_amount", "usage_unit", "pricing_amount", "pricing_unit", "has_usage",
           "credit", "credit_entry")


@dataclass
class Plan:
    """Rows as numpy columns: catalog positions, micros and usage amounts."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["account"])

    @staticmethod
    def concat(plans: Sequence[Plan]) -> Plan:
        return Plan({k: np.concatenate([p.cols[k] for p in plans]) for k in _FIELDS})


def _empty(n: int) -> dict[str, np.ndarray]:
    cols = {k: np.zeros(n, np.int64) for k in _FIELDS}
    for k in ("usage_amount", "pricing_amount"):
        cols[k] = np.zeros(n, np.float64)
    for k in ("has_list", "has_usage"):
        cols[k] = np.zeros(n, bool)
    cols["credit"] = np.zeros((n, K), np.int64)
    cols["credit_entry"] = np.zeros((n, K), np.int64)
    return cols


def _nulls(world: World) -> dict[str, int]:
    """Catalog position of "none" (the last entry) per column."""
    return {"project": len(world.projects) - 1, "resource": len(world.resources) - 1,
            "location": len(world.locations) - 1, "price": len(world.prices) - 1,
            "subscription": len(world.subscriptions) - 1, "transaction": 2, "seller": 1,
            "adjustment": len(world.adjustments) - 1, "consumption_model": 1}


def fixed_plan(world: World) -> Plan:
    """Rows every export of the month has: CUD fees per commitment and day, and support."""
    month_days = world.days[(world.days >= world.h0) & (world.days <= world.h1)]
    n_days = len(month_days) - 1
    nulls = _nulls(world)
    n = len(world.commitments) * n_days + len(SUPPORT)
    cols = _empty(n)
    for k, v in nulls.items():
        cols[k][:] = v
    compute = _service_index("compute")  # the CUD fee SKUs bill under Compute Engine
    units = world.units.to_pylist()
    row = 0
    for c, (region, kind, _) in enumerate(world.commitments):
        _, _, quantity, price, _, _, conv = CUD_FEES[kind]
        rows = slice(row, row + n_days)
        start, end = month_days[:-1], month_days[1:]
        hours = end - start  # 23 or 25 on daylight-saving days (Pacific days)
        mult = GIB if kind == 1 else 1
        cost = np.rint(quantity * hours * float(price) * 1e6).astype(np.int64)
        cols["sku"][rows] = world.special_skus[f"fee{kind}"]
        cols["service"][rows] = compute
        cols["start"][rows], cols["end"][rows] = start, end
        cols["project"][rows] = 0  # commitments are bought in the web-prod project
        cols["location"][rows] = LOCATION_NAMES.index(CUD_REGIONS[region])
        cols["price"][rows] = len(SKUS) + kind
        cols["subscription"][rows] = c
        cols["transaction"][rows] = 0
        cols["cost"][rows] = cols["cost_at_list"][rows] = cost
        cols["has_list"][rows] = cols["has_usage"][rows] = True
        cols["usage_amount"][rows] = quantity * hours * 3600 * mult
        cols["pricing_amount"][rows] = quantity * hours * 3600 * mult / conv
        cols["usage_unit"][rows] = units.index(CUD_FEES[kind][4])
        cols["pricing_unit"][rows] = units.index(CUD_FEES[kind][5])
        cols["export_us"][rows] = world.hours_us[end] + 4 * HOUR_US + 1_234_567
        row += n_days
    for account, _, _, amount in SUPPORT:
        cols["account"][row] = account
        cols["service"][row] = _service_index("support")
        cols["sku"][row] = world.special_skus[f"support{account}"]
        cols["start"][row], cols["end"][row] = world.h0, world.h1
        cols["transaction"][row] = 0
        cols["cost"][row] = cols["cost_at_list"][row] = amount * 10**6
        cols["has_list"][row] = True
        cols["export_us"][row] = world.hours_us[world.h1] + 6 * HOUR_US + 654_321
        row += 1
    return Plan(cols)


def _service_index(key: str) -> int:
    return list({**SERVICES, **EXTRA_SERVICES}).index(key)


def _cud_region_of_location() -> np.ndarray:
    """Per location position (plus the null one): index in CUD_REGIONS, or -1."""
    regions = [LOCATIONS[name][2] for name in LOCATION_NAMES] + [None]
    return np.array([CUD_REGIONS.index(r) if r in CUD_REGIONS else -1 for r in regions])


@dataclass
class _Draw:
    """Intermediate per-row columns of `random_plan`."""

    n: int
    kind: np.ndarray
    t: np.ndarray  # SKU template
    account: np.ndarray
    has_res: np.ndarray
    resource: np.ndarray
    project: np.ndarray
    location: np.ndarray


def _draw_rows(world: World, rng: np.random.Generator, n: int) -> _Draw:
    """Kind, SKU template, resource, project and location of each row."""
    sku, res, nulls = world.sku, world.res, _nulls(world)
    kind_share = [KIND_SHARE[k] for k in (TAX, CORRECTION, GOODWILL, ROUNDING)]
    kind = rng.choice(5, size=n, p=[1 - sum(kind_share), *kind_share])
    # Template (SKU) per row: each account's share, split by the SKUs' weights.
    weights = sku["weight"].copy()
    for a, share in enumerate(ACCOUNT_SHARE):
        mine = sku["account"] == a
        weights[mine] *= share / weights[mine].sum()
    t = rng.choice(len(weights), size=n, p=weights / weights.sum())
    account = sku["account"][t]
    # Resource from the SKU's pool; resource-less SKUs have none (the catalog's null entry).
    size = world.pool_size[t]
    has_res = size > 0
    pick = world.pool_start[t] + (rng.random(n) * size).astype(np.int64)
    resource = np.where(has_res, world.pool[np.where(has_res, pick, 0)], nulls["resource"])
    safe_res = np.where(has_res, resource, 0)
    options = world.account_projects
    random_project = np.where(account == 0, options[0][rng.integers(len(options[0]), size=n)],
                              options[1][rng.integers(len(options[1]), size=n)])
    project = np.where(has_res, res.project[safe_res],
                       np.where(sku["reseller"][t], 1, random_project))
    location = np.where(has_res, res.location[safe_res], sku["location"][t])
    return _Draw(n, kind, t, account, has_res, resource, project, location)


def _windows(world: World, rng: np.random.Generator, d: _Draw, late_fraction: float,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Usage windows (start, end hour positions), late and daily flags.

    Hourly in the month; daily SKUs and tax by Pacific day; late rows in the month's last 24
    hours; corrections in the previous month; rounding errors over the whole month.
    """
    n, kind = d.n, d.kind
    month_days = world.days[(world.days >= world.h0) & (world.days <= world.h1)]
    day = rng.integers(0, len(month_days) - 1, size=n)
    daily = world.sku["daily"][d.t] | (kind == TAX)
    start = world.h0 + rng.integers(0, world.h1 - world.h0, size=n)
    late = (kind == REGULAR) & ~daily & (rng.random(n) < late_fraction)
    start = np.where(late, world.h1 - 1 - rng.integers(0, 24, size=n), start)
    start = np.where(kind == CORRECTION, rng.integers(0, world.h0, size=n), start)
    end = start + 1
    start = np.where(daily, month_days[day], start)
    end = np.where(daily, month_days[day + 1], end)
    start = np.where(kind == ROUNDING, world.h0, start)
    end = np.where(kind == ROUNDING, world.h1, end)
    return start, end, late, daily


def _usage(world: World, rng: np.random.Generator, d: _Draw, start: np.ndarray,
           end: np.ndarray, daily: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
    """Usage in base units, pricing quantity (x 1e9), cost and list cost (micros).

    Rate SKUs scale with the resource's size over the seconds used; count SKUs draw a
    log-uniform count. The quantity in pricing units is rounded to 9 decimals: BigQuery holds
    it as a FLOAT64 (``1/3600`` prints as 17 digits), but costflow parses numbers into
    DECIMAL(38, 18) and refuses more than 18 decimals, so a generator meant to load in full
    stays within them. Cost = quantity x price, rounded to micros, as Google rounds.
    """
    sku, res, n = world.sku, world.res, d.n
    seconds = np.where(rng.random(n) < 0.85, 3600, rng.integers(1, 60, size=n) * 60)
    seconds = np.where(daily, (end - start) * 3600, seconds)
    attr = sku["size"][d.t]
    size_value = np.ones(n, np.int64)
    safe_res = np.where(d.has_res, d.resource, 0)
    for name, values in res.size.items():
        chosen = (attr == name) & d.has_res
        size_value[chosen] = values[safe_res[chosen]]
    byte = np.where(sku["byte_unit"][d.t] & (attr != ""), GIB, 1)
    counted = np.floor(np.exp(rng.uniform(sku["count_lo"][d.t], sku["count_hi"][d.t]))).astype(
        np.int64)
    base = np.where(attr != "", size_value * seconds * byte, counted)
    q9 = np.rint(base / sku["conv"][d.t] * 1e9).astype(np.int64)
    cost = np.rint(q9 * sku["price"][d.t] / 1e3).astype(np.int64)
    listed = np.rint(q9 * sku["list_price"][d.t] / 1e3).astype(np.int64)
    return base, q9, cost, listed


def _credits(world: World, rng: np.random.Generator, d: _Draw, cost: np.ndarray,
             sign: np.ndarray, usage_rows: np.ndarray,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Credit micros and catalog entries (n x K, 0 = no credit), and the CUD commitment.

    Amounts are computed on |cost|, then signed against it (a negation carries positive
    credits); at most three per row, none of zero amount. Resource CUDs cover N2 usage in
    their region only, and sustained use discounts do not apply to committed usage.
    """
    sku, n = world.sku, d.n
    present = rng.random((n, K)) < sku["credits"][d.t]
    cud_region = _cud_region_of_location()[d.location]
    covered = ((d.kind == REGULAR) & (sku["cud"][d.t] >= 0) & (cud_region >= 0)
               & (rng.random(n) < CUD_COVERED))
    present[:, 0] = covered
    present[:, 2] &= ~covered
    present &= usage_rows[:, None]
    remaining = cost.copy()
    amounts = np.zeros((n, K), np.int64)
    full = rng.random(n) < 0.7
    shares = [np.where(full, 1.0, rng.uniform(0.3, 0.9, n)), np.full(n, 0.28), np.full(n, 0.2),
              rng.uniform(0.01, 0.04, n), None, rng.uniform(0.1, 1.0, n)]
    for k in range(K):
        if shares[k] is None:  # free tier: up to a few dollars a row
            amount = np.minimum(remaining, rng.integers(0, 3_000_000, size=n))
        else:
            amount = np.floor(remaining * shares[k]).astype(np.int64)
        amount = np.where(present[:, k], amount, 0)
        amounts[:, k] = amount
        remaining -= amount
    kept = (amounts != 0) & (np.cumsum(amounts != 0, axis=1) <= 3)
    credit = np.where(kept, -amounts * sign[:, None], 0)
    commitment = np.maximum(cud_region, 0) * len(CUD_FEES) + np.maximum(sku["cud"][d.t], 0)
    # Credit catalog entries (see World): commitments, then fee offset, SUD, the two
    # accounts' spending-based discounts, free tier, promotion.
    c = len(world.commitments)
    entry = np.stack([commitment, np.full(n, c), np.full(n, c + 1), c + 2 + d.account,
                      np.full(n, c + 4), np.full(n, c + 5)], axis=1)
    return credit, entry, commitment


def random_plan(world: World, rng: np.random.Generator, n: int, late_fraction: float) -> Plan:
    """``n`` rows drawn at random: usage, late usage, tax, adjustments, rounding errors."""
    nulls, sku = _nulls(world), world.sku
    d = _draw_rows(world, rng, n)
    kind, t = d.kind, d.t
    start, end, late, daily = _windows(world, rng, d, late_fraction)
    base, q9, cost, listed = _usage(world, rng, d, start, end, daily)

    # Adjustments: corrections of the previous month (negation -X, remonetization +Y, price
    # correction) and this month's goodwill / SLA credits.
    event = np.where(kind == CORRECTION, rng.integers(0, 3, size=n),
                     np.where(kind == GOODWILL, rng.integers(3, 5, size=n), nulls["adjustment"]))
    sign = np.ones(n, np.int64)
    is_adj = (kind == CORRECTION) | (kind == GOODWILL)
    sign[is_adj] = world.adjustment_rules[event[is_adj], 1]
    price_fix = is_adj & (event == 2)
    cost = np.where(price_fix, cost // 10, cost)
    base = np.where(price_fix, 0, base)
    q9 = np.where(price_fix, 0, q9)
    listed = np.where(price_fix, 0, listed)
    # Tax: about 8% of a day of the service's usage; goodwill / SLA credits: up to a day of
    # the resource's usage, in cents. (Both scale with the drawn usage so the month stays
    # dominated by usage, as real invoices are.)
    tax = np.rint(cost * rng.uniform(1.0, 4.0, n)).astype(np.int64)
    cost = np.where(kind == TAX, np.maximum(tax, 10), cost)
    goodwill = np.rint(cost * rng.uniform(2.0, 24.0, n) / 10_000).astype(np.int64) * 10_000
    cost = np.where(kind == GOODWILL, np.maximum(goodwill, 10_000), cost)
    cost = np.where(kind == ROUNDING, rng.integers(1, 10, size=n), cost)
    sign = np.where(kind == ROUNDING, rng.choice([-1, 1], size=n), sign)
    usage_rows = (kind == REGULAR) | (kind == CORRECTION)
    credit, entry, commitment = _credits(world, rng, d, cost, sign, usage_rows)
    covered, flex = credit[:, 0] != 0, credit[:, 1] != 0

    # Export time: hours after the usage; days later for late rows and goodwill; any time of
    # the invoice month for corrections.
    delay = rng.integers(2 * HOUR_US, 12 * HOUR_US, size=n)
    delay = np.where(late, rng.integers(2 * 24 * HOUR_US, 5 * 24 * HOUR_US, size=n), delay)
    delay = np.where(kind == GOODWILL, rng.integers(24 * HOUR_US, 5 * 24 * HOUR_US, size=n),
                     delay)
    export = world.hours_us[end] + delay
    export = np.where(kind == CORRECTION, world.hours_us[world.h0] + rng.integers(
        0, (world.h1 - world.h0) * HOUR_US, size=n), export)

    not_usage = (kind == TAX) | (kind == ROUNDING)
    adjusted_usage = usage_rows & ~price_fix
    cols = _empty(n)
    cols.update({
        "account": d.account, "service": sku["service"][t],
        "sku": np.where(kind == TAX, np.array([world.special_skus["tax0"],
                                               world.special_skus["tax1"]])[d.account],
                        np.where(kind == ROUNDING, world.special_skus["rounding"], t)),
        "start": start, "end": end,
        "project": np.where(kind == ROUNDING, world.account_projects[0][0], d.project),
        "resource": np.where(not_usage, nulls["resource"], d.resource),
        "location": np.where(not_usage, nulls["location"], d.location),
        "price": np.where(usage_rows, t, nulls["price"]),
        "subscription": np.where(covered, commitment, nulls["subscription"]),
        "transaction": np.where(kind == REGULAR, sku["reseller"][t].astype(np.int64),
                                nulls["transaction"]),
        "seller": np.where(sku["reseller"][t], 0, nulls["seller"]),
        "invoice": late.astype(np.int64), "cost_type": COST_TYPE_OF[kind],
        "adjustment": event,
        "consumption_model": np.where(flex, 0, nulls["consumption_model"]),
        "export_us": export, "cost": cost * sign,
        "cost_at_list": listed * sign, "has_list": usage_rows,
        "usage_amount": np.where(adjusted_usage, base * sign, 0).astype(np.float64),
        "pricing_amount": np.where(adjusted_usage, q9 * sign, 0) / 1e9,
        "usage_unit": sku["unit"][t], "pricing_unit": sku["pricing_unit"][t],
        "has_usage": usage_rows, "credit": credit, "credit_entry": entry,
    })
    return Plan(cols)
