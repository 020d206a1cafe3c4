"""Any provider's FOCUS export (``costflow ingest --provider focus``) end to end.

The official FOCUS 1.0 sample (AWS, Microsoft and Oracle rows in one file) loads and reconciles
per provider, billing account and period against totals computed here from the CSV text with
the csv module and Decimal; FOCUS 1.2 and 1.3 exports of our own warehouse (`costflow export`)
re-ingest into a fresh warehouse with identical totals. Smaller files (written here) cover the
literal ``NULL``, CSV.gz, the 1.3 column names without the deprecated ones, and a file missing
a mandatory column.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costflow import cli
from costflow.errors import SourceError
from costflow.providers import CATALOG
from costflow.providers.focus.normalizer import SOURCE_PROVIDERS
from tests.conftest import normalize_file, require_shared

SAMPLE = "samples/focus/focus_1_0_sample.csv"
SCENARIO = "samples/focus/commitment_discount_scenarios/commitment_discount_usage_scenario_1.csv"
Key = tuple[str, str, str]  # (provider, billing account, billing period "YYYY-MM")


def _sample_rows() -> list[dict[str, str]]:
    with require_shared(SAMPLE).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _expected(rows: list[dict[str, str]]) -> dict[Key, tuple[int, Decimal]]:
    """Rows and BilledCost per slice, from the CSV text (ProviderName -> its slice provider)."""
    totals: dict[Key, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    for r in rows:
        key = (SOURCE_PROVIDERS.get(r["ProviderName"], "focus"), r["BillingAccountId"],
               r["BillingPeriodStart"][:7])
        n, cost = totals[key]
        totals[key] = (n + 1, cost + Decimal(r["BilledCost"]))
    return dict(totals)


def _slices(report: dict) -> dict[Key, dict]:
    return {(s["provider"], s["billing_account_id"], s["billing_period_start"][:7]): s
            for s in report["slices"]}


@pytest.mark.needs_shared
def test_the_official_sample_loads_and_reconciles_per_provider_account_and_period(
        ingest) -> None:
    rows = _sample_rows()
    assert len(rows) == 1000
    expected = _expected(rows)
    # Detected by its header alone: no --provider, no --format.
    report, got = ingest(require_shared(SAMPLE), cli=True, queries={
        "loaded": "SELECT x_SourceProvider AS p, BillingAccountId AS a, "
                  "COUNT(*) AS n, SUM(BilledCost) AS cost, COUNT(ChargeClass) AS classes, "
                  "COUNT(InvoiceId) AS invoices, COUNT(ServiceSubcategory) AS subs, "
                  "COUNT(DISTINCT x_SourceFormat) AS formats "
                  "FROM cost_analytics.cost_line_items GROUP BY 1, 2",
        "dead": "SELECT x_SourceProvider AS p, ErrorColumn AS col, ErrorReason AS why, "
                "SourceCost AS cost FROM cost_analytics.dead_letters"})
    assert report["status"] == "succeeded"
    slices = _slices(report)
    assert set(slices) == set(expected) == {
        ("aws", "1234567890123", "2024-09"),
        ("azure", "/providers/Microsoft.Billing/billingAccounts/8611537", "2024-09"),
        ("focus", "20209880", "2024-09"), ("focus", "20209880", "2024-10")}
    for key, (n, cost) in expected.items():
        s = slices[key]
        assert s["rows_read"] == n, key
        assert Decimal(s["source_basis"]) == cost, key
        assert (Decimal(s["warehouse_billed_cost"]) + Decimal(s["dead_lettered_cost"])
                == cost), key
        assert s["reconciled"] is True, key
    # Two deviations from FOCUS MUSTs become dead letters naming the column, their cost counted
    # in their slices: Oracle leaves the mandatory ContractedCost NULL on its 7 rows, and one
    # AWS credit has ContractedUnitPrice -3 (MUST be non-negative). The other 992 rows load.
    assert sum(s["rows_loaded"] for s in report["slices"]) == 992
    assert sorted((d["p"], d["col"]) for d in got["dead"]) == [
        ("aws", "ContractedUnitPrice")] + [("focus", "ContractedCost")] * 7
    assert all(d["why"].startswith(d["col"]) for d in got["dead"])
    oracle = [r for r in rows if r["ProviderName"] == "Oracle"]
    credit = [r for r in rows if r["ContractedUnitPrice"].startswith("-")]
    assert sum(Decimal(d["cost"]) for d in got["dead"]) == sum(
        Decimal(r["BilledCost"]) for r in oracle + credit)
    loaded = {(r["p"], r["a"]): r for r in got["loaded"]}
    assert loaded[("aws", "1234567890123")]["n"] == 941
    assert Decimal(loaded[("aws", "1234567890123")]["cost"]) == expected[
        ("aws", "1234567890123", "2024-09")][1] - Decimal(credit[0]["BilledCost"])
    assert all(r["classes"] == 0 for r in got["loaded"])  # unquoted NULL is null, not "NULL"
    assert all(r["invoices"] == 0 for r in got["loaded"])  # a 1.2 column a 1.0 file lacks
    assert all(r["subs"] == r["n"] for r in got["loaded"])  # 1.1's, "Other (<category>)"
    assert all(r["formats"] == 1 for r in got["loaded"])


def _totals(ingest, db: str) -> dict[tuple, tuple]:
    rows = ingest.rows(
        "SELECT x_SourceProvider AS p, BillingAccountId AS a, BillingPeriodStart AS bps, "
        "COUNT(*) AS n, SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, "
        "SUM(ListCost) AS list, SUM(ContractedCost) AS contracted, "
        "SUM(PricingQuantity) AS pq, SUM(ConsumedQuantity) AS cq "
        "FROM cost_analytics.cost_line_items GROUP BY 1, 2, 3", db=db)
    return {(r["p"], r["a"], str(r["bps"])): (r["n"], r["billed"], r["effective"], r["list"],
                                               r["contracted"], r["pq"], r["cq"]) for r in rows}


def _focus_rows(ingest, db: str, version: str) -> list[tuple]:
    """Every FOCUS column of the version view, rows sorted: the dataset itself, compared."""
    from costflow.schemas.focus import focus_columns

    names = [c.name for c in focus_columns(version)]
    select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' for n in names)
    view = f"focus_v{version.replace('.', '_')}"
    return sorted(tuple(r.values()) for r in ingest.rows(
        f"SELECT {select} FROM cost_analytics.{view}", db=db))


@pytest.mark.needs_shared
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_our_own_focus_export_round_trips_with_identical_totals(
        ingest, cur_sample_loaded, tmp_path: Path, capsys, version: str) -> None:
    before = _totals(ingest, "w")
    out = tmp_path / f"export-{version}"
    assert cli.main(["export", "--out", str(out), "--focus-version", version,
                     f"--warehouse={ingest.url('w')}"]) == 0
    capsys.readouterr()
    data = out / "cost_and_usage.parquet"
    assert pq.read_metadata(data).num_rows == sum(v[0] for v in before.values())
    # 1.2: the Parquet file; 1.3: the dataset directory, its metadata.json beside the data.
    report = ingest(data if version == "1.2" else out, db="again", provider="focus", cli=True)
    assert report["status"] == "succeeded"
    assert [f["uri"] for f in report["files"]] == [str(data)]
    assert all(s["reconciled"] and s["rows_dead_lettered"] == 0 for s in report["slices"])
    assert _totals(ingest, "again") == before
    assert {k[0] for k in before} == {"aws"}
    # Not only the totals: every FOCUS column of every row comes back as it was exported.
    assert _focus_rows(ingest, "again", version) == _focus_rows(ingest, "w", version)


def _write_csv(path: Path, rows: list[dict[str, str]], header: list[str]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.needs_shared
def test_csv_gz_with_null_text_and_a_case_slip_normalizes_per_row(tmp_path: Path) -> None:
    rows = _sample_rows()
    header = list(rows[0])
    picked = [r for r in rows if r["ProviderName"] == "Microsoft"][:3] + [
        r for r in rows if r["ProviderName"] == "AWS"][:3]
    picked[0] = {**picked[0], "ChargeFrequency": "usage-based", "Tags": "NULL"}
    source = _write_csv(tmp_path / "two-providers.csv.gz", picked, header)
    done = normalize_file(source, provider="focus")
    assert done.dead_letters.num_rows == 0 and done.rows.num_rows == 6
    got = done.rows.to_pylist()
    assert [r["x_SourceProvider"] for r in got] == ["azure"] * 3 + ["aws"] * 3
    assert got[0]["ChargeFrequency"] == "Usage-Based"
    assert "ChargeFrequency:case_corrected" in json.loads(got[0]["x_DataQualityFlags"])
    assert got[0]["Tags"] is None and got[0]["ChargeClass"] is None
    assert [r["BilledCost"] for r in got] == [Decimal(r["BilledCost"]) for r in picked]
    assert {(k.provider, v.rows_read) for k, v in done.slices.items()} == {
        ("azure", 3), ("aws", 3)}


def _focus_1_3_row(provider: str, account: str, cost: str, **more: str) -> dict[str, str]:
    return {"BilledCost": cost, "BillingAccountId": account, "BillingAccountName": "acct",
            "BillingCurrency": "USD", "BillingPeriodStart": "2026-10-01T00:00:00Z",
            "BillingPeriodEnd": "2026-11-01T00:00:00Z", "ChargeCategory": "Usage",
            "ChargeClass": "NULL", "ChargeDescription": "compute", "ChargeFrequency":
            "Usage-Based", "ChargePeriodStart": "2026-10-02T00:00:00Z", "ChargePeriodEnd":
            "2026-10-02T01:00:00Z", "ContractedCost": cost, "EffectiveCost": cost,
            "InvoiceIssuerName": provider, "ListCost": cost, "PricingQuantity": "1",
            "PricingUnit": "Hours", "ServiceCategory": "Compute", "ServiceName": "VM",
            "ServiceProviderName": provider, "HostProviderName": provider, **more}


def test_focus_1_3_names_without_the_deprecated_columns_decide_the_slice(
        tmp_path: Path) -> None:
    rows = [_focus_1_3_row("Oracle", "ocid1.tenancy.1", "0.123456789012345678"),
            _focus_1_3_row("AWS", "111122223333", "2.50"),
            _focus_1_3_row("AWS", "111122223333", "not-a-number")]
    table = pa.table({k: [r[k] for r in rows] for k in rows[0]})
    pq.write_table(table, tmp_path / "focus13.parquet")
    done = normalize_file(tmp_path / "focus13.parquet")  # detected: no --provider
    loaded = done.rows.to_pylist()
    assert [(r["x_SourceProvider"], r["ProviderName"], r["PublisherName"], r["x_SourceFormat"])
            for r in loaded] == [("focus", "Oracle", "Oracle", "focus_export"),
                                 ("aws", "AWS", "AWS", "focus_export")]
    assert loaded[0]["BilledCost"] == Decimal("0.123456789012345678")
    assert loaded[0]["BillingAccountType"] == "Billing Account"  # a 1.2 column it lacks
    (dead,) = done.dead_letters.to_pylist()
    assert dead["ErrorColumn"] == "BilledCost" and dead["x_SourceProvider"] == "aws"
    stats = {str(k): v for k, v in done.slices.items()}
    assert stats["aws/111122223333/2026-10"].rows_dead_lettered == 1
    assert stats["focus/ocid1.tenancy.1/2026-10"].billed_cost == Decimal("0.123456789012345678")


def test_a_file_missing_a_mandatory_column_is_refused_naming_file_and_column(
        tmp_path: Path) -> None:
    row = _focus_1_3_row("Oracle", "ocid1.tenancy.1", "1.00")
    del row["BillingCurrency"]
    source = _write_csv(tmp_path / "no-currency.csv", [row], list(row))
    for provider in (None, "focus"):
        with pytest.raises(SourceError, match=r"no-currency\.csv.*BillingCurrency"):
            CATALOG.plan([str(source)], provider)


@pytest.mark.needs_shared
def test_the_commitment_scenario_fragment_is_not_a_focus_file_on_its_own() -> None:
    """The FOCUS repository's scenario files show a few columns only; as an export they lack
    the billing account, currency and provider, and planning says so."""
    scenario = require_shared(SCENARIO)
    with pytest.raises(SourceError) as err:
        CATALOG.plan([str(scenario)], "focus")
    text = str(err.value)
    assert scenario.name in text
    assert all(c in text for c in ("BillingAccountId", "BillingCurrency", "ProviderName"))


def test_a_provider_s_own_focus_export_keeps_its_own_format() -> None:
    header = [*_focus_1_3_row("AWS", "1", "1"), "ProviderName", "PublisherName", "x_ServiceCode"]
    assert CATALOG.formats.detect(header, None, "f.csv").source_format == "aws_focus"
    assert CATALOG.formats.detect(header, "focus", "f.csv").source_format == "focus_export"
    assert CATALOG.formats.detect(header[:-1], None, "f.csv").source_format == "focus_export"


def test_rows_breaking_a_focus_rule_are_dead_letters_naming_the_column() -> None:
    ok = _focus_1_3_row("Oracle", "t1", "1.00")
    rows = [ok,
            {**ok, "ChargeCategory": "Tax", "PricingQuantity": "1"},
            {**ok, "ChargeCategory": "Purchase", "ChargeFrequency": "usage-based"},
            {**ok, "CommitmentDiscountStatus": "Used"},
            {**ok, "ContractedUnitPrice": "-0.5"},
            {**ok, "CommitmentDiscountStatus": "Used", "CommitmentDiscountId": "cd-1"}]
    batch = pa.RecordBatch.from_pylist(
        [{"CommitmentDiscountId": "NULL", "CommitmentDiscountStatus": "NULL",
          "ContractedUnitPrice": "NULL", **r} for r in rows])
    mapped = CATALOG.formats.get("focus_export").map(batch)
    failing = {e.column: e.mask.to_pylist().index(True) for e in mapped.errors}
    assert failing == {"PricingQuantity": 1, "ChargeFrequency": 2,
                       "CommitmentDiscountStatus": 3, "ContractedUnitPrice": 4,
                       "CommitmentDiscountCategory": 5, "CommitmentDiscountType": 5}
    assert all(sum(e.mask.to_pylist()) == 1 for e in mapped.errors)
    assert mapped.columns["ChargeFrequency"][2].as_py() == "Usage-Based"  # then the rule


def test_a_directory_is_a_focus_dataset_only_by_its_focus_metadata(tmp_path: Path) -> None:
    from costflow.providers.focus.dataset import focus_version

    (tmp_path / "metadata.json").write_text(json.dumps(
        {"DataGenerator": {"DataGenerator": "oci"}, "Schema": {"FocusVersion": "1.0"}}))
    (tmp_path / "other.json").write_text('{"Schema": "1.0"}')
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n')
    assert focus_version(str(tmp_path / "metadata.json")) == "1.0"
    assert [focus_version(str(tmp_path / n)) for n in ("other.json", "lines.json")] == [None] * 2
    (tmp_path / "other.json").unlink()
    (tmp_path / "lines.json").unlink()
    with pytest.raises(SourceError, match="holds FOCUS metadata .* but no data file"):
        CATALOG.plan([str(tmp_path)], "focus")


def test_provider_x_columns_are_kept_as_one_json_object(tmp_path: Path) -> None:
    rows = [_focus_1_3_row("Oracle", "ocid1.tenancy.1", "1.00", x_CompartmentName="prod",
                           x_OverageFlag="NULL", x_ServiceCode="COMPUTE", Id="7"),
            _focus_1_3_row("Oracle", "ocid1.tenancy.1", "2.00", x_CompartmentName='a "b"',
                           x_OverageFlag="", x_ServiceCode="NULL", Id="8")]
    table = pa.table({k: [r[k] for r in rows] for k in rows[0]}).append_column(
        "x_UsageRatio", pa.array([0.1, None], pa.float64()))
    pq.write_table(table, tmp_path / "oci.parquet")
    loaded = normalize_file(tmp_path / "oci.parquet", provider="focus").rows.to_pylist()
    # Undeclared x_ columns as written (a Parquet double through its shortest text, NULL and
    # empty left out); x_ServiceCode is a declared column and stays one; Id is no x_ column.
    assert [json.loads(r["x_ProviderColumns"]) for r in loaded] == [
        {"x_CompartmentName": "prod", "x_UsageRatio": "0.1"}, {"x_CompartmentName": 'a "b"'}]
    assert [r["x_ServiceCode"] for r in loaded] == ["COMPUTE", None]
