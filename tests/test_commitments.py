"""Commitment coverage and utilization on rows shaped like the normalizers write them.

AWS rows follow the CUR mapping (costflow/providers/aws/cur.py): DiscountedUsage and
SavingsPlanCoveredUsage are Usage/Committed/Used, SavingsPlanNegation Usage/Committed/Used with
ListCost 0, RIFee and SavingsPlanRecurringFee Purchase/Unused with EffectiveCost = the unused
part. Azure's unused reservation is a Usage/Committed/Unused row; GCP's CUD-covered usage is
Used (no unused rows). The oracle is Python over these row dicts (`expected_*`), checked
against hand-computed numbers too.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costflow.errors import ConfigError
from costflow.services.commitments import (
    commitment_coverage,
    commitment_utilization,
    ratio,
)
from costflow.services.tenancy import Tenant
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import insert
from tests.warehouse_rows import cost_row

ACCT_A, ACCT_B, PROJECT_A = "210987654321", "az-billing-b", "acme-analytics"
NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
RI = "arn:aws:ec2:us-east-1:210987654321:reserved-instances/4b2c8a1e-ri-1"
SP = "arn:aws:savingsplans::210987654321:savingsplan/7f3e-sp-1"
CUD = "projects/acme-analytics/regions/us-central1/commitments/cud-1"
RES = "/providers/Microsoft.Capacity/reservationOrders/ro-1/reservations/res-1"


def aws(kind: str, listed: str, billed: str, effective: str, *, when: datetime = NOV,
        commitment: str | None = None, status: str | None = None, category: str = "Usage",
        pricing: str | None = "Standard") -> dict[str, Any]:
    ri = commitment == RI
    return cost_row(billed, account=ACCT_A, sub_account=ACCT_A, period=when,
                    charge_start=when + timedelta(days=3), ListCost=Decimal(listed),
                    EffectiveCost=Decimal(effective), ChargeCategory=category,
                    PricingCategory=pricing, CommitmentDiscountId=commitment,
                    CommitmentDiscountStatus=status,
                    CommitmentDiscountType=(("Reserved Instance" if ri else "Savings Plan")
                                            if commitment else None),
                    CommitmentDiscountCategory=(("Usage" if ri else "Spend")
                                                if commitment else None),
                    x_LineItemType=kind)


ROWS = [
    aws("DiscountedUsage", "0.10", "0", "0.06", commitment=RI, status="Used",
        pricing="Committed"),
    aws("DiscountedUsage", "0.10", "0", "0.06", commitment=RI, status="Used",
        pricing="Committed"),
    aws("RIFee", "0.15", "0.15", "0.03", commitment=RI, status="Unused", category="Purchase"),
    aws("SavingsPlanCoveredUsage", "1.00", "1.00", "0.70", commitment=SP, status="Used",
        pricing="Committed"),
    aws("SavingsPlanNegation", "0", "-1.00", "0", commitment=SP, status="Used",
        pricing="Committed"),
    aws("SavingsPlanRecurringFee", "0.80", "0.80", "0.10", commitment=SP, status="Unused",
        category="Purchase"),
    aws("Usage", "0.90", "0.90", "0.90"),                       # on demand: eligible
    aws("Usage", "0.50", "0.15", "0.15", pricing="Dynamic"),    # spot: not eligible
    aws("Tax", "0.20", "0.20", "0.20", category="Tax", pricing=None),
    aws("SavingsPlanCoveredUsage", "2.00", "2.00", "1.40", when=DEC, commitment=SP,
        status="Used", pricing="Committed"),
    aws("SavingsPlanRecurringFee", "1.40", "1.40", "0", when=DEC, commitment=SP,
        status="Unused", category="Purchase"),
    aws("Usage", "0.50", "0.50", "0.50", when=DEC),
    # GCP project of tenant A: CUD-covered usage and on-demand usage (no unused rows).
    cost_row("1.50", account="01AAAA-BBBBBB-CCCCCC", sub_account=PROJECT_A, period=NOV,
             charge_start=NOV + timedelta(days=5), ListCost=Decimal("4"),
             EffectiveCost=Decimal("2.5"), PricingCategory="Committed",
             CommitmentDiscountId=CUD, CommitmentDiscountStatus="Used",
             CommitmentDiscountType="Resource-based CUD", CommitmentDiscountCategory="Usage",
             x_SourceProvider="gcp", ProviderName="Google Cloud"),
    cost_row("6", account="01AAAA-BBBBBB-CCCCCC", sub_account=PROJECT_A, period=NOV,
             charge_start=NOV + timedelta(days=5), ListCost=Decimal("6"),
             x_SourceProvider="gcp", ProviderName="Google Cloud"),
    # Tenant B (Azure, EUR): reserved usage, the unused reservation, on-demand usage.
    cost_row("0", account=ACCT_B, sub_account="sub-b", period=NOV, currency="EUR",
             ListCost=Decimal("3"), EffectiveCost=Decimal("2"), PricingCategory="Committed",
             CommitmentDiscountId=RES, CommitmentDiscountStatus="Used",
             CommitmentDiscountType="Reservation", CommitmentDiscountCategory="Usage",
             x_SourceProvider="azure", ProviderName="Microsoft"),
    cost_row("0", account=ACCT_B, sub_account="sub-b", period=NOV, currency="EUR",
             ListCost=Decimal("1"), EffectiveCost=Decimal("1"), PricingCategory="Committed",
             CommitmentDiscountId=RES, CommitmentDiscountStatus="Unused",
             CommitmentDiscountType="Reservation", CommitmentDiscountCategory="Usage",
             x_SourceProvider="azure", ProviderName="Microsoft"),
    cost_row("5", account=ACCT_B, sub_account="sub-b", period=NOV, currency="EUR",
             ListCost=Decimal("5"), x_SourceProvider="azure", ProviderName="Microsoft"),
]
TENANT_A = Tenant.of("a", billing_accounts=[ACCT_A], sub_accounts=[PROJECT_A])
TENANT_B = Tenant.of("b", billing_accounts=[ACCT_B])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    path: Path = tmp_path_factory.mktemp("commitments") / "w.duckdb"
    wh = DuckDBWarehouse(path)
    wh.ensure_schema()
    insert(wh, ROWS)
    return wh


def visible(tenant: Tenant, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [r for r in ROWS if tenant.can_see(r["BillingAccountId"], r["SubAccountId"])
            and start <= r["ChargePeriodStart"] < end]


def expected_coverage(tenant: Tenant, start: datetime, end: datetime) -> dict[tuple, tuple]:
    sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in visible(tenant, start, end):
        eligible = (r["ChargeCategory"] == "Usage"
                    and (r["PricingCategory"] or "Standard") in ("Standard", "Committed")
                    and r["CommitmentDiscountStatus"] != "Unused")
        if eligible:
            month = date(r["ChargePeriodStart"].year, r["ChargePeriodStart"].month, 1)
            key = (r["x_SourceProvider"], month, r["BillingCurrency"])
            sums[key][1] += r["ListCost"]
            if r["CommitmentDiscountStatus"] == "Used":
                sums[key][0] += r["ListCost"]
    return {k: (c, e) for k, (c, e) in sums.items()}


def expected_utilization(tenant: Tenant, start: datetime, end: datetime) -> dict[tuple, tuple]:
    sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in visible(tenant, start, end):
        if r["CommitmentDiscountId"] and r["CommitmentDiscountStatus"] in ("Used", "Unused"):
            month = date(r["ChargePeriodStart"].year, r["ChargePeriodStart"].month, 1)
            key = (r["x_SourceProvider"], month, r["CommitmentDiscountId"])
            sums[key][r["CommitmentDiscountStatus"] == "Unused"] += r["EffectiveCost"]
    return {k: (u, n) for k, (u, n) in sums.items()}


def test_coverage_matches_the_rows(warehouse: DuckDBWarehouse) -> None:
    found = commitment_coverage(warehouse, TENANT_A, date(2026, 11, 1), date(2027, 1, 1))
    assert {(c.provider, c.period_start, c.currency): (c.covered, c.eligible) for c in found} \
        == expected_coverage(TENANT_A, NOV, datetime(2027, 1, 1, tzinfo=UTC))
    by_key = {(c.provider, c.period_start): c for c in found}
    # by hand: AWS November covered 0.10 + 0.10 + 1.00 + 0 of eligible 2.10 (spot, tax,
    # the fees excluded); December 2.00 of 2.50; GCP 4 of 10.
    aws_nov = by_key[("aws", date(2026, 11, 1))]
    assert (aws_nov.covered, aws_nov.eligible, aws_nov.coverage) == (
        Decimal("1.2"), Decimal("2.1"), Decimal("0.571429"))
    assert aws_nov.period_end == date(2026, 12, 1)
    assert by_key[("aws", date(2026, 12, 1))].coverage == Decimal("0.8")
    assert by_key[("gcp", date(2026, 11, 1))].coverage == Decimal("0.4")
    assert {c.currency for c in found} == {"USD"}  # tenant B's EUR rows are not in it

    total = commitment_coverage(warehouse, TENANT_A, date(2026, 11, 1), date(2027, 1, 1),
                                provider="aws", granularity="TOTAL")
    assert [(c.provider, c.period_start, c.period_end, c.coverage) for c in total] == [
        ("aws", date(2026, 11, 1), date(2027, 1, 1), ratio(Decimal("3.2"), Decimal("4.6")))]

    b = commitment_coverage(warehouse, TENANT_B, date(2026, 11, 1), date(2026, 12, 1))
    assert [(c.provider, c.currency, c.covered, c.eligible) for c in b] == [
        ("azure", "EUR", Decimal(3), Decimal(8))]  # the unused reservation row is not usage

    grouped = commitment_coverage(warehouse, TENANT_A, date(2026, 11, 1), date(2026, 12, 1),
                                  provider="aws", group_by="service")
    assert {c.group["service"] for c in grouped} == {"Amazon Elastic Compute Cloud"}


def test_utilization_matches_the_rows(warehouse: DuckDBWarehouse) -> None:
    report = commitment_utilization(warehouse, TENANT_A, date(2026, 11, 1), date(2027, 1, 1))
    assert {(u.provider, u.period_start, u.commitment_id): (u.used, u.unused)
            for u in report.commitments} == expected_utilization(
        TENANT_A, NOV, datetime(2027, 1, 1, tzinfo=UTC))
    by_key = {(u.commitment_id, u.period_start): u for u in report.commitments}
    ri = by_key[(RI, date(2026, 11, 1))]
    assert (ri.used, ri.unused, ri.utilization, ri.commitment_type) == (
        Decimal("0.12"), Decimal("0.03"), Decimal("0.8"), "Reserved Instance")
    assert by_key[(SP, date(2026, 11, 1))].utilization == Decimal("0.875")
    assert by_key[(SP, date(2026, 12, 1))].utilization == Decimal("1")
    assert by_key[(CUD, date(2026, 11, 1))].utilization == Decimal("1")
    totals = {(t.provider, t.period_start): t for t in report.totals}
    assert totals[("aws", date(2026, 11, 1))].utilization == Decimal("0.863158")  # .82 / .95

    b = commitment_utilization(warehouse, TENANT_B, date(2026, 11, 1), date(2026, 12, 1))
    assert [(u.commitment_id, u.used, u.unused, u.utilization) for u in b.commitments] == [
        (RES, Decimal(2), Decimal(1), ratio(Decimal(2), Decimal(3)))]
    only_gcp = commitment_utilization(warehouse, TENANT_A, date(2026, 11, 1),
                                      date(2026, 12, 1), provider="gcp")
    assert [u.commitment_id for u in only_gcp.commitments] == [CUD]


def test_bad_arguments(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(ConfigError, match="not after start"):
        commitment_coverage(warehouse, TENANT_A, date(2026, 12, 1), date(2026, 11, 1))
    with pytest.raises(ConfigError, match="unknown coverage group"):
        commitment_coverage(warehouse, TENANT_A, date(2026, 11, 1), date(2026, 12, 1),
                            group_by="BillingAccountId) OR (1=1")
    with pytest.raises(ConfigError, match="granularity"):
        commitment_utilization(warehouse, TENANT_A, date(2026, 11, 1), date(2026, 12, 1),
                               granularity="DAILY")
    with pytest.raises(ConfigError, match="unknown provider"):
        commitment_utilization(warehouse, TENANT_A, date(2026, 11, 1), date(2026, 12, 1),
                               provider="oracle")


def cur_truth(root: Path) -> tuple[dict[tuple[str, date], tuple[Decimal, Decimal]],
                                   dict[date, tuple[Decimal, Decimal]]]:
    """AWS's own numbers, read from the CUR files with the csv module: per commitment and
    month, used (DiscountedUsage reservation/EffectiveCost, SavingsPlanCoveredUsage
    savingsPlan/SavingsPlanEffectiveCost) and unused (RIFee unused upfront + unused recurring
    fee, SavingsPlanRecurringFee TotalCommitmentToDate - UsedCommitment); per month, covered
    and eligible on-demand cost (pricing/publicOnDemandCost of covered and of non-spot usage)."""
    import csv
    import gzip

    used: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    unused: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    coverage: dict[date, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    files = sorted(root.rglob("*.csv.gz"))
    assert files, f"no CUR files under {root}"
    for path in files:
        with gzip.open(path, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                def amount(column: str, row: dict[str, str] = row) -> Decimal:
                    return Decimal(row.get(column) or "0")

                kind = row["lineItem/LineItemType"]
                month = date.fromisoformat(row["bill/BillingPeriodStartDate"][:10])
                ri, sp = row["reservation/ReservationARN"], row["savingsPlan/SavingsPlanARN"]
                if kind == "DiscountedUsage":
                    used[(ri, month)] += amount("reservation/EffectiveCost")
                elif kind == "RIFee":
                    unused[(ri, month)] += (
                        amount("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod")
                        + amount("reservation/UnusedRecurringFee"))
                elif kind == "SavingsPlanCoveredUsage":
                    used[(sp, month)] += amount("savingsPlan/SavingsPlanEffectiveCost")
                elif kind == "SavingsPlanRecurringFee":
                    unused[(sp, month)] += (amount("savingsPlan/TotalCommitmentToDate")
                                            - amount("savingsPlan/UsedCommitment"))
                on_demand = amount("pricing/publicOnDemandCost")
                if kind in ("DiscountedUsage", "SavingsPlanCoveredUsage"):
                    coverage[month][0] += on_demand
                    coverage[month][1] += on_demand
                elif kind == "Usage" and row.get("pricing/term") != "Spot":
                    coverage[month][1] += on_demand
    keys = set(used) | set(unused)
    return ({k: (used[k], unused[k]) for k in keys},
            {m: (c, e) for m, (c, e) in coverage.items()})


def test_the_aws_demo_matches_the_cur_files(aws_demo: Any) -> None:
    """Through the whole pipeline: the demo's CUR files, read independently, against the
    tools' answers over the warehouse the demo loaded."""
    from costflow.warehouse import connect

    per_commitment, per_month = cur_truth(aws_demo.cwd / "exports")
    wh = connect(f"duckdb:///{aws_demo.cwd}/.costflow/warehouse.duckdb", reader=True)
    try:
        owner = Tenant.unrestricted_owner()
        start, end = min(per_month), max(per_month) + timedelta(days=40)
        report = commitment_utilization(wh, owner, start, end)
        coverage = commitment_coverage(wh, owner, start, end)
    finally:
        wh.close()
    assert {(u.commitment_id, u.period_start): (u.used, u.unused)
            for u in report.commitments} == per_commitment
    assert {c.period_start: (c.covered, c.eligible) for c in coverage} == per_month
    assert len(per_commitment) >= 4 and all(c.coverage for c in coverage)
