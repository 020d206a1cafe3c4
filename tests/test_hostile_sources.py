"""Nothing lost, nothing doubled: hostile paths and inputs at planning and reading.

* A directory (or ``**`` glob) with symbolic links looping back into the tree, or a link to a
  file beside it, is planned with each file once, and the plan notes say what was not followed;
  hidden folders are skipped and named.
* Two files with the same bytes for the same format are refused at planning, across --source
  patterns and schemes (`costflow.providers.base.Catalog.plan`).
* Line items whose id repeats within a file are loaded, flagged ``LineItemId:duplicate`` and
  counted into a run warning.
* A file that changes between planning and reading, or while it is read, fails the run
  ("changed while the run read it"): what the ledger records is what was read.

Fixtures are cut from the real anonymized CUR sample in ../shared/samples.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from costflow.errors import CostflowError, SourceError
from costflow.providers import CATALOG, Catalog
from costflow.providers.aws.cur_shapes import athena_name
from costflow.sources import files
from costflow.sources.contract import Plan, PlanRequest, Scheme
from tests.conftest import normalize_file
from tests.test_s3_deliveries import s3_endpoint  # noqa: F401 - the shared moto server fixture

pytestmark = pytest.mark.needs_shared

DUPLICATE = "LineItemId:duplicate"


def _cur_rows(cur_sample: Path) -> tuple[list[str], list[list[str]]]:
    with cur_sample.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _plan_within(patterns: list[str], seconds: float = 60) -> Plan:
    """CATALOG.plan, failing the test instead of hanging when planning does not end."""
    done: dict[str, object] = {}

    def plan() -> None:
        try:
            done["plan"] = CATALOG.plan(patterns)
        except BaseException as exc:  # handed to the test
            done["error"] = exc

    worker = threading.Thread(target=plan, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"planning {patterns} did not end within {seconds} s"
    if "error" in done:
        raise done["error"]  # type: ignore[misc]
    return done["plan"]  # type: ignore[return-value]


@pytest.fixture
def looped_tree(tmp_path: Path, cur_sample: Path) -> Path:
    """exports/sub/cur.csv, two links to folders looping back, and a link to the file."""
    header, rows = _cur_rows(cur_sample)
    root = tmp_path / "exports"
    _write_csv(root / "sub" / "cur.csv", header, rows[:200])
    (root / "sub" / "loop").symlink_to("..")
    (root / "sub" / "again").symlink_to("../sub")
    (root / "sub" / "alias.csv").symlink_to("cur.csv")
    return root


@pytest.mark.parametrize("pattern", ["{root}", "{root}/**/*.csv"])
def test_symlink_loops_are_not_followed_and_each_file_is_planned_once(looped_tree, pattern):
    plan = _plan_within([pattern.format(root=looped_tree)])
    assert [f.uri for f in plan.files] == [str(looped_tree / "sub" / "cur.csv")]
    notes = " | ".join(plan.notes)
    assert "2 symbolic link(s) to folders not followed" in notes
    assert "sub/again" in notes and "sub/loop" in notes
    assert f"{looped_tree / 'sub' / 'alias.csv'} is the same file as" in notes


def test_a_looped_tree_ingests_the_real_cost_once(tmp_path, cur_sample, ingest):
    """One link back into the tree: glob's ``**`` listed the file 41 times, and the run
    reconciled the 41 copies against themselves and succeeded with 41x the cost."""
    header, rows = _cur_rows(cur_sample)
    root = tmp_path / "exports"
    _write_csv(root / "sub" / "cur.csv", header, rows[:200])
    (root / "sub" / "loop").symlink_to("..")
    truth = sum(Decimal(r[header.index("lineItem/UnblendedCost")] or 0) for r in rows[:200])
    report = ingest(root)
    assert report["status"] == "succeeded"
    assert report["totals"]["rows_read"] == 200
    assert Decimal(report["totals"]["source_basis"]) == truth
    assert any("symbolic link(s) to folders not followed (sub/loop)" in w
               for w in report["warnings"])


def test_hidden_folders_are_skipped_and_named(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    root = tmp_path / "exports"
    _write_csv(root / "2023-11" / "cur.csv", header, rows[:10])
    _write_csv(root / ".snapshot" / "cur.csv", header, rows[10:20])
    _write_csv(root / "2023-11" / ".trash" / "old.csv", header, rows[20:30])
    plan = CATALOG.plan([str(root)])
    assert [f.uri for f in plan.files] == [str(root / "2023-11" / "cur.csv")]
    [note] = [n for n in plan.notes if "hidden" in n]
    assert "2 hidden folder(s) or file(s) skipped" in note
    assert ".snapshot" in note and "2023-11/.trash" in note


def test_files_with_the_same_content_are_refused_naming_both(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    first = _write_csv(tmp_path / "a" / "cur.csv", header, rows[:50])
    copy = tmp_path / "b" / "cur-copy.csv"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    with pytest.raises(SourceError) as err:
        CATALOG.plan([str(tmp_path / "a"), str(copy)])  # two --source patterns
    message = str(err.value)
    assert str(first) in message and str(copy) in message
    assert "same content" in message and "\n" not in message


def test_same_content_through_an_object_store_scheme_is_refused(tmp_path, cur_sample):
    """The check sits in the shared plan step, so a store planner's files are checked too."""
    header, rows = _cur_rows(cur_sample)
    local = _write_csv(tmp_path / "cur.csv", header, rows[:50])

    def plan_store(pattern: str, request: PlanRequest) -> Plan:
        source = files.inspect(str(local), request)
        assert source is not None
        return Plan(files=[dataclasses.replace(source, uri=pattern)])

    aws = CATALOG.provider("aws")
    catalog = Catalog(tuple(
        dataclasses.replace(p, schemes=(*p.schemes, Scheme("mem", plan_store))) if p is aws
        else p for p in CATALOG.providers))
    with pytest.raises(SourceError, match="same content") as err:
        catalog.plan(["mem://bucket/cur.csv", str(local)])
    assert "mem://bucket/cur.csv" in str(err.value) and str(local) in str(err.value)


# --- line items that appear twice --------------------------------------------------------------


def _flags(table: pa.Table) -> list[list[str]]:
    return [json.loads(v) if v else [] for v in table.column("x_DataQualityFlags").to_pylist()]


def test_every_line_item_twice_is_flagged_across_batches(tmp_path, cur_sample, monkeypatch):
    header, rows = _cur_rows(cur_sample)
    path = _write_csv(tmp_path / "doubled.csv", header, rows + rows)
    monkeypatch.setattr(files, "BATCH_ROWS", 500)  # the repeats are batches apart
    done = normalize_file(path)
    assert done.rows.num_rows == 2 * len(rows)  # flagged, never dropped
    flagged = [i for i, f in enumerate(_flags(done.rows)) if DUPLICATE in f]
    assert len(flagged) == len(rows)
    assert min(done.rows.column("x_SourceRowNumber").to_pylist()[i] for i in flagged) == (
        len(rows) + 1)


def test_real_cur_ids_repeat_per_time_interval_and_are_not_flagged(cur_sample):
    """The real sample repeats identity/LineItemId 893 times across hours: not duplicates."""
    done = normalize_file(cur_sample)
    assert not any(DUPLICATE in f for f in _flags(done.rows))


def test_a_parquet_cur_with_a_repeated_line_item_is_flagged(tmp_path, cur_sample):
    table = pacsv.read_csv(cur_sample, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(_cur_rows(cur_sample)[0], pa.string())))
    table = table.rename_columns([athena_name(n) for n in table.column_names])
    doubled = pa.concat_tables([table, table.slice(7, 3)])
    pq.write_table(doubled, tmp_path / "cur.parquet")
    done = normalize_file(tmp_path / "cur.parquet")
    flagged = [n for n, f in zip(done.rows.column("x_SourceRowNumber").to_pylist(),
                                 _flags(done.rows), strict=True) if DUPLICATE in f]
    assert flagged == [table.num_rows + 1, table.num_rows + 2, table.num_rows + 3]


def test_duplicates_are_loaded_flagged_and_warned_with_the_count(tmp_path, cur_sample, ingest):
    header, rows = _cur_rows(cur_sample)
    path = _write_csv(tmp_path / "cur.csv", header, rows[:300] + rows[:40])
    report, got = ingest(path, queries={"flagged": (
        "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items "
        f"WHERE x_DataQualityFlags LIKE '%{DUPLICATE}%'")})
    assert report["status"] == "succeeded" and report["totals"]["rows_loaded"] == 340
    assert got["flagged"] == [{"n": 40}]
    [warning] = [w for w in report["warnings"] if DUPLICATE in w]
    assert "40 row(s)" in warning and "row 301" in warning


def _flagged_rows(ingest, sql_where: str = "") -> list[dict]:
    return ingest.rows(
        "SELECT x_SourceUri AS uri, x_SourceRowNumber AS row FROM cost_analytics.cost_line_items "
        f"WHERE x_DataQualityFlags LIKE '%{DUPLICATE}%' {sql_where} ORDER BY 1, 2")


def test_a_line_item_in_two_part_files_of_a_slice_is_flagged_once_and_named(
        tmp_path, cur_sample, ingest):
    """A month delivered in two CUR parts whose last and first 40 line items overlap (a part
    re-cut, or delivered twice): both parts are loaded, the 40 copies in the later file are
    flagged, the gate counts them and one warning names both files and a repeated id."""
    header, rows = _cur_rows(cur_sample)
    part1 = _write_csv(tmp_path / "cur" / "cur-00001.csv", header, rows[:300])
    part2 = _write_csv(tmp_path / "cur" / "cur-00002.csv", header, rows[260:600])
    report = ingest(tmp_path / "cur")
    assert report["status"] == "succeeded" and report["totals"]["rows_loaded"] == 640
    flagged = _flagged_rows(ingest)
    assert flagged == [{"uri": str(part2), "row": n} for n in range(1, 41)]
    [crossed] = [w for w in report["warnings"] if "another file of the same slice" in w]
    line_item = dict(zip(header, rows[260], strict=True))
    assert crossed.startswith(f"slice aws/{line_item['bill/PayerAccountId']}/2023-")
    assert "40 row(s) repeat a line item" in crossed
    assert (f"line item '{line_item['identity/LineItemId']}' at "
            f"'{line_item['identity/TimeInterval']}' is in {part1} (row 261) and again in "
            f"{part2} (row 1)") in crossed, crossed
    [gate] = [w for w in report["warnings"] if f"soft check flag:{DUPLICATE}" in w]
    assert "40 row(s)" in gate


def test_part_files_without_a_shared_line_item_are_not_flagged(tmp_path, cur_sample, ingest):
    """The real sample cut in three parts (its ids repeat across hours, so across the parts,
    but never with the same time interval): nothing is flagged, no warning."""
    header, rows = _cur_rows(cur_sample)
    for i, cut in enumerate((rows[:400], rows[400:900], rows[900:])):
        _write_csv(tmp_path / "cur" / f"cur-0000{i + 1}.csv", header, cut)
    report = ingest(tmp_path / "cur")
    assert report["status"] == "succeeded" and report["totals"]["rows_loaded"] == len(rows)
    assert _flagged_rows(ingest) == []
    assert not [w for w in report["warnings"] if DUPLICATE in w or "another file" in w]


def test_a_repeat_inside_a_file_and_across_files_keeps_one_flag(tmp_path, cur_sample, ingest):
    """A row repeated inside the later file that also repeats a line item of the earlier file
    carries the flag once; the slice-level check does not double the within-file one."""
    header, rows = _cur_rows(cur_sample)
    _write_csv(tmp_path / "cur" / "a.csv", header, rows[:50])
    later = _write_csv(tmp_path / "cur" / "b.csv", header, rows[50:100] + rows[:5] + rows[:5])
    ingest(tmp_path / "cur")
    got = ingest.rows(
        "SELECT x_SourceRowNumber AS row, x_DataQualityFlags AS flags FROM "
        f"cost_analytics.cost_line_items WHERE x_SourceUri = '{later}' AND "
        "x_SourceRowNumber > 50 ORDER BY 1")
    assert [r["row"] for r in got] == list(range(51, 61))
    assert all(json.loads(r["flags"]).count(DUPLICATE) == 1 for r in got), got


def test_the_same_line_items_in_two_slices_are_not_duplicates(tmp_path, cur_sample, ingest):
    """The check is per slice: the same ids under another payer account are another bill."""
    header, rows = _cur_rows(cur_sample)
    payer = header.index("bill/PayerAccountId")
    other = [[*r[:payer], "999999999999", *r[payer + 1:]] for r in rows[:100]]
    _write_csv(tmp_path / "cur" / "a.csv", header, rows[:100])
    _write_csv(tmp_path / "cur" / "b.csv", header, other)
    report = ingest(tmp_path / "cur")
    assert report["status"] == "succeeded" and report["totals"]["rows_loaded"] == 200
    assert _flagged_rows(ingest) == []


# --- a file that changes while the run reads it -----------------------------------------------


def _planned(path: Path):
    [source] = CATALOG.plan([str(path)]).files
    return source


def _same_size_edit(path: Path, at: int) -> None:
    """Change one digit at byte ``at`` (same size: only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    i = next(i for i in range(at, len(data)) if chr(data[i]).isdigit())
    data[i] = ord("1") if data[i] != ord("1") else ord("2")
    with path.open("r+b") as f:
        f.write(bytes(data))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_csv_changed_after_planning_is_refused(tmp_path, cur_sample):
    header, rows = _cur_rows(cur_sample)
    path = _write_csv(tmp_path / "cur.csv", header, rows[:100])
    source = _planned(path)
    _same_size_edit(path, path.stat().st_size // 2)
    with pytest.raises(SourceError, match="changed while the run read it") as err:
        list(CATALOG.read_batches(source))
    assert str(path) in str(err.value) and "sha256" in str(err.value)


def test_a_csv_appended_to_while_it_is_read_is_refused(tmp_path, cur_sample, monkeypatch):
    header, rows = _cur_rows(cur_sample)
    path = _write_csv(tmp_path / "cur.csv", header, rows)
    source = _planned(path)
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(files, "BATCH_ROWS", 20)
    batches = CATALOG.read_batches(source)
    next(batches)  # the reader has started; the export is still being written
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:5])
    with pytest.raises(SourceError, match="changed while the run read it") as err:
        list(batches)
    assert f"planned with {source.size_bytes:,} bytes" in str(err.value)


def _parquet(tmp_path: Path, cur_sample: Path) -> Path:
    table = pacsv.read_csv(cur_sample, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(_cur_rows(cur_sample)[0], pa.string())))
    table = table.rename_columns([athena_name(n) for n in table.column_names])
    pq.write_table(table, tmp_path / "cur.parquet", row_group_size=100)
    return tmp_path / "cur.parquet"


def test_a_parquet_changed_after_planning_is_refused_before_any_row(tmp_path, cur_sample):
    path = _parquet(tmp_path, cur_sample)
    source = _planned(path)
    _same_size_edit(path, 100)  # inside the first column chunk
    batches = CATALOG.read_batches(source)
    with pytest.raises(SourceError, match="changed while the run read it"):
        next(batches)


def test_a_parquet_rewritten_in_place_while_it_is_read_is_refused(tmp_path, cur_sample,
                                                                  monkeypatch):
    path = _parquet(tmp_path, cur_sample)
    source = _planned(path)
    monkeypatch.setattr(files, "PARQUET_BATCH_ROWS", 100)
    batches = CATALOG.read_batches(source)
    next(batches)
    _same_size_edit(path, path.stat().st_size // 2)  # a later row group
    with pytest.raises(SourceError, match="changed while the run read it"):
        list(batches)


def test_parquet_rows_are_numbered_across_row_groups_of_uneven_size(tmp_path, cur_sample,
                                                                     monkeypatch):
    """One batch iterator per row group: every row once, in file order, numbered from the
    first data row, batches never spanning two row groups."""
    header, rows = _cur_rows(cur_sample)
    table = pa.table({name: [r[i] for r in rows[:380]] for i, name in enumerate(header)})
    path = tmp_path / "cur.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        for start, size in ((0, 250), (250, 30), (280, 100)):  # row groups of 250, 30, 100
            writer.write_table(table.slice(start, size))
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    monkeypatch.setattr(files, "PARQUET_BATCH_ROWS", 100)
    read = list(files.read_parquet(_planned(path), CATALOG))
    assert [(row, batch.num_rows) for row, batch in read] == [
        (1, 100), (101, 100), (201, 50), (251, 30), (281, 100)]
    got = pa.Table.from_batches([batch for _, batch in read])
    assert got.column(header[0]).to_pylist() == table.column(header[0]).to_pylist()


def test_an_unchanged_gzip_file_reads_and_verifies(tmp_path, cur_sample):
    """The check reads what the reader left unread (a gzip trailer) and passes."""
    import gzip

    header, rows = _cur_rows(cur_sample)
    text = io.StringIO()
    csv.writer(text).writerows([header, *rows[:300]])
    path = tmp_path / "cur.csv.gz"
    path.write_bytes(gzip.compress(text.getvalue().encode()))
    assert sum(b.num_rows for _, b in CATALOG.read_batches(_planned(path))) == 300


def test_an_ingest_whose_file_changes_after_planning_fails_and_commits_nothing(
        tmp_path, cur_sample, ingest, monkeypatch):
    header, rows = _cur_rows(cur_sample)
    path = _write_csv(tmp_path / "cur.csv", header, rows[:100])
    planned = Catalog.plan

    def plan_then_change(self, *args, **kwargs):
        plan = planned(self, *args, **kwargs)
        _same_size_edit(path, path.stat().st_size // 2)  # the export is rewritten meanwhile
        return plan

    monkeypatch.setattr(Catalog, "plan", plan_then_change)
    with pytest.raises(CostflowError, match="changed while the run read it"):
        ingest(path)
    assert ingest.rows("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items") == [{"n": 0}]
    [run] = ingest.rows("SELECT status, error FROM cost_analytics.load_runs")
    assert run["status"] == "failed" and "changed while the run read it" in run["error"]


def test_an_s3_object_overwritten_while_it_is_read_is_refused(tmp_path, cur_sample,
                                                              s3_endpoint, monkeypatch):  # noqa: F811
    """A seek after the object was overwritten asks for the planned version (If-Match) and
    is refused by S3, instead of mixing the bytes of two versions."""
    import boto3

    from costflow.providers.aws import s3 as s3_sources

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"),
                        (s3_sources.ENDPOINT_ENV, s3_endpoint)):
        monkeypatch.setenv(name, value)
    s3_sources.reset_client()
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="pinned")
    body = _parquet(tmp_path, cur_sample).read_bytes()
    client.put_object(Bucket="pinned", Key="cur.parquet", Body=body)
    handle = s3_sources.S3ObjectFile("s3://pinned/cur.parquet")
    assert handle.read(4) == b"PAR1"
    client.put_object(Bucket="pinned", Key="cur.parquet", Body=body[:-8] + b"\x00" * 8)
    handle.seek(handle.size - 8)
    with pytest.raises(SourceError, match="changed while the run read it"):
        handle.read(8)


def test_azure_actual_and_amortized_exports_may_hold_the_same_bytes(tmp_path, shared_dir):
    """A month without commitments has identical actual and amortized exports: they are
    joined row by row, never added, so only two copies of one role are refused."""
    real = shared_dir / "samples" / "azure" / "ea_actual_small.csv"
    for name in ("costs_actual.csv", "costs_amortized.csv", "copy/costs_actual.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(real, tmp_path / name)
    plan = CATALOG.plan([str(tmp_path / "costs_actual.csv"),
                         str(tmp_path / "costs_amortized.csv")], "azure")
    assert sorted(f.ledger_entry()["dataset"] for f in plan.files) == ["actual", "amortized"]
    with pytest.raises(SourceError, match="same content"):
        CATALOG.plan([str(tmp_path / "costs_actual.csv"),
                      str(tmp_path / "copy" / "costs_actual.csv")], "azure")
