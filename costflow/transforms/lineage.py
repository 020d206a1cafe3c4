"""Stamp the `x_` lineage columns, in this one place, on cost rows and dead letters alike."""

from __future__ import annotations

import pyarrow as pa

from costflow.schemas.focus import LINEAGE_COLUMNS
from costflow.schemas.render import ARROW_TYPES
from costflow.transforms.contract import BatchContext

_TYPES = {c.name: ARROW_TYPES[c.type] for c in LINEAGE_COLUMNS}


def lineage_arrays(ctx: BatchContext, num_rows: int) -> dict[str, pa.Array]:
    """Lineage values for a batch of ``num_rows`` rows starting at ``ctx.first_row_number``."""
    def repeat(name: str, value: object) -> pa.Array:
        return pa.repeat(pa.scalar(value, type=_TYPES[name]), num_rows)

    return {
        "x_SourceProvider": repeat("x_SourceProvider", ctx.provider),
        "x_SourceFormat": repeat("x_SourceFormat", ctx.source_format),
        "x_SourceUri": repeat("x_SourceUri", ctx.source_uri),
        "x_SourceRowNumber": pa.array(
            range(ctx.first_row_number, ctx.first_row_number + num_rows), type=pa.int64()),
        "x_RunId": repeat("x_RunId", ctx.run_id),
        "x_IngestedAt": repeat("x_IngestedAt", ctx.ingested_at),
    }
