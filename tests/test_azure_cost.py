"""Azure cost export normalizer: every header variant, the real samples, actual vs amortized."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.azure.exports import AzureSourceFile, finish_plan, read_azure
from costflow.sources import files as file_sources
from costflow.sources.contract import Plan, PlanRequest
from costflow.transforms.contract import BatchContext
from costflow.transforms.finalize import finalize
from tests.conftest import require_shared

SUB = "1caaa5a3-2b66-438e-8ab4-bce37d518c5d"
RID = (f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/"
       "virtualMachines/vm1")
# (canonical meaning -> header per variant); the same two rows are written under each.
VARIANTS = {
    "ea": {"date": "Date", "sub": "SubscriptionId", "rg": "ResourceGroup",
           "loc": "ResourceLocation", "cost": "CostInBillingCurrency",
           "cur": "BillingCurrencyCode", "qty": "Quantity", "unit": "UnitOfMeasure",
           "svc": "ConsumedService", "rid": "ResourceId", "tags": "Tags",
           "charge": "ChargeType", "model": "PricingModel", "acct": "BillingAccountId",
           "pstart": "BillingPeriodStartDate", "pend": "BillingPeriodEndDate",
           "payg": "PayGPrice", "meter": "MeterCategory"},
    "ea_new": {"date": "Date", "sub": "SubscriptionId", "rg": "ResourceGroup",
               "loc": "ResourceLocation", "cost": "Cost", "cur": "BillingCurrency",
               "qty": "Quantity", "unit": "UnitOfMeasure", "svc": "ConsumedService",
               "rid": "ResourceId", "tags": "Tags", "charge": "ChargeType",
               "model": "PricingModel", "acct": "BillingAccountId",
               "pstart": "BillingPeriodStartDate", "pend": "BillingPeriodEndDate",
               "payg": "PayGPrice", "meter": "MeterCategory"},
    "mca": {"date": "date", "sub": "SubscriptionId", "rg": "resourceGroupName",
            "loc": "resourceLocation", "cost": "costInBillingCurrency",
            "cur": "billingCurrency", "qty": "quantity", "unit": "unitOfMeasure",
            "svc": "consumedService", "rid": "ResourceId", "tags": "tags",
            "charge": "chargeType", "model": "pricingModel", "acct": "billingAccountId",
            "pstart": "billingPeriodStartDate", "pend": "billingPeriodEndDate",
            "payg": "PayGPrice", "meter": "meterCategory"},
    "payg": {"date": "UsageDateTime", "sub": "SubscriptionGuid", "rg": "ResourceGroup",
             "loc": "ResourceLocation", "cost": "PreTaxCost", "cur": "Currency",
             "qty": "UsageQuantity", "unit": "UnitOfMeasure", "svc": "ConsumedService",
             "rid": "InstanceId", "tags": "Tags", "meter": "MeterCategory"},
    "german": {"date": "UsageDateTime (UsageDateTime)",
               "sub": "Abonnement-GUID (SubscriptionGuid)",
               "rg": "Ressourcengruppe (ResourceGroup)",
               "loc": "Ressourcenstandort (ResourceLocation)", "cost": "PreTaxCost (PreTaxCost)",
               "cur": "Currency", "qty": "UsageQuantity (UsageQuantity)",
               "unit": "Maßeinheit (UnitOfMeasure)", "svc": "Genutzter Dienst (ConsumedService)",
               "rid": "InstanceId (InstanceId)", "tags": "Tags (Tags)",
               "meter": "Kategorie der Verbrauchseinheit (MeterCategory)"},
}
VARIANTS["bom"] = VARIANTS["payg"]
ROWS = [
    {"date": ("09/04/2023", "2023-09-04"), "cost": "2.64", "qty": "24", "unit": "1 Hour",
     "loc": "SouthCentralUS", "svc": "Microsoft.Compute", "meter": "Virtual Machines",
     "tags": '"env": "prod","team": "web"', "payg": "0.11"},
    {"date": ("9/5/2023", "2023-09-05"), "cost": "0.000011139", "qty": "0.0047", "unit": "10K",
     "loc": "westus", "svc": "Microsoft.Compute", "meter": "Virtual Machines",
     "tags": '{"env": "dev"}', "payg": "0.00237"},
]


def write_variant(path: Path, variant: str) -> Path:
    names = VARIANTS[variant]
    with path.open("w", newline="", encoding="utf-8-sig" if variant == "bom" else "utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names.values())
        for row in ROWS:
            iso = variant in ("payg", "german", "bom")
            values = {"date": row["date"][1] if iso else row["date"][0], "sub": SUB,
                      "rg": "rg-web", "rid": RID, "cur": "USD", "charge": "Usage",
                      "model": "On Demand" if variant == "mca" else "OnDemand",
                      "acct": "8611537", "pstart": "09/01/2023", "pend": "09/30/2023",
                      **{k: v for k, v in row.items() if k != "date"}}
            writer.writerow([values[k] for k in names])
    return path


def normalize(path: Path, fmt: str | None = None):
    source = file_sources.inspect(str(path), PlanRequest("azure", fmt, CATALOG))
    assert source is not None
    normalizer = CATALOG.formats.get(source.source_format)
    results = []
    for first, batch in file_sources.read_csv(source, CATALOG):
        ctx = BatchContext(str(path), source.source_format, "azure", first, "run-1",
                           datetime(2026, 1, 1, tzinfo=UTC))
        results.append(finalize(batch, normalizer.map(batch), ctx))
    return results


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_header_variants_give_the_same_numbers(tmp_path: Path, variant: str) -> None:
    [done] = normalize(write_variant(tmp_path / f"{variant}.csv", variant))
    assert done.dead_letters.num_rows == 0
    rows = done.rows.to_pylist()
    assert [r["BilledCost"] for r in rows] == [Decimal("2.64"), Decimal("0.000011139")]
    assert [r["ChargePeriodStart"].date().isoformat() for r in rows] == [
        "2023-09-04", "2023-09-05"]
    assert {r["SubAccountId"] for r in rows} == {SUB}
    assert {r["x_ResourceGroupName"] for r in rows} == {"rg-web"}
    assert [json.loads(r["Tags"]) for r in rows] == [{"env": "prod", "team": "web"},
                                                    {"env": "dev"}]
    assert [r["RegionId"] for r in rows] == ["southcentralus", "westus"]
    assert [r["RegionName"] for r in rows] == ["South Central US", "West US"]
    # Pricing units from the toolkit table: "10K" is 10,000 units per block.
    assert [r["PricingUnit"] for r in rows] == ["Hours", "Units"]
    assert [r["PricingQuantity"] for r in rows] == [Decimal(24), Decimal(47)]
    assert {(r["ServiceCategory"], r["ServiceSubcategory"]) for r in rows} == {
        ("Compute", "Virtual Machines")}
    assert {r["PricingCategory"] for r in rows} == {"Standard"}
    assert {r["BillingPeriodStart"].date().isoformat() for r in rows} == {"2023-09-01"}
    assert {r["BillingPeriodEnd"].date().isoformat() for r in rows} == {"2023-10-01"}
    account = "8611537" if variant in ("ea", "ea_new", "mca") else SUB
    assert {r["BillingAccountId"] for r in rows} == {account}
    [stats] = done.slices.values()
    assert stats.source_basis == stats.billed_cost == Decimal("2.640011139")


def _csv_cost_sum(path: Path) -> tuple[Decimal, int]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    name = "Cost" if "Cost" in rows[0] else "CostInBillingCurrency"
    return sum((Decimal(r[name]) for r in rows), Decimal(0)), len(rows)


@pytest.mark.needs_shared
@pytest.mark.parametrize("name,account,rows", [("ea_anonymous.csv", "12345678", 27),
                                               ("ea_actual_small.csv", "8611537", 11)])
def test_real_samples_reconcile_to_their_cost_column(name: str, account: str, rows: int) -> None:
    path = require_shared(f"samples/azure/{name}")
    expected, count = _csv_cost_sum(path)
    [done] = normalize(path)
    assert count == rows and done.rows.num_rows == rows and done.dead_letters.num_rows == 0
    [(key, stats)] = done.slices.items()
    assert (key.billing_account_id, key.billing_period_start.date().isoformat()) == (
        account, "2023-09-01")
    assert stats.source_basis == stats.billed_cost == expected


@pytest.mark.needs_shared
def test_real_amortized_sample_alone_keeps_every_cent() -> None:
    """Three rows carry 24+ decimal places: they are dead-lettered, never rounded."""
    path = require_shared("samples/azure/ea_amortized_small.csv")
    expected, _ = _csv_cost_sum(path)
    [done] = normalize(path)
    dead = done.dead_letters.to_pylist()
    assert len(dead) == 3 and all("more than 18 decimal places" in d["ErrorReason"]
                                  for d in dead)
    dead_sum = sum(Decimal(json.loads(d["RawRecord"])["Cost"]) for d in dead)
    [stats] = done.slices.values()
    assert stats.billed_cost + dead_sum == expected
    assert Decimal("0.0000000072922557592391990000") in {
        Decimal(json.loads(d["RawRecord"])["Cost"]) for d in dead}


@pytest.mark.needs_shared
def test_no_rows_file_is_planned_as_empty() -> None:
    path = require_shared("samples/azure/ea_no_rows.csv")
    plan = CATALOG.plan([str(path)], "azure")
    assert plan.files == [] and plan.empty_files == [str(path)]


def _paired(shared: Path) -> list[AzureSourceFile]:
    actual, amortized = (str(shared / "ea_actual_small.csv"),
                         str(shared / "ea_amortized_small.csv"))
    plan = CATALOG.plan([actual, amortized], "azure")
    assert all(isinstance(f, AzureSourceFile) for f in plan.files)
    return plan.files  # type: ignore[return-value]


@pytest.mark.needs_shared
def test_actual_and_amortized_are_joined_not_added() -> None:
    shared = require_shared("samples/azure")
    files = _paired(shared)
    assert [(Path(f.uri).name, f.dataset) for f in files] == [
        ("ea_actual_small.csv", "actual"), ("ea_amortized_small.csv", "amortized")]
    normalizer = CATALOG.formats.get("azure_cost_details")
    out = {}
    for source in files:
        rows, dead, basis = [], 0, Decimal(0)
        for first, batch in read_azure(source, CATALOG):
            ctx = BatchContext(source.uri, source.source_format, "azure", first, "r",
                               datetime(2026, 1, 1, tzinfo=UTC))
            done = finalize(batch, normalizer.map(batch), ctx)
            rows += done.rows.to_pylist()
            dead += done.dead_letters.num_rows
            basis += sum(s.source_basis for s in done.slices.values())
        out[Path(source.uri).name] = (rows, dead, basis)
    actual_rows, actual_dead, actual_basis = out["ea_actual_small.csv"]
    amortized_rows, amortized_dead, amortized_basis = out["ea_amortized_small.csv"]
    expected_actual, _ = _csv_cost_sum(shared / "ea_actual_small.csv")
    # BilledCost comes only from the actual export; reconciliation is against its sum.
    assert actual_basis == expected_actual and amortized_basis == 0
    assert sum(r["BilledCost"] for r in actual_rows + amortized_rows) == expected_actual
    assert {r["BilledCost"] for r in amortized_rows} == {Decimal(0)}
    # 10 of the 28 amortized rows are the actual rows' twins; 18 are amortized-only, 3 of
    # which carry more than 18 decimal places (dead letters, BilledCost 0 either way).
    assert len(actual_rows) == 11 and len(amortized_rows) + amortized_dead == 18
    purchase = next(r for r in actual_rows if r["ChargeCategory"] == "Purchase")
    assert (purchase["BilledCost"], purchase["EffectiveCost"]) == (Decimal("3.25"), 0)
    assert purchase["CommitmentDiscountType"] == "Reservation"
    ri = next(r for r in amortized_rows if r["PricingCategory"] == "Committed"
              and r["CommitmentDiscountType"] == "Reservation")
    assert (ri["BilledCost"], ri["EffectiveCost"]) == (0, Decimal("0.493152"))
    assert ri["CommitmentDiscountStatus"] == "Used"
    assert ri["CommitmentDiscountCategory"] == "Usage"
    sp = next(r for r in amortized_rows if r["CommitmentDiscountType"] == "Savings Plan")
    assert (sp["EffectiveCost"], sp["CommitmentDiscountCategory"]) == (
        Decimal("0.006000000468"), "Spend")
    assert all("BilledCost:not_in_actual_cost" in r["x_DataQualityFlags"]
               for r in amortized_rows)
    # Lineage: amortized-only rows keep their own row numbers in the amortized file.
    assert amortized_rows[0]["x_SourceRowNumber"] == 1
    assert 28 not in {r["x_SourceRowNumber"] for r in amortized_rows}  # a twin of actual


def test_unpairable_actual_and_amortized_are_refused(tmp_path: Path) -> None:
    actual = write_variant(tmp_path / "costs_actual_sept.csv", "ea")
    other = tmp_path / "other"
    other.mkdir()
    amortized = write_variant(other / "amortized_costs.csv", "ea")
    with pytest.raises(ConfigError, match="could not be paired"):
        CATALOG.plan([str(actual), str(amortized)], "azure")


def test_unpaired_file_says_what_could_not_be_derived(tmp_path: Path) -> None:
    path = write_variant(tmp_path / "export.csv", "ea")
    plan = CATALOG.plan([str(path)], "azure")
    assert any("without its amortized-cost companion" in n for n in plan.notes)
    [(_, batch)] = list(read_azure(plan.files[0], CATALOG))
    mapped = CATALOG.formats.get("azure_cost_details").map(batch)
    flags = mapped.columns["x_DataQualityFlags"].to_pylist()
    assert all("EffectiveCost:from_actual_cost" in f for f in flags)


def test_bad_values_become_dead_letters_naming_the_column(tmp_path: Path) -> None:
    path = write_variant(tmp_path / "bad.csv", "ea")
    text = path.read_text().replace("9/5/2023", "2023/31/09").replace(
        '"{""env"": ""dev""}"', '"env=dev"')
    path.write_text(text)
    [done] = normalize(path)
    assert done.rows.num_rows == 1
    [dead] = done.dead_letters.to_pylist()
    assert dead["ErrorColumn"] == "Date" and "Tags is not a JSON object" in dead["ErrorReason"]
    assert dead["x_SourceRowNumber"] == 2 and dead["SourceCost"] == Decimal("0.000011139")


def test_unknown_header_set_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mystery.csv"
    path.write_text("UsageDay,Amount,Subscription\n2023-09-01,1.5,abc\n")
    with pytest.raises(SourceError, match="mystery.csv.*matches no known azure export format"):
        CATALOG.plan([str(path)], "azure")


def test_missing_currency_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nocurrency.csv"
    path.write_text("SubscriptionId,Date,CostInBillingCurrency\nabc,09/01/2023,1.5\n")
    with pytest.raises(SourceError, match="nocurrency.csv.*BillingCurrencyCode"):
        CATALOG.plan([str(path)], "azure")


def test_finisher_leaves_other_providers_alone(tmp_path: Path) -> None:
    plan = Plan(files=[], empty_files=["x.csv"], notes=["n"])
    assert finish_plan(plan, CATALOG) is plan


def test_a_quantity_with_more_than_18_decimals_is_rounded_not_dead_lettered(tmp_path) -> None:
    path = write_variant(tmp_path / "qty.csv", "ea")
    path.write_text(path.read_text().replace(",0.0047,", ",0.0000000833333333333333,"))
    [done] = normalize(path)
    assert done.dead_letters.num_rows == 0
    second = done.rows.to_pylist()[1]
    assert second["BilledCost"] == Decimal("0.000011139")  # money is untouched
    # 10K units: 0.0000000833333333333333 x 10,000, rounded once at 18 places first.
    assert second["PricingQuantity"] == Decimal("0.00083333333333")
    assert "PricingQuantity:rounded" in json.loads(second["x_DataQualityFlags"])
