"""The rows AWS derives from a whole billing month: RIFee, SavingsPlanRecurringFee, Fee, Tax.

They are computed after the hourly rows, from what those rows used (`MonthRows` accumulates it),
which is what makes reservations and Savings Plans reconcile to the cent and below: the unused
part of each commitment is exactly the commitment minus the effective cost the file already holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from math import ceil

import numpy as np
import pyarrow as pa

from costflow.providers.aws.samples.cur_rows import (
    AMOUNT_SCALE,
    COST_SCALE,
    TYPE_CODE,
    Block,
    MonthRows,
    ri_description,
)
from costflow.samples.csv_text import csv_escape, java_number_strings, strings_from_bytes

_UNIT = 10**COST_SCALE
_HOURS_PER_YEAR = 8760
_SUPPORT = ("AWSSupportBusiness", "AWS Support (Business)")


def _text(values: list[int], scale: int = COST_SCALE) -> pa.Array:
    return java_number_strings(np.array(values, dtype=np.int64), scale)


def _strings(values: list[str]) -> pa.Array:
    return pa.array([csv_escape(v) for v in values], pa.string())


def _block(gen: MonthRows, kind: str, n: int, values: dict, cost: list[int],
           static: dict | None = None, template: np.ndarray | None = None) -> Block:
    ids = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)[
        gen.rng.integers(0, 32, size=(n, 52), dtype=np.uint8)]
    p = gen.p
    base = {**p.constants, "identity/LineItemId": strings_from_bytes(ids),
            "identity/TimeInterval": p.intervals[0].as_py(),
            "lineItem/UsageAccountId": gen.w.payer, "lineItem/LineItemType": kind,
            "lineItem/UsageStartDate": p.stamp(0),
            "lineItem/UsageEndDate": p.stamp(p.hours_in_month)}
    lines = gen.asm.lines(n, {**base, **values}, static, template)
    return Block(lines, np.array(cost, dtype=np.int64), np.full(n, TYPE_CODE[kind], np.int8))


def ri_fees(gen: MonthRows) -> Block:
    """One RIFee row per reservation: the month's recurring fee and the unused hours."""
    c, p, ris = gen.c, gen.p, gen.w.reservations
    rows: dict[str, list] = {k: [] for k in (
        "count", "hours", "unused", "amortized", "cost", "unused_amortized", "unused_recurring",
        "upfront", "norm", "norm_total", "norm_unused")}
    for ri, used in zip(ris, gen.ri_used.tolist(), strict=True):
        count = max(1, ceil(used / (p.hours_covered * ri.utilization)))
        hours = count * p.hours_in_month
        factor = int(c.static["lineItem/NormalizationFactor"][ri.template] or 1)
        for key, value in (("count", count), ("hours", hours), ("unused", hours - used),
                           ("amortized", hours * ri.amortized), ("cost", hours * ri.recurring),
                           ("unused_amortized", (hours - used) * ri.amortized),
                           ("unused_recurring", (hours - used) * ri.recurring),
                           ("upfront", count * ri.amortized * _HOURS_PER_YEAR),
                           ("norm", factor * p.hours_in_month), ("norm_total", factor * hours),
                           ("norm_unused", factor * (hours - used))):
            rows[key].append(value)
    t = np.array([ri.template for ri in ris])
    usage_types = [c.static["lineItem/UsageType"][i].replace("BoxUsage", "HeavyUsage")
                   .replace("InstanceUsage", "HeavyUsage") for i in t]
    whole = 10**AMOUNT_SCALE
    values = {
        "lineItem/UsageType": _strings(usage_types), "product/usagetype": _strings(usage_types),
        "lineItem/UsageAmount": _text([h * whole for h in rows["hours"]], AMOUNT_SCALE),
        "lineItem/NormalizedUsageAmount": _text([n * whole for n in rows["norm_total"]],
                                                AMOUNT_SCALE),
        "lineItem/UnblendedRate": _text([ri.recurring for ri in ris]),
        "lineItem/BlendedRate": _text([ri.recurring for ri in ris]),
        "lineItem/UnblendedCost": _text(rows["cost"]), "lineItem/BlendedCost": _text(rows["cost"]),
        "lineItem/LineItemDescription": _strings(
            [ri_description(c, ri.template, ri.recurring) for ri in ris]),
        "pricing/term": "Reserved", "pricing/publicOnDemandCost": "0.0",
        "pricing/publicOnDemandRate": "", "pricing/LeaseContractLength": "1yr",
        "pricing/OfferingClass": "standard",
        "pricing/purchaseOption": _strings([ri.purchase_option for ri in ris]),
        "reservation/ReservationARN": _strings([ri.arn for ri in ris]),
        "reservation/AmortizedUpfrontFeeForBillingPeriod": _text(rows["amortized"]),
        "reservation/NumberOfReservations": _strings([str(n) for n in rows["count"]]),
        "reservation/UnitsPerReservation": _strings([str(p.hours_in_month)] * len(ris)),
        "reservation/TotalReservedUnits": _strings([str(h) for h in rows["hours"]]),
        "reservation/NormalizedUnitsPerReservation": _strings([str(n) for n in rows["norm"]]),
        "reservation/TotalReservedNormalizedUnits": _strings(
            [str(n) for n in rows["norm_total"]]),
        "reservation/UnusedQuantity": _strings([str(u) for u in rows["unused"]]),
        "reservation/UnusedNormalizedUnitQuantity": _strings(
            [str(n) for n in rows["norm_unused"]]),
        "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": _text(rows["unused_amortized"]),
        "reservation/UnusedRecurringFee": _text(rows["unused_recurring"]),
        "reservation/UpfrontValue": _text(rows["upfront"]),
        "reservation/ModificationStatus": "Original",
        "reservation/StartTime": _strings([ri.start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                                           for ri in ris]),
        "reservation/EndTime": _strings([ri.end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                                         for ri in ris]),
        "lineItem/ResourceId": "", "lineItem/AvailabilityZone": "",
    }
    gen.ri_counts = rows["count"]
    return _block(gen, "RIFee", len(ris), values, rows["cost"], c.static, t)


def savings_plan_fees(gen: MonthRows) -> Iterator[Block]:
    """One SavingsPlanRecurringFee row per plan and hour of its window."""
    p = gen.p
    for s, (first, count) in enumerate(p.sp_windows):
        sp = gen.w.savings_plans[s]
        used = gen.sp_used[s, first:first + count]
        step = 10**9  # commitments are bought in $0.001 per hour
        commitment = max(ceil(int(used.max()) * 1.02 / step) * step, 500 * step)
        upfront = commitment * sp.upfront_share // 100
        recurring = commitment - upfront
        hours = np.arange(first, first + count)
        start = sp.start if first == 0 else p.start + timedelta(hours=first)
        stamp = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        values = {
            "identity/TimeInterval": p.intervals.take(pa.array(hours)),
            "lineItem/UsageStartDate": p.stamps.take(pa.array(hours)),
            "lineItem/UsageEndDate": p.stamps.take(pa.array(hours + 1)),
            "lineItem/ProductCode": "ComputeSavingsPlans",
            "product/ProductName": "Savings Plans for AWS Compute usage",
            "product/productFamily": "Savings Plans", "lineItem/UsageType": sp.usage_type,
            "product/usagetype": sp.usage_type, "lineItem/UsageAmount": "1.0",
            "lineItem/UnblendedRate": _text([recurring])[0].as_py(),
            "lineItem/UnblendedCost": _text([recurring])[0].as_py(),
            "lineItem/BlendedRate": _text([recurring])[0].as_py(),
            "lineItem/BlendedCost": _text([recurring])[0].as_py(),
            "lineItem/LineItemDescription": sp.description,
            "pricing/publicOnDemandCost": "0.0",
            "savingsPlan/SavingsPlanARN": sp.arn,
            "savingsPlan/TotalCommitmentToDate": _text([commitment])[0].as_py(),
            "savingsPlan/UsedCommitment": java_number_strings(used, COST_SCALE),
            "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod": _text([upfront])[0].as_py(),
            "savingsPlan/RecurringCommitmentForBillingPeriod": _text([recurring])[0].as_py(),
            "savingsPlan/StartTime": stamp,
            "savingsPlan/EndTime": start.replace(year=start.year + 1).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"),
            "savingsPlan/OfferingType": sp.offering_type,
            "savingsPlan/PaymentOption": sp.payment_option, "savingsPlan/PurchaseTerm": "1yr",
        }
        yield _block(gen, "SavingsPlanRecurringFee", count, values, [recurring] * count)


def fees(gen: MonthRows) -> Block:
    """Support every month; in the first month also an RI upfront payment and a domain renewal."""
    support = max(100 * _UNIT, int(round(gen.usage_total * 0.10, 2) * 100) * 10**10)
    rows = [(*_SUPPORT, "Dollar", "", support, "AWS Support (Business)", "", "Anniversary")]
    if gen.p.first:
        ri = gen.w.reservations[0]
        upfront = gen.ri_counts[0] * ri.amortized * _HOURS_PER_YEAR
        usage_type = gen.c.static["lineItem/UsageType"][ri.template].replace(
            "BoxUsage", "HeavyUsage")
        rows.append(("AmazonEC2", "Amazon Elastic Compute Cloud", usage_type, "RunInstances",
                     upfront, f"Sign up charge for subscription: {ri.arn.rsplit('/', 1)[-1]}, "
                     f"planId: 2434713", ri.arn, "Purchase"))
        rows.append(("AmazonRegistrar", "Amazon Registrar", "global-registrar-com",
                     "RenewDomain", 13 * _UNIT, "Renew domain costflow-demo.com for 1 year",
                     "", "Anniversary"))
    cols = list(zip(*rows, strict=True))
    cost = list(cols[4])
    values = {
        "lineItem/ProductCode": _strings(list(cols[0])),
        "product/ProductName": _strings(list(cols[1])),
        "lineItem/UsageType": _strings(list(cols[2])), "lineItem/Operation": _strings(
            list(cols[3])), "lineItem/UsageAmount": "1.0",
        "lineItem/UnblendedRate": _text(cost), "lineItem/UnblendedCost": _text(cost),
        "lineItem/BlendedRate": _text(cost), "lineItem/BlendedCost": _text(cost),
        "lineItem/LineItemDescription": _strings(list(cols[5])),
        "reservation/ReservationARN": _strings(list(cols[6])),
        "bill/BillType": _strings(list(cols[7])), "pricing/publicOnDemandCost": "0.0",
    }
    return _block(gen, "Fee", len(rows), values, cost)


def taxes(gen: MonthRows) -> Block:
    """One Tax row per (account, product code) in use, as the real sample has (monthly)."""
    pairs = gen.w.tax_pairs
    n_codes = len(gen.c.codes)
    base = np.array([max(0.0, gen.taxable[a * n_codes + c]) for a, c in pairs])
    cost = (np.rint(base * 0.05 * 1e10) * 100).astype(np.int64).tolist()
    values = {
        "lineItem/UsageAccountId": _strings([gen.w.accounts[a] for a, _ in pairs]),
        "lineItem/ProductCode": _strings([gen.c.codes[c] for _, c in pairs]),
        "product/ProductName": _strings([gen.c.names[c] for _, c in pairs]),
        "lineItem/UsageAmount": "1.0", "lineItem/UnblendedCost": _text(cost),
        "lineItem/BlendedCost": _text(cost), "lineItem/TaxType": "Canada Tax",
        "lineItem/LineItemDescription": _strings(
            [f"Tax for product code {gen.c.codes[c]}" for _, c in pairs]),
        "pricing/publicOnDemandCost": "0.0", "pricing/currency": "",
    }
    return _block(gen, "Tax", len(pairs), values, cost)


def month_end_blocks(gen: MonthRows) -> Iterator[Block]:
    """All month-end rows of ``gen``'s month; call after its hourly blocks are consumed."""
    yield ri_fees(gen)
    yield from savings_plan_fees(gen)
    yield fees(gen)
    yield taxes(gen)
