"""ReadSourceBatches: one source file in, a stream of Arrow record batches out.

A background thread reads ahead (decompression and CSV parsing release the GIL), so reading
the next batch overlaps with normalizing and staging the current one. Progress is logged every
few seconds on long files.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa

from costflow.progress import progress
from costflow.sources.contract import SourceBatch, SourceCatalog, SourceFile

LOG = logging.getLogger("costflow.ingest")
PROGRESS_EVERY_S = 5.0
READ_AHEAD = 2
_DONE = object()


def read_ahead(source: SourceFile,
               catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """`Catalog.read_batches` with the reading done in a background thread, at most READ_AHEAD
    batches ahead."""
    q: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in catalog.read_batches(source):
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)

    worker = threading.Thread(target=produce, name=f"read:{source.uri[-40:]}", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class ReadSourceBatches(beam.DoFn):
    """Stream each planned file through the reader its container declares."""

    def __init__(self, catalog: SourceCatalog) -> None:
        self.catalog = catalog

    def process(self, source: SourceFile) -> Iterator[SourceBatch]:
        started = last_log = time.monotonic()
        rows = 0
        for first_row, batch in read_ahead(source, self.catalog):
            rows += batch.num_rows
            yield SourceBatch(source=source, first_row=first_row, batch=batch)
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_S:
                last_log = now
                LOG.info("%s: %s rows read (%.0f rows/s)", source.uri, f"{rows:,}",
                         rows / (now - started),
                         extra=progress(source.uri, _name(source.uri), rows, None, "rows"))
        LOG.info("%s: done, %s rows in %.1f s", source.uri, f"{rows:,}",
                 time.monotonic() - started,
                 extra=progress(source.uri, _name(source.uri), rows, rows, "rows"))


def _name(uri: str) -> str:
    """A file's name for its progress bar (the full URI is in the log lines)."""
    return uri.rstrip("/").rsplit("/", 1)[-1][:48]
