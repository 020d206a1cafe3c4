"""`costflow accounts import` and `costflow accounts list`: the config in the metadata store, and
each account's freshness read back.

Why this module exists: the config file is what a team edits; the metadata store is what the
deployed parts read (an MCP server deciding what a tenant may see, a dashboard, a sync on
Cloud Run) and where sync keeps each source's state. `import_config` writes the config's side
of the design's layout (F6 §5.2) and leaves sync's state alone:

    tenants/{t}                      display_name, billing_accounts, sub_accounts, projects, status
    tenants/{t}/config/settings      the tenant's settings (replaced whole)
    tenants/{t}/config/policies      the tenant's policies (replaced whole)
    tenants/{t}/cloud_accounts/{a}   provider, name, tenant, credentials (a reference), schedule,
                                     status, sources.{id}.{uri, format, removed} merged into
                                     sync's state (`costflow.sync.state`)

It is idempotent (importing the same file twice changes nothing), and a tenant, account or
source that left the config is marked ``removed`` (with ``removed_at``), never deleted: its
history stays readable and the store never forgets an account by accident. The config schema has
no users, so ``tenants/{t}/users`` is not written here.

`list_accounts` joins the config with that state: per source the last status, last successful
check and load, consecutive failures and whether it is stale (no success for longer than
``sync.stale_after_hours``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from costflow.metadata import MetadataStore, paths
from costflow.sync.state import sources_of
from costflow.text import render_table

if TYPE_CHECKING:
    from costflow.config import AccountConfig, CostflowConfig

ACTIVE, REMOVED = "active", "removed"
LIST_COLUMNS = ["tenant", "account", "provider", "source", "status", "last status",
                "last success", "freshness", "failures", "last run"]


def import_config(config: CostflowConfig, store: MetadataStore,
                  now: datetime | None = None) -> dict[str, int]:
    """Write the config into ``store``; returns counts (tenants, accounts, sources imported;
    tenants, accounts, sources newly marked removed)."""
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(("tenants", "accounts", "sources", "removed_tenants",
                            "removed_accounts", "removed_sources"), 0)
    for tenant in config.tenants:
        store.set(paths.tenant(tenant.id), {
            "display_name": tenant.display_name, "billing_accounts": list(tenant.billing_accounts),
            "sub_accounts": list(tenant.sub_accounts), "projects": list(tenant.projects),
            "status": ACTIVE})
        store.set(paths.tenant_settings(tenant.id), dict(tenant.settings))
        store.set(paths.tenant_policies(tenant.id), dict(tenant.policies))
        counts["tenants"] += 1
    for account in config.accounts:
        counts["removed_sources"] += _import_account(store, account,
                                                     account.schedule or config.sync.schedule, now)
        counts["accounts"] += 1
        counts["sources"] += len(account.sources)
    configured = {t.id for t in config.tenants}
    wanted = {(a.tenant, a.id) for a in config.accounts}
    for tenant_id in sorted(configured | {t for t, _ in store.list(paths.tenants())}):
        if tenant_id not in configured:
            counts["removed_tenants"] += _mark_removed(store, paths.tenant(tenant_id), now)
        for account_id, _ in store.list(paths.cloud_accounts(tenant_id)):
            if (tenant_id, account_id) not in wanted:
                counts["removed_accounts"] += _mark_removed(
                    store, paths.cloud_account(tenant_id, account_id), now)
    return counts


def _import_account(store: MetadataStore, account: AccountConfig, schedule: str,
                    now: datetime) -> int:
    path = paths.cloud_account(account.tenant, account.id)
    doc = store.get(path) or {}
    current = sources_of(doc)
    sources: dict[str, Any] = {}
    removed = 0
    for source in account.sources:
        entry = dict(current.get(source.id) or {})
        entry.update(uri=source.uri, format=source.format, removed=False)
        entry.pop("removed_at", None)
        sources[source.id] = entry
    for source_id, entry in current.items():
        if source_id not in sources:
            gone = dict(entry) if isinstance(entry, dict) else {}
            if not gone.get("removed"):
                gone.update(removed=True, removed_at=now)
                removed += 1
            sources[source_id] = gone
    store.merge(path, {
        "provider": account.provider, "name": account.name, "tenant": account.tenant,
        "credentials": account.credentials.uri if account.credentials else None,
        "schedule": schedule, "status": ACTIVE, "removed_at": None, "sources": sources})
    return removed


def _mark_removed(store: MetadataStore, path: str, now: datetime) -> int:
    doc = store.get(path)
    if doc is None or doc.get("status") == REMOVED:
        return 0
    store.merge(path, {"status": REMOVED, "removed_at": now})
    return 1


def list_accounts(config: CostflowConfig, store: MetadataStore,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per source of every account (configured ones in file order, then accounts
    the store has that the config no longer lists)."""
    now = now or datetime.now(UTC)
    stale_after = timedelta(hours=config.sync.stale_after_hours)
    rows = []
    configured = set()
    for account in config.accounts:
        configured.add((account.tenant, account.id))
        doc = store.get(paths.cloud_account(account.tenant, account.id)) or {}
        states = sources_of(doc)
        for source in account.sources:
            rows.append(_row(account.tenant, account.id, account.provider, source.id, ACTIVE,
                             states.get(source.id) or {}, now, stale_after))
    tenant_ids = [t.id for t in config.tenants]
    tenant_ids += [t for t, _ in store.list(paths.tenants()) if t not in tenant_ids]
    for tenant_id in tenant_ids:
        for account_id, doc in store.list(paths.cloud_accounts(tenant_id)):
            if (tenant_id, account_id) in configured:
                continue
            states = sources_of(doc)
            for source_id, state in sorted(states.items()):
                rows.append(_row(tenant_id, account_id, str(doc.get("provider") or ""),
                                 source_id, REMOVED, state if isinstance(state, dict) else {},
                                 now, stale_after))
    return rows


def _row(tenant: str, account: str, provider: str, source: str, status: str,
         state: dict[str, Any], now: datetime, stale_after: timedelta) -> dict[str, Any]:
    last_success = state.get("last_success")
    if status == REMOVED or state.get("removed"):
        status, freshness = REMOVED, "-"
    elif not isinstance(last_success, datetime):
        freshness = "never loaded"
    elif now - last_success > stale_after:
        freshness = f"STALE ({_age(now - last_success)} old)"
    else:
        freshness = f"ok ({_age(now - last_success)} old)"
    return {"tenant": tenant, "account": account, "provider": provider, "source": source,
            "status": status, "uri": state.get("uri"), "last_status": state.get("last_status"),
            "last_success": last_success, "last_load": state.get("last_load"),
            "last_attempt": state.get("last_attempt"), "freshness": freshness,
            "stale": freshness.startswith("STALE") or freshness == "never loaded",
            "consecutive_failures": int(state.get("consecutive_failures") or 0),
            "last_run_id": state.get("last_run_id"), "last_error": state.get("last_error")}


def render_accounts(rows: list[dict[str, Any]], fmt: str) -> str:
    """``costflow accounts list`` output: a table (errors below it) or JSON."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=_iso)
    if not rows:
        return "(no accounts in the config)"
    table = [{**r, "last status": r["last_status"] or "-",
              "last success": _minute(r["last_success"]),
              "failures": r["consecutive_failures"], "last run": r["last_run_id"] or "-"}
             for r in rows]
    lines = [render_table(table, LIST_COLUMNS, "table")]
    errors = [r for r in rows if r["last_error"] and r["status"] == ACTIVE]
    if errors:
        lines += ["", "last errors:"]
        lines += [f"  {r['tenant']}/{r['account']}/{r['source']}: {r['last_error']}"
                  for r in errors]
    return "\n".join(lines)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _minute(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else "-"


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f}h" if hours < 72 else f"{hours / 24:.0f}d"
