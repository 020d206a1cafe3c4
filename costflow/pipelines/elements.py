"""The elements that flow through the ingest pipeline, and their coder.

Elements are Arrow record batches wrapped with where they came from, never per-row dicts.
Beam samples elements to estimate their size; with its default coder that means pickling whole
batches. `ArrowElementCoder` answers the estimate from Arrow's own byte count instead, and
pickles (protocol 5, Arrow's zero-copy path) only when an element really crosses a process.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa

from costflow.reconcile import SliceKey, SliceStats, merge_all
from costflow.sources.contract import SourceBatch


@dataclass
class NormalizedBatch:
    """Warehouse rows and dead letters of one source batch, with its per-slice totals."""

    source_uri: str
    rows_read: int
    rows: pa.Table
    dead_letters: pa.Table
    slices: dict[SliceKey, SliceStats]
    # Each row's line-item key, aligned with rows, for formats with an id (Finalized.line_items).
    line_items: pa.Table | None = None

    def nbytes(self) -> int:
        keys = self.line_items.nbytes if self.line_items is not None else 0
        return self.rows.nbytes + self.dead_letters.nbytes + keys


@dataclass
class FileCounts:
    rows_read: int = 0
    rows_dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def merge(self, other: FileCounts) -> FileCounts:
        reasons = dict(self.dead_letter_reasons)
        for reason, count in other.dead_letter_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
        return FileCounts(self.rows_read + other.rows_read,
                          self.rows_dead_lettered + other.rows_dead_lettered, reasons)


@dataclass
class StagedPart:
    """What one bundle staged: its Parquet files and the totals of what is in them."""

    row_files: list[str] = field(default_factory=list)
    dead_letter_files: list[str] = field(default_factory=list)
    slices: dict[SliceKey, SliceStats] = field(default_factory=dict)
    files: dict[str, FileCounts] = field(default_factory=dict)
    # The row files holding the commitment-pool rows (also in row_files): all the commit-time
    # amortization reads and rewrites (costflow.pipelines.amortize).
    pool_row_files: list[str] = field(default_factory=list)
    # The line-item keys of the rows of formats with an id, one file per bundle beside its row
    # files (costflow.pipelines.cross_file): what the commit reads to find a line item repeated
    # in two files of one slice. Never loaded into the warehouse.
    key_files: list[str] = field(default_factory=list)

    def merge(self, other: StagedPart) -> StagedPart:
        files = dict(self.files)
        for uri, counts in other.files.items():
            files[uri] = files[uri].merge(counts) if uri in files else counts
        return StagedPart(self.row_files + other.row_files,
                          self.dead_letter_files + other.dead_letter_files,
                          merge_all([self.slices, other.slices]), files,
                          self.pool_row_files + other.pool_row_files,
                          self.key_files + other.key_files)

    def nbytes(self) -> int:
        return 1024


class ArrowElementCoder(beam.coders.Coder):
    """Pickle-protocol-5 coder whose size estimate costs nothing."""

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=5)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def estimate_size(self, value: Any) -> int:
        return int(value.nbytes())

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> Any:
        return Any


for _element in (SourceBatch, NormalizedBatch, StagedPart):
    beam.coders.registry.register_coder(_element, ArrowElementCoder)
