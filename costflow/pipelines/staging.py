"""StageParquet: write normalized rows and dead letters to per-bundle Parquet files.

The warehouse loads a run from staged files (a BigQuery load job or DuckDB's Parquet reader),
so a slice is replaced in one transaction after the whole run is known to reconcile. One file
per bundle and kind keeps the file count small; each batch is written as it comes, so memory
stays flat. Files written by a bundle attempt that failed are never named in the output and are
removed with the staging directory. For formats with a line-item id, a third kind holds each
loaded row's key (`KEY_SCHEMA`), for the commit's check across the files of a slice.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from costflow.pipelines.elements import FileCounts, NormalizedBatch, StagedPart
from costflow.reconcile import merge_all
from costflow.transforms import parquet_batches
from costflow.transforms.commitment_amortization import POOL
from costflow.transforms.duplicates import KEY_HASH_COLUMN, KEY_TEXT_COLUMN
from costflow.transforms.finalize import DEAD_LETTER_SCHEMA, ROW_SCHEMA
from costflow.warehouse import ledger

PARQUET_OPTIONS = {"compression": "snappy", "use_dictionary": True, "write_statistics": False}
# The line-item keys of a bundle's loaded rows, for formats with an id: where each row sits
# (slice and source location) and its key (`costflow.transforms.duplicates`). Read by the
# commit's check across the files of a slice (`costflow.pipelines.cross_file`), never loaded.
KEY_SLICE = ("x_SourceProvider", "BillingAccountId", "BillingPeriodStart")
KEY_LOCATION = ("x_SourceUri", "x_SourceRowNumber")
KEY_SCHEMA = pa.schema([
    *(ROW_SCHEMA.field(name).with_nullable(True) for name in (*KEY_SLICE, *KEY_LOCATION)),
    pa.field(KEY_HASH_COLUMN, pa.uint64()),
    pa.field(KEY_TEXT_COLUMN, pa.string()),
])
# Dictionaries for the few slices and files only: ids and row numbers never repeat in a file.
KEY_PARQUET_OPTIONS = {**PARQUET_OPTIONS, "use_dictionary": [*KEY_SLICE, "x_SourceUri"]}


def key_table(rows: pa.Table, line_items: pa.Table) -> pa.Table:
    """The keyed rows of one normalized batch as staged (`KEY_SCHEMA`)."""
    columns = [rows.column(name) for name in (*KEY_SLICE, *KEY_LOCATION)]
    columns += [line_items.column(KEY_HASH_COLUMN), line_items.column(KEY_TEXT_COLUMN)]
    table = pa.Table.from_arrays(columns, schema=KEY_SCHEMA)
    keyed = pc.is_valid(table.column(KEY_HASH_COLUMN))
    return table if pc.all(keyed).as_py() else table.filter(keyed)


def rewrite_staged(path: str, suffix: str, change: Callable[[pa.Table], pa.Table]) -> str:
    """A staged Parquet file with ``change`` applied batch by batch, written next to it under
    ``suffix`` (the old file is removed); the commit-time steps (amortization, cross-file
    duplicates) edit staged rows this way without holding a file in memory."""
    target = path.removesuffix(".parquet") + suffix
    with FileSystems.open(path) as handle:
        source = pq.ParquetFile(handle)
        schema = source.schema_arrow
        with FileSystems.create(target) as sink, pq.ParquetWriter(
                sink, schema, **PARQUET_OPTIONS) as writer:
            for batch in parquet_batches.batches(source):
                writer.write_table(change(pa.Table.from_batches([batch], schema)))
    FileSystems.delete([path])
    return target


def run_staging_dir(staging_root: str, run_id: str) -> str:
    """``<staging_root>/<run_id>``, for a valid run id only (`costflow.warehouse.ledger`)."""
    return ledger.child_path(staging_root, run_id)


class _Writer:
    """A lazily opened Parquet writer on a local path or any Beam filesystem URI."""

    def __init__(self, path: str, schema: pa.Schema,
                 options: dict[str, Any] | None = None) -> None:
        self.path, self.schema = path, schema
        self.options = PARQUET_OPTIONS if options is None else options
        self._sink: BinaryIO | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._sink = FileSystems.create(self.path)
            self._writer = pq.ParquetWriter(self._sink, self.schema, **self.options)
        self._writer.write_table(table)

    def close(self) -> str | None:
        if self._writer is None:
            return None
        self._writer.close()
        if self._sink is not None:
            self._sink.close()
        return self.path


class StageParquet(beam.DoFn):
    """Stage each bundle's rows; with ``warehouse_url`` and ``run_id``, also keep the run's
    heartbeat fresh (at most once a minute per worker process), so a long run on remote workers
    is never taken for abandoned."""

    def __init__(self, run_dir: str, warehouse_url: str | None = None,
                 run_id: str | None = None) -> None:
        self.run_dir = run_dir
        self.warehouse_url, self.run_id = warehouse_url, run_id

    def start_bundle(self) -> None:
        name = uuid.uuid4().hex
        self._rows = _Writer(posixpath.join(self.run_dir, "rows", f"{name}.parquet"), ROW_SCHEMA)
        # Rows of a commitment pool apart: the commit rewrites them, and only them.
        self._pooled = _Writer(posixpath.join(self.run_dir, "rows", f"{name}.pool.parquet"),
                               ROW_SCHEMA)
        self._dead = _Writer(posixpath.join(self.run_dir, "dead_letters", f"{name}.parquet"),
                             DEAD_LETTER_SCHEMA)
        # Named after the bundle, like its row files: the check across files rewrites the row
        # files of the bundles whose keys it flags (costflow.pipelines.cross_file.bundle_of).
        self._keys = _Writer(posixpath.join(self.run_dir, "keys", f"{name}.parquet"),
                             KEY_SCHEMA, KEY_PARQUET_OPTIONS)
        self._part = StagedPart()

    def process(self, element: NormalizedBatch) -> Iterator[StagedPart]:
        pool = element.rows.column(POOL)
        if pool.null_count == element.rows.num_rows:
            self._rows.write(element.rows)
        else:
            self._pooled.write(element.rows.filter(pc.is_valid(pool)))
            self._rows.write(element.rows.filter(pc.is_null(pool)))
        self._dead.write(element.dead_letters)
        if element.line_items is not None:
            self._keys.write(key_table(element.rows, element.line_items))
        reasons: dict[str, int] = {}
        if element.dead_letters.num_rows:
            for reason in element.dead_letters.column("ErrorReason").to_pylist():
                reasons[reason] = reasons.get(reason, 0) + 1
        counts = FileCounts(element.rows_read, element.dead_letters.num_rows, reasons)
        self._part = self._part.merge(
            StagedPart(slices=element.slices, files={element.source_uri: counts}))
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        row_file, pool_file, dead_file, key_file = (
            self._rows.close(), self._pooled.close(), self._dead.close(), self._keys.close())
        part = StagedPart(row_files=[f for f in (row_file, pool_file) if f],
                          dead_letter_files=[dead_file] if dead_file else [],
                          slices=merge_all([self._part.slices]), files=self._part.files,
                          pool_row_files=[pool_file] if pool_file else [],
                          key_files=[key_file] if key_file else [])
        if self.warehouse_url and self.run_id:
            ledger.beat_now_and_then(self.warehouse_url, self.run_id)
        if part.files:
            yield WindowedValue(part, MIN_TIMESTAMP, (GlobalWindow(),))
