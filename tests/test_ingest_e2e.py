"""End to end: real AWS CUR exports through the Beam pipeline into DuckDB, and back out.

Source truth is computed independently of the pipeline, with Python's csv module and Decimal.
"""

from __future__ import annotations

import csv
import gzip
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.cli import main
from costflow.errors import CostflowError, SourceError
from costflow.warehouse import connect
from tests.conftest import Ingest, normalize_file

pytestmark = pytest.mark.needs_shared


def _truth(path: Path) -> dict[tuple[str, str], Decimal]:
    opener = gzip.open if path.suffix == ".gz" else open
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            key = (row["bill/PayerAccountId"], row["bill/BillingPeriodStartDate"][:10])
            sums[key] += Decimal(row["lineItem/UnblendedCost"] or "0")
    return dict(sums)


def _ingest(tmp_path: Path, *sources: Path | str, extra: list[str] | None = None) -> dict:
    # The shared `ingest` fixture (tests/conftest.py), for a test that calls it by this name.
    return Ingest(tmp_path)(*sources, extra=extra)


def _query(tmp_path: Path, sql: str, params: dict | None = None) -> list[dict]:
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    try:
        return wh.query(sql, params or {}).to_pylist()
    finally:
        wh.close()


SLICE_SQL = """
SELECT BillingAccountId AS account, FORMAT_TIMESTAMP('%Y-%m-%d', BillingPeriodStart) AS period,
       SUM(BilledCost) AS billed, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2
"""
DEAD_SQL = """
SELECT BillingAccountId AS account, FORMAT_TIMESTAMP('%Y-%m-%d', BillingPeriodStart) AS period,
       SUM(SourceCost) AS cost, COUNT(*) AS n
FROM cost_analytics.dead_letters GROUP BY 1, 2
"""


def test_real_sample_loads_every_row_and_reconciles_exactly(tmp_path, cur_sample, ingest):
    report = ingest(cur_sample)
    assert report["status"] == "succeeded"
    truth = _truth(cur_sample)
    loaded = {(r["account"], r["period"]): r for r in _query(tmp_path, SLICE_SQL)}
    dead = {(r["account"], r["period"]): r for r in _query(tmp_path, DEAD_SQL)}
    assert set(loaded) | set(dead) == set(truth)
    for key, expected in truth.items():
        got = (loaded[key]["billed"] if key in loaded else 0) + (
            dead[key]["cost"] if key in dead else 0)
        assert got == expected, key
    rows = sum(r["n"] for r in loaded.values()) + sum(r["n"] for r in dead.values())
    assert rows == 1281 == report["totals"]["rows_read"]
    assert all(s["reconciled"] is True and s["difference"] == "0" for s in report["slices"])
    ledger = _query(tmp_path, "SELECT status, rows_read, rows_loaded FROM cost_analytics.load_runs")
    assert ledger == [{"status": "succeeded", "rows_read": 1281,
                       "rows_loaded": report["totals"]["rows_loaded"]}]


def test_rerun_is_identical_and_a_changed_cost_moves_the_total_exactly(tmp_path, cur_sample,
                                                                        ingest):
    ingest(cur_sample)
    first = _query(tmp_path, SLICE_SQL)
    by_service = "SELECT ServiceName, SUM(BilledCost) c FROM cost_analytics.cost_line_items " \
                 "GROUP BY 1 ORDER BY 1"
    services = _query(tmp_path, by_service)
    ingest(cur_sample)
    assert _query(tmp_path, SLICE_SQL) == first
    assert _query(tmp_path, by_service) == services
    # A restated copy: one Usage row's cost changes; re-ingesting replaces the slice.
    copy = tmp_path / "restated.csv"
    with open(cur_sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    cost_at, type_at = header.index("lineItem/UnblendedCost"), header.index("lineItem/LineItemType")
    target = next(i for i, r in enumerate(rows[1:], 1)
                  if r[type_at] == "Usage" and Decimal(r[cost_at]) > 0)
    old = Decimal(rows[target][cost_at])
    rows[target][cost_at] = str(old + Decimal("12.345678901"))
    with open(copy, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    ingest(copy)
    after = _query(tmp_path, SLICE_SQL)
    assert sum(r["billed"] for r in after) - sum(r["billed"] for r in first) == Decimal(
        "12.345678901")
    assert sum(r["n"] for r in after) == sum(r["n"] for r in first)


def _gz(src: Path, dst: Path) -> Path:
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        shutil.copyfileobj(f, g)
    return dst


def test_csv_gz_and_globs_give_the_same_result(tmp_path, cur_sample, ingest):
    nested = tmp_path / "exports" / "cur" / "20231101-20231201"
    nested.mkdir(parents=True)
    _gz(cur_sample, nested / "report-1.csv.gz")
    report = ingest(f"{tmp_path}/exports/**/*.csv.gz")
    assert report["status"] == "succeeded"
    assert report["totals"]["rows_read"] == 1281
    assert sum(r["billed"] for r in _query(tmp_path, SLICE_SQL)) == sum(_truth(cur_sample).values())


def _expect_failure_keeps_previous(ingest, bad: Path, *fragments: str) -> str:
    # The warehouse holds a finished ingest of the sample already (the `cur_sample_loaded`
    # fixture: one pipeline run per session, copied), the contents the failure must keep.
    before = _query(ingest.tmp, SLICE_SQL)
    assert sum(r["n"] for r in before) > 0
    with pytest.raises(CostflowError) as info:
        ingest(bad)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert _query(ingest.tmp, SLICE_SQL) == before
    return message


def test_truncated_gzip_fails_naming_the_file_and_keeps_previous_data(tmp_path, cur_sample,
                                                                     ingest, cur_sample_loaded):
    # Ten copies of the sample's rows, so the cut falls deep inside the stream, not the header.
    lines = cur_sample.read_text().splitlines()
    big = _gz_text(tmp_path / "whole.csv.gz", "\n".join([lines[0]] + lines[1:] * 10) + "\n")
    bad = tmp_path / "truncated.csv.gz"
    data = big.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])
    message = _expect_failure_keeps_previous(ingest, bad, str(bad),
                                             "the gzip stream is truncated or corrupt")
    assert "reading stopped after row" in message
    ledger = _query(tmp_path, "SELECT status FROM cost_analytics.load_runs ORDER BY started_at")
    assert [r["status"] for r in ledger] == ["succeeded", "failed"]
    assert not any((tmp_path / "staging").rglob("*.parquet"))


def test_truncated_gzip_header_is_named_too(tmp_path, cur_sample, ingest):
    bad = tmp_path / "tiny.csv.gz"
    bad.write_bytes(_gz(cur_sample, tmp_path / "whole.csv.gz").read_bytes()[:200])
    with pytest.raises(SourceError) as info:
        ingest(bad)
    assert f"{bad}: cannot be read: the gzip stream is truncated or corrupt" in str(info.value)


def test_missing_required_column_is_a_clear_error(tmp_path, cur_sample, ingest,
                                                  cur_sample_loaded):
    with open(cur_sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("lineItem/UnblendedCost")
    bad = tmp_path / "no-cost.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([r[:drop] + r[drop + 1:] for r in rows])
    # Without the cost column, the header is no longer recognisable as a CUR.
    _expect_failure_keeps_previous(ingest, bad, str(bad), "lineItem/UnblendedCost")


def test_missing_required_column_with_format_forced(tmp_path, cur_sample, ingest):
    with open(cur_sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("lineItem/UsageStartDate")
    bad = tmp_path / "no-start.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([r[:drop] + r[drop + 1:] for r in rows])
    with pytest.raises(SourceError) as info:
        ingest(bad)
    assert "lacks the required column(s) lineItem/UsageStartDate" in str(info.value)


def test_empty_and_non_csv_files_and_duplicate_headers(tmp_path, cur_sample, ingest,
                                                       cur_sample_loaded):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _expect_failure_keeps_previous(ingest, empty, str(empty), "is empty")
    png = tmp_path / "picture.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    with pytest.raises(SourceError, match="not a CSV text file"):
        ingest(png)
    header = cur_sample.read_text().splitlines()[0]
    dup = tmp_path / "dup.csv"
    dup.write_text(header + ",lineItem/UnblendedCost\n")
    with pytest.raises(SourceError, match="names column 'lineItem/UnblendedCost' twice"):
        ingest(dup)


def test_header_only_file_loads_nothing_and_says_so(tmp_path, cur_sample, ingest):
    only = tmp_path / "header-only.csv"
    only.write_text(cur_sample.read_text().splitlines()[0] + "\n")
    report = ingest(only)
    assert report["status"] == "succeeded"
    assert report["empty_files"] == [str(only)]
    assert report["totals"]["rows_read"] == 0


def test_unparseable_numbers_and_dates_are_dead_lettered_and_reconciled(tmp_path, cur_sample):
    # The normalizer and finalize() alone (what the pipeline's normalize step runs); loading
    # dead letters and reconciling them in the warehouse is tests/test_azure_samples_e2e.py's.
    with open(cur_sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    h = rows[0]
    cost, start, usage = (h.index("lineItem/UnblendedCost"), h.index("lineItem/UsageStartDate"),
                          h.index("lineItem/UsageAmount"))
    rows[5][cost] = "12,50"
    rows[6][start] = "yesterday"
    rows[7][usage] = "lots"
    bad = tmp_path / "bad-values.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    done = normalize_file(bad)
    assert done.refusals() == []  # not refused at commit: the run would succeed
    assert sum(s.rows_dead_lettered for s in done.slices.values()) == 3
    dead = sorted(({"n": d["x_SourceRowNumber"], "c": d["ErrorColumn"], "s": d["SourceCost"]}
                   for d in done.dead_letters.to_pylist()), key=lambda d: d["n"])
    assert [(d["n"], d["c"]) for d in dead] == [
        (5, "lineItem/UnblendedCost"), (6, "lineItem/UsageStartDate"), (7, "lineItem/UsageAmount")]
    assert dead[0]["s"] is None  # the unparseable cost itself is not counted as money
    assert all(s.difference == 0 for s in done.slices.values())


def test_dead_letter_threshold_fails_a_systematically_broken_source(tmp_path, cur_sample,
                                                                    ingest, cur_sample_loaded):
    with open(cur_sample, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    cost = rows[0].index("lineItem/UnblendedCost")
    for r in rows[1:200]:
        r[cost] = "n/a"
    bad = tmp_path / "broken.csv"
    with open(bad, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    _expect_failure_keeps_previous(ingest, bad, "systematically broken",
                                   "199 of 1,281 rows")


def test_failure_injected_mid_load_keeps_previous_contents(tmp_path, cur_sample, monkeypatch,
                                                          cur_sample_loaded):
    before = _query(tmp_path, SLICE_SQL)  # one finished ingest of the sample (fixture)
    assert sum(r["n"] for r in before) > 0
    from costflow.warehouse import duckdb_engine
    from tests.failing_warehouse import failing_after

    # connect() builds every engine of the run (the commit step's too) from this name.
    monkeypatch.setattr(duckdb_engine, "DuckDBWarehouse", failing_after("delete_slice_rows"))
    with pytest.raises(CostflowError,
                       match="injected failure after statement 'delete_slice_rows'"):
        _ingest(tmp_path, cur_sample)
    monkeypatch.undo()
    assert _query(tmp_path, SLICE_SQL) == before
    statuses = _query(tmp_path, "SELECT status FROM cost_analytics.load_runs ORDER BY started_at")
    assert [s["status"] for s in statuses] == ["succeeded", "failed"]


def test_cli_ingest_query_export(tmp_path, cur_sample, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "--provider", "aws", "--source", str(cur_sample)]) == 0
    assert (tmp_path / ".costflow" / "warehouse.duckdb").exists()
    out = capsys.readouterr().out
    assert "1,281 rows read" in out
    assert main(["query", "costs", "--start", "2023-11-01", "--end", "2023-12-01",
                 "--group-by", "service", "--format", "csv"]) == 0
    table = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert list(table[0])[:2] == ["service", "BillingCurrency"]
    assert sum(Decimal(r["cost"]) for r in table) == sum(_truth(cur_sample).values())
    assert main(["export", "--out", "focus.parquet"]) == 0
    import pyarrow.parquet as pq
    table = pq.read_table(tmp_path / "focus.parquet")
    assert table.num_columns == 57 and table.num_rows == 1281


def test_cli_bad_input_is_one_paragraph_and_nonzero(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nope.csv"
    assert main(["ingest", "--source", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("costflow: error: ") and "Traceback" not in err
    assert str(missing) in err and len(err.strip().splitlines()) == 1


def test_row_with_a_wrong_field_count_names_the_row(tmp_path, cur_sample, ingest):
    lines = cur_sample.read_text().splitlines()
    lines[40] = lines[40] + ",surplus"
    bad = _gz_text(tmp_path / "ragged.csv.gz", "\n".join(lines) + "\n")
    with pytest.raises(SourceError) as info:
        ingest(bad)
    assert "row 40 has 95 fields but the header has 94" in str(info.value)


def _gz_text(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as g:
        g.write(text)
    return path


def test_export_manifests_in_a_folder_are_not_read_as_data(tmp_path, cur_sample, ingest):
    month = tmp_path / "exports" / "report" / "20231101-20231201"
    month.mkdir(parents=True)
    _gz(cur_sample, month / "report-1.csv.gz")
    # A manifest is never billing rows; before, the JSON-lines reader claimed it as data.
    (month / "manifest.json").write_text('{"runInfo": {"runId": "r1"}}')
    report = ingest(tmp_path / "exports")
    assert [s["uri"].rsplit("/", 1)[-1] for s in report["sources"]] == ["report-1.csv.gz"]
    assert report["totals"]["rows_read"] == 1281
