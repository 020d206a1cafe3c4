"""The data-quality report of a run as one self-contained HTML page.

Why our own page rather than GX Data Docs: the page a FinOps engineer needs joins the checks with
the reconciliation table and the post-load assertions of the same run, and Data Docs knows only
the first. It is rendered from the run report dict (no second source of numbers), every value
HTML-escaped, no scripts and no external assets, so it opens from disk or an artifact store.
"""

from __future__ import annotations

import html
from typing import Any

from apache_beam.io.filesystems import FileSystems

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1b1f24}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.warn{color:#9a6700;font-weight:600}code{font-size:12px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _status(ok: bool | None, soft: bool = False) -> str:
    if ok is None:
        return '<span class="warn">not checked</span>'
    if ok:
        return '<span class="ok">pass</span>'
    return '<span class="warn">warning</span>' if soft else '<span class="bad">FAIL</span>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
        for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(report: dict[str, Any]) -> str:
    """The HTML page for a run report dict (as `RunReport.to_dict` returns it)."""
    quality = report.get("quality") or {}
    status_class = "ok" if report["status"] == "succeeded" else "bad"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>costflow data quality "
             f"{_e(report['run_id'])}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Data quality of run <code>{_e(report['run_id'])}</code>: "
             f"<span class='{status_class}'>{_e(report['status'])}</span></h1>",
             f"<p>Warehouse {_e(report['warehouse'])}; started {_e(report['started_at'])}, "
             f"finished {_e(report.get('finished_at'))}.</p>"]
    if report.get("error"):
        parts.append(f"<p class='bad'>{_e(report['error'])}</p>")
    parts.append("<h2>Reconciliation per slice</h2>")
    parts.append(_table(
        ["slice", "rows read", "loaded", "dead-lettered", "currency", "source basis",
         "BilledCost loaded", "dead-lettered cost", "difference", "reconciled"],
        [[_e(s["slice"]), _e(f"{s['rows_read']:,}"), _e(f"{s['rows_loaded']:,}"),
          _e(f"{s['rows_dead_lettered']:,}"), _e(s.get("currency") or "?"),
          _e(s["source_basis"]), _e(s.get("warehouse_billed_cost") or s["billed_cost"]),
          _e(s["dead_lettered_cost"]), _e(s["difference"]), _status(s.get("reconciled"))]
         for s in report["slices"]],
        numeric={1, 2, 3, 5, 6, 7, 8}))
    for sl in quality.get("slices", []):
        verdict = "<span class='bad'>rejected</span>" if sl["rejected"] else (
            "<span class='ok'>accepted</span>")
        parts.append(f"<h2>Checks of slice {_e(sl['slice'])}: {verdict} "
                     f"({sl['hard_failures']} hard, {sl['soft_failures']} soft failures)</h2>")
        rows = []
        for c in sl["checks"]:
            soft = c["severity"] != "hard"
            ok = not c["rows_failed"] and not c["error"]
            rows.append([_e(c["check"]), _e(c["severity"]), _e(c["rule"]),
                         _e(f"{c['rows_evaluated']:,}"), _e(f"{c['rows_failed']:,}"),
                         _status(ok, soft) + (f"<br>{_e(c['error'])}" if c["error"] else "")])
        parts.append(_table(["check", "severity", "rule", "rows in slice", "rows failing",
                             "result"], rows, numeric={3, 4}))
        for c in sl["checks"]:
            if c["samples"]:
                cols = list(c["samples"][0])
                parts.append(f"<p>Sample rows failing <code>{_e(c['check'])}</code>:</p>")
                parts.append(_table(cols, [[_e(s.get(k)) for k in cols] for s in c["samples"]]))
    if quality.get("assertions"):
        parts.append("<h2>Post-load assertions (zero rows = pass)</h2>")
        parts.append(_table(["assertion", "failing rows", "result", "sample"], [
            [_e(a["assertion"]), _e(a["failing_rows"]), _status(a["ok"]),
             _e(a["samples"][:1] if a["samples"] else "")] for a in quality["assertions"]],
            numeric={1}))
    if report.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>" + "".join(
            f"<li>{_e(w)}</li>" for w in report["warnings"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(report: dict[str, Any], path: str) -> str:
    """Write the page to ``path`` (local or any Beam filesystem); returns the path."""
    with FileSystems.create(path) as f:
        f.write(render(report).encode("utf-8"))
    return path


def quality_report_path(report_path: str) -> str:
    """The HTML page beside the run's JSON report: ``runs/<run_id>.json`` -> ``runs/<run_id>.html``.

    Only a ``.json`` report path is accepted, so the page is always a sibling of the JSON report
    in the same directory (built from a checked run id) and never overwrites it.
    """
    if not report_path.endswith(".json") or report_path.endswith("/.json"):
        raise ValueError(f"{report_path!r} is not the path of a run's JSON report (<run_id>.json)")
    return report_path[:-len(".json")] + ".html"
