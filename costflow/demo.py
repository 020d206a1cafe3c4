"""The demo behind README command 1: sample exports in, cost tables out, in one command.

It writes realistic sample exports (the generators', not real data) and ingests them with the
same pipeline and warehouse a user gets. ``provider="all"`` (what `make demo` runs) loads every
cloud that declares a ``demo`` writer in its Provider (AWS legacy CUR, GCP billing export
files, Azure EA actual + amortized exports), then puts a Kubernetes cluster on the AWS bill:
its nodes are EC2 instances of that bill (`costflow.usage.openshift.samples.cluster`), its
usage report is loaded and `costflow allocate` splits the nodes' charges onto namespaces. It
prints what a FinOps engineer looks at first: every cloud in one table (per provider, each
load reconciled to the source to the last decimal), the top services across clouds, and the
cluster's cost by namespace next to the unsplit bill (same total). One provider's demo
(``provider="aws"`` etc.) prints its costs by service and by sub account. Both end by writing
the HTML cost report of the demo's range (`costflow report`) and printing its path, the page
to open and send.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from costflow.errors import ConfigError
from costflow.pipelines.ingest import run
from costflow.pipelines.report import format_summary
from costflow.providers import CATALOG
from costflow.samples import DemoExports
from costflow.services.costs import costs_by_dimension
from costflow.services.report import gather
from costflow.services.report_html import write as write_report
from costflow.text import exact, money, render_costs
from costflow.warehouse import connect, resolve_url
from costflow.warehouse.base import Warehouse

REPORT = "cost-report.html"
ALL = "all"
ROWS = 50_000       # rows per month, one provider's demo
ALL_ROWS = 10_000   # rows per month of each cloud in the all-clouds demo (keeps it ~1 minute)
CLUSTER = "demo-eks"
NODES = 4
IDLE = "(idle / unclaimed)"


def run_demo(rows: int | None = None, out_dir: str | None = None,
             warehouse: str | None = None, provider: str = "aws",
             report_path: str = REPORT) -> str:
    """Generate, ingest, query, write the cost report; returns the text to print.

    Args:
        rows: rows per month of each provider's exports (default 50,000 for one provider,
            10,000 per cloud for ``all``).
        out_dir: where the exports go (default ``exports/<provider>``; for ``all``,
            ``exports`` with one folder per provider and ``k8s`` for the cluster's usage).
        warehouse: warehouse URL (default as every command resolves it).
        provider: a provider with demo exports, or ``all``.
        report_path: where the HTML cost report is written.
    """
    if provider == ALL:
        return _run_all(rows or ALL_ROWS, Path(out_dir or "exports"), resolve_url(warehouse),
                        report_path)
    writer = CATALOG.provider(provider).demo
    if writer is None:
        raise ConfigError(f"provider {provider!r} has no demo exports; choose one of "
                          f"{', '.join(CATALOG.with_demo())} or {ALL}.")
    url = resolve_url(warehouse)
    exports, lines = _write(provider, Path(out_dir or f"exports/{provider}"), rows or ROWS)
    lines += _ingest([exports], url, provider)
    wh = connect(url)
    try:
        for title, group_by in (("Top services", ["service"]),
                                ("By month and sub account", ["month", "sub_account"])):
            table = costs_by_dimension(wh, exports.start, exports.end, group_by=group_by)
            lines += [*_table(title, table.to_pylist(), table.column_names,
                              top=10 if group_by == ["service"] else None), ""]
        page = write_report(gather(wh, exports.start, exports.end), report_path)
    finally:
        wh.close()
    return "\n".join(lines + _closing(url, exports.start, exports.end, page))


def _write(provider: str, out: Path, rows: int) -> tuple[DemoExports, list[str]]:
    """Write ``provider``'s demo exports under ``out`` (regenerated whole)."""
    writer = CATALOG.provider(provider).demo
    assert writer is not None  # callers pick providers from CATALOG.with_demo()
    if out.exists():
        shutil.rmtree(out)  # the demo's own output: regenerate it whole, never mix runs
    exports = writer(out, rows)
    totals = "; ".join(f"{label}: {exact(amount)}"
                       for label, amount in sorted(exports.source_totals.items()))
    return exports, [f"generated {exports.rows:,} {provider} export rows in {exports.files} "
                     f"files under {out}/ (source says {totals})"]


def _ingest(exports: list[DemoExports], url: str, provider: str | None) -> list[str]:
    """One ingest run over every export written (the format of each file is detected from
    its header; ``provider`` restricts it when there is one), reconciled slice by slice."""
    argv = [f"--source={e.source}" for e in exports] + [f"--warehouse={url}"]
    report = run(argv + ([f"--provider={provider}"] if provider else []))
    return ["", format_summary(report), ""]


def _table(title: str, rows: list[dict[str, Any]], columns: list[str],
           top: int | None = None) -> list[str]:
    if top is not None:
        best = sorted(rows, key=lambda r: r["cost"], reverse=True)[:top]
        if len(best) < len(rows):
            title += f" (the top {len(best)} of {len(rows)}; totals of these)"
        rows = best
    return [f"{title} (BilledCost):", render_costs(rows, columns, "table")]


def _closing(url: str, start: date, end: date, page: Path) -> list[str]:
    return [f"warehouse: {url}. Next: costflow query costs --start {start} --end {end} "
            "--group-by provider,service",
            f"cost report: {page.resolve()} (open it in a browser; `costflow report --start "
            f"{start} --end {end}` writes it again)"]


def _run_all(rows: int, base: Path, url: str, report_path: str) -> str:
    lines: list[str] = []
    loaded: dict[str, DemoExports] = {}
    for provider in CATALOG.with_demo():
        loaded[provider], text = _write(provider, base / provider, rows)
        lines += text
    lines += _ingest(list(loaded.values()), url, None)
    start = min(e.start for e in loaded.values())
    end = max(e.end for e in loaded.values())
    wh = connect(url)
    try:
        table = costs_by_dimension(wh, start, end, ["provider"])
        lines += [*_table(f"Every cloud in one table, {start} to {end}", table.to_pylist(),
                          table.column_names), ""]
        table = costs_by_dimension(wh, start, end, ["provider", "service"])
        lines += [*_table("Top services across clouds", table.to_pylist(), table.column_names,
                          top=10), ""]
        if "aws" in loaded:
            lines += _cluster(wh, base / "k8s", loaded["aws"])
        page = write_report(gather(wh, start, end), report_path)
    finally:
        wh.close()
    return "\n".join(lines + _closing(url, start, end, page))


def _cluster(wh: Warehouse, out: Path, bill: DemoExports) -> list[str]:
    """A cluster on the last month of the AWS bill: its nodes are that month's busiest EC2
    instances; its usage is loaded and the nodes' charges are split onto namespaces."""
    from costflow.allocation.run import allocate
    from costflow.allocation.usage import load_usage
    from costflow.usage.openshift.samples.cluster import Node, Volume, write_cluster

    month = date(bill.end.year - (bill.end.month == 1), (bill.end.month - 2) % 12 + 1, 1)
    window = {"start": month, "end": bill.end}
    busiest = ("SELECT ResourceId, COUNT(*) AS n FROM cost_analytics.cost_line_items "
               "WHERE ResourceId LIKE @prefix AND x_SourceProvider = 'aws' "
               "AND ChargePeriodStart >= TIMESTAMP(@start) AND ChargePeriodStart < "
               "TIMESTAMP(@end) GROUP BY ResourceId ORDER BY n DESC, ResourceId LIMIT @limit")
    instances = [r["ResourceId"] for r in wh.query(
        busiest, {**window, "prefix": "i-%", "limit": NODES}).to_pylist()]
    volumes = [r["ResourceId"] for r in wh.query(
        busiest, {**window, "prefix": "vol-%", "limit": 1}).to_pylist()]
    if not instances:
        return ["(no EC2 instance in the AWS bill's last month: no cluster to put on it)", ""]
    nodes = [Node(f"ip-10-0-{i}-17", f"aws:///us-east-1a/{rid}", 4 * 2 ** (i % 3),
                  16 * 2 ** (i % 3)) for i, rid in enumerate(instances)]
    hours = (datetime(bill.end.year, bill.end.month, 1, tzinfo=UTC)
             - datetime(month.year, month.month, 1, tzinfo=UTC)).days * 24
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cluster = write_cluster(
        out / "ocp-payload.tar.gz", CLUSTER, nodes, datetime(month.year, month.month, 1,
                                                             tzinfo=UTC), hours,
        pods_per_node=4, volumes=tuple(Volume("pv-data-0", "data", "payments", 100, v)
                                       for v in volumes))
    usage = load_usage(wh, str(cluster.path))
    done = allocate(wh, CLUSTER, month, bill.end)
    split = costs_by_dimension(wh, month, bill.end, ["k8s:namespace"], {"provider": ["AWS"],
                               "k8s:cluster": [CLUSTER]}, allocated=True).to_pylist()
    for row in split:
        row["k8s:namespace"] = row["k8s:namespace"] or IDLE
    idle = sum(done.idle.values(), Decimal(0))
    whole = idle + sum(done.allocated.values(), Decimal(0))
    share = f"{idle / whole:.1%}" if whole else "n/a"
    with_split, unsplit = ({r["BillingCurrency"]: r["cost"] for r in costs_by_dimension(
        wh, month, bill.end, [], {"provider": ["AWS"]}, allocated=allocated).to_pylist()}
        for allocated in (True, False))
    totals = ", ".join(f"{money(cost, code)} {code}" for code, cost in sorted(unsplit.items()))
    same = ("the same to the last decimal" if with_split == unsplit
            else "DIFFERENT (a bug: please report it)")
    return [
        f"Kubernetes cluster {CLUSTER}: {len(nodes)} nodes that are EC2 instances of the AWS "
        f"bill ({', '.join(instances)}), {len(cluster.pod_rows):,} pod-hours of usage loaded "
        f"({sum(usage.rows.values()):,} usage rows); "
        f"costflow allocate split {done.charges_split:,} node and volume charges of "
        f"{month} to {bill.end} into {done.rows_written:,} rows (idle share {share})",
        "",
        *_table(f"Cluster {CLUSTER} by namespace, {month} to {bill.end} (costflow query costs "
                "--allocated --group-by k8s:namespace)", split, list(split[0]) if split else
                ["k8s:namespace", "BillingCurrency", "cost", "rows"]),
        f"AWS total of the month with the split rows and without: {totals}, {same}.",
        "",
    ]
