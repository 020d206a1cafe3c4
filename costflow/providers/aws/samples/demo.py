"""The AWS demo exports: a two-month legacy CUR delivery, two files per month.

`costflow demo --provider aws` calls `write_demo` (declared as the provider's ``demo``): it
writes the exports under ``out`` and returns where to ingest from and what the source says.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from costflow.samples import DemoExports


def write_demo(out: Path, rows: int) -> DemoExports:
    from costflow.providers.aws.samples.cur import write_cur_delivery

    written = write_cur_delivery(out, rows, months=("2023-10", "2023-11"), files_per_month=2)
    total = sum((w.unblended_total for w in written), Decimal(0))
    return DemoExports(f"{out}/**/*.csv.gz", sum(w.rows for w in written), len(written),
                       {"all months, USD": total}, date(2023, 10, 1), date(2023, 12, 1))
