"""Each source's sync state, kept in its account's document in the metadata store.

Why this module exists: ``--due-only`` needs to know when each source last succeeded and
whether its last attempt failed; ``costflow accounts list`` shows staleness and consecutive
failures; an operator wants the last error without digging through logs. All of it lives in
``tenants/{tenant}/cloud_accounts/{account}`` (`costflow.metadata.paths.cloud_account`)::

    {provider, name, tenant, schedule, last_success,
     sources: {source_id: {uri, argv, last_run_id, last_status, last_attempt, last_success,
                           last_load, last_delivery, consecutive_failures, last_error}}}

``last_status`` is the last attempt's outcome: ``committed``, ``unchanged`` (checked, nothing
new), ``failed`` or ``interrupted``. ``last_success`` is the last attempt that committed or found
the source unchanged (the data is as fresh as the source); ``last_load`` the last commit.
``last_error`` is the ingest's one-paragraph message (costflow's errors never hold a secret
value; sync itself never reads one). Only the sync process writes here, under its lock, and only
its main thread; `costflow accounts import` writes the config's side of the same document
(`costflow.sync.accounts`) and keeps these fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from costflow.metadata import MetadataStore, paths
from costflow.sync.child import Outcome
from costflow.sync.plan import SyncItem

SUCCESS = ("committed", "unchanged")


def sources_of(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The ``sources`` map of an account document ({} when it has none)."""
    sources = (doc or {}).get("sources")
    return dict(sources) if isinstance(sources, dict) else {}


def source_states(store: MetadataStore, tenant: str, account: str) -> dict[str, dict[str, Any]]:
    """``sources`` of the account's document (empty when the account has none yet)."""
    sources = sources_of(store.get(paths.cloud_account(tenant, account)))
    return {k: dict(v) for k, v in sources.items() if isinstance(v, dict)}


def record(store: MetadataStore, item: SyncItem, outcome: Outcome) -> dict[str, Any]:
    """Write ``outcome`` into the source's state; returns the new source entry.

    ``committed`` / ``unchanged`` reset the failure count and the error; ``failed`` counts one
    more consecutive failure; ``interrupted`` keeps the count (nobody's fault) but makes the
    source due again. Read-modify-write of the one document: safe because only the sync
    holding the lock writes account state.
    """
    path = paths.cloud_account(item.tenant, item.account)
    doc = store.get(path) or {}
    sources = sources_of(doc)
    entry = dict(sources.get(item.source) or {})
    finished = outcome.finished_at
    entry.update(uri=item.uri, argv=list(item.argv), last_run_id=outcome.run_id,
                 last_status=outcome.status, last_attempt=outcome.started_at or finished)
    failures = int(entry.get("consecutive_failures") or 0)
    if outcome.status in SUCCESS:
        entry.update(last_success=finished, consecutive_failures=0, last_error=None)
        if outcome.status == "committed":
            entry.update(last_load=finished, last_delivery=list(outcome.delivery))
    elif outcome.status == "failed":
        entry.update(consecutive_failures=failures + 1, last_error=outcome.error)
    else:
        entry.update(consecutive_failures=failures, last_error=outcome.error)
    fields: dict[str, Any] = {
        "provider": item.provider, "name": item.account_name, "tenant": item.tenant,
        "schedule": item.schedule, "sources": {**sources, item.source: entry}}
    if outcome.status in SUCCESS and isinstance(finished, datetime):
        previous = doc.get("last_success")
        fields["last_success"] = max(previous, finished) if isinstance(previous, datetime) \
            else finished
    store.merge(path, fields)
    return entry
