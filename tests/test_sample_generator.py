"""The synthetic AWS CUR generator: its files must be trustworthy as test truth.

Every figure the generator reports (row counts, the exact UnblendedCost total) is checked here
against the file itself, read back with Python's csv module, so the tests that use the generator
as truth rest on something that was verified independently.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from costflow.providers.aws.samples.cur import (
    CUR_COLUMNS,
    LINE_ITEM_TYPES,
    GeneratedCur,
    generate_cur,
    main,
    write_cur_delivery,
)
from costflow.providers.aws.samples.cur_catalog import SAMPLE_COLUMNS
from costflow.samples.csv_text import java_number_strings

ROWS = 20_000
# Numbers as AWS writes them (Java Double.toString): 0.0, 12.5, 0.0400929769, 1.443347E-4.
JAVA_NUMBER = re.compile(r"^-?(\d+\.\d+|\d\.\d+E-?\d+)$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$")


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


@pytest.fixture(scope="module")
def cur20k(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedCur, list[dict[str, str]]]:
    info = generate_cur(tmp_path_factory.mktemp("cur") / "cur.csv.gz", ROWS, seed=11)
    header, rows = _read(info.path)
    assert header == list(CUR_COLUMNS)
    return info, rows


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_cur(tmp_path / "a.csv.gz", 3_000, seed=5)
    b = generate_cur(tmp_path / "b.csv.gz", 3_000, seed=5)
    c = generate_cur(tmp_path / "c.csv.gz", 3_000, seed=6)
    plain = generate_cur(tmp_path / "a.csv", 3_000, seed=5)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()
    assert a.unblended_total == b.unblended_total != c.unblended_total
    assert gzip.decompress(a.path.read_bytes()) == plain.path.read_bytes()


def test_header_keeps_the_real_samples_94_columns_in_order(cur_sample: Path) -> None:
    with cur_sample.open(newline="", encoding="utf-8") as f:
        sample_header = next(csv.reader(f))
    assert len(sample_header) == 94
    assert list(SAMPLE_COLUMNS) == sample_header
    assert [c for c in CUR_COLUMNS if c in set(sample_header)] == sample_header
    extras = [c for c in CUR_COLUMNS if c not in set(sample_header)]
    assert {"lineItem/ResourceId", "reservation/ReservationARN", "product/instanceType",
            "resourceTags/user:Environment", "resourceTags/aws:createdBy"} <= set(extras)
    assert len(set(CUR_COLUMNS)) == len(CUR_COLUMNS)


def test_number_and_timestamp_text_has_the_real_samples_shape(cur_sample: Path, cur20k) -> None:
    _, rows = cur20k
    with cur_sample.open(newline="", encoding="utf-8") as f:
        sample = list(csv.DictReader(f))
    for column in ("lineItem/UnblendedCost", "lineItem/UsageAmount", "pricing/publicOnDemandCost"):
        assert all(JAVA_NUMBER.match(r[column]) for r in sample if r[column]), column
        bad = [r[column] for r in rows if r[column] and not JAVA_NUMBER.match(r[column])]
        assert bad == [], column
    assert all(TIMESTAMP.match(r["lineItem/UsageStartDate"]) for r in rows)
    assert rows[0]["bill/BillingPeriodStartDate"] == sample[0]["bill/BillingPeriodStartDate"]


def test_every_line_item_type_appears_and_counts_match(cur20k) -> None:
    info, rows = cur20k
    counts = Counter(r["lineItem/LineItemType"] for r in rows)
    assert set(counts) == set(LINE_ITEM_TYPES)
    assert dict(counts) == info.line_item_types
    assert info.rows == len(rows) == ROWS
    assert counts["Usage"] > ROWS * 0.8


def test_unblended_total_is_the_exact_sum_of_the_text(cur20k) -> None:
    info, rows = cur20k
    assert info.unblended_total == sum(Decimal(r["lineItem/UnblendedCost"]) for r in rows)
    costs = [Decimal(r["lineItem/UnblendedCost"]) for r in rows]
    tiny = [c for c in costs if 0 < abs(c) < Decimal("1e-8")]
    assert tiny and any(c.as_tuple().exponent < -10 for c in tiny)  # beyond DECIMAL(38,10)
    assert min(costs) < 0 < max(costs)


def test_tags_with_commas_quotes_and_non_ascii_survive_csv(cur20k) -> None:
    _, rows = cur20k
    teams = {r["resourceTags/user:Team"] for r in rows}
    assert {'Data "Lake" Ops', "growth, web", "データ基盤", ""} <= teams
    tagged = sum(1 for r in rows if r["resourceTags/user:Environment"])
    assert 0.2 * ROWS < tagged < 0.9 * ROWS


def test_savings_plans_reconcile(cur20k) -> None:
    _, rows = cur20k
    covered: dict[str, Decimal] = defaultdict(Decimal)
    covered_by_hour: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unblended: dict[str, Counter] = defaultdict(Counter)
    fees: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        arn, kind = r["savingsPlan/SavingsPlanARN"], r["lineItem/LineItemType"]
        if kind == "SavingsPlanCoveredUsage":
            spec = Decimal(r["savingsPlan/SavingsPlanEffectiveCost"])
            covered[arn] += spec
            covered_by_hour[arn, r["lineItem/UsageStartDate"]] += spec
            unblended[arn][Decimal(r["lineItem/UnblendedCost"])] += 1
        elif kind == "SavingsPlanNegation":
            unblended[arn][-Decimal(r["lineItem/UnblendedCost"])] -= 1
        elif kind == "SavingsPlanRecurringFee":
            fees[arn].append(r)
    assert fees and set(fees) == set(covered)
    for arn, fee_rows in fees.items():
        hourly = {Decimal(r["savingsPlan/TotalCommitmentToDate"]) for r in fee_rows}
        assert len(hourly) == 1  # one hourly commitment
        commitment = hourly.pop() * len(fee_rows)
        unused = sum(Decimal(r["savingsPlan/TotalCommitmentToDate"])
                     - Decimal(r["savingsPlan/UsedCommitment"]) for r in fee_rows)
        assert covered[arn] + unused == commitment
        assert all(Decimal(r["savingsPlan/UsedCommitment"])
                   == covered_by_hour.get((arn, r["lineItem/UsageStartDate"]), 0)
                   for r in fee_rows)
        assert +unblended[arn] == Counter()  # each negation is minus a covered usage row


def test_reserved_instances_reconcile(cur20k) -> None:
    _, rows = cur20k
    effective: dict[str, Decimal] = defaultdict(Decimal)
    used_hours: Counter = Counter()
    fees = {}
    for r in rows:
        arn = r["reservation/ReservationARN"]
        if r["lineItem/LineItemType"] == "DiscountedUsage":
            effective[arn] += Decimal(r["reservation/EffectiveCost"])
            used_hours[arn] += 1
            assert r["lineItem/UnblendedCost"] == "0.0"
        elif r["lineItem/LineItemType"] == "RIFee":
            fees[arn] = r
    assert len(fees) == 3 and set(effective) == set(fees)
    for arn, fee in fees.items():
        commitment = (Decimal(fee["reservation/AmortizedUpfrontFeeForBillingPeriod"])
                      + Decimal(fee["lineItem/UnblendedCost"]))
        unused = (Decimal(fee["reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"])
                  + Decimal(fee["reservation/UnusedRecurringFee"]))
        assert effective[arn] + unused == commitment
        reserved = int(fee["reservation/TotalReservedUnits"])
        assert reserved - int(fee["reservation/UnusedQuantity"]) == used_hours[arn]


def test_fee_with_reservation_arn_and_monthly_tax(cur20k) -> None:
    _, rows = cur20k
    fees = [r for r in rows if r["lineItem/LineItemType"] == "Fee"]
    assert any(r["reservation/ReservationARN"] and r["bill/BillType"] == "Purchase" for r in fees)
    taxes = [r for r in rows if r["lineItem/LineItemType"] == "Tax"]
    assert all(r["lineItem/UsageStartDate"] == "2023-11-01T00:00:00.000Z"
               and r["lineItem/UsageEndDate"] == "2023-12-01T00:00:00.000Z" for r in taxes)
    assert len({(r["lineItem/UsageAccountId"], r["lineItem/ProductCode"]) for r in taxes}) == len(
        taxes)
    assert len({r["lineItem/UsageAccountId"] for r in rows}) == 5  # payer + 4 linked


def test_delivery_layout_manifest_and_open_month(tmp_path: Path) -> None:
    files = write_cur_delivery(tmp_path, 2_001, months=["2023-10", "2023-11"], files_per_month=2,
                               report="cur-demo")
    rel = [f.path.relative_to(tmp_path).as_posix() for f in files]
    assert rel == ["cur-demo/20231001-20231101/cur-demo-1.csv.gz",
                   "cur-demo/20231001-20231101/cur-demo-2.csv.gz",
                   "cur-demo/20231101-20231201/cur-demo-1.csv.gz",
                   "cur-demo/20231101-20231201/cur-demo-2.csv.gz"]
    assert [f.rows for f in files] == [1_001, 1_000, 1_001, 1_000]
    manifest = json.loads((tmp_path / "cur-demo/20231101-20231201/cur-demo-Manifest.json")
                          .read_text())
    assert manifest["reportKeys"] == rel[2:]
    assert manifest["billingPeriod"] == {"start": "20231101T000000.000Z",
                                         "end": "20231201T000000.000Z"}
    assert len(manifest["columns"]) == len(CUR_COLUMNS)
    for f in files:
        _, rows = _read(f.path)
        assert len(rows) == f.rows
        assert sum(Decimal(r["lineItem/UnblendedCost"]) for r in rows) == f.unblended_total
        invoice_ids = {r["bill/InvoiceId"] for r in rows}
        assert (invoice_ids == {""}) == (f.month == "2023-11")  # the last month is still open
    october = [r for f in files[:2] for r in _read(f.path)[1]]
    november = [r for f in files[2:] for r in _read(f.path)[1]]
    assert {r["lineItem/UsageAccountId"] for r in october} == {
        r["lineItem/UsageAccountId"] for r in november}
    assert max(r["lineItem/UsageStartDate"] for r in november
               if r["lineItem/LineItemType"] == "Usage") < "2023-11-21"


def test_too_few_rows_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        generate_cur(tmp_path / "x.csv", 10)


def test_java_number_strings_is_exact_and_java_shaped() -> None:
    units = np.array([0, 10**12, 497, -1443347 * 10**2, 25 * 10**10, 10**18, 1], dtype=np.int64)
    assert java_number_strings(units, 12).to_pylist() == [
        "0.0", "1.0", "4.97E-10", "-1.443347E-4", "0.25", "1000000.0", "1.0E-12"]
    assert java_number_strings(np.array([10**17, 125 * 10**15], dtype=np.int64),
                               10).to_pylist() == ["1.0E7", "1.25E7"]
    rng = np.random.default_rng(0)
    values = rng.integers(-(10**15), 10**15, 5_000) // 10 ** rng.integers(0, 15, 5_000)
    text = java_number_strings(values, 12).to_pylist()
    assert [Decimal(t) for t in text] == [Decimal(int(v)).scaleb(-12) for v in values]


def test_cli_prints_the_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.csv"
    assert main(["--rows", "500", "--out", str(out), "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, rows = _read(out)
    assert printed["rows"] == len(rows) == 500
    assert Decimal(printed["unblended_total"]) == sum(
        Decimal(r["lineItem/UnblendedCost"]) for r in rows)
    assert main(["--rows", "5", "--out", str(out)]) == 2
    assert "too small" in capsys.readouterr().err
