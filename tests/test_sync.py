"""`costflow sync` end to end, on real exports of three clouds written by the providers' own
sample generators, a costflow.yaml, a local metadata store, a local secret store and a DuckDB
warehouse in a temporary directory. Each source runs as a real `costflow ingest` subprocess,
so the slow tests are few and each proves several things in order.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from cryptography.fernet import Fernet

from costflow.cli import main
from costflow.metadata import connect as connect_metadata
from costflow.metadata import paths
from costflow.sync.child import ingest_command, parse_outcome
from costflow.sync.lock import lock_name
from costflow.sync.plan import SyncItem, due

GCP_ACCOUNT = "01338E-BE3FD6-363B4C"   # the GCP generator's main billing account
AZURE_ACCOUNT = "8611537"              # the Azure EA generator's enrollment
AWS_ACCOUNT = "123412340534"           # the AWS CUR generator's payer


# --- real exports and what they hold, counted from the files themselves ----------------------


def write_aws(root: Path) -> Path:
    from costflow.providers.aws.samples.cur import write_cur_delivery

    write_cur_delivery(root, 90, months=("2023-10",), files_per_month=1)
    return root


def write_gcp(folder: Path, month: str, seed: int) -> Path:
    from costflow.providers.gcp.samples.bulk import write_jsonl

    write_jsonl(folder / "billing-000000000000.json.gz", 130, seed=seed, month=month,
                late_fraction=0.0)
    return folder


def write_azure(root: Path) -> Path:
    from costflow.providers.azure.samples.export import write_export

    write_export(root, "2026-09", 20, schema="ea", container="csv.gz")
    return root


def _csv_records(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def aws_rows(root: Path) -> int:
    """Data rows of every CUR file the manifests name (one delivery per month here)."""
    return sum(len(_csv_records(p)) for p in root.rglob("*.csv.gz"))


def gcp_rows(root: Path) -> int:
    """One billing export record per JSON line."""
    total = 0
    for path in root.rglob("*.json.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def azure_rows(root: Path) -> int:
    """Every row of the actual-cost export, plus the amortized export's UnusedReservation rows:
    Microsoft writes unused reservation hours only into amortized cost data."""
    actual = sum(len(_csv_records(p)) for p in root.glob("ea-actual/**/*.csv.gz"))
    unused = sum(1 for p in root.glob("ea-amortized/**/*.csv.gz") for r in _csv_records(p)
                 if r["ChargeType"] == "UnusedReservation")
    return actual + unused


def warehouse_rows(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT x_SourceProvider, COUNT(*) FROM "
                                "cost_analytics.cost_line_items GROUP BY 1").fetchall())
    finally:
        con.close()


def ledger(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT status, COUNT(*) FROM cost_analytics.load_runs "
                                "GROUP BY 1").fetchall())
    finally:
        con.close()


def metadata_docs(url: str, tenants: list[str]) -> dict[str, dict]:
    store = connect_metadata(url)
    try:
        docs = {f"locks/{i}": d for i, d in store.list("locks")}
        for tenant in tenants:
            docs.update({f"{tenant}/{i}": d for i, d in
                         store.list(paths.cloud_accounts(tenant))})
        return docs
    finally:
        store.close()


def account_state(url: str, tenant: str, account: str) -> dict:
    store = connect_metadata(url)
    try:
        return store.get(paths.cloud_account(tenant, account)) or {}
    finally:
        store.close()


def sync(capsys: pytest.CaptureFixture[str], config: Path, *flags: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-q", "sync", "--config", str(config), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def row_of(summary: str, source: str) -> list[str]:
    (line,) = [ln for ln in summary.splitlines() if f" {source} " in f" {ln} "]
    return line.split()


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory (run reports, staging), with a secrets key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSTFLOW_SECRETS_KEY", Fernet.generate_key().decode())
    for var in ("COSTFLOW_WAREHOUSE", "COSTFLOW_METADATA", "COSTFLOW_SECRETS", "COSTFLOW_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def header(tmp: Path) -> str:
    return (f"version: 1\n"
            f"warehouse: duckdb:///{tmp}/wh.duckdb\n"
            f"metadata: local:///{tmp}/meta.sqlite\n"
            f"secrets: local:///{tmp}/secrets\n"
            "sync:\n  parallel: 2\n  schedule: \"0 6 * * *\"\n")


# --- the slow, end-to-end tests -------------------------------------------------------------


@pytest.mark.slow
def test_three_clouds_load_once_even_with_two_syncs_then_stay_unchanged(
        place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aws, gcp, azure = (write_aws(place / "exports/aws"),
                       write_gcp(place / "exports/gcp/202610", "202610", 7),
                       write_azure(place / "exports/azure"))
    expected = {"aws": aws_rows(aws), "gcp": gcp_rows(gcp), "azure": azure_rows(azure)}
    assert expected == {"aws": 90, "gcp": 130, "azure": 22}  # the generators' own sizes
    config = place / "costflow.yaml"
    config.write_text(header(place) + f"""
tenants:
  - id: acme
    display_name: ACME Corp
accounts:
  - id: "{AWS_ACCOUNT}"
    provider: aws
    tenant: acme
    name: ACME payer
    sources:
      - uri: {aws}
        id: cur
  - id: {GCP_ACCOUNT}
    provider: gcp
    tenant: acme
    sources:
      - uri: {gcp}
        id: export
  - id: "{AZURE_ACCOUNT}"
    provider: azure
    tenant: acme
    sources:
      - uri: {azure}
        id: ea
""")
    db, meta = place / "wh.duckdb", f"local:///{place}/meta.sqlite"

    # (d) two syncs started at once: one loads, the other refuses at once naming the owner.
    command = [sys.executable, "-m", "costflow.cli", "sync", "--config", str(config)]
    procs = [subprocess.Popen(command, cwd=place, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p, *p.communicate(timeout=900)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in done)
    assert codes == [0, 4], [(p.returncode, err[-2000:]) for p, _, err in done]
    (winner, summary, _), = [d for d in done if d[0].returncode == 0]
    (_, _, refusal), = [d for d in done if d[0].returncode == 4]
    assert f"held by {socket.gethostname()}:{winner.pid} since " in refusal
    assert "another costflow sync is loading" in refusal and "Nothing was run" in refusal
    assert "Traceback" not in refusal

    # (a) the winner loaded each cloud exactly once: the rows the files hold, per provider.
    assert warehouse_rows(db) == expected
    assert ledger(db) == {"succeeded": 3}
    for source, provider in (("cur", "aws"), ("export", "gcp"), ("ea", "azure")):
        cells = row_of(summary, source)
        assert cells[2:6] == [provider, source, "committed", str(expected[provider])], cells
    assert "3 committed. Exit status 0." in summary
    state = account_state(meta, "acme", GCP_ACCOUNT)
    entry = state["sources"]["export"]
    assert entry["last_status"] == "committed" and entry["consecutive_failures"] == 0
    assert entry["last_success"] == state["last_success"] and entry["last_error"] is None
    assert len(entry["last_delivery"]) == 1 and len(entry["last_delivery"][0]) == 64  # sha256

    # (e) a dry run says what would run and changes nothing, anywhere.
    before = (warehouse_rows(db), ledger(db), metadata_docs(meta, ["acme"]))
    code, out, _ = sync(capsys, config, "--dry-run")
    assert code == 0 and out.count("would run (selected)") == 3, out
    assert (warehouse_rows(db), ledger(db), metadata_docs(meta, ["acme"])) == before

    # (b) the second sync finds every source unchanged and loads nothing.
    code, out, _ = sync(capsys, config)
    assert code == 0, out
    for source in ("cur", "export", "ea"):
        assert row_of(out, source)[4:6] == ["unchanged", "0"]
    assert "Every source is unchanged since its last load: nothing new was loaded." in out
    assert warehouse_rows(db) == expected
    assert ledger(db) == {"succeeded": 3, "skipped": 3}
    assert account_state(meta, "acme", AWS_ACCOUNT)["sources"]["cur"]["last_status"] == \
        "unchanged"

    # ... and a scheduled (--due-only) run right after has nothing due: no ingest at all.
    code, out, _ = sync(capsys, config, "--due-only", "--json")
    report = json.loads(out)
    assert code == 0 and report["exit_status"] == 0 and report["counts"] == {"not-due": 3}
    assert [(s["source"], s["status"], s["run_id"]) for s in report["sources"]] == [
        ("cur", "not-due", None), ("export", "not-due", None), ("ea", "not-due", None)]
    assert all(s["note"].startswith("not due (next: ") for s in report["sources"])
    assert ledger(db) == {"succeeded": 3, "skipped": 3}


@pytest.mark.slow
def test_a_broken_source_and_a_missing_secret_fail_alone_and_only_they_are_retried(
        place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from costflow.secrets import connect as connect_secrets

    october = write_gcp(place / "exports/gcp/202610", "202610", 7)
    november = write_gcp(place / "exports/gcp/202611", "202611", 8)
    broken = place / "exports/gcp/202612"
    broken.mkdir(parents=True)
    (broken / "billing-000000000000.json.gz").write_bytes(b"\x1f\x8b\x08\x00not gzip at all")
    azure = write_azure(place / "exports/azure")
    aws = write_aws(place / "exports/aws")
    # The Azure account's secret exists (its source is local, so the value is never needed);
    # the AWS account names one that was never stored.
    secrets = connect_secrets(f"local:///{place}/secrets")
    asyncio.run(secrets.create_secret("cloud-creds/acme/azure", '{"tenant_id": "t", '
                                      '"client_id": "c", "client_secret": "s-PLANTED-1"}'))
    config = place / "costflow.yaml"
    config.write_text(header(place) + f"""
tenants:
  - id: acme
  - id: beta
accounts:
  - id: {GCP_ACCOUNT}
    provider: gcp
    tenant: acme
    sources:
      - {{uri: {october}, id: oct}}
      - {{uri: {november}, id: nov}}
      - {{uri: {broken}, id: dec}}
  - id: "{AZURE_ACCOUNT}"
    provider: azure
    tenant: acme
    credentials: secret://cloud-creds/acme/azure
    sources:
      - {{uri: {azure}, id: ea}}
  - id: "{AWS_ACCOUNT}"
    provider: aws
    tenant: beta
    credentials: secret://cloud-creds/beta/aws
    sources:
      - {{uri: {aws}, id: cur}}
""")
    db, meta = place / "wh.duckdb", f"local:///{place}/meta.sqlite"

    code, out, _ = sync(capsys, config)
    assert code == 3, out
    statuses = {s: row_of(out, s)[4] for s in ("oct", "nov", "dec", "ea", "cur")}
    assert statuses == {"oct": "committed", "nov": "committed", "dec": "failed",
                        "ea": "committed", "cur": "failed"}
    assert warehouse_rows(db) == {"gcp": gcp_rows(october) + gcp_rows(november),
                                  "azure": azure_rows(azure)}
    failed = out.split("\nfailed:\n")[1]
    # (c) the broken file's one-paragraph error, naming the file.
    dec_error = [ln for ln in failed.splitlines() if ln.startswith(f"  acme/{GCP_ACCOUNT}/dec:")]
    assert len(dec_error) == 1 and "billing-000000000000.json.gz" in dec_error[0], failed
    # (f) the missing secret: the account, the reference and the command that fixes it.
    (cur_error,) = [ln for ln in failed.splitlines() if ln.startswith(f"  beta/{AWS_ACCOUNT}/cur:")]
    assert f"account beta/{AWS_ACCOUNT} (aws)" in cur_error
    assert "secret://cloud-creds/beta/aws are not in the secret store" in cur_error
    assert "costflow secrets set cloud-creds/beta/aws --from-file" in cur_error
    assert "3 committed, 2 failed. Exit status 3." in out
    assert "PLANTED" not in out
    state = account_state(meta, "acme", GCP_ACCOUNT)["sources"]
    assert state["dec"]["last_status"] == "failed" and state["dec"]["consecutive_failures"] == 1
    assert "billing-000000000000.json.gz" in state["dec"]["last_error"]
    assert state["oct"]["last_status"] == "committed"
    aws_state = account_state(meta, "beta", AWS_ACCOUNT)["sources"]["cur"]
    assert aws_state["consecutive_failures"] == 1 and "costflow secrets set" in \
        aws_state["last_error"]

    # Fix the export; the secret stays missing. A scheduled run retries only the failures.
    (broken / "billing-000000000000.json.gz").unlink()
    write_gcp(broken, "202612", 9)
    code, out, _ = sync(capsys, config, "--due-only")
    assert code == 3, out
    statuses = {s: row_of(out, s)[4] for s in ("oct", "nov", "dec", "ea", "cur")}
    assert statuses == {"oct": "not-due", "nov": "not-due", "dec": "committed",
                        "ea": "not-due", "cur": "failed"}
    assert warehouse_rows(db) == {"gcp": gcp_rows(october) + gcp_rows(november)
                                  + gcp_rows(broken), "azure": azure_rows(azure)}
    assert ledger(db)["succeeded"] == 4
    state = account_state(meta, "acme", GCP_ACCOUNT)["sources"]
    assert state["dec"]["last_status"] == "committed"
    assert state["dec"]["consecutive_failures"] == 0 and state["dec"]["last_error"] is None
    assert account_state(meta, "beta", AWS_ACCOUNT)["sources"]["cur"][
        "consecutive_failures"] == 2


def start_sync(config: Path, cwd: Path, sigint: str) -> subprocess.Popen[str]:
    """`costflow sync` in a process of its own with SIGINT as given ("default": Ctrl-C works;
    "ignored": as in a background job of a script), whatever the test runner's is."""
    handler = {"default": "signal.default_int_handler", "ignored": "signal.SIG_IGN"}[sigint]
    boot = (f"import runpy, signal, sys; signal.signal(signal.SIGINT, {handler}); "
            "runpy.run_module('costflow.cli', run_name='__main__')")
    return subprocess.Popen([sys.executable, "-c", boot, "sync", "--config", str(config),
                             "--parallel", "1"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize(("sigint", "stop"), [("default", signal.SIGINT),
                                               ("ignored", signal.SIGTERM)])
def test_ctrl_c_stops_the_ingests_releases_the_lock_and_records_interrupted(
        place: Path, sigint: str, stop: signal.Signals) -> None:
    """Ctrl-C, or SIGTERM from a scheduler to a sync that runs with SIGINT ignored (its
    children inherit that): the running ingest records itself interrupted and removes its
    staging, instead of being killed after the grace period."""
    october = write_gcp(place / "exports/gcp/202610", "202610", 7)
    config = place / "costflow.yaml"
    config.write_text(header(place) + f"""
tenants: [{{id: acme}}]
accounts:
  - id: {GCP_ACCOUNT}
    provider: gcp
    tenant: acme
    sources: [{{uri: {october}, id: oct}}, {{uri: {october}, id: again}}]
""")
    meta = f"local:///{place}/meta.sqlite"
    staging = place / ".costflow" / "staging"
    sync_process = start_sync(config, place, sigint)
    deadline = time.monotonic() + 120
    while not (staging.is_dir() and any(staging.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)  # the first ingest has begun its run (ledger row, staging directory)
    assert staging.is_dir() and any(staging.iterdir()), "the first ingest never started"
    assert metadata_docs(meta, []), "the sync holds no lock"
    sync_process.send_signal(stop)
    out, err = sync_process.communicate(timeout=300)
    assert sync_process.returncode == 130, err
    assert row_of(out, "oct")[4] == "interrupted"
    assert row_of(out, "again")[4:] == ["interrupted", "not", "started:", "the", "sync", "was",
                                        "interrupted"]
    assert "Exit status 130." in out
    assert metadata_docs(meta, []) == {}  # the lock is released
    state = account_state(meta, "acme", GCP_ACCOUNT)["sources"]
    assert set(state) == {"oct"}  # the source never started has no attempt recorded
    assert state["oct"]["last_status"] == "interrupted"
    assert state["oct"]["consecutive_failures"] == 0
    # The ingest stopped itself: its run is recorded failed (a killed one stays 'running'
    # until the next run sweeps it) and its staging is gone.
    assert ledger(place / "wh.duckdb") == {"failed": 1}
    assert not any(staging.iterdir())
    assert due(SyncItem("acme", GCP_ACCOUNT, "gcp", None, "oct", str(october), (), None,
                        "0 6 * * *"), state["oct"]).reason == "last attempt interrupted"


# --- fast tests ----------------------------------------------------------------------------


def test_a_live_lock_refuses_the_sync_naming_its_owner_and_nothing_runs(
        place: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gcp = place / "exports/gcp"
    gcp.mkdir(parents=True)
    config = place / "costflow.yaml"
    config.write_text(header(place) + f"""
tenants: [{{id: acme}}]
accounts:
  - {{id: {GCP_ACCOUNT}, provider: gcp, tenant: acme, sources: [{{uri: {gcp}}}]}}
""")
    store = connect_metadata(f"local:///{place}/meta.sqlite")
    lease = store.acquire_lock(lock_name(f"duckdb:///{place}/wh.duckdb"), "otherhost:4242",
                               timedelta(hours=6))
    assert lease is not None
    code, out, err = sync(capsys, config)
    assert code == 4
    assert f"held by otherhost:4242 since {lease.acquired_at.isoformat(timespec='seconds')}" \
        in err
    assert out == "" and not (place / "wh.duckdb").exists()
    # A stale holder (no heartbeat for longer than lock_stale_seconds) is taken over.
    store.release(lease)
    stale = store.acquire_lock(lock_name(f"duckdb:///{place}/wh.duckdb"), "deadhost:1",
                               timedelta(hours=6))
    assert stale is not None
    store.merge(paths.lock(stale.name), {"heartbeat_at": datetime.now(UTC) - timedelta(days=1)})
    code, out, err = sync(capsys, config, "--dry-run")  # a dry run takes no lock at all
    assert code == 0 and store.get(paths.lock(stale.name))["owner"] == "deadhost:1"
    store.close()


def test_selection_errors_name_what_exists(place: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = place / "costflow.yaml"
    config.write_text(header(place) + f"""
tenants: [{{id: acme}}]
accounts:
  - {{id: {GCP_ACCOUNT}, provider: gcp, tenant: acme, sources: [{{uri: {place}, id: oct}}]}}
""")
    code, _, err = sync(capsys, config, "--source", "nov")
    assert code == 2
    assert "--source 'nov' is not a source id of the selected account(s); their sources are: " \
        "oct." in err
    code, _, err = sync(capsys, config, "--account", "01338E-BE3FD6-363B4")
    assert code == 2 and "did you mean 01338E-BE3FD6-363B4C?" in err
    code, _, err = sync(capsys, config, "--parallel", "0")
    assert code == 2 and "--parallel 0: run at least 1 source at a time." in err
    assert not (place / "meta.sqlite").exists()  # refused before anything was opened


def _item(schedule: str = "0 6 * * *") -> SyncItem:
    return SyncItem("acme", "1", "gcp", None, "s", "gs://b/x", ("--source=gs://b/x",),
                    "secret://cloud-creds/acme/gcp", schedule)


@pytest.mark.parametrize(("state", "now", "is_due", "reason"), [
    (None, "2026-11-02T07:00", True, "never ran"),
    ({"last_status": "failed", "last_success": "2026-11-02T06:30"}, "2026-11-02T07:00", True,
     "last attempt failed"),
    ({"last_status": "interrupted"}, "2026-11-02T07:00", True, "last attempt interrupted"),
    ({"last_status": "committed", "last_success": "2026-11-02T06:30",
      "argv": ["--source=gs://b/x"]}, "2026-11-02T23:59", False, "not due (next: 2026-11-03 "
     "06:00 UTC)"),
    ({"last_status": "unchanged", "last_success": "2026-11-02T05:59",
      "argv": ["--source=gs://b/x"]}, "2026-11-02T06:00", True, "ticked at 2026-11-02 06:00"),
    ({"last_status": "committed", "last_success": "2026-11-02T06:30",
      "argv": ["--source=gs://b/OLD"]}, "2026-11-02T07:00", True, "configuration changed"),
])
def test_due_follows_the_schedule_and_retries_failures(state, now, is_due, reason) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    if state and "last_success" in state:
        state = {**state, "last_success": at(state["last_success"])}
    decision = due(_item(), state, at(now))
    assert decision.due is is_due and reason in decision.reason


def test_a_child_that_crashes_without_our_error_is_a_failed_source_with_its_last_line() -> None:
    outcome = parse_outcome(1, "", "Traceback (most recent call last):\n  File ...\n"
                            "TypeError: open_filesystem() takes 1 positional argument\n", "r1")
    assert outcome.status == "failed" and outcome.run_id == "r1"
    assert outcome.error == ("the ingest failed with exit status 1 and no costflow error (a "
                             "bug: please report it): TypeError: open_filesystem() takes 1 "
                             "positional argument")
    ours = parse_outcome(2, "", "12:00:01 run r2: reading\ncostflow: error: /x/a.csv.gz, row "
                         "3: not gzip.\n  Expected a gzip file.\n", "r2")
    assert ours.error == "/x/a.csv.gz, row 3: not gzip. Expected a gzip file."
    skipped = parse_outcome(0, '{"run_id": "r3", "status": "skipped", "warnings": ["nothing to '
                            'do: the 1 planned file(s) are the same deliveries (uri, sha256, '
                            'delivery id) that run r0 already loaded"]}', "", "r3")
    assert (skipped.status, skipped.rows, skipped.note) == (
        "unchanged", 0, "unchanged (loaded by run r0); nothing loaded")


def test_a_committed_source_shows_cents_in_the_table_and_the_exact_total_in_json() -> None:
    report = {"run_id": "r4", "status": "succeeded", "slices": [{}, {}], "sources": [],
              "totals": {"rows_loaded": 1200, "rows_dead_lettered": 2,
                         "billed_cost": "12345.675030163754"}}
    outcome = parse_outcome(0, json.dumps(report), "", "r4")
    assert outcome.note == "2 slice(s), billed 12,345.68, 2 dead-lettered"
    assert outcome.billed_cost == "12345.675030163754"


def test_the_child_command_carries_references_never_values() -> None:
    argv = ingest_command(_item(), "duckdb:///w.duckdb", "gcp-sm://proj", "20261101T000000Z-ab")
    assert argv[1:5] == ["-m", "costflow.cli", "-q", "ingest"]
    assert "--credentials=secret://cloud-creds/acme/gcp" in argv
    assert "--secrets=gcp-sm://proj" in argv and "--skip_unchanged_files" in argv
    assert "--run_id=20261101T000000Z-ab" in argv and "--json" in argv
