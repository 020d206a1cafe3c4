"""The demo behind README command 1: sample exports in, a cost table out, in one command.

It writes a realistic two-month AWS legacy CUR delivery (the generator's, not real data), ingests
it with the same pipeline and warehouse a user gets, and prints what a FinOps engineer looks at
first: costs by service and by account, reconciled to the source to the last decimal.
"""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

from costflow.pipelines.ingest import run
from costflow.pipelines.report import exact, format_summary
from costflow.samples.aws_cur import write_cur_delivery
from costflow.services.costs import costs_by_dimension
from costflow.warehouse import connect, resolve_url

MONTHS = ("2023-10", "2023-11")


def run_demo(rows: int = 50_000, out_dir: str = "exports/cur", warehouse: str | None = None) -> str:
    """Generate, ingest, query; returns the text to print."""
    from costflow.cli import render

    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)  # the demo's own output: regenerate it whole, never mix runs
    written = write_cur_delivery(out, rows, months=MONTHS, files_per_month=2)
    source_total = sum((w.unblended_total for w in written), Decimal(0))
    url = resolve_url(warehouse)
    report = run([f"--source={out}/**/*.csv.gz", "--provider=aws", f"--warehouse={url}"])
    lines = [
        f"generated {sum(w.rows for w in written):,} CUR rows in {len(written)} files under "
        f"{out}/ (source total {exact(source_total)} USD)",
        "",
        format_summary(report),
        "",
    ]
    wh = connect(url)
    try:
        for title, group_by in (("Top services, October and November", ["service"]),
                                ("By month and sub account", ["month", "sub_account"])):
            table = costs_by_dimension(wh, date(2023, 10, 1), date(2023, 12, 1),
                                       group_by=group_by)
            found = table.to_pylist()
            if group_by == ["service"]:
                found = sorted(found, key=lambda r: r["cost"], reverse=True)[:10]
            lines += [f"{title} (BilledCost):", render(found, table.column_names, "table"), ""]
    finally:
        wh.close()
    lines.append(f"warehouse: {url}. Next: costflow query costs --start 2023-10-01 "
                 "--end 2023-12-01 --group-by service,region")
    return "\n".join(lines)
