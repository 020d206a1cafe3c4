"""`costflow accounts import` and `costflow accounts list` against a real local metadata store
(SQLite in tmp_path) and configs written as YAML text, as a user writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from costflow.cli import main
from costflow.config import load_config
from costflow.metadata import connect, paths
from costflow.sync.accounts import import_config, list_accounts, render_accounts
from costflow.sync.child import Outcome
from costflow.sync.plan import plan_sync
from costflow.sync.state import record

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

FULL = """\
version: 1
metadata: local:///{tmp}/meta.sqlite
sync: {{stale_after_hours: 36}}
tenants:
  - id: acme
    display_name: ACME Corp
    billing_accounts: ["111111111111"]
    settings: {{currency: EUR, alerts: [finops@acme.example]}}
    policies: {{monthly_budget: "1250.50"}}
  - id: beta
accounts:
  - id: "111111111111"
    provider: aws
    tenant: acme
    name: ACME payer
    schedule: "30 5 * * *"
    sources:
      - {{uri: s3://acme-cur/cur/, id: cur, format: aws_cur2}}
      - {{uri: s3://acme-cur/old/, id: old}}
  - id: 0A7F21-9C44D2-5E8B10
    provider: gcp
    tenant: beta
    credentials: secret://cloud-creds/beta/gcp
    sources:
      - {{uri: "gs://beta-billing/**/*.json.gz", id: export}}
"""

SMALLER = """\
version: 1
metadata: local:///{tmp}/meta.sqlite
tenants:
  - id: acme
    display_name: ACME Corp
accounts:
  - id: "111111111111"
    provider: aws
    tenant: acme
    name: ACME payer
    sources:
      - {{uri: s3://acme-cur/cur/, id: cur, format: aws_cur2}}
"""


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "costflow.yaml"
    path.write_text(text.format(tmp=tmp))
    return path


def _everything(store) -> dict[str, dict]:
    docs = {}
    for tenant, doc in store.list("tenants"):
        docs[f"tenants/{tenant}"] = doc
        for sub in ("config", "cloud_accounts", "users"):
            docs.update({f"tenants/{tenant}/{sub}/{i}": d
                         for i, d in store.list(f"tenants/{tenant}/{sub}")})
    return docs


def _outcome(status: str, at: datetime, **extra) -> Outcome:
    return Outcome(status, run_id=f"run-{status}-{at:%H%M}", started_at=at - timedelta(
        minutes=1), finished_at=at, **extra)


def test_import_writes_the_layout_keeps_sync_state_and_is_idempotent(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, FULL))
    store = connect(f"local:///{tmp_path}/meta.sqlite")
    # State a sync wrote before the first import (sync may run without one).
    cur = next(i for i in plan_sync(config) if i.source == "cur")
    record(store, cur, _outcome("committed", NOW, rows=10, delivery=["a1"]))

    counts = import_config(config, store, now=NOW)
    assert counts == {"tenants": 2, "accounts": 2, "sources": 3, "removed_tenants": 0,
                      "removed_accounts": 0, "removed_sources": 0}
    assert store.get(paths.tenant("acme")) == {
        "display_name": "ACME Corp", "billing_accounts": ["111111111111"], "sub_accounts": [],
        "projects": [], "status": "active"}
    assert store.get(paths.tenant_settings("acme")) == {"currency": "EUR",
                                                         "alerts": ["finops@acme.example"]}
    assert store.get(paths.tenant_policies("acme")) == {"monthly_budget": "1250.50"}
    assert store.get(paths.tenant_policies("beta")) == {}
    aws = store.get(paths.cloud_account("acme", "111111111111"))
    assert {k: aws[k] for k in ("provider", "name", "tenant", "credentials", "schedule",
                                "status")} == {
        "provider": "aws", "name": "ACME payer", "tenant": "acme", "credentials": None,
        "schedule": "30 5 * * *", "status": "active"}
    assert aws["sources"]["old"] == {"uri": "s3://acme-cur/old/", "format": None,
                                     "removed": False}
    kept = aws["sources"]["cur"]
    assert (kept["last_status"], kept["last_delivery"], kept["format"]) == (
        "committed", ["a1"], "aws_cur2")
    assert aws["last_success"] == NOW
    gcp = store.get(paths.cloud_account("beta", "0A7F21-9C44D2-5E8B10"))
    assert gcp["credentials"] == "secret://cloud-creds/beta/gcp"
    assert gcp["schedule"] == "0 6 * * *"  # the config's default schedule

    before = _everything(store)
    assert import_config(config, store, now=NOW + timedelta(days=1)) == counts
    assert _everything(store) == before
    store.close()


def test_what_leaves_the_config_is_marked_removed_never_deleted(tmp_path: Path) -> None:
    store = connect(f"local:///{tmp_path}/meta.sqlite")
    import_config(load_config(_config(tmp_path, FULL)), store, now=NOW)
    later = NOW + timedelta(hours=3)
    smaller = load_config(_config(tmp_path, SMALLER))
    counts = import_config(smaller, store, now=later)
    assert (counts["removed_tenants"], counts["removed_accounts"], counts["removed_sources"]) \
        == (1, 1, 1)
    beta = store.get(paths.tenant("beta"))
    assert (beta["status"], beta["removed_at"]) == ("removed", later)
    gcp = store.get(paths.cloud_account("beta", "0A7F21-9C44D2-5E8B10"))
    assert (gcp["status"], gcp["removed_at"], gcp["provider"]) == ("removed", later, "gcp")
    aws = store.get(paths.cloud_account("acme", "111111111111"))
    assert aws["sources"]["old"]["removed"] is True and aws["sources"]["old"]["removed_at"] == \
        later
    assert aws["sources"]["cur"]["removed"] is False and aws["status"] == "active"
    # Again: nothing changes, removed_at stays the first removal's time.
    before = _everything(store)
    assert import_config(smaller, store, now=later + timedelta(days=1))["removed_accounts"] == 0
    assert _everything(store) == before
    # Back in the config: active again.
    import_config(load_config(_config(tmp_path, FULL)), store, now=later)
    assert store.get(paths.cloud_account("beta", "0A7F21-9C44D2-5E8B10"))["status"] == "active"
    assert store.get(paths.tenant("beta"))["status"] == "active"
    store.close()


def test_list_shows_freshness_failures_and_removed_accounts(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, FULL))
    store = connect(f"local:///{tmp_path}/meta.sqlite")
    items = {i.source: i for i in plan_sync(config)}
    record(store, items["cur"], _outcome("committed", NOW - timedelta(hours=2), rows=5))
    record(store, items["old"], _outcome("unchanged", NOW - timedelta(hours=40)))
    record(store, items["export"], _outcome("failed", NOW - timedelta(hours=1),
                                            error="gs://beta-billing: 403 Forbidden."))
    record(store, items["export"], _outcome("failed", NOW, error="gs://beta-billing: 403."))
    rows = {r["source"]: r for r in list_accounts(config, store, now=NOW)}
    assert rows["cur"]["freshness"] == "ok (2h old)" and rows["cur"]["stale"] is False
    assert rows["old"]["freshness"] == "STALE (40h old)" and rows["old"]["stale"] is True
    assert rows["export"]["freshness"] == "never loaded"
    assert rows["export"]["consecutive_failures"] == 2
    assert rows["export"]["last_error"] == "gs://beta-billing: 403."
    text = render_accounts(list(rows.values()), "table")
    assert "last errors:\n  beta/0A7F21-9C44D2-5E8B10/export: gs://beta-billing: 403." in text
    store.close()


def test_accounts_cli_import_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    path = _config(tmp_path, FULL)
    assert main(["accounts", "import", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported 2 tenant(s), 2 account(s) and 3 source(s) from ")
    _config(tmp_path, SMALLER)
    assert main(["accounts", "import", "--config", str(path)]) == 0
    assert "marked removed (no longer in the config): 1 tenants, 1 accounts, 1 sources" in \
        capsys.readouterr().out
    assert main(["accounts", "list", "--config", str(path), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["tenant"], r["account"], r["source"], r["status"], r["freshness"])
            for r in listed] == [
        ("acme", "111111111111", "cur", "active", "never loaded"),
        ("beta", "0A7F21-9C44D2-5E8B10", "export", "removed", "-")]
