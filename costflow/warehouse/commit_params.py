"""The engine-neutral half of a commit: parameters for the SQL, and the reconciliation verdict.

Both engines run the same SQL files (`costflow/sql/load/`). What they bind to them, and how the
reconciliation query's answer becomes `SliceCheck`s, is decided here once, so DuckDB and
BigQuery cannot drift apart on what "reconciled" means. Money stays `Decimal` throughout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError, CostflowError, IngestFailed, ReconciliationError
from costflow.reconcile import SliceCheck, SliceKey, SliceStats, merge_all
from costflow.schemas.focus import COST_LINE_ITEMS, SLICE_KEY
from costflow.schemas.operational import DEAD_LETTERS, LOAD_SLICES, RUN_STATUSES
from costflow.warehouse import ledger
from costflow.warehouse.base import RunStart, StagedRun

# Staged data of a run, as `sql/load/*.sql` names it: `cost_analytics.<staging table>`. DuckDB
# keeps these tables (rows keyed by x_RunId); BigQuery gives every run its own copy of them.
STAGING_TABLES: dict[str, str] = {
    COST_LINE_ITEMS.name: "_staged_cost_line_items",
    DEAD_LETTERS.name: "_staged_dead_letters",
}

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
assert {RUNNING, SUCCEEDED, FAILED, ledger.ABANDONED} <= set(RUN_STATUSES)
assert ledger.RUNNING == RUNNING
# Recording a failure is retried: a ledger write can fail once (a lock, a blip) and succeed next.
FAIL_RUN_DELAYS: tuple[float, ...] = (0.2, 1.0)  # seconds before the 2nd and 3rd attempts

# load_slices column <- SliceStats field: the fields of the @slices struct parameter.
SLICE_STATS_COLUMNS: dict[str, str] = {
    "rows_read": "rows_read",
    "rows_loaded": "rows_loaded",
    "rows_dead_lettered": "rows_dead_lettered",
    "source_basis": "source_basis",
    "loaded_billed_cost": "billed_cost",
    "dead_lettered_cost": "dead_lettered_cost",
}
SLICE_KEY_COLUMNS: tuple[str, ...] = SLICE_KEY
# Every field of @slices is a load_slices column; the test suite checks the SQL uses exactly these.
SLICE_FIELDS: tuple[str, ...] = SLICE_KEY_COLUMNS + tuple(SLICE_STATS_COLUMNS)
assert set(SLICE_FIELDS) <= set(LOAD_SLICES.names)


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalized(key: SliceKey) -> SliceKey:
    """The key with its period in UTC, so keys from Python and from the engine compare equal."""
    return SliceKey(key.provider, key.billing_account_id, utc(key.billing_period_start))


def by_utc_key(expected: Mapping[SliceKey, SliceStats]) -> dict[SliceKey, SliceStats]:
    """``expected`` re-keyed with UTC periods (stats of keys that then coincide are merged)."""
    return merge_all([{normalized(k): v} for k, v in expected.items()])


def slice_rows(expected: Mapping[SliceKey, SliceStats]) -> list[dict[str, Any]]:
    """The @slices parameter: one struct per attributable slice the run replaces."""
    wanted = by_utc_key(expected)
    rows = []
    for key in sorted((k for k in wanted if k.attributable), key=sort_key):
        row: dict[str, Any] = dict(zip(SLICE_KEY_COLUMNS, (
            key.provider, key.billing_account_id, key.billing_period_start), strict=True))
        row.update({column: getattr(wanted[key], field)
                    for column, field in SLICE_STATS_COLUMNS.items()})
        rows.append(row)
    return rows


def sort_key(key: SliceKey) -> tuple[str, str, datetime]:
    """A total order on keys that tolerates the None parts of unattributable keys."""
    return (key.provider, key.billing_account_id or "",
            key.billing_period_start or datetime.min.replace(tzinfo=UTC))


def build_checks(expected: Mapping[SliceKey, SliceStats],
                 warehouse: Iterable[Mapping[str, Any]]) -> list[SliceCheck]:
    """Pair every expected slice with what the reconciliation query found, and vice versa.

    A slice found in the staged data but absent from ``expected`` is checked against zero
    (so it fails): committing it would insert rows whose slice is never replaced. Dead letters
    with no readable account or period are checked only when ``expected`` lists their key;
    otherwise they belong to no slice and are kept (and replaced) by source URI.

    Args:
        expected: the source's per-slice totals.
        warehouse: rows of `load/reconcile_slices.sql` (mapping access by column name).
    """
    found: dict[SliceKey, Mapping[str, Any]] = {}
    for row in warehouse:
        key = SliceKey(row["x_SourceProvider"], row["BillingAccountId"],
                       utc(row["BillingPeriodStart"]))
        found[key] = row
    wanted = by_utc_key(expected)
    checks = []
    keys = wanted.keys() | {k for k in found if k.attributable or k in wanted}
    for key in sorted(keys, key=sort_key):
        row = found.get(key, {})
        checks.append(SliceCheck(
            key=key,
            expected=wanted.get(key, SliceStats()),
            warehouse_rows=int(row.get("rows_loaded", 0)),
            warehouse_billed_cost=Decimal(row.get("billed_cost", 0)),
            warehouse_dead_rows=int(row.get("rows_dead_lettered", 0)),
            warehouse_dead_cost=Decimal(row.get("dead_lettered_cost", 0)),
        ))
    return checks


def verdict(run_id: str, checks: list[SliceCheck]) -> None:
    """Raise `ReconciliationError` naming every failing slice; return when all match."""
    failing = [c for c in checks if not c.ok]
    if failing:
        lines = "; ".join(c.describe() for c in failing)
        raise ReconciliationError(
            f"run {run_id}: {len(failing)} of {len(checks)} slice(s) do not reconcile, so "
            f"nothing was committed and the previous contents are intact: {lines}")


def report_json(report: Mapping[str, Any]) -> str:
    """The run report as JSON text (Decimals and datetimes as strings, keys sorted)."""
    return json.dumps(report, default=str, sort_keys=True)


def begin_params(run: RunStart) -> dict[str, Any]:
    """Parameters of `load/begin_run.sql`; the owner is this process."""
    owner = ledger.this_process()
    return {"run_id": run.run_id, "status": RUNNING, "provider": run.provider,
            "source_format": run.source_format, "sources": json.dumps(run.sources, default=str),
            "started_at": utc(run.started_at), "owner_host": owner.host, "owner_pid": owner.pid}


def run_id_taken(run_id: str, existing: Mapping[str, Any]) -> ConfigError:
    """The error of a begin_run whose id is in the ledger already (``existing``: its row)."""
    started = utc(existing.get("started_at"))
    when = f", started {started:%Y-%m-%d %H:%M:%S} UTC" if started else ""
    return ConfigError(
        f"run id {run_id!r} is already in the ledger (a {existing.get('status')} run{when}). A "
        "run id names one run: reusing it would rewrite that run's ledger row and slices, so "
        "nothing was done and that run is untouched. Give a new --run_id, or leave it out to "
        "get a generated one.")


def fail_params(run_id: str, error: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of `load/fail_run.sql`."""
    return {"run_id": run_id, "status": FAILED, "error": error, "report": report_json(report)}


def replace_params(staged: StagedRun, expected: Mapping[SliceKey, SliceStats],
                   report: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of every statement of `load/replace_slices.sql`."""
    totals = SliceStats()
    for stats in expected.values():
        totals = totals.merge(stats)
    # Money is summed in one currency only: a run of several records no cross-currency sum
    # (its report has the sums per currency).
    one_currency = len(totals.currencies) <= 1
    return {
        "run_id": staged.run_id,
        "slices": slice_rows(expected),
        "source_uris": list(staged.source_uris),
        "status": SUCCEEDED,
        "rows_read": totals.rows_read,
        "rows_loaded": totals.rows_loaded,
        "rows_dead_lettered": totals.rows_dead_lettered,
        "source_basis_total": totals.source_basis if one_currency else None,
        "billed_cost_total": totals.billed_cost if one_currency else None,
        "dead_lettered_cost_total": totals.dead_lettered_cost if one_currency else None,
        "report": report_json(report),
    }


LEDGER_UNRECORDED = "The ledger could not record the failure either"


def retry_fail_run(fail_run: Callable[[str, str, dict[str, Any]], None], run_id: str,
                   message: str, report: dict[str, Any],
                   delays: tuple[float, ...] | None = None) -> Exception | None:
    """Mark the run failed, retrying; returns the last ledger error if every attempt failed."""
    waits = FAIL_RUN_DELAYS if delays is None else delays
    for attempt in range(len(waits) + 1):
        try:
            fail_run(run_id, message, report)
            return None
        except Exception as ledger_error:  # noqa: BLE001 - the caller says so in its error
            if attempt == len(waits):
                return ledger_error
            time.sleep(waits[attempt])
    return None  # pragma: no cover - the loop always returns


def unrecorded(ledger_error: BaseException, attempts: int) -> str:
    """What the run's error says when its failure could not be recorded in the ledger."""
    return (f"{LEDGER_UNRECORDED} ({attempts} attempts; last: {ledger_error}): load_runs shows "
            "the run as running until the next ingest or `costflow runs list` marks it "
            "abandoned.")


def amend_message(error: BaseException, addition: str) -> None:
    """Append ``addition`` to the message of ``error`` (what the CLI prints), once."""
    text = str(error)
    if addition and addition not in text:
        error.args = (f"{text} {addition}".strip(),)


def record_failure(fail_run: Callable[[str, str, dict[str, Any]], None], run_id: str,
                   message: str, report: dict[str, Any], error: BaseException) -> None:
    """Mark the run failed without letting a ledger error hide the error that failed the run.

    The ledger write is retried; if it still fails, the error's message says so (and a note
    keeps the ledger's own error).
    """
    ledger_error = retry_fail_run(fail_run, run_id, message, report)
    if ledger_error is not None:
        error.add_note(f"{LEDGER_UNRECORDED}: {ledger_error}")
        amend_message(error, unrecorded(ledger_error, len(FAIL_RUN_DELAYS) + 1))


@contextmanager
def failures_recorded(fail_run: Callable[[str, str, dict[str, Any]], None], run_id: str,
                      report: dict[str, Any], undone: str) -> Iterator[None]:
    """Record any failure of a commit in the ledger and raise it as a user-facing error.

    A CostflowError (e.g. a reconciliation mismatch) keeps its own message; anything else
    becomes `IngestFailed` saying the engine undid the commit (``undone``, e.g. "was rolled
    back"), so the previous contents are intact.
    """
    try:
        yield
    except CostflowError as err:
        record_failure(fail_run, run_id, str(err), report, err)
        raise
    except Exception as err:
        message = (f"run {run_id}: the commit failed and {undone}, so the previous contents "
                   f"are intact: {type(err).__name__}: {err}")
        failed = IngestFailed(message)
        record_failure(fail_run, run_id, message, report, failed)
        raise failed from err
