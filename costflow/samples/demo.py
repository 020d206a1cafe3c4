"""The demo behind README command 1: sample exports in, a cost table out, in one command.

It writes realistic sample exports (the generators', not real data) for one provider — a
two-month AWS legacy CUR delivery by default, or GCP billing export files, or Azure EA
actual + amortized exports — ingests them with the same pipeline and warehouse a user gets, and
prints what a FinOps engineer looks at first: costs by service and by sub account, reconciled
to the source to the last decimal.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from costflow.pipelines.ingest import run
from costflow.pipelines.report import exact, format_summary
from costflow.services.costs import costs_by_dimension
from costflow.warehouse import connect, resolve_url


@dataclass(frozen=True)
class DemoExports:
    """What a demo writer produced: where to ingest from and what the source says."""

    source: str
    rows: int
    files: int
    source_totals: dict[str, Decimal]  # slice label -> exact source total
    start: date
    end: date


def _aws(out: Path, rows: int) -> DemoExports:
    from costflow.samples.aws_cur import write_cur_delivery

    written = write_cur_delivery(out, rows, months=("2023-10", "2023-11"), files_per_month=2)
    total = sum((w.unblended_total for w in written), Decimal(0))
    return DemoExports(f"{out}/**/*.csv.gz", sum(w.rows for w in written), len(written),
                       {"all months, USD": total}, date(2023, 10, 1), date(2023, 12, 1))


def _gcp(out: Path, rows: int) -> DemoExports:
    from costflow.samples.gcp_billing_bulk import write_jsonl

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


def _azure(out: Path, rows: int) -> DemoExports:
    from costflow.samples.azure_export import write_export

    written, files = 0, 0
    totals: dict[str, Decimal] = {}
    for month in ("2026-09", "2026-10"):
        actual, amortized = write_export(out, month, rows, schema="ea", container="csv.gz")
        written += actual.rows + amortized.rows
        files += len(actual.files) + len(amortized.files)
        totals[f"{month} actual cost, EUR"] = actual.total
    return DemoExports(str(out), written, files, totals, date(2026, 9, 1), date(2026, 11, 1))


WRITERS: dict[str, Callable[[Path, int], DemoExports]] = {
    "aws": _aws, "gcp": _gcp, "azure": _azure}


def run_demo(rows: int = 50_000, out_dir: str | None = None, warehouse: str | None = None,
             provider: str = "aws") -> str:
    """Generate, ingest, query; returns the text to print."""
    from costflow.cli import render

    out = Path(out_dir or f"exports/{provider}")
    if out.exists():
        shutil.rmtree(out)  # the demo's own output: regenerate it whole, never mix runs
    exports = WRITERS[provider](out, rows)
    url = resolve_url(warehouse)
    report = run([f"--source={exports.source}", f"--provider={provider}", f"--warehouse={url}"])
    totals = "; ".join(f"{label}: {exact(amount)}"
                       for label, amount in sorted(exports.source_totals.items()))
    lines = [
        f"generated {exports.rows:,} {provider} export rows in {exports.files} files under "
        f"{out}/ (source says {totals})",
        "",
        format_summary(report),
        "",
    ]
    wh = connect(url)
    try:
        for title, group_by in (("Top services", ["service"]),
                                ("By month and sub account", ["month", "sub_account"])):
            table = costs_by_dimension(wh, exports.start, exports.end, group_by=group_by)
            found = table.to_pylist()
            if group_by == ["service"]:
                found = sorted(found, key=lambda r: r["cost"], reverse=True)[:10]
            lines += [f"{title} (BilledCost):", render(found, table.column_names, "table"), ""]
    finally:
        wh.close()
    lines.append(f"warehouse: {url}. Next: costflow query costs --start {exports.start} "
                 f"--end {exports.end} --group-by service,region")
    return "\n".join(lines)
