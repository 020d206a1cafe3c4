"""StageParquet: write normalized rows and dead letters to per-bundle Parquet files.

The warehouse loads a run from staged files (a BigQuery load job or DuckDB's Parquet reader),
so a slice is replaced in one transaction after the whole run is known to reconcile. One file
per bundle and kind keeps the file count small; each batch is written as it comes, so memory
stays flat. Files written by a bundle attempt that failed are never named in the output and are
removed with the staging directory.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator
from typing import BinaryIO

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
from costflow.transforms.commitment_amortization import POOL
from costflow.transforms.finalize import DEAD_LETTER_SCHEMA, ROW_SCHEMA
from costflow.warehouse import ledger

PARQUET_OPTIONS = {"compression": "snappy", "use_dictionary": True, "write_statistics": False}


def run_staging_dir(staging_root: str, run_id: str) -> str:
    """``<staging_root>/<run_id>``, for a valid run id only (`costflow.warehouse.ledger`)."""
    return ledger.child_path(staging_root, run_id)


class _Writer:
    """A lazily opened Parquet writer on a local path or any Beam filesystem URI."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self._sink: BinaryIO | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._sink = FileSystems.create(self.path)
            self._writer = pq.ParquetWriter(self._sink, self.schema, **PARQUET_OPTIONS)
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
        self._part = StagedPart()

    def process(self, element: NormalizedBatch) -> Iterator[StagedPart]:
        pool = element.rows.column(POOL)
        if pool.null_count == element.rows.num_rows:
            self._rows.write(element.rows)
        else:
            self._pooled.write(element.rows.filter(pc.is_valid(pool)))
            self._rows.write(element.rows.filter(pc.is_null(pool)))
        self._dead.write(element.dead_letters)
        reasons: dict[str, int] = {}
        if element.dead_letters.num_rows:
            for reason in element.dead_letters.column("ErrorReason").to_pylist():
                reasons[reason] = reasons.get(reason, 0) + 1
        counts = FileCounts(element.rows_read, element.dead_letters.num_rows, reasons)
        self._part = self._part.merge(
            StagedPart(slices=element.slices, files={element.source_uri: counts}))
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        row_file, pool_file, dead_file = (self._rows.close(), self._pooled.close(),
                                          self._dead.close())
        part = StagedPart(row_files=[f for f in (row_file, pool_file) if f],
                          dead_letter_files=[dead_file] if dead_file else [],
                          slices=merge_all([self._part.slices]), files=self._part.files,
                          pool_row_files=[pool_file] if pool_file else [])
        if self.warehouse_url and self.run_id:
            ledger.beat_now_and_then(self.warehouse_url, self.run_id)
        if part.files:
            yield WindowedValue(part, MIN_TIMESTAMP, (GlobalWindow(),))
