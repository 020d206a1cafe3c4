"""`costflow sync`: every configured source of every account loaded, incrementally, in one run.

Why this package exists: a FinOps team has dozens of accounts, each with its own export
locations and credentials, and wants them all refreshed on a schedule without anyone typing
`costflow ingest`. Sync reads the accounts from the config (`costflow.config`), decides which
sources to run (`plan`: selection and, with ``--due-only``, each account's cron schedule against
its state), and runs each one as the ingest runs by hand, in its own subprocess (`child`), so
unchanged deliveries are skipped, restatements replace, reconciliation gates the commit, and
one crashing source never takes the others down. `runner` holds the sync lock in the metadata
store so two syncs never load one warehouse at once, runs at most N sources at a time, and
writes each source's outcome into its account's document (`state`). `summary` prints the one
table a person or a scheduler reads. `accounts` loads the config into the metadata store and
lists accounts with their staleness.

    config = load_config()
    result = run_sync(config, SyncRequest(due_only=True))
    print(render_summary(result, "table")); sys.exit(result.exit_status)
"""

from __future__ import annotations

from costflow.sync.lock import SyncBusy
from costflow.sync.plan import SyncItem, plan_sync
from costflow.sync.runner import SyncRequest, SyncResult, run_sync
from costflow.sync.summary import render_summary

__all__ = ["SyncBusy", "SyncItem", "SyncRequest", "SyncResult", "plan_sync", "render_summary",
           "run_sync"]
