"""The rows of one synthetic billing month, produced as blocks of CSV text.

`MonthRows.blocks()` yields `Block`s: newline-terminated CSV lines plus, per line, the exact
``lineItem/UnblendedCost`` (in 1e-12 USD) and the line item type. Hourly rows (Usage,
DiscountedUsage, SavingsPlanCoveredUsage with its SavingsPlanNegation, Credit, Refund,
EdpDiscount, BundledDiscount) come first, in chunks drawn with numpy; the rows AWS derives from
the whole month (RIFee, SavingsPlanRecurringFee, Fee, Tax) come last, computed from what the
hourly rows used, so commitments reconcile exactly:

* per Reserved Instance: sum of DiscountedUsage ``reservation/EffectiveCost`` plus the RIFee's
  ``UnusedAmortizedUpfrontFeeForBillingPeriod + UnusedRecurringFee`` equals its
  ``AmortizedUpfrontFeeForBillingPeriod + UnblendedCost``;
* per Savings Plan and hour: ``UsedCommitment`` equals the sum of that hour's covered
  ``SavingsPlanEffectiveCost``, and ``TotalCommitmentToDate`` is the hourly commitment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from costflow.providers.aws.samples.cur_catalog import (
    CUR_COLUMNS,
    GB,
    GB_MONTH,
    GB_SECONDS,
    HOURS,
    PER_MONTH,
    REQUESTS,
    TAG_COLUMNS,
    VCPU_HOURS,
    Catalog,
)
from costflow.providers.aws.samples.cur_world import POOL, MonthPlan, World
from costflow.samples.csv_text import (
    LineAssembler,
    csv_escape,
    java_number_strings,
    strings_from_bytes,
)

LINE_ITEM_TYPES = ("Usage", "DiscountedUsage", "RIFee", "SavingsPlanCoveredUsage",
                   "SavingsPlanNegation", "SavingsPlanRecurringFee", "Tax", "Credit", "Refund",
                   "EdpDiscount", "BundledDiscount", "Fee")
TYPE_CODE = {name: i for i, name in enumerate(LINE_ITEM_TYPES)}
# Share of hourly rows per type; SP covered usage and its negation come in pairs.
MIX = {"DiscountedUsage": 0.03, "SavingsPlanPair": 0.03, "Credit": 0.006, "Refund": 0.0015,
       "EdpDiscount": 0.03, "BundledDiscount": 0.004}
AMOUNT_SCALE, COST_SCALE = 10, 12
_ID_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
_EMPTY_PRICING = {"lineItem/UnblendedRate": "", "lineItem/BlendedRate": "",
                  "pricing/publicOnDemandRate": "", "pricing/publicOnDemandCost": "0.0",
                  "pricing/term": "", "pricing/RateCode": "", "pricing/RateId": "",
                  "lineItem/NormalizationFactor": "", "lineItem/NormalizedUsageAmount": ""}


@dataclass
class Block:
    """Some CSV lines with, per line, its UnblendedCost (1e-12 USD) and line item type code."""

    lines: pa.Array
    cost: np.ndarray
    types: np.ndarray


def _num(units: np.ndarray, scale: int = COST_SCALE) -> pa.Array:
    return java_number_strings(units, scale)


def _one(units: int) -> str:
    return str(_num(np.array([units], dtype=np.int64))[0].as_py())


def _take(array: pa.Array, index: np.ndarray) -> pa.Array:
    return array.take(pa.array(index))


class MonthRows:
    """Generates one month of CUR rows for a world; see the module docstring."""

    def __init__(self, catalog: Catalog, world: World, plan: MonthPlan, *,
                 chunk_rows: int = 50_000) -> None:
        self.c, self.w, self.p = catalog, world, plan
        self.rng = np.random.default_rng([plan.seed, plan.year * 12 + plan.month_number])
        self.chunk_rows = chunk_rows
        self.asm = LineAssembler(CUR_COLUMNS)
        self.accounts = pa.array(world.accounts, pa.string())
        totals = world.weights.sum(axis=0)
        self._cdf = {"all": np.cumsum(totals) / totals.sum()}
        paid = totals * (catalog.rate_units > 0)
        self._cdf["paid"] = np.cumsum(paid) / paid.sum()
        for s, sp in enumerate(world.savings_plans):
            eligible = totals * (sp.rate > 0)
            self._cdf[f"sp{s}"] = np.cumsum(eligible) / eligible.sum()
        acc = np.cumsum(world.weights.T, axis=1)
        self._acc_cdf = acc / np.maximum(acc[:, -1:], 1e-300)
        self.ri_used = np.zeros(len(world.reservations), dtype=np.int64)
        self.sp_used = np.zeros((len(plan.sp_windows), plan.hours_in_month), dtype=np.int64)
        self.sp_seq = np.zeros(len(plan.sp_windows), dtype=np.int64)
        self.taxable = np.zeros(len(world.accounts) * len(catalog.codes))
        self.usage_total = 0.0  # USD of Usage rows, for the support fee
        self.ri_counts: list[int] = []  # NumberOfReservations, set by the RIFee rows
        self._static = _static_variants(catalog, world)

    def _pick(self, n: int, cdf: str = "all") -> tuple[np.ndarray, np.ndarray]:
        t = np.searchsorted(self._cdf[cdf], self.rng.random(n), side="right")
        t = np.minimum(t, len(self.c) - 1)
        acc = (self._acc_cdf[t] < self.rng.random(n)[:, None]).sum(axis=1)
        return t, np.minimum(acc, len(self.w.accounts) - 1)

    def _base(self, n: int, hours: np.ndarray, acc: np.ndarray, kind: str) -> dict:
        ids = _ID_ALPHABET[self.rng.integers(0, 32, size=(n, 52), dtype=np.uint8)]
        return {**self.p.constants, "identity/LineItemId": strings_from_bytes(ids),
                "identity/TimeInterval": _take(self.p.intervals, hours),
                "lineItem/UsageAccountId": _take(self.accounts, acc),
                "lineItem/UsageStartDate": _take(self.p.stamps, hours),
                "lineItem/UsageEndDate": _take(self.p.stamps, hours + 1),
                "lineItem/LineItemType": kind}

    def _resource(self, acc: np.ndarray, t: np.ndarray, k: np.ndarray | None = None,
                  tags: bool = True) -> dict:
        if k is None:
            k = (self.rng.random(len(t)) * self.w.pool_size[t]).astype(np.int64)
        idx = (acc * len(self.c) + t) * POOL + k
        out = {"lineItem/ResourceId": _take(self.w.resource_ids, idx),
               "lineItem/AvailabilityZone": _take(self.w.zones, idx),
               "reservation/SubscriptionId": _take(self.w.subscriptions,
                                                   acc * len(self.c.codes) + self.c.code[t])}
        if tags:
            out.update({c: _take(self.w.tags[c], idx) for c in TAG_COLUMNS})
        return out

    def _amounts(self, t: np.ndarray) -> np.ndarray:
        """Usage amounts in 1e-10 units, by the template's amount model."""
        n, model, rng = len(t), self.c.amount[t], self.rng
        month_hours = self.p.hours_in_month
        draws = {
            HOURS: np.full(n, 1.0),
            GB_MONTH: rng.lognormal(3.5, 1.8, n) / month_hours,
            GB: 10 ** rng.uniform(-7.5, 1.2, n),
            REQUESTS: np.floor(10 ** rng.uniform(0, 5.5, n)),
            GB_SECONDS: np.round(10 ** rng.uniform(-0.5, 3.5, n), 3),
            PER_MONTH: rng.integers(1, 6, n) / month_hours,
            VCPU_HOURS: rng.choice([0.25, 0.5, 1.0, 2.0, 4.0], n),
        }
        out = np.zeros(n)
        for code, values in draws.items():
            out = np.where(model == code, values, out)
        return np.maximum(np.rint(out * 10**AMOUNT_SCALE), 1).astype(np.int64)

    @staticmethod
    def _cost(amount: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """amount (1e-10) x rate (1e-12) in 1e-12 USD: 10 decimals, or 3 digits below 1e-8."""
        c = amount.astype(np.float64) * rate.astype(np.float64) / 10**AMOUNT_SCALE
        step = np.where(c >= 1e4, 100.0,
                        10.0 ** np.maximum(np.floor(np.log10(np.maximum(c, 1.0))) - 2, 0))
        return (np.rint(c / step) * step).astype(np.int64)

    def _block(self, n: int, values: dict, kind: str, cost: np.ndarray,
               static: dict | None = None, t: np.ndarray | None = None) -> Block:
        lines = self.asm.lines(n, values, static, t)
        return Block(lines, cost, np.full(n, TYPE_CODE[kind], dtype=np.int8))

    def _tax_base(self, acc: np.ndarray, t: np.ndarray, cost: np.ndarray) -> None:
        np.add.at(self.taxable, acc * len(self.c.codes) + self.c.code[t], cost / 1e12)

    def usage(self, n: int) -> Block:
        t, acc = self._pick(n)
        hours = self.rng.integers(0, self.p.hours_covered, n)
        amount = self._amounts(t)
        cost = self._cost(amount, self.c.rate_units[t])
        self._tax_base(acc, t, cost)
        self.usage_total += float(cost.sum()) / 1e12
        cost_text = _num(cost)
        values = {**self._base(n, hours, acc, "Usage"), **self._resource(acc, t),
                  "lineItem/UsageAmount": _num(amount, AMOUNT_SCALE),
                  "lineItem/UnblendedCost": cost_text, "lineItem/BlendedCost": cost_text,
                  "pricing/publicOnDemandCost": cost_text}
        return self._block(n, values, "Usage", cost, self.c.static, t)

    def discounted_usage(self, n: int) -> Block:
        ris = self.w.reservations
        r = self.rng.choice(len(ris), n, p=[ri.share for ri in ris])
        order = np.argsort(r, kind="stable")
        seq = np.empty(n, dtype=np.int64)
        for i in range(len(ris)):
            members = order[r[order] == i]
            seq[members] = self.ri_used[i] + np.arange(len(members))
            self.ri_used[i] += len(members)
        hours, lap = seq % self.p.hours_covered, seq // self.p.hours_covered
        t = np.array([ri.template for ri in ris])[r]
        acc = (self._acc_cdf[t] < self.rng.random(n)[:, None]).sum(axis=1)
        values = {**self._base(n, hours, acc, "DiscountedUsage"),
                  **self._resource(acc, t, lap % self.w.pool_size[t]),
                  "lineItem/UsageAmount": "1.0", "lineItem/UnblendedRate": "0.0",
                  "lineItem/UnblendedCost": "0.0", "pricing/term": "Reserved",
                  "pricing/LeaseContractLength": "1yr", "pricing/OfferingClass": "standard"}
        return self._block(n, values, "DiscountedUsage", np.zeros(n, np.int64),
                           self._static["du"], t)

    def savings_plan_pairs(self, n: int) -> list[Block]:
        windows = self.p.sp_windows
        s = (self.rng.random(n) < 0.35).astype(np.int64) if len(windows) > 1 else np.zeros(
            n, np.int64)
        t, acc, seq = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        for i in range(len(windows)):
            mask = s == i
            t[mask], acc[mask] = self._pick(int(mask.sum()), f"sp{i}")
            seq[mask] = self.sp_seq[i] + np.arange(mask.sum())
            self.sp_seq[i] += mask.sum()
        start = np.array([w[0] for w in windows])[s]
        hours = start + seq % np.array([w[1] for w in windows])[s]
        amount = self._amounts(t)
        cost = self._cost(amount, self.c.rate_units[t])
        sp_rate = np.stack([sp.rate for sp in self.w.savings_plans[:len(windows)]])[s, t]
        effective = self._cost(amount, sp_rate)
        for i in range(len(windows)):
            np.add.at(self.sp_used[i], hours[s == i], effective[s == i])
        arns = pa.array([sp.arn for sp in self.w.savings_plans], pa.string())
        resource = self._resource(acc, t)
        cost_text, arn = _num(cost), _take(arns, s)
        covered = {**self._base(n, hours, acc, "SavingsPlanCoveredUsage"), **resource,
                   "lineItem/UsageAmount": _num(amount, AMOUNT_SCALE),
                   "lineItem/UnblendedCost": cost_text, "lineItem/BlendedCost": cost_text,
                   "pricing/publicOnDemandCost": cost_text, "savingsPlan/SavingsPlanARN": arn,
                   "savingsPlan/SavingsPlanRate": _num(sp_rate),
                   "savingsPlan/SavingsPlanEffectiveCost": _num(effective)}
        neg_text = _num(-cost)
        negation = {**self._base(n, hours, acc, "SavingsPlanNegation"), **resource,
                    "lineItem/UsageAmount": covered["lineItem/UsageAmount"],
                    "lineItem/UnblendedCost": neg_text, "lineItem/BlendedCost": neg_text,
                    "pricing/publicOnDemandCost": "0.0", "savingsPlan/SavingsPlanARN": arn,
                    "lineItem/LineItemDescription": _take(
                        self._static["negation_desc"], t * len(self.w.accounts) + acc)}
        return [self._block(n, covered, "SavingsPlanCoveredUsage", cost, self.c.static, t),
                self._block(n, negation, "SavingsPlanNegation", -cost, self._static["neg"], t)]

    def adjustment(self, kind: str, n: int) -> Block:
        t, acc = self._pick(n, "paid")
        hours = self.rng.integers(0, self.p.hours_covered, n)
        values = {**self._base(n, hours, acc, kind), **_EMPTY_PRICING}
        if kind in ("EdpDiscount", "BundledDiscount"):
            amount = self._amounts(t)
            share = 0.06 if kind == "EdpDiscount" else 1.0
            cost = -self._cost(amount, np.rint(self.c.rate_units[t] * share).astype(np.int64))
            values.update(self._resource(acc, t, tags=False))
            values["lineItem/UsageAmount"] = _num(amount, AMOUNT_SCALE)
            values["lineItem/LineItemDescription"] = (
                "Enterprise Program Discount" if kind == "EdpDiscount" else
                "Bundled discount: usage included with another service at no charge")
        else:
            mean = -1.0 if kind == "Credit" else 0.5
            cost = -(np.rint(self.rng.lognormal(mean, 1.5, n) * 1e10) * 100).astype(np.int64)
            values["lineItem/UsageAmount"] = "0.0"
            values["lineItem/LineItemDescription"] = _take(
                self._static["credit_desc" if kind == "Credit" else "refund_desc"],
                self.rng.integers(0, 2, n))
            if kind == "Refund":
                values["bill/BillType"] = "Refund"
        self._tax_base(acc, t, cost)
        text = _num(cost)
        values.update({"lineItem/UnblendedCost": text, "lineItem/BlendedCost": text})
        return self._block(n, values, kind, cost, self.c.static, t)

    def hourly_blocks(self) -> Iterator[Block]:
        """The month's hourly rows, chunk by chunk (month-end rows: `aws_cur_month_end`)."""
        left = self.p.hourly_rows
        while left > 0:
            n = min(self.chunk_rows, left)
            left -= n
            pairs = self.rng.binomial(n // 2, MIX["SavingsPlanPair"]) if self.p.sp_windows else 0
            others = [k for k in MIX if k != "SavingsPlanPair"]
            probs = [MIX[k] for k in others]
            counts = self.rng.multinomial(n - 2 * pairs, [*probs, 1 - sum(probs)])
            yield self.usage(int(counts[-1]))
            if pairs:
                yield from self.savings_plan_pairs(int(pairs))
            for kind, count in zip(others, counts[:-1], strict=True):
                if count:
                    yield (self.discounted_usage(int(count)) if kind == "DiscountedUsage"
                           else self.adjustment(kind, int(count)))


def _static_variants(catalog: Catalog, world: World) -> dict:
    """Per-template column values for rows that are not plain on-demand usage."""
    n = len(catalog)
    du = {k: list(v) for k, v in catalog.static.items()}
    for column in ("lineItem/LineItemDescription", "lineItem/BlendedRate", "lineItem/BlendedCost",
                   "reservation/EffectiveCost", "reservation/AmortizedUpfrontCostForUsage",
                   "reservation/RecurringFeeForUsage", "reservation/ReservationARN",
                   "pricing/purchaseOption", "pricing/publicOnDemandCost"):
        du[column] = [""] * n
    for ri in world.reservations:
        t = ri.template
        effective = _one(ri.amortized + ri.recurring)
        du["lineItem/LineItemDescription"][t] = csv_escape(
            ri_description(catalog, ri.template, ri.recurring))
        du["lineItem/BlendedRate"][t] = du["lineItem/BlendedCost"][t] = effective
        du["reservation/EffectiveCost"][t] = effective
        du["reservation/AmortizedUpfrontCostForUsage"][t] = _one(ri.amortized)
        du["reservation/RecurringFeeForUsage"][t] = _one(ri.recurring)
        du["reservation/ReservationARN"][t] = csv_escape(ri.arn)
        du["pricing/purchaseOption"][t] = ri.purchase_option
        du["pricing/publicOnDemandCost"][t] = catalog.static["pricing/publicOnDemandRate"][t]
    neg = dict(catalog.static)
    neg["lineItem/UnblendedRate"] = neg["lineItem/BlendedRate"] = [
        r if r == "0.0" else "-" + r for r in catalog.static["lineItem/UnblendedRate"]]
    negation_desc = pa.array([csv_escape(
        f"SavingsPlanNegation used by AccountId : {a} and UsageSku : "
        f"{catalog.static['product/sku'][t]}") for t in range(n) for a in world.accounts])
    credit = pa.array(["AWS Activate Credits", "AWS Promotional Credit"])
    refund = pa.array(['"Refund for SLA breach, case 12047781993"',
                       "Refund of charges for service issue"])
    return {"du": du, "neg": neg, "negation_desc": negation_desc, "credit_desc": credit,
            "refund_desc": refund}


def ri_description(catalog: Catalog, template: int, recurring: int) -> str:
    """The description AWS writes on a reservation's rows, e.g. 'USD 0.028 hourly fee per ...'."""
    itype = catalog.static["product/instanceType"][template]
    fee = _one(recurring)
    if catalog.codes[catalog.code[template]] == "AmazonRDS":
        return f"USD {fee} hourly fee per PostgreSQL, {itype} instance"
    return f"USD {fee} hourly fee per Linux/UNIX (Amazon VPC), {itype} instance"
