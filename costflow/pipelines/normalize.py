"""NormalizeBatches: source batches in, warehouse rows + dead letters + slice totals out.

The normalizer for each batch is looked up by the format detected at planning, among the
normalizers the composition root hands over (`Catalog.normalizers`); this transform never
branches on provider. The shared finishing step applies hard rules, builds dead
letters and stamps lineage (`costflow.transforms.finalize`).

Batches are normalized on `NORMALIZE_THREADS` threads, at most `IN_FLIGHT` at a time, and come
out in the order they came in (so staged files are the same as with one thread): the kernels
are `pyarrow.compute` calls, which release the GIL, so a second core does real work, and a
normalizer maps one batch with no state carried between batches (the file-wide duplicate check
runs in the reader).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from costflow.pipelines.elements import NormalizedBatch
from costflow.sources.contract import SourceBatch
from costflow.transforms.contract import BatchContext, Normalizer
from costflow.transforms.finalize import finalize

NORMALIZE_THREADS = min(2, os.cpu_count() or 1)
# Batches handed to the threads and not yet emitted (memory: that many source batches and
# their normalized rows); the caller waits for the oldest before handing over another.
IN_FLIGHT = NORMALIZE_THREADS
# Larger source batches (Parquet row groups: 65,536 rows) are normalized in pieces of this many
# rows, so that two at once hold no more memory than one whole batch did. Rows never depend on
# where a batch ends (readers cut batches anywhere), so the rows are the same.
PIECE_ROWS = 32_768


class _NormalizeFn(beam.DoFn):
    def __init__(self, run_id: str, ingested_at: datetime,
                 normalizers: Mapping[str, Normalizer]) -> None:
        self.run_id = run_id
        self.ingested_at = ingested_at
        self.normalizers = dict(normalizers)

    def setup(self) -> None:
        self._pool = (ThreadPoolExecutor(NORMALIZE_THREADS, thread_name_prefix="normalize")
                      if NORMALIZE_THREADS > 1 else None)

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def start_bundle(self) -> None:
        self._pending: collections.deque[tuple[Future, Any, Any]] = collections.deque()

    def process(self, element: SourceBatch, timestamp=beam.DoFn.TimestampParam,
                window=beam.DoFn.WindowParam) -> Iterator[Any]:
        if self._pool is None:
            yield self._normalize(element)
            return
        for start in range(0, max(element.batch.num_rows, 1), PIECE_ROWS):
            piece = element if element.batch.num_rows <= PIECE_ROWS else dataclasses.replace(
                element, first_row=element.first_row + start,
                batch=element.batch.slice(start, PIECE_ROWS))
            self._pending.append((self._pool.submit(self._normalize, piece), timestamp, window))
            while len(self._pending) >= IN_FLIGHT or (self._pending
                                                      and self._pending[0][0].done()):
                yield self._next()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        while self._pending:
            yield self._next()

    def _next(self) -> WindowedValue:
        """The oldest batch's result (waiting for it), in its own window."""
        future, timestamp, window = self._pending.popleft()
        try:
            return WindowedValue(future.result(), timestamp, (window,))
        except BaseException:
            for pending, _, _ in self._pending:  # the bundle fails: drop the rest
                pending.cancel()
            self._pending.clear()
            raise

    def _normalize(self, element: SourceBatch) -> NormalizedBatch:
        source = element.source
        normalizer = self.normalizers[source.source_format]
        ctx = BatchContext(source_uri=source.uri, source_format=source.source_format,
                           provider=source.provider, first_row_number=element.first_row,
                           run_id=self.run_id, ingested_at=self.ingested_at)
        mapped = normalizer.map(element.batch)
        done = finalize(element.batch, mapped, ctx)
        return NormalizedBatch(source_uri=source.uri, rows_read=element.batch.num_rows,
                               rows=done.rows, dead_letters=done.dead_letters,
                               slices=done.slices, line_items=done.line_items)


class NormalizeBatches(beam.PTransform):
    """Map each source batch to the unified schema through its provider's normalizer."""

    def __init__(self, run_id: str, ingested_at: datetime,
                 normalizers: Mapping[str, Normalizer]) -> None:
        super().__init__()
        self.run_id = run_id
        self.ingested_at = ingested_at
        self.normalizers = normalizers

    def expand(self, batches):
        return batches | "MapToFocus" >> beam.ParDo(
            _NormalizeFn(self.run_id, self.ingested_at, self.normalizers),
        ).with_output_types(NormalizedBatch)
