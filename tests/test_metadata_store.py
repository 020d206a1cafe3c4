"""costflow.metadata: one behaviour suite both backends pass, then what is particular to each.

Backends: the local SQLite file under tmp_path, and Firestore on the Google Cloud SDK's real
emulator (tests/firestore_emulator.py), started once per pytest worker. Every test gets its
own file or its own Firestore project id, so tests never see each other's documents. All the
tests of this module sit in one xdist group ("firestore"): with ``--dist loadgroup`` they run
on one worker and the emulator starts once. Without gcloud or Java the Firestore cases skip
with the reason, and fail under CI=true (CI has the SDK).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costflow.errors import ConfigError, CostflowError
from costflow.metadata import (
    DEFAULT_URL,
    ENV_VAR,
    DocumentStore,
    Lease,
    LockLost,
    MetadataAccessDenied,
    MetadataError,
    MetadataInputError,
    MetadataStore,
    MetadataUnavailable,
    canonical_document,
    check_url,
    connect,
    lock_holder,
    paths,
    resolve_url,
)
from costflow.metadata.firestore import FirestoreMetadataStore
from costflow.metadata.local import LocalMetadataStore
from tests.firestore_emulator import (
    EMULATOR_ENV,
    FirestoreEmulator,
    emulator_env,
    missing_tools,
)
from tests.secret_peers import free_port

pytestmark = pytest.mark.xdist_group("firestore")

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["local", "firestore"]
ACCOUNT = paths.cloud_account("acme", "123456789012")
HOUR = timedelta(hours=1)


# --- the emulator, once per worker -------------------------------------------------------------


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    def unavailable(reason: str) -> None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: CI has the Google Cloud SDK)")
        pytest.skip(reason)

    reason = missing_tools()
    if reason:
        unavailable(reason)
    emulator = FirestoreEmulator(tmp_path_factory.mktemp("firestore"))
    try:
        try:
            emulator.start()
        except RuntimeError as exc:  # gcloud without its cloud-firestore-emulator component
            if "not installed" not in str(exc):
                raise
            unavailable(f"the Firestore emulator component is not installed: {exc}")
        print(f"Firestore emulator ready in {emulator.startup_seconds:.1f} s")
        yield emulator
    finally:
        emulator.stop()


class FakeClock:
    """The lease clock, moved by the test: no sleeping for staleness."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Backend:
    """One backend under test: `open` gives another store on the same data (another
    "process"), `url` and `env` what a subprocess needs to reach it."""

    kind: str
    url: str
    env: dict[str, str]
    factory: Callable[..., DocumentStore]
    opened: list[DocumentStore] = field(default_factory=list)

    def open(self, **options: Any) -> DocumentStore:
        store = self.factory(**options)
        self.opened.append(store)
        return store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        url = f"local:///{tmp_path}/meta/metadata.sqlite"
        harness = Backend("local", url, {}, lambda **o: connect(url, **o))
    else:
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        project = f"cf-{uuid.uuid4().hex[:16]}"  # a project of its own: an empty database
        url = f"firestore://{project}"
        harness = Backend("firestore", url, {EMULATOR_ENV: emulator.host},
                          lambda **o: connect(url, client=emulator.client(project), **o))
    yield harness
    for store in harness.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> DocumentStore:
    return backend.open()


def typed(value: Any) -> Any:
    """``value`` with every type spelled out, so equal-but-different types compare unequal
    (a DatetimeWithNanoseconds is not a datetime, a tz of +00:00 is not UTC here)."""
    if isinstance(value, dict):
        return ("dict", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, datetime):
        return (type(value).__name__, value.isoformat(), value.tzinfo is UTC)
    return (type(value).__name__, value)


# --- documents ---------------------------------------------------------------------------------


def test_a_store_is_a_metadata_store(store: DocumentStore) -> None:
    assert isinstance(store, MetadataStore)
    assert store.get(ACCOUNT) is None


def test_set_replaces_the_whole_document(store: DocumentStore) -> None:
    store.set(ACCOUNT, {"provider": "aws", "name": "payer", "schedule": "0 6 * * *"})
    store.set(ACCOUNT, {"provider": "aws", "consecutive_failures": 2})
    assert store.get(ACCOUNT) == {"consecutive_failures": 2, "provider": "aws"}


def test_merge_creates_then_replaces_only_the_top_level_fields_given(
        store: DocumentStore) -> None:
    store.merge(ACCOUNT, {"provider": "aws", "sources": {"cur": {"last_status": "failed",
                                                                 "consecutive_failures": 1}}})
    assert store.get(ACCOUNT) == {"provider": "aws", "sources": {
        "cur": {"consecutive_failures": 1, "last_status": "failed"}}}
    store.merge(ACCOUNT, {"sources": {"cur": {"last_status": "committed"}}, "name": None})
    # shallow: "sources" is replaced as a whole (no deep merge), "provider" is kept
    assert store.get(ACCOUNT) == {"name": None, "provider": "aws",
                                  "sources": {"cur": {"last_status": "committed"}}}
    store.merge(paths.tenant_settings("acme"), {})
    assert store.get(paths.tenant_settings("acme")) == {}


def test_delete_removes_the_document_and_a_missing_one_is_fine(store: DocumentStore) -> None:
    store.set(ACCOUNT, {"provider": "aws"})
    store.set(paths.cloud_account("acme", "other"), {"provider": "gcp"})
    store.delete(ACCOUNT)
    store.delete(ACCOUNT)
    assert store.get(ACCOUNT) is None
    assert store.get(paths.cloud_account("acme", "other")) == {"provider": "gcp"}


def test_list_gives_the_documents_directly_in_a_collection_sorted_by_id(
        store: DocumentStore) -> None:
    for ident in ["b", "A", "a", "10", "9", "z-1"]:
        store.set(paths.cloud_account("acme", ident), {"id": ident})
    store.set(paths.cloud_account("other", "x"), {"id": "elsewhere"})
    store.set(paths.user("acme", "ann"), {"role": "viewer"})
    store.set(paths.cloud_account("acme", "a") + "/runs/1", {"id": "nested"})
    listed = store.list(paths.cloud_accounts("acme"))
    assert listed == [(i, {"id": i}) for i in ["10", "9", "A", "a", "b", "z-1"]]
    assert store.list(paths.cloud_accounts("nobody")) == []
    assert store.list(paths.users("acme")) == [("ann", {"role": "viewer"})]


EXPECTED = {
    "budget": "1234.5678901234567890123",
    "credit": "-0.000000004",
    "zero": "0",
    "count": 9_223_372_036_854_775_807,
    "negative": -(2**63),
    "ok": True,
    "no": False,
    "nothing": None,
    "last_success": datetime(2026, 11, 2, 4, 30, 15, 123456, tzinfo=UTC),
    "when": datetime(2026, 1, 1, tzinfo=UTC),
    "text": "Zürich – 東京 \u2028 \"quoted\" \\ back",
    "sources": {"cur": {"last_delivery": ["sha256:ab", "sha256:cd"], "tags": [],
                        "nested": {"deeper": {"list": [1, "two", None, {"three": 3}]}}}},
    "odd keys": {"a.b": 1, "with/slash": 2, "`tick`": 3, "$dollar": 4, "sp ace": 5,
                 "__dt__x": 6},
    "tuple": ["a", "b"],
    "empty": {},
    "top.level": 1, "top`tick": 2, "top/slash": 3, "top\\back": 4, "Über": 5,
}


def test_values_come_back_identical_on_every_backend(store: DocumentStore) -> None:
    stored = {
        "budget": Decimal("1234.56789012345678901230"), "credit": Decimal("-4E-9"),
        "zero": Decimal("-0.000"), "count": 9_223_372_036_854_775_807, "negative": -(2**63),
        "ok": True, "no": False, "nothing": None,
        "last_success": datetime(2026, 11, 2, 6, 30, 15, 123456,
                                 tzinfo=timezone(timedelta(hours=2))),
        "when": datetime(2026, 1, 1, tzinfo=UTC), "text": EXPECTED["text"],
        "sources": EXPECTED["sources"], "odd keys": EXPECTED["odd keys"],
        "tuple": ("a", "b"), "empty": {},
        **{k: v for k, v in EXPECTED.items() if k.lower().startswith(("top", "über"))},
    }
    store.set(ACCOUNT, stored)
    got = store.get(ACCOUNT)
    assert typed(got) == typed(EXPECTED)
    assert list(got or {}) == sorted(EXPECTED)  # fields come sorted by name on both
    assert typed(store.list(paths.cloud_accounts("acme"))[0][1]) == typed(EXPECTED)
    store.merge(ACCOUNT, {"credit": Decimal("1.10"), "top.level": None})  # a CAS on Firestore
    assert typed(store.get(ACCOUNT)) == typed({**EXPECTED, "credit": "1.1", "top.level": None})
    store.merge(ACCOUNT, {"empty": {"now": {}}})
    assert store.get(ACCOUNT)["empty"] == {"now": {}}  # type: ignore[index]


REFUSED_VALUES = [
    pytest.param({"cost": 0.1}, "'cost'", "float", id="float"),
    pytest.param({"cost": float("nan")}, "'cost'", "float", id="nan"),
    pytest.param({"cost": float("inf")}, "'cost'", "float", id="inf"),
    pytest.param({"s": {"cur": {"cost": 1.5}}}, "'s.cur.cost'", "float", id="nested-float"),
    pytest.param({"l": [1, 2.5]}, "'l[1]'", "float", id="float-in-list"),
    pytest.param({"cost": Decimal("NaN")}, "'cost'", "finite", id="decimal-nan"),
    pytest.param({"cost": Decimal("-Infinity")}, "'cost'", "finite", id="decimal-inf"),
    pytest.param({"at": datetime(2026, 1, 1)}, "'at'", "naive", id="naive-datetime"),
    pytest.param({"at": date(2026, 1, 1)}, "'at'", "date is refused", id="date"),
    pytest.param({"raw": b"\x00"}, "'raw'", "bytes is not a metadata value", id="bytes"),
    pytest.param({"ids": {"a", "b"}}, "'ids'", "set is not a metadata value", id="set"),
    pytest.param({"big": 2**63}, "'big'", "64 bits", id="int-too-big"),
    pytest.param({"l": [[1]]}, "'l[0]'", "list directly inside a list", id="list-in-list"),
    pytest.param({"s": "\ud800"}, "'s'", "lone surrogate", id="surrogate"),
    pytest.param({"__name__": 1}, "'__name__'", "reserved", id="reserved-field"),
    pytest.param({"m": {"": 1}}, "in field 'm'", "empty", id="empty-field"),
    pytest.param({"m": {1: "a"}}, "in field 'm'", "int; field names must be strings",
                 id="int-key"),
    pytest.param({"bad\nkey": 1}, "'bad\\nkey'", "control", id="control-key"),
    pytest.param({"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {
        "d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": {"d": 1}}}}}}}}}}}}}}}}}}}}},
        "'d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d.d'", "20 levels", id="too-deep"),
]


@pytest.mark.parametrize(("doc", "field_named", "problem"), REFUSED_VALUES)
def test_values_the_stores_cannot_keep_are_refused_naming_document_and_field(
        store: DocumentStore, doc: dict[str, Any], field_named: str, problem: str) -> None:
    for write in (store.set, store.merge):
        with pytest.raises(MetadataInputError) as caught:
            write(ACCOUNT, doc)
        message = str(caught.value)
        assert message.startswith(ACCOUNT), message
        assert field_named in message and problem in message, message
    assert store.get(ACCOUNT) is None  # nothing was written
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2


def test_a_document_over_firestores_size_limit_is_refused_and_a_merge_changes_nothing(
        store: DocumentStore) -> None:
    half = "x" * 600_000
    with pytest.raises(MetadataInputError, match="1,048,576 bytes"):
        store.set(ACCOUNT, {"a": half, "b": half})
    store.set(ACCOUNT, {"a": half})
    with pytest.raises(MetadataInputError, match=f"{ACCOUNT} would be 1,200,"):
        store.merge(ACCOUNT, {"b": half})
    assert store.get(ACCOUNT) == {"a": half}


BAD_PATHS = [
    pytest.param("tenants/../x", "segment 2 ('..')", id="dotdot"),
    pytest.param("../x", "segment 1 ('..')", id="leading-dotdot"),
    pytest.param("tenants/./cloud_accounts/a", "segment 2 ('.')", id="dot"),
    pytest.param("tenants/acme/cloud_accounts/a/b", "even number of segments",
                 id="collection-not-doc"),
    pytest.param("/tenants/acme", "segment 1 ('')", id="leading-slash"),
    pytest.param("tenants//acme/x", "segment 2 ('')", id="empty-segment"),
    pytest.param("tenants/acme/", "segment 3 ('')", id="trailing-slash"),
    pytest.param("tenants/__x__", "reserved", id="reserved"),
    pytest.param("tenants/ac\x00me", "control", id="nul"),
    pytest.param("tenants/ac\nme", "control", id="newline"),
    pytest.param("tenants/ac\x1bme", "control", id="escape"),
    pytest.param("tenants/ acme", "leading or trailing space", id="space"),
    pytest.param("tenants/" + "a" * 129, "129 characters", id="too-long"),
]


@pytest.mark.parametrize(("path", "problem"), BAD_PATHS)
def test_bad_document_paths_are_refused_before_the_backend_sees_them(
        store: DocumentStore, path: str, problem: str) -> None:
    for call in (lambda: store.get(path), lambda: store.set(path, {"a": 1}),
                 lambda: store.merge(path, {"a": 1}), lambda: store.delete(path)):
        with pytest.raises(MetadataInputError) as caught:
            call()
        assert problem in str(caught.value), str(caught.value)
    assert store.list("tenants") == []


@pytest.mark.parametrize("collection", ["tenants/acme", "tenants/../x", "", "a/__b__/c"])
def test_bad_collection_paths_are_refused(store: DocumentStore, collection: str) -> None:
    with pytest.raises(MetadataInputError, match="collection path"):
        store.list(collection)


@pytest.mark.parametrize("make", [
    lambda: paths.cloud_account("acme", "a/b"), lambda: paths.cloud_account("../x", "1"),
    lambda: paths.user("acme", "__x__"), lambda: paths.tenant_settings("ac\tme"),
    lambda: paths.lock(".."), lambda: paths.cloud_accounts(""),
    lambda: paths.lock(7),  # type: ignore[arg-type]
])
def test_path_builders_refuse_bad_ids(make: Callable[[], str]) -> None:
    with pytest.raises(MetadataInputError, match="cannot be used in a metadata path"):
        make()


def test_path_builders_follow_the_design_layout() -> None:
    assert paths.tenant("acme") == "tenants/acme"
    assert paths.tenant_settings("acme") == "tenants/acme/config/settings"
    assert paths.tenant_policies("acme") == "tenants/acme/config/policies"
    assert paths.cloud_accounts("acme") == "tenants/acme/cloud_accounts"
    assert paths.cloud_account("acme", "1234-56") == "tenants/acme/cloud_accounts/1234-56"
    assert paths.users("acme") == "tenants/acme/users"
    assert paths.user("acme", "ann@example.com") == "tenants/acme/users/ann@example.com"
    assert paths.lock("sync") == "locks/sync"
    assert paths.tenants() == "tenants"


# --- locks -------------------------------------------------------------------------------------


def test_a_live_lock_is_not_given_to_anyone_else(backend: Backend) -> None:
    clock = FakeClock()
    first, second = backend.open(clock=clock), backend.open(clock=clock)
    lease = first.acquire_lock("sync", "host-a:101", HOUR)
    assert lease is not None and lease.owner == "host-a:101" and not lease.took_over
    assert lease.acquired_at == clock.now and lease.previous_owner is None
    clock.advance(minutes=59)
    assert second.acquire_lock("sync", "host-b:202", HOUR) is None
    assert first.acquire_lock("sync", "host-a:101", HOUR) is None  # not re-entrant
    assert second.acquire_lock("other", "host-b:202", HOUR) is not None  # locks are by name
    holder = lock_holder(second, "sync")
    assert holder is not None and (holder.owner, holder.acquired_at) == (
        "host-a:101", lease.acquired_at)


def test_a_heartbeat_keeps_the_lock_alive(backend: Backend) -> None:
    clock = FakeClock()
    holder, other = backend.open(clock=clock), backend.open(clock=clock)
    lease = holder.acquire_lock("sync", "host-a:101", HOUR)
    assert lease is not None
    for _ in range(3):
        clock.advance(minutes=50)
        holder.heartbeat(lease)
        assert other.acquire_lock("sync", "host-b:202", HOUR) is None
    assert lock_holder(other, "sync").heartbeat_at == clock.now  # type: ignore[union-attr]


def test_a_stale_lock_is_taken_over_and_the_old_holder_loses_it(backend: Backend) -> None:
    clock = FakeClock()
    old_store, new_store = backend.open(clock=clock), backend.open(clock=clock)
    old = old_store.acquire_lock("sync", "host-a:101", HOUR)
    assert old is not None
    clock.advance(minutes=61)  # no heartbeat for longer than stale_after
    new = new_store.acquire_lock("sync", "host-b:202", HOUR)
    assert new is not None and new.took_over
    assert (new.previous_owner, new.previous_heartbeat) == ("host-a:101", old.acquired_at)
    assert new.token != old.token

    with pytest.raises(LockLost) as caught:
        old_store.heartbeat(old)
    assert "'host-b:202' holds the lock since 2026-11-02T07:01:00+00:00" in str(caught.value)
    assert caught.value.exit_code == 4
    with pytest.raises(LockLost, match="was not released: 'host-b:202' holds"):
        old_store.release(old)
    assert lock_holder(new_store, "sync").owner == "host-b:202"  # type: ignore[union-attr]

    new_store.heartbeat(new)
    new_store.release(new)
    new_store.release(new)  # already gone: fine
    assert new_store.get(paths.lock("sync")) is None
    with pytest.raises(LockLost, match="was released"):
        new_store.heartbeat(new)
    again = old_store.acquire_lock("sync", "host-a:101", HOUR)
    assert again is not None and not again.took_over


def test_releasing_someone_elses_lease_is_refused_and_leaves_their_lock(
        store: DocumentStore) -> None:
    lease = store.acquire_lock("sync", "host-a:101", HOUR)
    assert lease is not None
    forged = Lease("sync", "host-a:101", uuid.uuid4().hex, lease.acquired_at)
    with pytest.raises(LockLost, match="'host-a:101' holds the lock"):
        store.release(forged)
    with pytest.raises(LockLost):
        store.heartbeat(forged)
    assert store.get(paths.lock("sync"))["token"] == lease.token  # type: ignore[index]
    assert store.acquire_lock("sync", "host-b:202", HOUR) is None


@pytest.mark.parametrize(("args", "problem"), [
    (("sync", "", HOUR), "lock owner"), (("sync", "a\nb", HOUR), "lock owner"),
    (("sync", "x" * 257, HOUR), "lock owner"), (("sync", "me", timedelta(0)), "positive"),
    (("sync", "me", 3600), "positive timedelta"), (("a/b", "me", HOUR), "lock name"),
    (("__x__", "me", HOUR), "lock name"),
])
def test_bad_lock_arguments_are_refused(store: DocumentStore, args: tuple[Any, ...],
                                        problem: str) -> None:
    with pytest.raises(MetadataInputError, match=problem):
        store.acquire_lock(*args)
    assert store.list("locks") == []


def test_a_document_that_is_not_a_lock_is_never_taken_over(store: DocumentStore) -> None:
    store.set(paths.lock("sync"), {"owner": "someone"})
    with pytest.raises(MetadataError, match="locks/sync is not a costflow lock"):
        store.acquire_lock("sync", "me", HOUR)
    assert store.get(paths.lock("sync")) == {"owner": "someone"}


RACER = """
import json, sys
from datetime import timedelta
from costflow.metadata import connect
store = connect(sys.argv[1])
store.get("warm/up")                  # the file or the channel is open before the start
print("ready", flush=True)
sys.stdin.readline()
lease = store.acquire_lock("sync", sys.argv[2], timedelta(hours=1))
print(json.dumps(lease and lease.token), flush=True)
"""


def test_processes_racing_for_a_lock_get_it_exactly_once(backend: Backend) -> None:
    env = {**os.environ, **backend.env}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, backend.url, f"racer-{n}"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
              for n in range(2)]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n", \
                racer.stderr.read() if racer.stderr else ""
        for racer in racers:  # the start signal, as close together as it gets
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        results = [racer.communicate(timeout=60) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    assert [r.returncode for r in racers] == [0, 0], [err for _, err in results]
    tokens = [json.loads(out) for out, _ in results]
    winners = [n for n, token in enumerate(tokens) if token]
    assert len(winners) == 1, tokens
    doc = backend.open().get(paths.lock("sync"))
    assert doc is not None and (doc["token"], doc["owner"]) == (
        tokens[winners[0]], f"racer-{winners[0]}")


def test_concurrent_merges_of_different_fields_lose_nothing(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    stores[0].set(ACCOUNT, {"provider": "aws"})
    errors: list[BaseException] = []

    def writer(n: int, store: DocumentStore) -> None:
        try:
            for i in range(5):
                store.merge(ACCOUNT, {f"w{n}_{i}": i})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stores[0].get(ACCOUNT) == {"provider": "aws",
                                      **{f"w{n}_{i}": i for n in range(4) for i in range(5)}}


# --- connecting ----------------------------------------------------------------------------------


def test_resolve_url_takes_the_flag_then_the_environment_then_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_url() == DEFAULT_URL == "local:///.costflow/metadata.sqlite"
    monkeypatch.setenv(ENV_VAR, "firestore://my-project")
    assert resolve_url() == "firestore://my-project"
    assert resolve_url("local:////tmp/m.sqlite") == "local:////tmp/m.sqlite"


def test_urls_name_the_backend_and_open_nothing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = connect(DEFAULT_URL)
    assert isinstance(local, LocalMetadataStore)
    assert local.path == tmp_path / ".costflow" / "metadata.sqlite"
    assert not (tmp_path / ".costflow").exists()
    assert connect(f"local:///{tmp_path}/m.sqlite").path == tmp_path / "m.sqlite"  # type: ignore[attr-defined]
    default = connect("firestore://my-project")
    assert isinstance(default, FirestoreMetadataStore)
    assert (default.project, default.database, default.url) == (
        "my-project", "(default)", "firestore://my-project")
    named = connect("firestore://my-project/costflow-meta")
    assert (named.project, named.database) == ("my-project", "costflow-meta")  # type: ignore[attr-defined]
    assert check_url("firestore://my-project/") == ("firestore", ("my-project", "(default)"))


@pytest.mark.parametrize("url", [
    "", "local:///", "local:///dir/", "local:///a/..", "local:///m.sqlite?mode=ro",
    "sqlite:///m.sqlite", "firestore://", "firestore://My_Project", "firestore://p",
    "firestore://my-project/a/b", "firestore://my-project/DB", "firestore://u@my-project",
    "firestore://my-project:443", "firestore://my-project?x=1", "local:///m\n.sqlite",
    "firestore://my-project/(default)x",
])
def test_bad_urls_are_refused_naming_the_accepted_forms(url: str) -> None:
    with pytest.raises(MetadataInputError) as caught:
        connect(url)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError) and "\n" not in message
    assert ("Accepted metadata store URLs" in message or "is not a GCP project id" in message
            or "is not a Firestore database id" in message), message


# --- the local backend ---------------------------------------------------------------------------


def test_local_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    store = connect(f"local:///{tmp_path}/private/metadata.sqlite")
    store.set(ACCOUNT, {"provider": "aws"})
    folder, file = tmp_path / "private", tmp_path / "private" / "metadata.sqlite"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
    wal = file.with_name("metadata.sqlite-wal")
    assert wal.exists() and stat.S_IMODE(os.stat(wal).st_mode) == 0o600
    with sqlite3.connect(file) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT path, parent, id FROM documents").fetchall() == [
            (ACCOUNT, "tenants/acme/cloud_accounts", "123456789012")]
    store.close()


def test_local_file_found_readable_by_others_is_tightened(tmp_path: Path) -> None:
    url = f"local:///{tmp_path}/metadata.sqlite"
    connect(url).set(ACCOUNT, {"a": 1})
    os.chmod(tmp_path / "metadata.sqlite", 0o644)
    assert connect(url).get(ACCOUNT) == {"a": 1}
    assert stat.S_IMODE(os.stat(tmp_path / "metadata.sqlite").st_mode) == 0o600


def test_local_store_waits_for_a_busy_file_then_says_so(tmp_path: Path) -> None:
    url = f"local:///{tmp_path}/metadata.sqlite"
    connect(url).set(ACCOUNT, {"a": 1})
    other = sqlite3.connect(tmp_path / "metadata.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        store = connect(url, timeout=0.2)
        assert store.get(ACCOUNT) == {"a": 1}  # WAL: readers do not wait for the writer
        with pytest.raises(MetadataUnavailable, match=r"metadata.sqlite stayed busy for more "
                                                      r"than 0.2 s while reading or writing "
                                                      rf"{ACCOUNT}: another process"):
            store.merge(ACCOUNT, {"b": 2})
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.merge(ACCOUNT, {"b": 2})
    assert store.get(ACCOUNT) == {"a": 1, "b": 2}


@pytest.mark.parametrize(("make", "error", "problem"), [
    (lambda p: p.write_text("not a database " * 100), MetadataError, "not a usable costflow"),
    (lambda p: p.mkdir(), MetadataAccessDenied, "not a regular file"),
    (lambda p: p.symlink_to(p.parent / "elsewhere"), MetadataAccessDenied, "symbolic link"),
])
def test_local_path_that_is_not_a_store_is_refused_naming_it(
        tmp_path: Path, make: Callable[[Path], Any], error: type[Exception],
        problem: str) -> None:
    target = tmp_path / "metadata.sqlite"
    make(target)
    with pytest.raises(error, match=problem) as caught:
        connect(f"local:///{target}").get(ACCOUNT)
    assert str(target) in str(caught.value)


@pytest.fixture(scope="module")
def scratch_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentStore]:
    store = connect(f"local:///{tmp_path_factory.mktemp('hypothesis')}/m.sqlite")
    yield store
    store.close()


@settings(max_examples=50, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=12)
    | st.datetimes(timezones=st.timezones(), min_value=datetime(2, 1, 1),
                   max_value=datetime(9998, 12, 31)),
    lambda inner: st.dictionaries(st.text(min_size=1).filter(
        lambda k: k.isprintable() and not (k.startswith("__") and k.endswith("__"))), inner,
        max_size=4) | st.lists(inner.filter(lambda v: not isinstance(v, list)), max_size=4),
    max_leaves=12))
def test_local_round_trip_is_the_canonical_value(scratch_store: DocumentStore,
                                                 value: Any) -> None:
    try:
        scratch_store.set("h/doc", {"v": value})
    except MetadataInputError as exc:  # a surrogate or a list in a list: refused, fine
        assert "lone surrogate" in str(exc) or "list directly inside" in str(exc), exc
        return
    assert typed(scratch_store.get("h/doc")) == typed(canonical_document("h/doc", {"v": value}))


# --- the Firestore backend -----------------------------------------------------------------------


def test_firestore_documents_sit_at_the_design_paths_as_native_values(
        firestore_emulator: FirestoreEmulator) -> None:
    project = f"cf-{uuid.uuid4().hex[:16]}"
    before = os.environ.get(EMULATOR_ENV)
    client = firestore_emulator.client(project)
    assert os.environ.get(EMULATOR_ENV) == before  # set for the client's build only
    store = connect(f"firestore://{project}", client=client)
    when = datetime(2026, 11, 2, 4, 30, tzinfo=UTC)
    store.set(ACCOUNT, {"last_success": when, "budget": Decimal("10.50")})
    raw = client.collection("tenants").document("acme").collection(
        "cloud_accounts").document("123456789012").get().to_dict()
    assert raw["budget"] == "10.5" and raw["last_success"] == when
    assert type(raw["last_success"]).__name__ == "DatetimeWithNanoseconds"  # a timestamp
    store.close()


def test_firestore_client_is_built_lazily_from_the_emulator_environment(
        firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_ENV, firestore_emulator.host)  # restored after the test
    project = f"cf-{uuid.uuid4().hex[:16]}"
    store = connect(f"firestore://{project}/costflow-meta")
    assert store._client is None  # type: ignore[attr-defined]
    store.set(ACCOUNT, {"a": 1})
    assert store.get(ACCOUNT) == {"a": 1}
    other = firestore_emulator.client(project, database="costflow-meta")
    assert other.document(ACCOUNT).get().to_dict() == {"a": 1}
    store.close()


def test_firestore_permission_denied_is_an_access_error_naming_path_and_url(
        firestore_emulator: FirestoreEmulator) -> None:
    project = f"cf-{uuid.uuid4().hex[:16]}"
    denied = connect(f"firestore://{project}",
                     client=firestore_emulator.client(project, user="analyst-7"))
    operations = {
        "reading": lambda: denied.get(ACCOUNT),
        "writing": lambda: denied.set(ACCOUNT, {"a": 1}),
        "updating": lambda: denied.merge(ACCOUNT, {"a": 1}),
        "deleting": lambda: denied.delete(ACCOUNT),
        "listing": lambda: denied.list(paths.cloud_accounts("acme")),
    }
    for doing, call in operations.items():
        with pytest.raises(MetadataAccessDenied) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"access denied {doing} tenants/acme/cloud_accounts"), message
        assert f"firestore://{project} (emulator at {firestore_emulator.host})" in message
        assert "roles/datastore.user" in message and "PERMISSION_DENIED" not in message
        assert "Bearer" not in message and caught.value.__cause__ is None
        assert caught.value.__suppress_context__
    with pytest.raises(MetadataAccessDenied, match="access denied updating locks/sync"):
        denied.acquire_lock("sync", "me", HOUR)
    admin = connect(f"firestore://{project}", client=firestore_emulator.client(project))
    assert admin.get(ACCOUNT) is None  # nothing was written by the denied identity


def test_firestore_unreachable_is_unavailable_naming_the_url() -> None:
    with emulator_env(f"127.0.0.1:{free_port()}"):  # nothing listens there
        from google.cloud import firestore

        client = firestore.Client(project="cf-unreachable")
    store = connect("firestore://cf-unreachable", client=client, timeout=1.0)
    with pytest.raises(MetadataUnavailable) as caught:
        store.get(ACCOUNT)
    message = str(caught.value)
    assert message.startswith("firestore://cf-unreachable (emulator at 127.0.0.1:"), message
    assert f"cannot be reached (reading {ACCOUNT}, 1 s with retries)" in message
    assert isinstance(caught.value, CostflowError) and caught.value.exit_code == 3
    store.close()
