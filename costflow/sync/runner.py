"""Run a sync: select, decide what is due, take the lock, run N ingests at a time, record.

Why this module exists: it is the composition root of `costflow sync`. The parts are elsewhere
(`plan` selects and decides, `child` runs and parses one ingest, `state` records, `lock`
guards); here they are put in order, and the rules that span them are kept:

* one failing source never stops the others: every outcome, crash included, becomes a row;
* at most ``parallel`` children at a time, started in config order;
* a source whose account names credentials that the secret store does not have fails before
  any process is started, with a message naming the account and the `costflow secrets set`
  command that fixes it (sync asks the store for the secret's versions, never its value);
* Ctrl-C (or SIGTERM, as a scheduler stops a job): no new source starts, each running child
  is interrupted once (it records its run failed and removes its staging) and given
  `GRACE_SECONDS` before it is killed, their state says ``interrupted``, the lock is released;
* ``--dry-run`` takes no lock and writes nothing: it only says what would run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError, CostflowError
from costflow.metadata import MetadataStore
from costflow.metadata import connect as connect_metadata
from costflow.metadata import resolve_url as metadata_url
from costflow.progress import progress
from costflow.secrets import resolve_url as secrets_url
from costflow.sync import lock as sync_lock
from costflow.sync.allocation import reallocate_after_sync
from costflow.sync.budgets import check_after_sync
from costflow.sync.child import Child, Outcome, child_env, ingest_command, one_paragraph
from costflow.sync.lock import SyncBusy
from costflow.sync.plan import SyncItem, due, plan_sync
from costflow.sync.state import record, source_states
from costflow.warehouse import ledger
from costflow.warehouse import resolve_url as warehouse_url

if TYPE_CHECKING:
    from costflow.config import CostflowConfig

LOG = logging.getLogger("costflow.sync")
GRACE_SECONDS = 60.0   # how long an interrupted child may take to record itself
POLL_SECONDS = 0.2

__all__ = ["SyncBusy", "SyncRequest", "SyncResult", "SourceResult", "run_sync"]


@dataclass(frozen=True)
class SyncRequest:
    """The `costflow sync` flags (None: the config's value, then the environment's)."""

    tenants: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    parallel: int | None = None
    due_only: bool = False
    dry_run: bool = False
    warehouse: str | None = None
    metadata: str | None = None
    secrets: str | None = None


@dataclass
class SourceResult:
    item: SyncItem
    outcome: Outcome


@dataclass
class SyncResult:
    """What a sync did, source by source (see `costflow.sync.summary`)."""

    warehouse: str
    metadata: str
    started_at: datetime
    dry_run: bool
    due_only: bool
    parallel: int
    results: list[SourceResult] = field(default_factory=list)
    finished_at: datetime | None = None
    interrupted: bool = False
    lock_lost: str | None = None
    budgets: Any = None               # costflow.services.budgets.BudgetCheck, after the loads
    budget_error: str | None = None
    allocation: Any = None            # costflow.allocation.refresh.Refresh, after the loads
    allocation_error: str | None = None

    @property
    def exit_status(self) -> int:
        """0: every source committed, unchanged, not due (or planned); 3: any failed; 4: the
        lock was lost; 130: interrupted."""
        if self.lock_lost:
            return 4
        if self.interrupted:
            return 130
        if any(r.outcome.status in ("failed", "interrupted") for r in self.results):
            return 3
        return 0


def resolve_urls(config: CostflowConfig, request: SyncRequest) -> tuple[str, str, str]:
    """(warehouse, metadata, secrets): the flag, else the config file's own value, else the
    environment variable, else the default."""
    def pick(flag: str | None, name: str, resolve: Any) -> str:
        if flag:
            return flag
        if name in config.model_fields_set:
            return str(getattr(config, name))
        return str(resolve(None))

    return (pick(request.warehouse, "warehouse", warehouse_url),
            pick(request.metadata, "metadata", metadata_url),
            pick(request.secrets, "secrets", secrets_url))


def run_sync(config: CostflowConfig, request: SyncRequest,
             store: MetadataStore | None = None, now: datetime | None = None) -> SyncResult:
    """Run (or, with ``dry_run``, plan) the selected sources; see the module docstring.

    Raises:
        ConfigError: an unknown tenant/account/source, a bad ``parallel``.
        SyncBusy: another live sync holds this warehouse's lock (nothing was run).
    """
    items = plan_sync(config, request.tenants, request.accounts, request.sources)
    parallel = request.parallel if request.parallel is not None else config.sync.parallel
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: run at least 1 source at a time.")
    warehouse, metadata, secrets = resolve_urls(config, request)
    result = SyncResult(warehouse, metadata, datetime.now(UTC), request.dry_run,
                        request.due_only, parallel)
    own_store = store is None
    store = store or connect_metadata(metadata)
    try:
        if request.dry_run:
            _plan_only(result, items, store, secrets, request.due_only, now)
        else:
            _run_locked(result, items, store, config, warehouse, secrets, request.due_only, now)
            if not result.interrupted and not result.lock_lost:
                result.budgets, result.budget_error = check_after_sync(
                    config, request.tenants, warehouse, store, secrets)
    finally:
        if own_store:
            store.close()
        order = {item.label: n for n, item in enumerate(items)}
        result.results.sort(key=lambda r: order[r.item.label])
        result.finished_at = datetime.now(UTC)
    return result


def _plan_only(result: SyncResult, items: list[SyncItem], store: MetadataStore, secrets: str,
               due_only: bool, now: datetime | None) -> None:
    checks = CredentialChecks(secrets)
    for item, reason in _select_due(result, items, store, due_only, now):
        problem = checks.problem(item)
        note = f"would fail: {problem}" if problem else f"would run ({reason})"
        result.results.append(SourceResult(item, Outcome("dry-run", note=note)))


def _select_due(result: SyncResult, items: list[SyncItem], store: MetadataStore,
                due_only: bool, now: datetime | None) -> list[tuple[SyncItem, str]]:
    """The items to run with why; the not-due ones go straight into ``result``."""
    chosen = []
    states: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for item in items:
        key = (item.tenant, item.account)
        if key not in states:
            states[key] = source_states(store, *key)
        decision = due(item, states[key].get(item.source), now)
        if due_only and not decision.due:
            result.results.append(SourceResult(item, Outcome("not-due", note=decision.reason)))
        else:
            chosen.append((item, decision.reason if due_only else "selected"))
    return chosen


def _run_locked(result: SyncResult, items: list[SyncItem], store: MetadataStore,
                config: CostflowConfig, warehouse: str, secrets: str, due_only: bool,
                now: datetime | None) -> None:
    stale_after = timedelta(seconds=config.sync.lock_stale_seconds)
    lease = sync_lock.acquire(store, warehouse, stale_after)
    try:
        with sync_lock.Heartbeat(store, lease, sync_lock.heartbeat_every(stale_after)) as beat, \
                _sigterm_as_interrupt():
            todo = _select_due(result, items, store, due_only, now)
            LOG.info("sync of %s: %d source(s) to run, %d at a time (lock %s as %s)",
                     warehouse, len(todo), result.parallel, lease.name, lease.owner)
            _run_all(result, todo, store, warehouse, secrets, beat)
            if not result.interrupted and not result.lock_lost:  # still under the lock
                result.allocation, result.allocation_error = reallocate_after_sync(
                    config, warehouse, [r.outcome.run_id for r in result.results
                                        if r.outcome.status == "committed" and r.outcome.run_id])
    finally:
        sync_lock.release(store, lease)


def _run_all(result: SyncResult, todo: list[tuple[SyncItem, str]], store: MetadataStore,
             warehouse: str, secrets: str, beat: sync_lock.Heartbeat) -> None:
    checks = CredentialChecks(secrets)
    queue = deque(item for item, _ in todo)
    running: list[Child] = []
    env, cwd = child_env(warehouse), os.getcwd()
    done: list[SourceResult] = []

    def finish(item: SyncItem, outcome: Outcome) -> None:
        record(store, item, outcome)
        done.append(SourceResult(item, outcome))
        LOG.info("%s: %s%s", item.label, outcome.status,
                 f" ({outcome.error})" if outcome.error else
                 f" ({outcome.note})" if outcome.note else "",
                 extra=progress("sync", "sources", len(done), len(todo), "sources"))

    try:
        while queue or running:
            if beat.lost is not None:
                result.lock_lost = str(beat.lost)
                raise KeyboardInterrupt
            while queue and len(running) < result.parallel:
                item = queue.popleft()
                problem = checks.problem(item)
                now = datetime.now(UTC)
                if problem:
                    finish(item, Outcome("failed", error=problem, started_at=now,
                                         finished_at=now))
                    continue
                run_id = ledger.new_run_id()
                LOG.info("%s: ingest %s (run %s)", item.label, item.uri, run_id)
                running.append(Child(item, ingest_command(item, warehouse, secrets, run_id),
                                     env, cwd, run_id))
            for child in [c for c in running if c.poll() is not None]:
                running.remove(child)
                finish(child.item, child.outcome())
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        result.interrupted = True
        _stop(running, finish)
        for item in queue:
            done.append(SourceResult(item, Outcome(
                "interrupted", note="not started: the sync was interrupted")))
    finally:
        result.results.extend(done)


def _stop(running: list[Child], finish: Any) -> None:
    """Interrupt every child once, wait up to GRACE_SECONDS, kill the rest; record them."""
    for child in running:
        child.interrupt()
    deadline = time.monotonic() + GRACE_SECONDS
    while any(c.poll() is None for c in running) and time.monotonic() < deadline:
        try:
            time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break
    for child in running:
        child.kill()
        finish(child.item, child.outcome(interrupted=True))


class _sigterm_as_interrupt:
    """SIGTERM (a scheduler stopping the job) handled like Ctrl-C, in the main thread only."""

    def __enter__(self) -> None:
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class CredentialChecks:
    """Whether each account's credentials reference exists in the secret store, asked once
    per reference: the secret's version list (names and states, never a value)."""

    def __init__(self, secrets: str) -> None:
        self.secrets = secrets
        self._seen: dict[str, str | None] = {}

    def problem(self, item: SyncItem) -> str | None:
        """None when the item names no credentials or they are usable; else the paragraph."""
        ref = item.credentials
        if ref is None:
            return None
        if ref not in self._seen:
            self._seen[ref] = self._check(ref)
        found = self._seen[ref]
        if found is None:
            return None
        return (f"account {item.tenant}/{item.account} ({item.provider}"
                f"{', ' + item.account_name if item.account_name else ''}): {found} Nothing "
                "was ingested for this source; the others proceed.")

    def _check(self, ref: str) -> str | None:
        from costflow.secrets import SecretNotFound, connect

        name = ref.removeprefix("secret://")
        fix = (f"store them with `costflow secrets set {name} --from-file KEY.json` (secret "
               f"store {self.secrets}), or correct `credentials:` of the account in the config")
        try:
            manager = connect(self.secrets)
            try:
                versions = asyncio.run(manager.list_versions(name))
            finally:
                manager.close()
        except SecretNotFound:
            return f"its credentials {ref} are not in the secret store; {fix}."
        except CostflowError as err:
            return f"its credentials {ref} cannot be checked: {one_paragraph(str(err))}"
        if not versions or not versions[0].enabled:
            return (f"the current version of its credentials {ref} is disabled; rotate the "
                    f"secret (`costflow secrets rotate {name} --from-file KEY.json`).")
        return None
