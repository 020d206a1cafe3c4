"""NormalizeBatches: source batches in, warehouse rows + dead letters + slice totals out.

The normalizer for each batch is looked up by the format detected at planning, among the
normalizers the composition root hands over (`Catalog.normalizers`); this transform never
branches on provider. The shared finishing step applies hard rules, builds dead
letters and stamps lineage (`costflow.transforms.finalize`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

import apache_beam as beam

from costflow.pipelines.elements import NormalizedBatch
from costflow.sources.contract import SourceBatch
from costflow.transforms.contract import BatchContext, Normalizer
from costflow.transforms.finalize import finalize


class _NormalizeFn(beam.DoFn):
    def __init__(self, run_id: str, ingested_at: datetime,
                 normalizers: Mapping[str, Normalizer]) -> None:
        self.run_id = run_id
        self.ingested_at = ingested_at
        self.normalizers = dict(normalizers)

    def process(self, element: SourceBatch) -> Iterator[NormalizedBatch]:
        source = element.source
        normalizer = self.normalizers[source.source_format]
        ctx = BatchContext(source_uri=source.uri, source_format=source.source_format,
                           provider=source.provider, first_row_number=element.first_row,
                           run_id=self.run_id, ingested_at=self.ingested_at)
        mapped = normalizer.map(element.batch)
        done = finalize(element.batch, mapped, ctx)
        yield NormalizedBatch(source_uri=source.uri, rows_read=element.batch.num_rows,
                              rows=done.rows, dead_letters=done.dead_letters, slices=done.slices,
                              line_items=done.line_items)


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
