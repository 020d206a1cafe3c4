"""The GCP demo exports: two invoice months of detailed billing export as JSON lines gzip.

`costflow demo --provider gcp` calls `write_demo` (declared as the provider's ``demo``): it
writes the exports under ``out`` and returns where to ingest from and what the source says.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from costflow.samples import DemoExports


def write_demo(out: Path, rows: int) -> DemoExports:
    from costflow.providers.gcp.samples.bulk import write_jsonl

    written = 0
    totals: dict[str, Decimal] = {}
    # October's late usage is invoiced in November; November is the open month, so none of
    # its usage is invoiced late yet (the demo shows two invoice months).
    for seed, month, late in ((7, "202610", 0.02), (8, "202611", 0.0)):
        folder = out / month  # one folder per invoice month: a run replaces whole months
        info = write_jsonl(folder / "billing-000000000000.json.gz", max(rows, 200), seed=seed,
                           month=month, late_fraction=late)
        written += info.rows
        for (account, invoice_month), amount in info.truth.items():
            label = f"{account} {invoice_month}"
            totals[label] = totals.get(label, Decimal(0)) + amount
    return DemoExports(str(out), written, 2, totals, date(2026, 10, 1), date(2026, 12, 1))
