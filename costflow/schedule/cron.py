"""The schedule as crontab lines, for a laptop or a VM.

One line per scheduled run (see `costflow.schedule.plan`):

    CRON_TZ=UTC
    0 6 * * * cd /srv/finops && mkdir -p .costflow/logs && flock -w 21600 .costflow/sync.cron.lock
      /srv/finops/.venv/bin/costflow sync --config /srv/finops/costflow.yaml --account 1234
      --due-only >> .costflow/logs/sync.log 2>&1                                  (one line)

Why ``flock``: costflow's own sync lock refuses a second sync (exit 4) so that two never load
the same warehouse at once. Two lines firing in the same minute would then lose one run until
its next tick; ``flock -w`` makes the later one wait for the earlier instead (``flock`` is in
util-linux; on macOS ``brew install flock``). Every value from the config or the command line
is shell-quoted, and ``%`` (which cron turns into a newline) is escaped as ``\\%``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from costflow.schedule.plan import ScheduleGroup, check_text

LOG_FILE = ".costflow/logs/sync.log"
LOCK_FILE = ".costflow/sync.cron.lock"


def cron_quote(value: str) -> str:
    """``value`` as one shell word inside a crontab command (shell-quoted, ``%`` escaped)."""
    return shlex.quote(value).replace("%", "\\%")


def render_crontab(groups: Sequence[ScheduleGroup], *, workdir: str, config_path: str,
                   costflow_bin: str, lock_wait_seconds: int) -> str:
    """Crontab text (header comments, ``CRON_TZ=UTC``, one line per group).

    Args:
        groups: the plan (`costflow.schedule.plan.plan`).
        workdir: absolute directory the syncs run in (relative URLs of the config resolve there).
        config_path: the config file, as ``--config``.
        costflow_bin: the ``costflow`` executable (absolute: cron's PATH is minimal).
        lock_wait_seconds: how long a run waits for an earlier one before giving up.
    """
    for value, what in ((workdir, "working directory"), (config_path, "config path"),
                        (costflow_bin, "costflow executable")):
        check_text(value, what)
    lines = [
        f"# costflow sync, rendered by `costflow schedule --target cron` from {config_path}.",
        "# Add with `crontab -e` (or: (crontab -l; costflow schedule --target cron) | crontab -).",
        "# Times are UTC: CRON_TZ is honoured by cronie (Fedora, RHEL, Arch); other crons",
        "# (Debian's, macOS's) may ignore it and use the system time zone: check `date`.",
        "# --due-only: sync itself skips sources that are not due, so an early or extra run is",
        "# harmless. flock (util-linux; macOS: brew install flock) makes a run that starts while",
        "# another is loading wait for it instead of being refused by sync's own lock (exit 4).",
        f"# Output is appended to {workdir}/{LOG_FILE}.",
        "CRON_TZ=UTC",
    ]
    for group in groups:
        check_text(group.schedule, "schedule")
        argv = [costflow_bin, "sync", "--config", config_path, *group.sync_flags()]
        command = " ".join(cron_quote(word) for word in argv)
        lines.append(
            f"{group.schedule} cd {cron_quote(workdir)} && mkdir -p .costflow/logs && "
            f"flock -w {int(lock_wait_seconds)} {LOCK_FILE} {command} >> {LOG_FILE} 2>&1")
    return "\n".join(lines) + "\n"
