"""The run ledger beyond begin and commit: run ids, owners, heartbeats and abandoned runs.

Why this module exists: a run id names a ledger row AND two paths (the staging directory, which
is deleted recursively after the run, and the run report), and a run that dies without a word
(kill -9, out of memory, a lost lock) must not say `running` forever. What is decided here:

- **Run ids** match `RUN_ID_PATTERNS` (all of them; they are POSIX egrep, so the Flex Template
  validates with the very same strings): letters, digits, ``.``, ``_`` and ``-``, starting with a
  letter or digit, at most 128 characters, never ``..``. Paths are built only from a checked id.
- **Staging directories** are created with a marker file naming the run, and removed only when
  they are the direct child ``<staging root>/<run id>`` AND carry that marker: a directory
  costflow did not make for that run is never deleted, whatever the flags say.
- **Owners and heartbeats.** `begin_run` records the owner (host, pid) and a heartbeat; the
  heartbeat is refreshed while the run is alive (a small thread in the launching process, the
  staging step on the workers, the commit step before it commits). `sweep_abandoned` (at the start
  of every ingest and in ``costflow runs list``) marks a `running` run `abandoned`, with the
  reason, when its owner process is gone on this host, or, for a run owned by another host (or an
  older costflow that recorded no owner), when its heartbeat is older than `HEARTBEAT_TIMEOUT`;
  it then removes that run's staging directory under the caller's staging root.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError
from costflow.warehouse import sqlfiles

if TYPE_CHECKING:
    from costflow.warehouse.base import Warehouse

LOG = logging.getLogger("costflow.ledger")

# Every pattern must match. POSIX egrep syntax on purpose: the Flex Template's metadata.json
# carries these same strings as the run_id parameter's `regexes`.
RUN_ID_PATTERNS: tuple[str, ...] = (
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
    r"^([^.]|[.][^.])*[.]?$",  # no ".." anywhere
)
_RUN_ID = tuple(re.compile(p) for p in RUN_ID_PATTERNS)

RUNNING, ABANDONED = "running", "abandoned"
# A run owned by another host (or with no recorded owner) counts as abandoned once its heartbeat
# is older than this. The launcher beats every HEARTBEAT_INTERVAL, the staging step at most that
# often per worker, the commit step before it commits.
HEARTBEAT_INTERVAL = timedelta(seconds=60)
HEARTBEAT_TIMEOUT = timedelta(minutes=30)
# A process that started this long after the run it is said to own is another process that got
# the same pid (the owner started before its run did; the slack absorbs clock granularity).
PID_START_SLACK = timedelta(seconds=30)
MARKER = ".costflow-run"  # in every staging directory: the run id that owns it

# One ledger write at a time per process: the heartbeat thread never updates load_runs while
# this process's commit transaction has it open (that would be a write-write conflict).
LEDGER_LOCK = threading.RLock()


def is_run_id(value: str) -> bool:
    return all(p.fullmatch(value) for p in _RUN_ID)


def check_run_id(value: str) -> str:
    """``value`` when it is a valid run id.

    Raises:
        ConfigError: it is not; nothing has been read, written or deleted.
    """
    if not isinstance(value, str) or not is_run_id(value):
        raise ConfigError(
            f"--run_id {value!r} is not a run id: a run id names the run's staging directory and "
            "report, so it is 1 to 128 letters, digits, '.', '_' or '-', starts with a letter or "
            "digit and never contains '..'. Nothing was done; give such an id, or leave "
            "--run_id out to get a generated one.")
    return value


def new_run_id(now: datetime | None = None) -> str:
    """A generated run id: UTC time and 8 random hex digits (it matches `RUN_ID_PATTERNS`)."""
    return check_run_id(f"{now or datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")


def child_path(root: str, run_id: str, suffix: str = "") -> str:
    """``<root>/<run_id><suffix>``: the only way a run id becomes a path.

    Raises:
        ConfigError: the id is not valid, or the root is empty.
    """
    check_run_id(run_id)
    if not root:
        raise ConfigError("an empty directory was given for the staging or report directory; "
                          "name a directory (or leave the flag out for the default).")
    if suffix and (not is_run_id("x" + suffix) or "/" in suffix):
        raise ValueError(f"suffix {suffix!r} is not a plain file name ending")
    return posixpath.join(root, run_id + suffix)


# --- who runs a run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int


def this_process() -> Owner:
    return Owner(socket.gethostname(), os.getpid())


def process_alive(pid: int, started_before: datetime | None = None) -> bool:
    """Whether process ``pid`` of this host is alive (and, when known, started by then).

    A zombie counts as gone. When ``started_before`` is given and the process at that pid
    started after it (Linux: /proc), the pid was reused by another process: gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False
    return not (started_before is not None and started is not None
                and started > started_before + PID_START_SLACK)


def _proc_stat(pid: int) -> tuple[str, datetime | None] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        state, ticks = fields[0], int(fields[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        hertz = os.sysconf("SC_CLK_TCK")
        return state, datetime.fromtimestamp(boot + ticks / hertz, UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


# --- heartbeats -----------------------------------------------------------------------------


def beat(warehouse: Warehouse, run_id: str) -> None:
    """Refresh the heartbeat of ``run_id`` while it is `running` (never a finished run)."""
    (statement,) = sqlfiles.load("load/heartbeat_run.sql")
    with LEDGER_LOCK:
        warehouse.query(statement.bigquery(), {"run_id": run_id, "status": RUNNING})


def beat_quietly(warehouse: Warehouse, run_id: str) -> bool:
    """`beat`, logging instead of raising: a missed heartbeat must not fail a run."""
    try:
        beat(warehouse, run_id)
        return True
    except Exception as exc:  # noqa: BLE001 - the next beat tries again
        LOG.debug("heartbeat of run %s not recorded: %s", run_id, exc)
        return False


_last_beats: dict[tuple[str, str], float] = {}


def beat_now_and_then(url: str, run_id: str, interval: timedelta = HEARTBEAT_INTERVAL) -> None:
    """`beat` at most once per ``interval`` for this process (workers call it per bundle)."""
    key, now = (url, run_id), time.monotonic()
    if now - _last_beats.get(key, -1e18) < interval.total_seconds():
        return
    _last_beats[key] = now
    from costflow.warehouse import connect  # the package imports this module's neighbours

    try:
        warehouse = connect(url)
    except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not fail a run
        LOG.debug("heartbeat of run %s not recorded: %s", run_id, exc)
        return
    try:
        beat_quietly(warehouse, run_id)
    finally:
        warehouse.close()


class Heartbeat:
    """A daemon thread beating for ``run_id`` every ``interval`` until the block ends.

        with Heartbeat(lambda: connect(url), run_id):
            pipeline.run().wait_until_finish()
    """

    def __init__(self, open_warehouse: Callable[[], Warehouse], run_id: str,
                 interval: timedelta = HEARTBEAT_INTERVAL) -> None:
        self._open, self.run_id, self.interval = open_warehouse, run_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"costflow-heartbeat-{run_id}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            try:
                warehouse = self._open()
                try:
                    beat_quietly(warehouse, self.run_id)
                finally:
                    warehouse.close()
            except Exception as exc:  # noqa: BLE001 - never let the thread die noisily
                LOG.debug("heartbeat of run %s not recorded: %s", self.run_id, exc)


# --- abandoned runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Abandoned:
    run_id: str
    reason: str
    staging_removed: bool


def abandonment_reason(row: dict[str, Any], me: Owner, timeout: timedelta) -> str | None:
    """Why the `running` ledger row ``row`` is abandoned, or None while it may be alive.

    ``row`` has owner_host, owner_pid, started_at, last_seen and silent_seconds (as
    `sql/load/running_runs.sql` returns them).
    """
    host, pid = row.get("owner_host"), row.get("owner_pid")
    if host == me.host and pid is not None:
        if process_alive(int(pid), _utc(row.get("started_at"))):
            return None
        return (f"abandoned: its process (pid {pid} on {host}) is gone; it ended without "
                "recording an outcome (killed, out of memory, or the machine stopped)")
    silent = int(row.get("silent_seconds") or 0)
    if silent <= timeout.total_seconds():
        return None
    owner = f"pid {pid} on {host}" if host else "an unrecorded owner"
    return (f"abandoned: no heartbeat from {owner} for {silent // 60} minutes (timeout "
            f"{int(timeout.total_seconds()) // 60} minutes); it ended without recording an "
            "outcome")


def sweep_abandoned(warehouse: Warehouse, staging_root: str | None,
                    timeout: timedelta = HEARTBEAT_TIMEOUT) -> list[Abandoned]:
    """Mark every abandoned `running` run `abandoned` and remove its staging directory.

    A run is marked only if its heartbeat did not move since it was read (compare-and-set), so a
    run that beats in between stays `running`. Its staging directory is removed only under
    ``staging_root`` (None: none is removed) and only if it carries the run's marker.
    """
    (running,) = sqlfiles.load("load/running_runs.sql")
    (mark,) = sqlfiles.load("load/abandon_run.sql")
    me, done = this_process(), []
    rows = warehouse.query(running.bigquery(), {"status": RUNNING}).to_pylist()
    for row in rows:
        reason = abandonment_reason(row, me, timeout)
        if reason is None:
            continue
        token = f"{reason} [marked by pid {me.pid} on {me.host}, {uuid.uuid4().hex[:8]}]"
        with LEDGER_LOCK:
            warehouse.query(mark.bigquery(), {
                "run_id": row["run_id"], "running": RUNNING, "status": ABANDONED,
                "error": token, "last_seen": _utc(row["last_seen"])})
        if not _marked_by_us(warehouse, row["run_id"], token):
            continue  # it beat, finished, or another sweeper marked it first
        removed = bool(staging_root) and remove_run_dir(str(staging_root), row["run_id"])
        LOG.warning("run %s %s", row["run_id"], reason)
        done.append(Abandoned(row["run_id"], reason, removed))
    return done


def sweep_quietly(warehouse: Warehouse, staging_root: str | None) -> list[Abandoned]:
    """`sweep_abandoned`, logging instead of raising (a failed sweep must not stop a run)."""
    try:
        return sweep_abandoned(warehouse, staging_root)
    except Exception as exc:  # noqa: BLE001 - the next run or `runs list` sweeps again
        LOG.warning("could not check the ledger for abandoned runs: %s", exc)
        return []


def _marked_by_us(warehouse: Warehouse, run_id: str, token: str) -> bool:
    (statement,) = sqlfiles.load("load/run_exists.sql")
    found = warehouse.query(statement.bigquery(), {"run_id": run_id}).to_pylist()
    return any(r.get("status") == ABANDONED and r.get("error") == token for r in found)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- staging directories --------------------------------------------------------------------


def create_run_dir(staging_root: str, run_id: str) -> str:
    """Create ``<staging_root>/<run_id>`` with the run's marker; returns its path.

    Raises:
        ConfigError: the directory exists already (costflow never reuses, nor deletes, a
            directory it did not make for this run).
    """
    from apache_beam.io.filesystems import FileSystems

    run_dir = child_path(staging_root, run_id)
    if FileSystems.exists(run_dir) or FileSystems.exists(run_dir + "/"):
        raise ConfigError(
            f"the staging directory {run_dir} exists already, and a run stages into a "
            "directory of its own that it then deletes. Nothing was staged and nothing was "
            "deleted; remove or rename that directory, or give another --staging_dir or --run_id.")
    with FileSystems.create(posixpath.join(run_dir, MARKER)) as f:
        f.write(run_id.encode())
    return run_dir


def remove_run_dir(staging_root: str, run_id: str) -> bool:
    """Remove ``<staging_root>/<run_id>`` if it is this run's own staging directory.

    Refuses (logs, returns False) anything else: an invalid id, a path that is not a direct
    child of the root, a symbolic link, or a directory without this run's marker. Never raises:
    cleanup must not mask the run's outcome.
    """
    try:
        return _remove_run_dir(staging_root, run_id)
    except Exception as exc:  # noqa: BLE001
        LOG.warning("could not remove the staging directory of run %s under %s: %s", run_id,
                    staging_root, exc)
        return False


def _remove_run_dir(staging_root: str, run_id: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    run_dir = child_path(staging_root, run_id)
    if "://" not in run_dir:  # a local path: resolve links before trusting it
        parent = os.path.realpath(staging_root)
        if os.path.islink(run_dir) or os.path.dirname(os.path.realpath(run_dir)) != parent:
            LOG.warning("not removing %s: it is not a directory directly under the staging "
                        "root %s", run_dir, staging_root)
            return False
        if not os.path.isdir(run_dir):
            return False
    marker = posixpath.join(run_dir, MARKER)
    if not FileSystems.exists(marker):
        if "://" in run_dir or os.path.exists(run_dir):
            LOG.warning("not removing %s: it has no %s marker of run %s, so costflow did not "
                        "make it", run_dir, MARKER, run_id)
        return False
    with FileSystems.open(marker) as f:
        owner = f.read(256).decode("utf-8", "replace")
    if owner != run_id:
        LOG.warning("not removing %s: its marker names run %r, not %r", run_dir, owner, run_id)
        return False
    # A local directory is deleted recursively by its path; an object store "directory" by its
    # prefix, which Beam's filesystems take as the path with a trailing slash.
    FileSystems.delete([run_dir + "/" if "://" in run_dir else run_dir])
    return True
