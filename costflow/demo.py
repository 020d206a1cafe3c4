"""The demo behind README command 1: sample exports in, a cost table out, in one command.

It writes realistic sample exports (the generators', not real data) for one provider — a
two-month AWS legacy CUR delivery by default, or GCP billing export files, or Azure EA
actual + amortized exports — ingests them with the same pipeline and warehouse a user gets, and
prints what a FinOps engineer looks at first: costs by service and by sub account, reconciled
to the source to the last decimal. It ends by writing the HTML cost report of the demo months
(`costflow report`: charts, month-over-month, forecast band, reconciliation of the loads) and
printing its path, the page to open and send.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from costflow.errors import ConfigError
from costflow.pipelines.ingest import run
from costflow.pipelines.report import format_summary
from costflow.providers import CATALOG
from costflow.services.costs import costs_by_dimension
from costflow.services.report import gather
from costflow.services.report_html import write as write_report
from costflow.text import exact, render_costs
from costflow.warehouse import connect, resolve_url

REPORT = "cost-report.html"


def run_demo(rows: int = 50_000, out_dir: str | None = None, warehouse: str | None = None,
             provider: str = "aws", report_path: str = REPORT) -> str:
    """Generate, ingest, query, write the cost report; returns the text to print."""
    writer = CATALOG.provider(provider).demo
    if writer is None:
        raise ConfigError(f"provider {provider!r} has no demo exports; choose one of "
                          f"{', '.join(CATALOG.with_demo())}.")
    out = Path(out_dir or f"exports/{provider}")
    if out.exists():
        shutil.rmtree(out)  # the demo's own output: regenerate it whole, never mix runs
    exports = writer(out, rows)
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
                top = sorted(found, key=lambda r: r["cost"], reverse=True)[:10]
                if len(top) < len(found):
                    title += f" (the top {len(top)} of {len(found)}; totals of these)"
                found = top
            shown = render_costs(found, table.column_names, "table")
            lines += [f"{title} (BilledCost):", shown, ""]
        page = write_report(gather(wh, exports.start, exports.end), report_path)
    finally:
        wh.close()
    lines.append(f"warehouse: {url}. Next: costflow query costs --start {exports.start} "
                 f"--end {exports.end} --group-by service,region")
    lines.append(f"cost report: {page.resolve()} (open it in a browser; `costflow report "
                 f"--start {exports.start} --end {exports.end}` writes it again)")
    return "\n".join(lines)
