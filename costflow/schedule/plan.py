"""Which `costflow sync` runs a schedule needs: one per distinct account schedule.

Every rendering (crontab, Cloud Scheduler, Airflow) is the same plan written in another
language: accounts grouped by their effective cron expression (their own ``schedule``, else the
config's ``sync.schedule``), each group one ``costflow sync --due-only --account ...`` run.
``--due-only`` makes the run safe whenever it fires: sync itself decides, from each account's
own schedule and its state in the metadata store, which sources are due, so a run that fires
late, twice, or for an account that shares its id with another tenant's does no harm.

The expressions are the subset every target understands (five fields of numbers, names,
ranges, lists and steps, `costflow.config.checks.cron`): crontab, Cloud Scheduler's unix-cron
and Airflow all read it the same way, in UTC.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from costflow.errors import ConfigError

if TYPE_CHECKING:
    from costflow.config import CostflowConfig

# Control characters: a crontab line, a Python string and a JSON body all survive quoting, but
# a newline would end a crontab entry, so no value that reaches a rendering may hold one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ScheduleGroup:
    """One scheduled run: the accounts sharing one cron expression.

    Attributes:
        schedule: five-field cron expression, UTC, single-spaced.
        accounts: account ids in config order, each once.
        tenants: the tenants of those accounts, in config order (for descriptions only).
    """

    schedule: str
    accounts: tuple[str, ...]
    tenants: tuple[str, ...]

    @property
    def key(self) -> str:
        """A stable id of the group: the same schedule always gets the same key, so a job or
        DAG rendered again replaces its earlier version instead of running beside it."""
        return hashlib.sha256(self.schedule.encode()).hexdigest()[:10]

    def sync_flags(self) -> list[str]:
        """The ``costflow sync`` flags of this run (after ``--config``)."""
        flags: list[str] = []
        for account in self.accounts:
            flags += ["--account", account]
        return [*flags, "--due-only"]


def normalize_cron(expression: str, where: str) -> str:
    """``expression`` as five space-separated fields every target reads the same way.

    The config's loader checked it already (`costflow.config.checks.cron`); it is checked again
    here because it is written into shell lines and Python source, whatever built the config.

    Args:
        expression: a cron expression from the config.
        where: what to name in an error, e.g. ``"account 123456789012 (tenant acme)"``.

    Raises:
        ConfigError: not five fields of numbers, names, ``*``, ranges, lists and steps.
    """
    from costflow.config.checks import cron

    try:
        return cron(expression)
    except ValueError as err:
        raise ConfigError(f"schedule {expression!r} of {where} {err}.") from None


def check_text(value: str, what: str) -> str:
    """``value`` unchanged, or a ConfigError if it holds a control character (a newline would
    end a crontab entry); quoting for each target is the renderer's job."""
    if not value or _CONTROL.search(value):
        raise ConfigError(f"{what} {value!r} is empty or holds a control character (newline, "
                          "tab, ...); it cannot be written into a schedule.")
    return value


def plan(config: CostflowConfig) -> list[ScheduleGroup]:
    """The scheduled runs a config needs, in the order their schedules first appear.

    Raises:
        ConfigError: a schedule outside the common cron subset, or a config with no account.
    """
    default = config.sync.schedule
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for account in config.accounts:
        where = f"account {account.id} (tenant {account.tenant})"
        source = account.schedule or default
        cron = normalize_cron(source, where if account.schedule else
                              f"sync.schedule (the default of {where})")
        accounts, tenants = groups.setdefault(cron, ([], []))
        if account.id not in accounts:
            accounts.append(check_text(account.id, "account id"))
        if account.tenant not in tenants:
            tenants.append(account.tenant)
    if not groups:
        where = str(config.source_path or "the config")
        raise ConfigError(f"{where} lists no accounts, so there is nothing to schedule: add "
                          "an account with its sources under `accounts:` (see costflow init).")
    return [ScheduleGroup(cron, tuple(accounts), tuple(tenants))
            for cron, (accounts, tenants) in groups.items()]
