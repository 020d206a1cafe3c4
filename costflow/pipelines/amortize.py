"""Commit-time amortization of commitment fees over a run's staged files.

Why this module exists: `costflow.transforms.commitment_amortization` needs every row of a
slice, and the first place a run has them all is its staged Parquet files, just before the
data-quality gate and the warehouse load. Doing it here (rather than in warehouse SQL) keeps the
arithmetic exact in Python integers on both engines — DuckDB divides decimals in floating point —
and the gate then checks the rows exactly as they will be stored.

Staging writes the rows of a commitment pool to files of their own (`StagedPart.pool_row_files`,
a tenth of a GCP run's rows), so only those are read: pass 1 reads the columns the pools need
(`COLUMNS`; 20 bytes are kept per covered row), pass 2 rewrites them batch by batch, then every
pool's EffectiveCost total is checked unchanged. Runs without commitments (every AWS and Azure
run) stage no pool file and do nothing here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from costflow.pipelines.staging import rewrite_staged
from costflow.text import exact
from costflow.transforms import parquet_batches
from costflow.transforms.commitment_amortization import (
    COLUMNS,
    Allocation,
    PoolTotals,
    slice_label,
)

LOG = logging.getLogger("costflow.ingest")
SUFFIX = ".amortized.parquet"


@dataclass
class Amortized:
    """The run's row files after amortization, and what moved, for the run report."""

    row_files: list[str]
    pools: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def amortize_staged(row_files: list[str], pool_files: list[str]) -> Amortized:
    """Amortize commitment fees across ``pool_files`` (the row files staging wrote the
    commitment-pool rows to); rewritten files replace the originals in ``row_files``."""
    totals = PoolTotals()
    for path in pool_files:
        with FileSystems.open(path) as handle:
            for batch in parquet_batches.batches(pq.ParquetFile(handle), columns=list(COLUMNS)):
                totals.add(pa.Table.from_batches([batch]))
    warnings = [f"commitment fee {exact(fee)} of slice {slice_label(key)} "
                f"(pool {key[-1]}) found no covered usage in the billing period: it stays on "
                "its fee rows as EffectiveCost (an unused commitment)"
                for key, fee in totals.unamortized()]
    allocation = totals.allocation()
    if not allocation:
        return Amortized(list(row_files), warnings=warnings)
    rewritten = {path: _rewrite(path, allocation) for path in pool_files}
    out = [rewritten.get(path, path) for path in row_files]
    allocation.verify()
    pools = [{k: exact(v) if not isinstance(v, str | int) else v for k, v in p.items()}
             for p in allocation.summary()]
    LOG.info("amortized commitment fees of %d pool(s) over their covered usage", len(pools))
    return Amortized(out, pools, warnings)


def _rewrite(path: str, allocation: Allocation) -> str:
    """``path`` with amortized EffectiveCost, as a new file; the old one is removed."""
    return rewrite_staged(path, SUFFIX, allocation.apply)
