"""The run report: per-slice reconciliation, per-file counts, warnings and the outcome.

Every run writes it as JSON (beside the warehouse, or where --report_dir says) and the CLI
prints its summary. Decimals are written as exact strings, never floats. A report is written to a
temporary name and then renamed, so a full disk leaves no cut report behind; `write_reports`
never raises, it says what it could not write (the run's outcome is the ledger's, not the file's).
"""

from __future__ import annotations

import json
import logging
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from apache_beam.io.filesystems import FileSystems

from costflow.pipelines.elements import FileCounts
from costflow.quality import html_report
from costflow.reconcile import SliceCheck, SliceKey, SliceStats
from costflow.text import exact
from costflow.warehouse import ledger

LOG = logging.getLogger("costflow.ingest")

TOP_REASONS = 5


@dataclass
class RunReport:
    run_id: str
    started_at: datetime
    warehouse: str
    sources: list[dict[str, Any]]
    empty_files: list[str] = field(default_factory=list)
    status: str = "running"
    finished_at: datetime | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)  # costflow.quality.commit_checks
    quality_report: str | None = None  # path of the HTML data-quality report
    amortization: list[dict[str, Any]] = field(default_factory=list)  # pipelines.amortize

    def add_totals(self, slices: dict[SliceKey, SliceStats], files: dict[str, FileCounts],
                   checks: list[SliceCheck] | None = None) -> None:
        by_key = {c.key: c for c in checks or []}
        self.slices = []
        for key in sorted(slices, key=_sort_key):
            s = slices[key]
            check = by_key.get(key)
            self.slices.append({
                "slice": str(key), "provider": key.provider,
                "billing_account_id": key.billing_account_id,
                "billing_period_start": (key.billing_period_start.isoformat()
                                         if key.billing_period_start else None),
                "currency": ",".join(sorted(s.currencies)) or None,
                "rows_read": s.rows_read, "rows_loaded": s.rows_loaded,
                "rows_dead_lettered": s.rows_dead_lettered,
                "rows_cost_unparseable": s.rows_basis_unparseable,
                "source_basis": exact(s.source_basis), "billed_cost": exact(s.billed_cost),
                "dead_lettered_cost": exact(s.dead_lettered_cost),
                "difference": exact(s.difference),
                "warehouse_billed_cost": exact(check.warehouse_billed_cost) if check else None,
                "reconciled": check.ok if check else None,
            })
        self.files = []
        for uri in sorted(files):
            c = files[uri]
            top = sorted(c.dead_letter_reasons.items(), key=lambda kv: -kv[1])[:TOP_REASONS]
            self.files.append({"uri": uri, "rows_read": c.rows_read,
                               "rows_dead_lettered": c.rows_dead_lettered,
                               "top_dead_letter_reasons": [{"reason": r, "rows": n}
                                                           for r, n in top]})

    def totals(self) -> dict[str, Any]:
        """Row counts over every slice; money summed per currency, never across currencies.

        ``by_currency`` holds the sums per BillingCurrency (a slice whose rows name several
        currencies, or none, is its own "EUR,USD" or "?" entry); the top-level money totals
        are those sums when the run has one currency, and null when it has several.
        """
        groups: dict[str, list[dict[str, Any]]] = {}
        for s in self.slices:
            groups.setdefault(s.get("currency") or UNKNOWN_CURRENCY, []).append(s)
        by_currency = {currency: {name: _sum(members, name) for name in MONEY_TOTALS}
                       for currency, members in sorted(groups.items())}
        (single,) = by_currency.values() if len(by_currency) == 1 else (None,)
        return {
            "rows_read": sum(s["rows_read"] for s in self.slices),
            "rows_loaded": sum(s["rows_loaded"] for s in self.slices),
            "rows_dead_lettered": sum(s["rows_dead_lettered"] for s in self.slices),
            **{name: (single[name] if single else None) for name in MONEY_TOTALS},
            "by_currency": by_currency,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "warehouse": self.warehouse, "sources": self.sources,
            "empty_files": self.empty_files, "totals": self.totals(), "slices": self.slices,
            "files": self.files, "warnings": self.warnings, "error": self.error,
            "quality": self.quality, "quality_report": self.quality_report,
            "amortization": self.amortization,
        }

    def write(self, path: str) -> None:
        write_atomically(path, json.dumps(self.to_dict(), indent=2).encode())

    @staticmethod
    def read(path: str) -> dict[str, Any]:
        with FileSystems.open(path) as f:
            return json.loads(f.read())


def report_path(report_dir: str, run_id: str) -> str:
    """``<report_dir>/<run_id>.json`` for a valid run id (`costflow.warehouse.ledger`)."""
    return ledger.child_path(report_dir, run_id, ".json")


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary sibling, then rename it to ``path``.

    A write that fails (a full disk) removes its temporary file and leaves ``path`` as it was:
    never a cut file.
    """
    partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
    try:
        with FileSystems.create(partial) as f:
            f.write(data)
        FileSystems.rename([partial], [path])
    except BaseException:
        with suppress(Exception):
            if FileSystems.exists(partial):
                FileSystems.delete([partial])
        raise


def write_reports(report: RunReport, json_path: str) -> list[str]:
    """Write the HTML data-quality page and the JSON report of ``report``; never raises.

    Returns one sentence per file that could not be written (also logged as a warning). A page
    that could not be written is not named in the JSON report, which says why instead.
    """
    problems: list[str] = []
    page = html_report.quality_report_path(json_path)
    report.quality_report = page
    try:
        write_atomically(page, html_report.render(report.to_dict()).encode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - the run's outcome is not the page's
        report.quality_report = None
        problems.append(f"the data-quality report could not be written to {page}: {_why(exc)}")
        report.warnings.append(problems[-1])
    try:
        report.write(json_path)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"the run report could not be written to {json_path}: {_why(exc)}")
    for problem in problems:
        LOG.warning("run %s: %s", report.run_id, problem)
    return problems


def _why(exc: BaseException) -> str:
    """The OS error behind Beam's wrapping (e.g. "[Errno 28] No space left on device")."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            break
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    found = seen if isinstance(seen, OSError) and seen.errno is not None else exc
    return f"{type(found).__name__}: {found}"


MONEY_TOTALS = ("source_basis", "billed_cost", "dead_lettered_cost")
UNKNOWN_CURRENCY = "?"  # slices whose rows name no currency (e.g. only dead letters)


def _sum(slices: list[dict[str, Any]], name: str) -> str:
    return exact(sum((Decimal(s[name]) for s in slices), Decimal(0)))


def _sort_key(key: SliceKey) -> tuple:
    return (key.provider, key.billing_account_id or "", key.billing_period_start.isoformat()
            if key.billing_period_start else "")


def format_summary(report: dict[str, Any]) -> str:
    """A plain-text summary of a report dict, as printed at the end of a run."""
    lines = [f"run {report['run_id']}: {report['status']}"]
    header = ("slice", "rows read", "loaded", "dead", "source basis", "BilledCost loaded",
              "dead-lettered", "diff")
    rows = [(s["slice"], f"{s['rows_read']:,}", f"{s['rows_loaded']:,}",
             f"{s['rows_dead_lettered']:,}", s["source_basis"],
             s["warehouse_billed_cost"] or s["billed_cost"], s["dead_lettered_cost"],
             s["difference"]) for s in report["slices"]]
    if rows:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            lines.append("  " + "  ".join(str(v).rjust(w) if i else str(v).ljust(w)
                                         for i, (v, w) in enumerate(zip(r, widths, strict=True))))
    t = report["totals"]
    lines.append(f"total: {t['rows_read']:,} rows read, {t['rows_loaded']:,} loaded, "
                 f"{t['rows_dead_lettered']:,} dead-lettered")
    by_currency = t.get("by_currency") or {}
    for currency, m in by_currency.items():
        unit = currency if currency != UNKNOWN_CURRENCY else "no currency"
        lines.append(f"  {unit}: source basis {m['source_basis']} = BilledCost "
                     f"{m['billed_cost']} + dead-lettered {m['dead_lettered_cost']}")
    for f in report["files"]:
        for r in f["top_dead_letter_reasons"]:
            lines.append(f"dead letters in {f['uri']}: {r['rows']:,} x {r['reason']}")
    for p in report.get("amortization", []):
        lines.append(f"commitment fees amortized: {p['fee_moved']} of {p['slice']} "
                     f"(pool {p['pool']}) moved from {p['fee_rows']:,} fee row(s) onto "
                     f"{p['covered_rows']:,} covered usage row(s) as EffectiveCost")
    for uri in report["empty_files"]:
        lines.append(f"note: {uri} has a header and no rows: nothing to load from it")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    if report.get("quality_report"):
        lines.append(f"data-quality report: {report['quality_report']}")
    return "\n".join(lines)
