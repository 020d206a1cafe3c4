"""One source's ingest, run as ``python -m costflow.cli ingest ... --json`` in its own process.

Why a subprocess per source: the ingest is the same code a person runs by hand (planning, the
unchanged-delivery skip, reconciliation, the ledger), a crash or a memory blow-up in one
source's SDK never takes the sync or the other sources down, and two sources at a time use two
cores (Beam's local runner holds the GIL). Only references travel on the command line: the
source's flags, the warehouse URL, ``--credentials secret://NAME`` and ``--secrets URL``; the
child reads the secret itself. Its stdout (the run report as JSON) and stderr (the
one-paragraph error the CLI prints) go to temporary files, so a large report never blocks on a
full pipe, and are parsed into an `Outcome` once it exits.

Every child runs with ``--skip_unchanged_files`` (files named directly, such as GCP file
exports, are skipped when their content is what the last load read) and a pre-made
``--run_id``, so the account state names the run even when the child dies before reporting.
DuckDB lets one process write a file at a time: the children's writes take turns on the
warehouse lock, each waiting up to ``COSTFLOW_DUCKDB_LOCK_TIMEOUT`` seconds, which sync raises
to `CHILD_LOCK_TIMEOUT` for its children unless the environment sets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import IO, Any

from costflow.sync.plan import SyncItem

CHILD_LOCK_TIMEOUT = "1800"   # seconds a child waits for another child's write to the warehouse
LOCK_TIMEOUT_ENV = "COSTFLOW_DUCKDB_LOCK_TIMEOUT"  # costflow.warehouse.duckdb_engine reads it
ERROR_PREFIX = "costflow: error: "
INTERRUPTED = "costflow: interrupted"
_UNCHANGED_RUN = re.compile(r"that run (\S+) already loaded")


@dataclass
class Outcome:
    """What one source's ingest did, for the summary and the account state.

    Attributes:
        status: ``committed``, ``unchanged``, ``failed`` or ``interrupted`` (and, without a
            child: ``not-due``, ``dry-run``).
        run_id: the ingest's run id (also for a failed run: see `costflow runs show`).
        rows: rows loaded (0 when unchanged; None when nothing is known).
        note: one short line for the table.
        error: the one-paragraph error of a failed source.
        delivery: what was loaded: delivery ids, else the files' sha256 (committed only).
        billed_cost: the run's BilledCost total as exact text (committed only); the note shows
            it rounded to cents.
    """

    status: str
    run_id: str | None = None
    rows: int | None = None
    note: str = ""
    error: str | None = None
    delivery: list[str] = field(default_factory=list)
    billed_cost: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def ingest_command(item: SyncItem, warehouse: str, secrets: str, run_id: str) -> list[str]:
    """The child's argv: references only, never a secret value."""
    argv = [sys.executable, "-m", "costflow.cli", "-q", "ingest", *item.argv,
            f"--warehouse={warehouse}", "--json", f"--run_id={run_id}",
            "--skip_unchanged_files", "--no-allocate"]  # the sync re-allocates once, after all
    if item.credentials:
        argv += [f"--credentials={item.credentials}", f"--secrets={secrets}"]
    return argv


def child_env(warehouse: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours, with a longer DuckDB lock wait (unless set)."""
    env = dict(os.environ if base is None else base)
    if warehouse.startswith("duckdb:") and not env.get(LOCK_TIMEOUT_ENV):
        env[LOCK_TIMEOUT_ENV] = CHILD_LOCK_TIMEOUT
    return env


class Child:
    """A running ingest: its process and the files its output goes to."""

    def __init__(self, item: SyncItem, command: list[str], env: dict[str, str], cwd: str,
                 run_id: str) -> None:
        self.item, self.run_id = item, run_id
        self.started_at = datetime.now(UTC)
        # Closed by `outcome`, once the child has exited (they outlive this method).
        self._out: IO[bytes] = tempfile.TemporaryFile(prefix="costflow-sync-out-")  # noqa: SIM115
        self._err: IO[bytes] = tempfile.TemporaryFile(prefix="costflow-sync-err-")  # noqa: SIM115
        # Its own session: a Ctrl-C at the terminal reaches the sync only, which then
        # interrupts each child once and waits for it to record itself (see `interrupt`);
        # the child honours that SIGINT even if we run with it ignored
        # (`costflow.cli.honor_deliberate_interrupts`).
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._out,
                                        stderr=self._err, env=env, cwd=cwd,
                                        start_new_session=True)

    def poll(self) -> int | None:
        return self.process.poll()

    def interrupt(self) -> None:
        """Ask the child to stop as Ctrl-C would: it records its run failed, removes staging."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()

    def outcome(self, interrupted: bool = False) -> Outcome:
        """The parsed result of the exited child; closes its output files."""
        code = self.process.wait()
        stdout, stderr = _read(self._out), _read(self._err)
        self._out.close()
        self._err.close()
        result = parse_outcome(code, stdout, stderr, self.run_id, interrupted)
        result.started_at, result.finished_at = self.started_at, datetime.now(UTC)
        return result


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


def parse_outcome(code: int, stdout: str, stderr: str, run_id: str,
                  interrupted: bool = False) -> Outcome:
    """An `Outcome` from a child's exit status, its JSON report and its error paragraph."""
    if code == 0:
        report = _report(stdout)
        if report is None:
            return Outcome("failed", run_id, error=(
                "the ingest exited 0 but printed no JSON run report; see `costflow runs show "
                f"{run_id}`."))
        return from_report(report, run_id)
    if interrupted or INTERRUPTED in stderr:
        return Outcome("interrupted", run_id, note="interrupted by the sync (Ctrl-C or stop)",
                       error=f"the ingest was interrupted before it committed (run {run_id}); "
                             "the previous contents are intact and the next sync retries it.")
    return Outcome("failed", run_id, error=error_paragraph(code, stderr))


def from_report(report: dict[str, Any], run_id: str) -> Outcome:
    """committed / unchanged / failed, from the ingest's run report."""
    run = str(report.get("run_id") or run_id)
    status = report.get("status")
    if status == "skipped":
        warnings = report.get("warnings") or []
        found = _UNCHANGED_RUN.search(str(warnings[0])) if warnings else None
        since = f" (loaded by run {found.group(1)})" if found else ""
        return Outcome("unchanged", run, rows=0, note=f"unchanged{since}; nothing loaded")
    if status != "succeeded":
        return Outcome("failed", run, error=one_paragraph(str(
            report.get("error") or f"the ingest ended {status!r}; see `costflow runs show "
                                   f"{run}`.")))
    totals = report.get("totals") or {}
    rows = int(totals.get("rows_loaded") or 0)
    dead = int(totals.get("rows_dead_lettered") or 0)
    slices = len(report.get("slices") or [])
    billed = totals.get("billed_cost")  # null when the run is in several currencies
    by_currency = totals.get("by_currency") or {}
    amounts = " + ".join(f"{_cents(m.get('billed_cost'))} {currency}"
                         for currency, m in by_currency.items()) or _cents(billed)
    note = f"{slices} slice(s), billed {amounts}"
    if dead:
        note += f", {dead} dead-lettered"
    return Outcome("committed", run, rows=rows, note=note, delivery=_delivery(report),
                   billed_cost=str(billed) if billed is not None else None)


def _cents(amount: object) -> str:
    """Money for a person: rounded to cents with separators (exact in --json)."""
    try:
        return f"{Decimal(str(amount)).quantize(Decimal('0.01'), ROUND_HALF_EVEN):,}"
    except (InvalidOperation, ValueError):
        return "?"


def _delivery(report: dict[str, Any]) -> list[str]:
    """Delivery ids when every file has one, else the files' sha256 (sorted, at most 200)."""
    sources = [s for s in report.get("sources") or [] if isinstance(s, dict)]
    ids = sorted({str(s["delivery_id"]) for s in sources if s.get("delivery_id")})
    if sources and all(s.get("delivery_id") for s in sources):
        return ids[:200]
    return sorted({str(s["sha256"]) for s in sources if s.get("sha256")})[:200]


def _report(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_paragraph(code: int, stderr: str) -> str:
    """The child's one-paragraph error; a crash's last line when it printed none."""
    at = stderr.rfind(ERROR_PREFIX)
    if at >= 0:
        return one_paragraph(stderr[at + len(ERROR_PREFIX):])
    if code < 0:
        return f"the ingest was killed by signal {-code} before it reported."
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "no error message"
    return one_paragraph(f"the ingest failed with exit status {code} and no costflow error "
                         f"(a bug: please report it): {last}")


def one_paragraph(text: str) -> str:
    return " ".join(text.split())
