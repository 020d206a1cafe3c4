"""GCP billing export files (JSONL, Parquet, Avro) through the Beam pipeline into DuckDB.

The fixture set is built from the documented export schema (no real export may be shipped):
every cost_type, multi-credit rows, a EUR billing account, usage invoiced in the next month, a
correction of a prior month, global services without location, tiny and negative amounts. The
truth is computed from the JSON text by `costflow.providers.gcp.samples.billing.truth`,
independently of
the pipeline.
"""

from __future__ import annotations

import copy
import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.errors import CostflowError, SourceError
from costflow.providers.gcp.samples import billing as gs
from costflow.warehouse import connect
from tests.conftest import Ingest, normalize_file

SLICES = """
SELECT BillingAccountId AS account, FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) AS month,
       SUM(BilledCost) AS billed, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2
"""
ROWS = """
SELECT * EXCEPT (x_SourceUri, x_SourceFormat, x_RunId, x_IngestedAt)
FROM cost_analytics.cost_line_items
ORDER BY x_SourceRowNumber
"""


def query(tmp: Path, sql: str, db: str = "w") -> list[dict]:
    wh = connect(f"duckdb:///{tmp}/{db}.duckdb")
    try:
        return wh.query(sql).to_pylist()
    finally:
        wh.close()


def expected_slices(rows: list[dict]) -> list[tuple[str, str, Decimal]]:
    return sorted((a, m, total) for (a, m), total in gs.truth(rows).items())


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gcp")
    rows = gs.fixture_rows()
    return {"jsonl": gs.write_jsonl(rows, d / "export-000000000000.json.gz"),
            "plain": gs.write_jsonl(rows, d / "export-000000000000.json"),
            "parquet": gs.write_parquet(rows, d / "export-000000000000.parquet"),
            "avro": gs.write_avro(rows, d / "export-000000000000.avro")}


class Loaded:
    """Each format of the fixture set ingested once for the module, each into its own
    warehouse (db named after the format, one directory), on first use: the reports and the
    warehouse rows several tests read, for one pipeline run per format instead of one per test."""

    def __init__(self, files: dict[str, Path], tmp: Path) -> None:
        self.files, self.tmp, self.reports = files, tmp, {}

    def __call__(self, kind: str) -> dict:
        if kind not in self.reports:
            self.reports[kind] = Ingest(self.tmp)(self.files[kind], db=kind, provider="gcp")
        return self.reports[kind]

    def query(self, kind: str, sql: str) -> list[dict]:
        self(kind)
        return query(self.tmp, sql, db=kind)


@pytest.fixture(scope="module")
def loaded(fixture_files, tmp_path_factory) -> Loaded:
    return Loaded(fixture_files, tmp_path_factory.mktemp("gcp-loaded"))


def test_fixture_set_covers_what_the_issue_lists() -> None:
    rows = gs.fixture_rows()
    assert {r["cost_type"] for r in rows} == {"regular", "tax", "adjustment", "rounding_error"}
    assert any(len(r["credits"]) >= 3 for r in rows)
    assert {r["currency"] for r in rows} == {"USD", "EUR"}
    assert any(r["location"] is None and r["project"] is None for r in rows)
    assert any(r["invoice"]["month"] == "202611" and r["usage_start_time"] < "2026-11-01 08"
               for r in rows)
    assert any(r["adjustment_info"] and r["usage_start_time"].startswith("2026-09")
               for r in rows)
    assert any(0 < abs(r["cost"]) < 1e-5 for r in rows) and any(r["cost"] < 0 for r in rows)


@pytest.mark.parametrize("kind", ["jsonl", "plain", "parquet", "avro"])
def test_each_format_reconciles_to_cost_plus_credits(loaded, kind) -> None:
    report = loaded(kind)
    assert report["status"] == "succeeded"
    got = [(r["account"], r["month"], r["billed"]) for r in loaded.query(kind, SLICES)]
    assert got == expected_slices(gs.fixture_rows())
    # Exact, in the report too: source basis = loaded BilledCost, per slice.
    assert got[0][2] == Decimal("565.057594")
    slices = {(s["billing_account_id"], s["billing_period_start"][:7]): s
              for s in report["slices"]}
    usd_oct = slices[(gs.USD_ACCOUNT, "2026-10")]
    assert Decimal(usd_oct["source_basis"]) == Decimal("565.057594")
    assert Decimal(usd_oct["warehouse_billed_cost"]) == Decimal("565.057594")
    assert usd_oct["reconciled"] is True and usd_oct["difference"] == "0"


def test_all_formats_give_identical_warehouse_rows(loaded) -> None:
    results = {}
    for kind in ("jsonl", "parquet", "avro"):
        assert loaded(kind)["status"] == "succeeded"
        results[kind] = loaded.query(kind, ROWS)
    assert len(results["jsonl"]) == len(gs.fixture_rows())
    assert results["parquet"] == results["jsonl"]
    assert results["avro"] == results["jsonl"]


def test_mapping_of_the_fixture_rows(loaded) -> None:
    rows = loaded.query("jsonl", ROWS)
    first = rows[0]
    assert first["BilledCost"] == Decimal("0.155289")            # 0.194236 - 0.038847 - 0.0001
    assert first["x_GrossCost"] == Decimal("0.194236")
    assert first["ContractedCost"] == Decimal("0.194236")
    assert first["ListCost"] == Decimal("0.21048")
    credits = json.loads(first["x_Credits"])
    assert [(c["type"], c["amount"]) for c in credits] == [
        ("SUSTAINED_USAGE_DISCOUNT", "-0.038847"), ("FREE_TIER", "-0.0001")]
    tags = json.loads(first["Tags"])
    assert tags["env"] == "staging"        # resource label beats project label and tag
    assert tags["team"] == "web"           # inherited project label
    assert tags["583041925877/env"] == "prod"
    assert tags["compute.googleapis.com/machine_spec"] == "n2-standard-4"
    assert (first["SubAccountId"], first["SubAccountType"]) == ("web-prod", "Project")
    assert (first["RegionId"], first["AvailabilityZone"]) == ("us-central1", "us-central1-a")
    assert first["ResourceId"].startswith("//compute.googleapis.com/projects/web-prod/")
    assert (first["ServiceCategory"], first["ServiceSubcategory"]) == (
        "Compute", "Virtual Machines")
    by_sku = {r["ChargeDescription"]: r for r in rows}
    covered = rows[1]
    assert covered["BilledCost"] == 0 and covered["PricingCategory"] == "Committed"
    assert (covered["CommitmentDiscountId"], covered["CommitmentDiscountCategory"],
            covered["CommitmentDiscountStatus"]) == ("2470112847553251231", "Usage", "Used")
    fee = by_sku["Commitment v1: Cpu in Americas for 1 Year"]
    assert (fee["ChargeCategory"], fee["ChargeFrequency"]) == ("Purchase", "Recurring")
    support = by_sku["Enhanced Support"]
    assert support["SubAccountId"] is None and support["RegionId"] is None
    assert by_sku["Sales tax"]["ChargeCategory"] == "Tax"
    assert by_sku["Sales tax"]["SkuId"] is None
    goodwill = by_sku["Goodwill"]
    assert (goodwill["ChargeCategory"], goodwill["ChargeClass"]) == ("Adjustment", None)
    assert json.loads(goodwill["x_AdjustmentInfo"])["type"] == "GOODWILL"
    assert by_sku["Rounding error"]["BilledCost"] == Decimal("-0.000001")
    corrections = [r for r in rows if r["ChargeClass"] == "Correction"]
    assert [r["BilledCost"] for r in corrections] == [Decimal("-0.310778"), Decimal("0.233084")]
    assert {r["BillingPeriodStart"].strftime("%Y%m") for r in corrections} == {"202610"}
    late = [r for r in rows if r["BillingPeriodStart"].strftime("%Y%m") == "202611"]
    assert len(late) == 1 and late[0]["ChargeClass"] is None
    assert "ChargePeriod:usage_before_invoice_month" in late[0]["x_DataQualityFlags"]
    tiny = by_sku["Class A Operations"]
    assert (tiny["x_GrossCost"], tiny["BilledCost"]) == (Decimal("2.4E-7"), 0)
    storage = by_sku["Standard Storage US"]
    assert storage["ListCost"] == Decimal("0.1")            # no cost_at_list: falls back to cost
    assert "ListCost:from_cost" in storage["x_DataQualityFlags"]
    eur = [r for r in rows if r["BillingCurrency"] == "EUR"]
    assert [r["BilledCost"] for r in eur] == [Decimal("0.045631"), Decimal("0.012")]
    assert eur[0]["CommitmentDiscountCategory"] == "Spend"
    assert eur[0]["CommitmentDiscountId"] == "a8f1c2d3-flex-cud-eu"
    market = by_sku["Standard plan"]
    assert market["PublisherName"] == "Elasticsearch B.V."
    assert market["InvoiceIssuerName"] == "Google Cloud"


def test_older_export_without_new_fields_is_tolerated(tmp_path, ingest) -> None:
    rows = gs.fixture_rows()
    old = []
    for r in rows:
        r = {k: v for k, v in r.items() if k not in {
            "price", "consumption_model", "cost_at_list", "tags", "resource", "subscription"}}
        old.append(r)
    path = gs.write_jsonl(old, tmp_path / "old.json")
    report = ingest(path, provider="gcp")
    assert report["status"] == "succeeded"
    got = query(tmp_path, "SELECT DISTINCT x_SourceFormat AS f FROM "
                          "cost_analytics.cost_line_items")
    assert got == [{"f": "gcp_billing_export_v1"}]      # standard table detected
    assert [(r["account"], r["month"], r["billed"]) for r in query(tmp_path, SLICES)] == \
        expected_slices(rows)


def test_missing_cost_is_dead_lettered_and_still_reconciles(tmp_path) -> None:
    # The normalizer and finalize() alone (what the pipeline's normalize step runs); loading
    # dead letters and reconciling them in the warehouse is tests/test_azure_samples_e2e.py's.
    rows = gs.fixture_rows()
    broken = copy.deepcopy(rows[0])
    broken["cost"] = None
    path = gs.write_jsonl(rows + [broken], tmp_path / "e.json")
    done = normalize_file(path, "gcp")
    # The run would succeed: not refused at commit, and every slice adds up.
    assert done.refusals() == [] and all(s.difference == 0 for s in done.slices.values())
    dead = done.dead_letters.select(["ErrorColumn", "SourceCost", "RawRecord"]).to_pylist()
    assert len(dead) == 1 and dead[0]["ErrorColumn"] == "cost"
    assert dead[0]["SourceCost"] == Decimal("-0.038947")    # its credits, as SUM() counts them
    assert json.loads(dead[0]["RawRecord"])["service"]["description"] == "Compute Engine"
    truth = gs.truth(rows)[(gs.USD_ACCOUNT, "202610")]
    loaded = {(k.billing_account_id, k.billing_period_start.strftime("%Y%m")): s.billed_cost
              for k, s in done.slices.items()}
    assert loaded[(gs.USD_ACCOUNT, "202610")] == truth


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return path


def test_malformed_json_line_is_a_clear_error(tmp_path, ingest) -> None:
    good = [json.dumps(r) for r in gs.fixture_rows()]
    path = _write_lines(tmp_path / "bad.json.gz", good[:3] + ['{"billing_account_id": "x",'] +
                        good[3:])
    with pytest.raises(CostflowError, match=r"bad\.json\.gz, row 4: line 4 is not valid JSON"):
        ingest(path, provider="gcp")


def test_wrong_nesting_is_a_clear_error(tmp_path, ingest) -> None:
    rows = gs.fixture_rows()
    wrong = copy.deepcopy(rows[2])
    wrong["credits"] = {"name": "x", "amount": -1.0}      # a record where a list belongs
    path = gs.write_jsonl(rows[:2] + [wrong], tmp_path / "nest.json")
    with pytest.raises(CostflowError) as err:
        ingest(path, provider="gcp")
    assert "row 3" in str(err.value) and "credits" in str(err.value)
    assert "expected an array (REPEATED)" in str(err.value)


def test_first_line_not_json_fails_planning(tmp_path, ingest) -> None:
    path = tmp_path / "x.json"
    path.write_text("not json\n")
    with pytest.raises(SourceError, match="line 1 is not JSON"):
        ingest(path, provider="gcp")


def test_reexport_of_a_day_ends_with_exactly_the_union(tmp_path, ingest) -> None:
    """Late rows: day N's export is re-extracted with rows appended after the first load. The
    unit of replacement is (provider, billing account, invoice month), so pointing --source at
    the invoice month's whole export directory replaces the month with exactly what it holds."""
    base = gs.generate_rows(300, seed=11, late_fraction=0)
    day = [r for r in base if r["usage_start_time"].startswith("2026-10-05")]
    other = [r for r in base if not r["usage_start_time"].startswith("2026-10-05")]
    assert day and other
    month_dir = tmp_path / "export" / "202610"
    month_dir.mkdir(parents=True)
    gs.write_jsonl(other, month_dir / "days-other.json.gz")
    gs.write_jsonl(day, month_dir / "day-2026-10-05.json.gz")
    ingest(month_dir, provider="gcp")
    first = query(tmp_path, SLICES)
    assert [(r["account"], r["month"], r["billed"]) for r in first] == expected_slices(base)
    # Google appends late rows for day N (a later export_time); the day is re-extracted.
    late = gs.generate_rows(25, seed=12, late_fraction=1.0)
    for r in late:
        r["usage_start_time"] = "2026-10-05 10:00:00 UTC"
        r["usage_end_time"] = "2026-10-05 11:00:00 UTC"
    gs.write_jsonl(day + late, month_dir / "day-2026-10-05.json.gz")
    ingest(month_dir, provider="gcp")
    ingest(month_dir, provider="gcp")  # and a rerun changes nothing
    union = base + late
    got = query(tmp_path, SLICES)
    assert [(r["account"], r["month"], r["billed"]) for r in got] == expected_slices(union)
    assert sum(r["n"] for r in got) == len(union)        # no duplicates, nothing lost
