"""The sync lock: one `costflow sync` per warehouse at a time, kept alive by a heartbeat.

Why this module exists: two syncs on one warehouse would run the same sources twice at once.
Slices are replaced, never appended, so nothing would be counted twice, but the work would be
doubled, and on DuckDB the two would queue on the one-writer file lock. So a sync takes the lease
``locks/sync:<hash of the warehouse URL>`` in the metadata store (`MetadataStore.acquire_lock`)
before it runs anything, renews it every `heartbeat_every` seconds from a background thread, and
releases it at the end. A second sync finds it held and stops at once with exit status 4
(`SyncBusy`), naming the holder (``host:pid``) and since when. A holder that died (no
heartbeat for ``sync.lock_stale_seconds``) is taken over, and the takeover is logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from costflow.errors import CostflowError
from costflow.metadata import Lease, LockLost, MetadataError, MetadataStore, lock_holder

LOG = logging.getLogger("costflow.sync")
DUCKDB_PREFIX = "duckdb:///"


class SyncBusy(CostflowError):
    """Another live sync holds the lock of this warehouse; nothing was run."""

    exit_code = 4


def lock_name(warehouse: str) -> str:
    """``sync:<16 hex>``: one lock per warehouse (a DuckDB path counts as absolute)."""
    identity = warehouse
    if warehouse.startswith(DUCKDB_PREFIX):
        identity = DUCKDB_PREFIX + os.path.abspath(warehouse[len(DUCKDB_PREFIX):])
    return "sync:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def owner() -> str:
    """``host:pid`` of this process, what another sync is told holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_every(stale_after: timedelta) -> float:
    """A tenth of the stale time, between 1 and 60 seconds."""
    return max(1.0, min(60.0, stale_after.total_seconds() / 10))


def acquire(store: MetadataStore, warehouse: str, stale_after: timedelta) -> Lease:
    """Take the warehouse's sync lock; `SyncBusy` naming the live holder when it is held."""
    name = lock_name(warehouse)
    lease = store.acquire_lock(name, owner(), stale_after)
    if lease is None:
        holder = lock_holder(store, name)
        who = (f"{holder.owner} since {_stamp(holder.acquired_at)} (last heartbeat "
               f"{_stamp(holder.heartbeat_at)})") if holder else "another process"
        raise SyncBusy(
            f"another costflow sync is loading {warehouse}: the sync lock {name} in the metadata "
            f"store {getattr(store, 'url', '')} is held by {who}. Nothing was run. Wait for it "
            "to finish (or let a scheduler retry later); if that process is gone, its lock is "
            f"taken over once its heartbeat is older than sync.lock_stale_seconds "
            f"({int(stale_after.total_seconds())} s).")
    if lease.took_over:
        LOG.warning("took over the sync lock %s from %s, whose last heartbeat was %s "
                    "(older than %d s)", name, lease.previous_owner,
                    _stamp(lease.previous_heartbeat), int(stale_after.total_seconds()))
    return lease


class Heartbeat:
    """Renews a lease from a daemon thread until stopped; remembers a `LockLost`."""

    def __init__(self, store: MetadataStore, lease: Lease, every: float) -> None:
        self.store, self.lease, self.every = store, lease, every
        self.lost: LockLost | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="costflow-sync-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.heartbeat(self.lease)
            except LockLost as err:
                self.lost = err
                return
            except MetadataError as err:  # unreachable for a while: try again next beat
                LOG.warning("sync lock heartbeat failed (will retry): %s", err)


def release(store: MetadataStore, lease: Lease) -> None:
    """Release the lease; a lease already taken over is left to its new holder (logged)."""
    try:
        store.release(lease)
    except LockLost as err:
        LOG.warning("%s", err)


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "unknown"
