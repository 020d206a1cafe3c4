"""Microsoft's FOCUS export (``azure_focus``) on real data: the Microsoft rows of the FOCUS 1.0
sample dataset ingest through the CLI and reconcile exactly per (billing account, billing period).

The expected totals are computed here independently: the csv module and Decimal over BilledCost.
The sample writes absent values as unquoted ``NULL`` and timestamps without a zone, so both traps
are exercised on real rows; the Parquet variant carries typed columns (doubles, timestamps).
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costflow.errors import ConfigError
from costflow.providers import CATALOG
from costflow.warehouse import connect
from tests.conftest import require_shared

SAMPLE = "samples/focus/focus_1_0_sample.csv"
ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/8611537"


def _microsoft_rows() -> tuple[list[str], list[dict[str, str]]]:
    with require_shared(SAMPLE).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["ProviderName"] == "Microsoft"]
        return list(reader.fieldnames or []), rows


def _expected(rows: list[dict[str, str]]) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[(r["BillingAccountId"], r["BillingPeriodStart"][:7])] += Decimal(r["BilledCost"])
    return dict(totals)


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_parquet(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    """The same rows as Microsoft's Parquet export types them: doubles, UTC timestamps, text."""
    money = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
             "PricingQuantity", "ListUnitPrice", "ContractedUnitPrice"}
    times = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}
    arrays = {}
    for name in header:
        values = [None if r[name] in ("NULL", "") else r[name] for r in rows]
        if name in money:
            arrays[name] = pa.array([None if v is None else float(v) for v in values],
                                    pa.float64())
        elif name in times:
            arrays[name] = pa.array([None if v is None else v.replace(" ", "T") for v in values]
                                    ).cast(pa.timestamp("ms"))
        else:
            arrays[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


def _check_reconciled(report: dict, expected: dict[tuple[str, str], Decimal]) -> None:
    assert report["status"] == "succeeded"
    got = {(s["billing_account_id"], s["billing_period_start"][:7]): s for s in report["slices"]}
    assert set(got) == set(expected)
    for key, total in expected.items():
        assert Decimal(got[key]["source_basis"]) == total
        assert Decimal(got[key]["warehouse_billed_cost"]) == total
        assert Decimal(got[key]["dead_lettered_cost"]) == 0
        assert got[key]["reconciled"] is True


@pytest.mark.needs_shared
@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_microsoft_rows_of_the_focus_sample_reconcile_exactly(
        tmp_path: Path, ingest, container: str) -> None:
    header, rows = _microsoft_rows()
    assert len(rows) == 51
    expected = _expected(rows)
    assert expected == {(ACCOUNT, "2024-09"): Decimal("1.97651418586")}
    write = _write_csv if container == "csv" else _write_parquet
    source = write(tmp_path / f"focus.{container}", header, rows)
    report = ingest(source, provider="azure", cli=True)  # `costflow ingest --json`
    _check_reconciled(report, expected)
    warehouse = connect(f"duckdb:///{tmp_path}/w.duckdb")
    try:
        loaded = warehouse.query(
            "SELECT x_SourceFormat AS fmt, x_SourceProvider AS provider, "
            "BillingAccountType AS kind, x_ResourceGroupName AS rg, ChargeClass AS cls, "
            "CommitmentDiscountId AS cd, BillingPeriodStart AS bps, ChargePeriodStart AS cps, "
            "ServiceProviderName AS sp, HostProviderName AS hp, Tags AS tags, "
            "x_DataQualityFlags AS flags, BilledCost AS billed, x_SourceRowNumber AS n "
            "FROM cost_analytics.cost_line_items").to_pylist()
    finally:
        warehouse.close()
    assert len(loaded) == 51
    assert sum(Decimal(r["billed"]) for r in loaded) == sum(expected.values())
    assert {r["fmt"] for r in loaded} == {"azure_focus"}
    assert {r["provider"] for r in loaded} == {"azure"}
    assert {r["kind"] for r in loaded} == {"Billing Account"}  # EA: no /billingProfiles/
    groups = {re.search(r"/resourcegroups/([^/]+)", r["ResourceId"], re.I).group(1)
              for r in rows}
    assert len(groups) == 17 and {r["rg"] for r in loaded} == groups
    assert all("x_ResourceGroupName:from_ResourceId" in r["flags"] for r in loaded)
    assert {r["cls"] for r in loaded} == {None} and {r["cd"] for r in loaded} == {None}  # NULL
    assert {str(r["bps"]) for r in loaded} == {"2024-09-01 00:00:00+00:00"}  # zone-less = UTC
    by_cps = {str(r["cps"]) for r in loaded}
    assert "2024-09-04 00:00:00+00:00" in by_cps
    assert {r["sp"] for r in loaded} == {"Microsoft"} == {r["hp"] for r in loaded}
    for r in loaded:  # Tags: the same JSON object as the source row's, empty values dropped
        source = rows[r["n"] - 1]
        want = {k: str(v) for k, v in json.loads(source["Tags"]).items() if v not in ("", None)
                } if source["Tags"] not in ("NULL", "") else {}
        assert (json.loads(r["tags"]) if r["tags"] else {}) == want
        assert Decimal(r["billed"]) == Decimal(source["BilledCost"])


def test_full_microsoft_header_is_detected_and_keeps_declared_x_columns() -> None:
    row = {"BilledCost": "12.5", "BillingAccountId":
           "/providers/Microsoft.Billing/billingAccounts/a1:b2/billingProfiles/P-XYZ",
           "BillingCurrency": "EUR", "BillingPeriodStart": "2025-03-01T00:00:00Z",
           "BillingPeriodEnd": "2025-04-01T00:00:00Z", "ChargeCategory": "Usage",
           "ChargePeriodStart": "2025-03-02T00:00:00Z", "ChargePeriodEnd":
           "2025-03-03T00:00:00Z", "ProviderName": "Microsoft", "PublisherName": "Microsoft",
           "ResourceId": "/subscriptions/s/resourceGroups/ShouldNotWin/providers/x/y/z",
           "x_ResourceGroupName": "rg-prod", "x_BillingProfileId": "P-XYZ",
           "x_SkuMeterCategory": "Virtual Machines", "x_BilledCostInUsd": "13.4375",
           "x_EffectiveCostInUsd": "NULL"}
    columns = list(row)
    normalizer = CATALOG.formats.detect(columns, None, "mem://focus.csv")
    assert normalizer.source_format == "azure_focus"
    batch = pa.RecordBatch.from_pydict({k: [v] for k, v in row.items()})
    mapped = normalizer.map(batch)
    assert mapped.errors == []
    assert mapped.columns["x_ResourceGroupName"].to_pylist() == ["rg-prod"]
    assert mapped.columns["BillingAccountType"].to_pylist() == ["Billing Profile"]
    assert json.loads(mapped.columns["x_ProviderMetrics"][0].as_py()) == {
        "BilledCostInUsd": "13.4375", "BilledCostInUsdUnit": "USD"}
    assert "x_BillingProfileId" not in mapped.columns
    assert mapped.source_basis.to_pylist() == [Decimal("12.5")]
    assert json.loads(mapped.columns["x_DataQualityFlags"][0].as_py() or "[]") == []


def test_rows_of_another_provider_are_dead_letters_not_azure_costs() -> None:
    row = {"BilledCost": ["1.0", "2.0"], "BillingAccountId": ["a", "b"],
           "BillingCurrency": ["USD"] * 2, "BillingPeriodStart": ["2024-09-01 00:00:00"] * 2,
           "BillingPeriodEnd": ["2024-10-01 00:00:00"] * 2, "ChargeCategory": ["Usage"] * 2,
           "ChargePeriodStart": ["2024-09-01 00:00:00"] * 2,
           "ChargePeriodEnd": ["2024-09-02 00:00:00"] * 2, "ProviderName": ["Microsoft", "Oracle"]}
    mapped = CATALOG.formats.get("azure_focus").map(pa.RecordBatch.from_pydict(row))
    assert [(e.column, e.mask.to_pylist()) for e in mapped.errors] == [
        ("ProviderName", [False, True])]


def test_plain_focus_header_needs_the_provider_and_short_name_needs_it_too() -> None:
    header, _ = ["BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
                 "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
                 "ProviderName"], None
    assert CATALOG.formats.detect(header, "azure", "f.csv").source_format == "azure_focus"
    assert CATALOG.formats.detect(header, "aws", "f.csv").source_format == "aws_focus"
    from costflow.errors import SourceError
    with pytest.raises(SourceError, match="matches no known export format"):
        CATALOG.formats.detect(header, None, "f.csv")
    assert CATALOG.formats.get("focus", "azure").source_format == "azure_focus"
    with pytest.raises(ConfigError, match="aws_focus, azure_focus"):
        CATALOG.formats.get("focus")
