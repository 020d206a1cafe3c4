"""Which sources a sync runs: the selection from the config, and whether each one is due.

Why this module exists: `costflow sync` is called by hand (every selected source runs) and by a
schedule (``--due-only``, e.g. hourly). A rendered schedule may fire late, twice, or for
several accounts at once (`costflow.schedule.plan`), so the decision whether a source is due is
made here, from the account's own cron expression (else ``sync.schedule``) and the source's
state in the metadata store, never from when the scheduler happened to fire:

* a source that never ran, whose last attempt failed or was interrupted, or whose URI or flags
  changed in the config since its last run, is due;
* otherwise it is due when its schedule has ticked since its last successful check (a commit,
  or an ingest that found the deliveries unchanged): ``croniter(schedule, last_success)``'s
  next time is not in the future. Times are UTC, as every schedule target renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError

if TYPE_CHECKING:
    from costflow.config import CostflowConfig


@dataclass(frozen=True)
class SyncItem:
    """One source of one account, as sync runs it.

    Attributes:
        tenant, account, provider: whose source it is.
        account_name: the account's display name (or None).
        source: the source's id, unique within its account (its key in the account's state).
        uri: where it is read from.
        argv: the `costflow ingest` flags of the source (no credentials, no warehouse).
        credentials: ``secret://NAME`` the account's sources are read with, or None (the
            environment's own identity).
        schedule: the effective cron expression (the account's, else the config's).
    """

    tenant: str
    account: str
    provider: str
    account_name: str | None
    source: str
    uri: str
    argv: tuple[str, ...]
    credentials: str | None
    schedule: str

    @property
    def label(self) -> str:
        """``tenant/account/source``, how messages name the source."""
        return f"{self.tenant}/{self.account}/{self.source}"


@dataclass(frozen=True)
class Due:
    """Whether a source is due now, why, and (when it is not) when it next is."""

    due: bool
    reason: str
    next_at: datetime | None = None


def plan_sync(config: CostflowConfig, tenants: Iterable[str] = (), accounts: Iterable[str] = (),
              sources: Iterable[str] = ()) -> list[SyncItem]:
    """The selected sources, in config order.

    Args:
        config: the loaded config.
        tenants, accounts: ``--tenant`` / ``--account`` filters (`CostflowConfig.select`).
        sources: ``--source`` ids; each must name a source of a selected account.

    Raises:
        ConfigError: an unknown tenant, account or source id (naming the known ones).
    """
    if not config.accounts:
        where = f"{config.source_path}: " if config.source_path else ""
        raise ConfigError(f"{where}the config has no accounts, so there is nothing to sync; add "
                          "an entry under accounts: (provider, tenant, sources) first.")
    chosen = config.select(tenants=list(tenants), accounts=list(accounts))
    wanted = list(dict.fromkeys(sources))
    items = []
    for account in chosen:
        schedule = account.schedule or config.sync.schedule
        for source in account.sources:
            if wanted and source.id not in wanted:
                continue
            items.append(SyncItem(
                tenant=account.tenant, account=account.id, provider=account.provider,
                account_name=account.name, source=source.id, uri=source.uri,
                argv=tuple(source.ingest_argv()),
                credentials=account.credentials.uri if account.credentials else None,
                schedule=schedule))
    known = sorted({s.id for a in chosen for s in a.sources})
    missing = [s for s in wanted if s not in known]
    if missing:
        raise ConfigError(f"--source {missing[0]!r} is not a source id of the selected "
                          f"account(s); their sources are: {', '.join(known)}.")
    return items


def due(item: SyncItem, state: Mapping[str, Any] | None, now: datetime | None = None) -> Due:
    """Whether ``item`` is due, given its state (``sources.{id}`` of its account document)."""
    from croniter import croniter

    now = now or datetime.now(UTC)
    if not state or not state.get("last_status"):
        return Due(True, "never ran")
    status = state["last_status"]
    if status in ("failed", "interrupted"):
        return Due(True, f"last attempt {status}")
    if state.get("argv") is not None and list(state["argv"]) != list(item.argv):
        return Due(True, "its configuration changed")
    last = state.get("last_success")
    if not isinstance(last, datetime):
        return Due(True, "no successful run yet")
    next_at = croniter(item.schedule, last).get_next(datetime)
    if next_at.tzinfo is None:
        next_at = next_at.replace(tzinfo=UTC)
    if next_at <= now:
        return Due(True, f"schedule {item.schedule!r} ticked at {_stamp(next_at)}")
    return Due(False, f"not due (next: {_stamp(next_at)})", next_at)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
