"""Skip an ingest whose planned sources were already loaded, unchanged.

Why this module exists: AWS (and other providers) refresh exports daily, and schedulers run the
ingest more often than that. Reloading an unchanged delivery is harmless (slices are replaced)
but costs a full read and commit, and hides whether anything new arrived. The rule is generic,
over the ledger (`load_runs.sources`), not AWS-specific:

A planned file belongs to a *delivery group*: its ``delivery`` (e.g. the billing period's
manifest folder) when the planner knows one, else its URI. A run is unchanged when, for every
group, the most recent succeeded run that loaded that group loaded exactly the same files
(URI, sha256, delivery id). A new assembly or execution changes the files of its group, so it is
loaded; a group last loaded by a run that since failed is not counted as loaded.

Only planned deliveries are skipped: every planned file must carry a delivery id (a manifest's
assembly or execution id, or another provider's equivalent). Files named directly (a path, a
glob) have no delivery to compare, and naming them again by hand is taken as asking to reload
them; the reload replaces the same slices, so it never double-counts. A scheduled sync asks
otherwise (``--skip_unchanged_files``, which `costflow sync` passes): there each such file is its
own group, identified by (URI, sha256), so a GCP file export whose files did not change is
skipped like an unchanged AWS delivery, and a changed file reloads the run's whole plan.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from costflow.pipelines.report import RunReport
from costflow.sources.contract import Plan
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import RunStart, Warehouse

LOG = logging.getLogger("costflow.ingest")

_SUCCEEDED_RUNS = """
SELECT run_id, sources
FROM cost_analytics.load_runs
WHERE status = 'succeeded'
ORDER BY started_at DESC
"""


def _group(entry: dict[str, Any]) -> str:
    return str(entry.get("delivery") or entry.get("uri"))


def _identity(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("uri")), str(entry.get("sha256")), str(entry.get("delivery_id") or ""))


def _groups(entries: Iterable[dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    for entry in entries:
        out.setdefault(_group(entry), set()).add(_identity(entry))
    return out


def previous_load(warehouse: Warehouse, plan: Plan, *, files_too: bool = False) -> str | None:
    """The run that already loaded every planned delivery unchanged, or None.

    Returns None for an empty plan, a file without a delivery id (unless ``files_too``: then
    such a file is compared by URI and sha256), or when any delivery group is new or changed.
    """
    if not plan.files or not (files_too or all(f.delivery_id for f in plan.files)):
        return None
    wanted = _groups(f.ledger_entry() for f in plan.files)
    latest: dict[str, tuple[str, set[tuple[str, str, str]]]] = {}
    for row in warehouse.query(_SUCCEEDED_RUNS).to_pylist():
        sources = row["sources"]
        entries = json.loads(sources) if isinstance(sources, str) else (sources or [])
        for group, files in _groups(e for e in entries if isinstance(e, dict)).items():
            latest.setdefault(group, (row["run_id"], files))  # newest run first
        if all(g in latest for g in wanted):
            break
    runs = set()
    for group, files in wanted.items():
        if group not in latest or latest[group][1] != files:
            return None
        runs.add(latest[group][0])
    return sorted(runs)[-1]


def record_skipped(warehouse: Warehouse, run_id: str, message: str,
                   report: dict[str, Any]) -> None:
    """Mark a begun run 'skipped' with the reason (the ledger's own UPDATE, status bound)."""
    (statement,) = sqlfiles.load("load/fail_run.sql")
    warehouse.query(statement.bigquery(), {"run_id": run_id, "status": "skipped", "error": message,
                                    "report": json.dumps(report, default=str)})


def skip_run(warehouse: Warehouse, run: RunStart, previous_run: str, plan: Plan,
             report_path: str) -> dict[str, Any]:
    """Record ``run`` as skipped because ``previous_run`` loaded the same deliveries.

    The ledger gets the run (status 'skipped', with its sources and the reason) and the run
    report says the same, so a scheduler sees that the source was checked and nothing changed.
    """
    message = (f"nothing to do: the {len(plan.files)} planned file(s) are the same deliveries "
               f"(uri, sha256, delivery id) that run {previous_run} already loaded")
    report = RunReport(run_id=run.run_id, started_at=run.started_at, warehouse=warehouse.url,
                       sources=run.sources, empty_files=plan.empty_files, status="skipped",
                       warnings=[message, *plan.notes], finished_at=datetime.now(UTC))
    warehouse.begin_run(run)  # refuses a reused run id before anything is written
    record_skipped(warehouse, run.run_id, message, report.to_dict())
    try:
        report.write(report_path)
    except Exception as exc:  # noqa: BLE001 - the ledger holds the outcome; say, never raise
        problem = f"the run report could not be written to {report_path}: {exc}"
        LOG.warning("run %s: %s", run.run_id, problem)
        report.warnings.append(problem)
    return report.to_dict()
