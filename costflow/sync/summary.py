"""The one summary a sync prints: a row per source, the failures in full, one closing line.

Why this module exists: a sync may run dozens of sources; the person (or the scheduler's log)
reading its output needs one table saying what happened to each, the full one-paragraph error
of each failure (what to fix), and a last line with the counts and the exit status. ``--json``
gives the same as one document for a machine.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from costflow.sync.runner import SyncResult
from costflow.text import render_table

COLUMNS = ["tenant", "account", "provider", "source", "status", "rows", "run id", "note"]
NOTE_WIDTH = 70
STATUS_ORDER = ("committed", "unchanged", "not-due", "dry-run", "failed", "interrupted")


def summary_rows(result: SyncResult) -> list[dict[str, Any]]:
    """One dict per source (every field; the JSON form)."""
    rows = []
    for r in result.results:
        o = r.outcome
        rows.append({
            "tenant": r.item.tenant, "account": r.item.account, "provider": r.item.provider,
            "source": r.item.source, "uri": r.item.uri, "status": o.status, "rows": o.rows,
            "run_id": o.run_id, "billed_cost": o.billed_cost, "note": o.note,
            "error": o.error,
            "started_at": o.started_at.isoformat() if o.started_at else None,
            "finished_at": o.finished_at.isoformat() if o.finished_at else None})
    return rows


def counts(result: SyncResult) -> dict[str, int]:
    found = Counter(r.outcome.status for r in result.results)
    return {s: found[s] for s in STATUS_ORDER if found[s]}


def render_summary(result: SyncResult, fmt: str = "table") -> str:
    """The summary as text (``table``) or JSON (``json``)."""
    if fmt == "json":
        return json.dumps({
            "warehouse": result.warehouse, "metadata": result.metadata,
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat() if result.finished_at else None,
            "dry_run": result.dry_run, "due_only": result.due_only,
            "parallel": result.parallel, "counts": counts(result),
            "interrupted": result.interrupted, "lock_lost": result.lock_lost,
            "exit_status": result.exit_status, "sources": summary_rows(result),
            "budgets": _budgets_json(result),
            "allocation": (result.allocation.to_json() if result.allocation is not None else
                           {"error": result.allocation_error} if result.allocation_error
                           else None)}, indent=2)
    table = [{**row, "run id": row["run_id"] or "",
              "rows": "" if row["rows"] is None else row["rows"],
              "note": _short(row["error"] or row["note"] or "")}
             for row in summary_rows(result)]
    lines = [render_table(table, COLUMNS, "table") if table else "(no sources selected)"]
    failed = [r for r in result.results if r.outcome.status == "failed"]
    if failed:
        lines += ["", "failed:"]
        lines += [f"  {r.item.label}: {r.outcome.error}" for r in failed]
    if result.lock_lost:
        lines += ["", f"stopped: {result.lock_lost}"]
    if result.budgets is not None:
        from costflow.services.budgets import render_check

        lines += ["", "budgets:", render_check(result.budgets, "table")]
    if result.budget_error:
        lines += ["", f"budgets not checked: {result.budget_error}"]
    if result.allocation is not None and result.allocation.lines():
        lines += ["", *result.allocation.lines()]
    if result.allocation_error:
        lines += ["", f"allocations not checked after the loads: {result.allocation_error}"]
    lines += ["", _closing(result)]
    return "\n".join(lines)


def _budgets_json(result: SyncResult) -> dict[str, Any] | None:
    """The post-sync budget check (`costflow.sync.budgets`), when one ran or failed."""
    if result.budgets is not None:
        from costflow.services.budgets import render_check

        loaded: dict[str, Any] = json.loads(render_check(result.budgets, "json"))
        return loaded
    return {"error": result.budget_error} if result.budget_error else None


def _closing(result: SyncResult) -> str:
    done = ", ".join(f"{n} {status}" for status, n in counts(result).items()) or "nothing"
    seconds = ((result.finished_at - result.started_at).total_seconds()
               if result.finished_at else 0.0)
    what = "planned (dry run, nothing ingested or recorded)" if result.dry_run else "synced"
    line = (f"{len(result.results)} source(s) {what} into {result.warehouse} in "
            f"{seconds:.0f} s: {done}.")
    unchanged = counts(result).get("unchanged", 0)
    if unchanged and unchanged == len(result.results):
        line += " Every source is unchanged since its last load: nothing new was loaded."
    if result.interrupted and not result.lock_lost:
        line += " Interrupted: running ingests were stopped, nothing further was committed."
    return line + f" Exit status {result.exit_status}."


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= NOTE_WIDTH else flat[:NOTE_WIDTH - 3] + "..."
