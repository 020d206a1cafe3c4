"""The Azure demo exports: two months of EA actual + amortized cost exports (csv.gz).

`costflow demo --provider azure` calls `write_demo` (declared as the provider's ``demo``): it
writes the exports under ``out`` and returns where to ingest from and what the source says.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from costflow.samples import DemoExports


def write_demo(out: Path, rows: int) -> DemoExports:
    from costflow.providers.azure.samples.export import write_export

    written, files = 0, 0
    totals: dict[str, Decimal] = {}
    for month in ("2026-09", "2026-10"):
        actual, amortized = write_export(out, month, rows, schema="ea", container="csv.gz")
        written += actual.rows + amortized.rows
        files += len(actual.files) + len(amortized.files)
        totals[f"{month} actual cost, EUR"] = actual.total
    return DemoExports(str(out), written, files, totals, date(2026, 9, 1), date(2026, 11, 1))
