"""The load ledger, readable without SQL: ``costflow runs list`` and ``costflow runs show RUN``.

What each ingest run did (status, start and finish, sources, rows read, loaded and
dead-lettered, totals per slice, the error) straight from `load_runs` and `load_slices`, with the
SQL in `costflow/sql/queries/` (BigQuery dialect, bound parameters) like every other query. Listing
also sweeps the ledger first (`costflow.warehouse.ledger.sweep_abandoned`): a run whose process
died shows as `abandoned`, not `running` forever. Money stays exact: decimals are printed and
serialized as exact text.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError, CostflowError
from costflow.text import exact, render_table
from costflow.warehouse import ledger, sqlfiles
from costflow.warehouse.base import Warehouse

LIST_COLUMNS = ["run_id", "status", "started_at", "finished_at", "sources", "rows_read",
                "rows_loaded", "rows_dead_lettered", "billed_cost_total", "error"]
SLICE_COLUMNS = ["slice", "rows_read", "rows_loaded", "rows_dead_lettered", "source_basis",
                 "loaded_billed_cost", "dead_lettered_cost", "committed_at"]
ERROR_WIDTH = 80  # the table shows the start of an error; json and `runs show` the whole of it


def list_runs(warehouse: Warehouse, *, limit: int = 50, status: str | None = None,
              staging_root: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` runs (optionally only those in ``status``), newest first.

    Abandoned runs are marked first, and their staging directories under ``staging_root``
    removed (None: the ledger is updated, no directory is touched).
    """
    if limit < 1:
        raise ConfigError(f"--limit {limit} is not a number of runs; give 1 or more.")
    _ready(warehouse)
    ledger.sweep_quietly(warehouse, staging_root)
    (statement,) = sqlfiles.load("queries/runs_list.sql")
    rows = warehouse.query(statement.bigquery(), {"status": status, "limit": limit}).to_pylist()
    return [_run(row) for row in rows]


def show_run(warehouse: Warehouse, run_id: str) -> dict[str, Any]:
    """One run with its sources, totals, error, report and per-slice reconciliation.

    ``slices`` are the slices the run committed (`load_slices`); a run that committed nothing
    (failed, abandoned) shows the slices its report computed instead, with ``committed`` false.

    Raises:
        ConfigError: the ledger has no run ``run_id``.
    """
    _ready(warehouse)
    (statement,) = sqlfiles.load("queries/run_show.sql")
    rows = warehouse.query(statement.bigquery(), {"run_id": run_id}).to_pylist()
    if not rows:
        raise ConfigError(f"the ledger of {warehouse.url} has no run {run_id!r}; "
                          "`costflow runs list` shows the runs it has.")
    run = _run(rows[0])
    run["report"] = _json(rows[0].get("report"))
    (slices_sql,) = sqlfiles.load("queries/run_slices.sql")
    committed = warehouse.query(slices_sql.bigquery(), {"run_id": run_id}).to_pylist()
    if committed:
        run["slices"] = [{"slice": _slice_name(s), **{k: _plain(v) for k, v in s.items()},
                          "committed": True} for s in committed]
    else:
        run["slices"] = [{"slice": s.get("slice"), "rows_read": s.get("rows_read"),
                          "rows_loaded": s.get("rows_loaded"),
                          "rows_dead_lettered": s.get("rows_dead_lettered"),
                          "source_basis": s.get("source_basis"),
                          "loaded_billed_cost": s.get("billed_cost"),
                          "dead_lettered_cost": s.get("dead_lettered_cost"),
                          "committed_at": None, "committed": False}
                         for s in (run["report"] or {}).get("slices", [])]
    return run


def render_runs(runs: list[dict[str, Any]], fmt: str) -> str:
    """``costflow runs list`` output: a table, or JSON (every field, decimals as text)."""
    if fmt == "json":
        return json.dumps(runs, indent=2)
    rows = [{**r, "sources": len(r["sources"]),
             "error": _shorten(r["error"]) if r["error"] else ""} for r in runs]
    if not rows:
        return "(no runs in the ledger)"
    return render_table(rows, LIST_COLUMNS, "table")


def render_run(run: dict[str, Any], fmt: str) -> str:
    """``costflow runs show`` output: a readable page, or JSON (every field)."""
    if fmt == "json":
        return json.dumps(run, indent=2)
    lines = [f"run {run['run_id']}: {run['status']}",
             f"started {run['started_at']}, finished {run['finished_at'] or '-'}"]
    if run.get("owner_host"):
        lines.append(f"owner pid {run['owner_pid']} on {run['owner_host']}, last heartbeat "
                     f"{run['heartbeat_at'] or '-'}")
    lines.append(f"provider {run['provider'] or '(detected per file)'}, format "
                 f"{run['source_format'] or '-'}")
    lines.append(f"sources ({len(run['sources'])}):")
    for source in run["sources"]:
        if isinstance(source, dict):
            extra = ", ".join(f"{k} {source[k]}" for k in ("format", "size_bytes", "sha256",
                                                            "delivery_id") if source.get(k))
            lines.append(f"  {source.get('uri')}" + (f" ({extra})" if extra else ""))
        else:
            lines.append(f"  {source}")
    if run["rows_read"] is not None:
        lines.append(f"rows: {run['rows_read']:,} read, {run['rows_loaded']:,} loaded, "
                     f"{run['rows_dead_lettered']:,} dead-lettered")
        if run["billed_cost_total"] is None and run["rows_read"]:
            lines.append("totals: in several currencies, per slice below (never summed "
                         "across currencies)")
        else:
            lines.append(f"totals: source basis {run['source_basis_total']} = BilledCost "
                         f"{run['billed_cost_total']} + dead-lettered "
                         f"{run['dead_lettered_cost_total']}")
    if run["error"]:
        lines.append(f"error: {run['error']}")
    if run["slices"]:
        committed = run["slices"][0]["committed"]
        lines.append("slices:" if committed else
                     "slices (from the run report: NOT committed, the previous contents stand):")
        table = render_table(run["slices"], SLICE_COLUMNS if committed else SLICE_COLUMNS[:-1],
                             "table")
        lines.extend("  " + line for line in table.splitlines())
    warnings = (run.get("report") or {}).get("warnings") or []
    lines.extend(f"warning: {w}" for w in warnings)
    return "\n".join(lines)


def _ready(warehouse: Warehouse) -> None:
    """Refuse a warehouse without a ledger (never create one); bring an older ledger's
    columns up to date (`costflow.warehouse.migrate`, as every ingest does)."""
    try:
        warehouse.query("SELECT COUNT(*) AS n FROM cost_analytics.load_runs WHERE FALSE")
    except CostflowError:  # no file, or a busy one: already a user's error
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's own "no such table"
        raise ConfigError(
            f"{warehouse.url} has no load ledger (cost_analytics.load_runs): nothing has been "
            "ingested there. Run costflow ingest first, or point --warehouse (or "
            f"COSTFLOW_WAREHOUSE) at the warehouse to read. ({type(exc).__name__})") from None
    warehouse.ensure_schema()


def _run(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _plain(v) for k, v in row.items() if k != "report"}
    sources = _json(row.get("sources"))
    out["sources"] = sources if isinstance(sources, list) else []
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: exact decimal text, ISO timestamps; everything else as it is."""
    if isinstance(value, Decimal):
        return exact(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _slice_name(row: dict[str, Any]) -> str:
    period = row.get("BillingPeriodStart")
    month = f"{period:%Y-%m}" if isinstance(period, datetime) else str(period)
    return f"{row.get('x_SourceProvider')}/{row.get('BillingAccountId')}/{month}"


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_WIDTH else flat[:ERROR_WIDTH - 3] + "..."
