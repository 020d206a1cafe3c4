"""costflow.secrets: one suite every backend passes, then what is particular to each.

Backends and their peers (tests/secret_peers.py): local files in tmp_path with a Fernet key;
AWS Secrets Manager on moto's server (its own process, 127.0.0.1); GCP Secret Manager through
the real client (REST transport, anonymous credentials) against an http.server peer speaking
the v1 REST API; Azure Key Vault through the real SecretClient and its RequestsTransport, whose
session adapter answers like the vault (401 challenge included).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import stat
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from costflow.errors import ConfigError, CostflowError
from costflow.secrets import (
    SecretAccessDenied,
    SecretBackend,
    SecretError,
    SecretExists,
    SecretManager,
    SecretNotFound,
    SecretVersion,
    SecretVersionDisabled,
    connect,
    make_name,
    resolve_url,
    validate_name,
)
from costflow.secrets import __main__ as secrets_cli
from costflow.secrets import names as sn
from costflow.secrets.local import KEY_ENV, KEYRING_SERVICE, KEYRING_USER
from tests.secret_peers import (
    AZURE_SCOPE,
    AZURE_TENANT,
    FakeCredential,
    FakeKeyVault,
    GcpSecretManagerPeer,
    MotoServer,
    azure_transport,
    free_port,
)

NAME = "cloud-creds/acme_eu/aws"
SPELLED = {"local": "cloud-creds__acme_eu__aws", "aws": "cloud-creds/acme_eu/aws",
           "gcp": "cloud-creds__acme_eu__aws", "azure": "cloud-creds---acme--eu---aws"}
BACKENDS = ["local", "aws", "gcp", "azure"]
HOSTILE = [
    "", "../../etc/passwd", "/cloud-creds/acme/aws", "cloud-creds/acme/../aws",
    "cloud-creds/../../x", "cloud-creds/acme/aws/", "cloud-creds//aws", "cloud-creds/acme/aws\n",
    "cloud-creds/acme/aws\x00", "cloud-creds/ac\x1bme/aws", "cloud-creds/acme/aws\x7f",
    "llm/open ai", "llm/OpenAI", "llm/\u043epenai", "llm/%2e%2e", "llm/a..b", "llm/.hidden",
    "llm/a__b", "llm/a-_b", "llm/-a", "llm/a-", "llm/a/b", "llm/a%2Fb", "llm/a?b", "llm/a#b",
    "llm/a:b", "llm\\openai", "cloud-creds/acme", "secrets/acme/aws", "llm/" + "a" * 64,
    "api-keys/" + "a" * 63 + "/" + "b" * 63,  # 140 characters once spelled for Azure
]


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


# --- peers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gcp_peer() -> Iterator[GcpSecretManagerPeer]:
    peer = GcpSecretManagerPeer().start()
    yield peer
    peer.stop()


@dataclass
class Harness:
    """A backend under test and what the suite needs to know about its peer."""

    kind: str
    manager: SecretBackend
    missing_version: str                  # a well-formed id that does not exist
    deny: Callable[[str], None]           # "get" / "set": make that operation fail with 403
    stored_names: Callable[[], set[str]]  # the backend's spelling of the names it holds
    stored_labels: Callable[[str], dict[str, str]]
    traffic: Callable[[], int]            # requests (or files) so far


def _local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, key)
    root = tmp_path / "secrets"
    url = "local:///" + str(root)
    h = Harness("local", connect(url), "99", lambda op: None, lambda: set(), lambda n: {},
                lambda: 0)

    def deny(op: str) -> None:  # locally "denied" is: the key at hand is not the store's
        monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
        h.manager = connect(url)

    def doc(name: str) -> dict[str, Any]:
        data = (root / (sn.to_gcp(name) + ".secret")).read_bytes()
        return dict(json.loads(Fernet(key.encode()).decrypt(data)))

    h.deny = deny
    h.stored_names = lambda: {p.name.removesuffix(".secret") for p in root.glob("*.secret")}
    h.stored_labels = lambda name: dict(doc(name)["labels"])
    h.traffic = lambda: len(list(root.rglob("*"))) if root.exists() else 0
    return h


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


_BOTO: dict[str, Any] = {}


def _aws_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1"),
                       ("COSTFLOW_SECRETS_AWS_ENDPOINT_URL", moto.url)):
        monkeypatch.setenv(var, value)


def _aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """AWS on moto; the client comes from one boto3 session (its service model loads once)."""
    import boto3
    from botocore.awsrequest import AWSResponse

    moto.reset()
    _aws_env(moto, monkeypatch)
    session = _BOTO.setdefault("session", boto3.session.Session())
    client = session.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.url)
    manager = connect("aws-sm://us-east-1", client=client)
    sent: list[str] = []
    client.meta.events.register("before-send.secrets-manager",
                                lambda request, **kw: sent.append(request.url))

    def deny(op: str) -> None:
        operation = {"get": "GetSecretValue", "set": "PutSecretValue"}[op]

        def refuse(request: Any, **kwargs: Any) -> AWSResponse:
            body = json.dumps({
                "__type": "AccessDeniedException",
                "Message": f"User: arn:aws:iam::123456789012:user/ci is not authorized to "
                           f"perform: secretsmanager:{operation} on resource: {NAME} because "
                           f"no identity-based policy allows the secretsmanager:{operation} "
                           "action"}).encode()
            return AWSResponse(request.url, 400,
                               {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))

        client.meta.events.register_first(f"before-send.secrets-manager.{operation}", refuse)

    def labels(name: str) -> dict[str, str]:
        tags = client.describe_secret(SecretId=name).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tags}

    return Harness("aws", manager, str(uuid.uuid4()), deny,
                   lambda: {s["Name"] for s in client.list_secrets()["SecretList"]}, labels,
                   lambda: len(sent))


def _gcp(peer: GcpSecretManagerPeer) -> Harness:
    from google.auth.credentials import AnonymousCredentials

    peer.reset()
    manager = connect("gcp-sm://costflow-test", credentials=AnonymousCredentials(),
                      api_endpoint=peer.url)
    permission = {"get": "secretmanager.versions.access", "set": "secretmanager.versions.add"}
    return Harness("gcp", manager, "99", lambda op: peer.deny.add(permission[op]),
                   lambda: set(peer.secrets),
                   lambda name: dict(peer.secrets[sn.to_gcp(name)]["labels"]),
                   lambda: len(peer.requests))


def _azure() -> tuple[Harness, FakeKeyVault, FakeCredential]:
    vault, credential = FakeKeyVault(), FakeCredential()  # a new vault host each time: the
    manager = connect(f"azure-kv://{vault.name}", credential=credential,  # SDK caches challenges
                      transport=azure_transport(vault), verify_challenge_resource=False,
                      logging_enable=True)  # azure-core then logs bodies: must be withheld
    harness = Harness("azure", manager, "0" * 32, lambda op: vault.deny.add(op),
                      lambda: set(vault.secrets),
                      lambda name: dict(vault.secrets[sn.to_azure(name)][-1]["tags"] or {}),
                      lambda: len(vault.requests))
    return harness, vault, credential


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    kind = request.param
    peer: Any = None
    if kind == "local":
        h = _local(tmp_path, monkeypatch)
    elif kind == "aws":
        h = _aws(request.getfixturevalue("moto"), monkeypatch)
    elif kind == "gcp":
        peer = request.getfixturevalue("gcp_peer")
        h = _gcp(peer)
    else:
        h, peer, _ = _azure()
    yield h
    h.manager.close()
    if peer is not None:
        assert peer.unexpected == [], "the client sent requests the peer does not know"


# --- the shared suite --------------------------------------------------------------------------


def test_every_backend_is_a_secret_manager(backend: Harness) -> None:
    assert isinstance(backend.manager, SecretManager)


def test_create_then_get_latest(backend: Harness) -> None:
    created = run(backend.manager.create_secret(NAME, "s3cr3t-one", labels={"team": "finops"}))
    assert isinstance(created, SecretVersion)
    assert (created.name, created.state, created.enabled) == (NAME, "enabled", True)
    assert created.created.tzinfo is not None
    assert run(backend.manager.get_secret(NAME)) == "s3cr3t-one"
    assert run(backend.manager.get_secret(NAME, "latest")) == "s3cr3t-one"
    assert backend.stored_names() == {SPELLED[backend.kind]}
    assert backend.stored_labels(NAME) == {"team": "finops"}


def test_get_a_numbered_version(backend: Harness) -> None:
    first = run(backend.manager.create_secret(NAME, "value-1"))
    second = run(backend.manager.rotate_secret(NAME, "value-2"))
    assert run(backend.manager.get_secret(NAME, first.version)) == "value-1"
    assert run(backend.manager.get_secret(NAME, second.version)) == "value-2"
    if backend.kind in ("local", "gcp"):
        assert (first.version, second.version) == ("1", "2")


def test_rotate_keeps_the_old_version_readable(backend: Harness) -> None:
    old = run(backend.manager.create_secret(NAME, "before-rotation"))
    new = run(backend.manager.rotate_secret(NAME, "after-rotation"))
    assert new.version != old.version and new.name == NAME and new.enabled
    assert new.created >= old.created
    assert run(backend.manager.get_secret(NAME)) == "after-rotation"
    assert run(backend.manager.get_secret(NAME, old.version)) == "before-rotation"
    listed = run(backend.manager.list_versions(NAME))
    assert [v.version for v in listed] == [new.version, old.version]
    assert all(v.enabled for v in listed)


def test_missing_secret_is_secret_not_found_naming_it(backend: Harness) -> None:
    missing = "api-keys/acme/slack"
    for call in (backend.manager.get_secret(missing),
                 backend.manager.rotate_secret(missing, "x"),
                 backend.manager.list_versions(missing)):
        with pytest.raises(SecretNotFound) as info:
            run(call)
        message = str(info.value)
        assert f"secret '{missing}' not found in {backend.manager.where}" in message
        assert info.value.__cause__ is None and info.value.__context__ is None
        assert "Traceback" not in message and "botocore" not in message


def test_missing_version_is_secret_not_found_naming_it(backend: Harness) -> None:
    run(backend.manager.create_secret(NAME, "v"))
    with pytest.raises(SecretNotFound) as info:
        run(backend.manager.get_secret(NAME, backend.missing_version))
    assert str(info.value) == (f"version {backend.missing_version} of secret {NAME!r} not found "
                               f"in {backend.manager.where}.")


def test_create_twice_is_secret_exists(backend: Harness) -> None:
    run(backend.manager.create_secret(NAME, "first"))
    with pytest.raises(SecretExists, match="use rotate_secret"):
        run(backend.manager.create_secret(NAME, "second"))
    assert run(backend.manager.get_secret(NAME)) == "first"


def test_hostile_names_are_refused_before_the_backend(backend: Harness) -> None:
    m = backend.manager
    for hostile in HOSTILE:  # each one also has its own case in test_validate_name_refuses
        for call in (m.create_secret(hostile, "v"), m.get_secret(hostile),
                     m.rotate_secret(hostile, "v"), m.list_versions(hostile),
                     m.disable_version(hostile, "1")):
            with pytest.raises(ConfigError):
                run(call)
    assert backend.traffic() == 0  # nothing reached the peer, no file was made


def test_hostile_versions_are_refused(backend: Harness) -> None:
    for version in ("../1", "1/../../x", "1\n", " 1", "", "LATEST", "1?a=b", "%2e%2e", "0" * 70,
                    "1" * 11):
        with pytest.raises(ConfigError, match="is not a version of secret"):
            run(backend.manager.get_secret(NAME, version))
    assert backend.traffic() == 0


def test_access_denied_names_the_secret_and_what_to_check(backend: Harness) -> None:
    run(backend.manager.create_secret(NAME, "v1"))
    backend.deny("get")
    with pytest.raises(SecretAccessDenied) as info:
        run(backend.manager.get_secret(NAME))
    message = str(info.value)
    if backend.kind == "local":
        assert "cannot decrypt secret" in message and KEY_ENV in message
    else:
        assert message.startswith(f"access denied to secret {NAME!r} in "
                                  f"{backend.manager.where}: check the credentials' permissions")


def test_disable_an_old_version(backend: Harness) -> None:
    old = run(backend.manager.create_secret(NAME, "old"))
    new = run(backend.manager.rotate_secret(NAME, "new"))
    if backend.kind == "aws":
        with pytest.raises(SecretError, match="no per-version disable"):
            run(backend.manager.disable_version(NAME, old.version))
        return
    with pytest.raises(SecretError, match="rotate the secret first"):
        run(backend.manager.disable_version(NAME, new.version))
    disabled = run(backend.manager.disable_version(NAME, old.version))
    assert (disabled.version, disabled.state, disabled.enabled) == (old.version, "disabled",
                                                                   False)
    with pytest.raises(SecretVersionDisabled, match=f"version {old.version} of secret"):
        run(backend.manager.get_secret(NAME, old.version))
    assert run(backend.manager.get_secret(NAME)) == "new"
    states = {v.version: v.state for v in run(backend.manager.list_versions(NAME))}
    assert states == {new.version: "enabled", old.version: "disabled"}


@pytest.mark.parametrize("labels", [{"Team": "x"}, {"team": "X Y"}, {"t" * 64: "x"},
                                    {f"k{i}": "v" for i in range(16)}, {"team": 3}])
def test_bad_labels_are_refused(backend: Harness, labels: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="label"):
        run(backend.manager.create_secret(NAME, "v", labels=labels))
    assert backend.traffic() == 0


@pytest.mark.parametrize("value", ["", "x" * 25_001, 12345, None, b"bytes"])
def test_bad_values_are_refused_without_echo(backend: Harness, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        run(backend.manager.create_secret(NAME, value))
    assert "x" * 100 not in str(info.value) and "bytes'" not in str(info.value)


@contextlib.contextmanager
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG into caplog, "google" included (it does not propagate)."""
    names = ("botocore", "boto3", "urllib3", "google", "azure", "costflow", "keyring")
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    caplog.set_level(logging.DEBUG)
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
        logging.getLogger(n).propagate = True
    try:
        yield
    finally:
        for n, (level, propagate) in saved.items():
            logging.getLogger(n).setLevel(level)
            logging.getLogger(n).propagate = propagate


def test_values_never_reach_messages_or_log_records(backend: Harness,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    planted, newer = f"planted-{uuid.uuid4().hex}", f"planted-{uuid.uuid4().hex}"
    raised: list[BaseException] = []

    def expect_error(awaitable: Any) -> None:
        with pytest.raises(CostflowError) as info:
            run(awaitable)
        raised.append(info.value)

    m = backend.manager
    with debug_everywhere(caplog):
        first = run(m.create_secret(NAME, planted, labels={"team": "finops"}))
        assert run(m.get_secret(NAME)) == planted
        run(m.rotate_secret(NAME, newer))
        assert run(m.get_secret(NAME, first.version)) == planted
        run(m.list_versions(NAME))
        expect_error(m.create_secret(NAME, planted))                   # exists
        expect_error(m.rotate_secret("llm/missing", planted))          # not found
        expect_error(m.create_secret("llm/../" + planted, planted))    # hostile name
        expect_error(m.create_secret(planted, NAME))                   # arguments swapped
        expect_error(m.get_secret(planted))                            # a value as a name
        backend.deny("set")
        expect_error(backend.manager.rotate_secret(NAME, planted))     # denied while writing
        backend.deny("get")
        expect_error(backend.manager.get_secret(NAME))                 # denied while reading
    forms = {planted, newer, base64.b64encode(planted.encode()).decode(),
             base64.b64encode(newer.encode()).decode()}
    texts = ["".join(traceback.format_exception(e)) for e in raised]
    for record in caplog.records:
        texts.append(record.getMessage() + repr(vars(record)))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    leaks = [t for t in texts if any(form in t for form in forms)]
    assert leaks == []
    assert len(raised) == 7
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("costflow.secrets")]
    assert any(NAME in message for message in ours)  # the operations are logged, by name
    if backend.kind != "local":  # the SDK did log at DEBUG, and those records were withheld
        assert any("withheld by costflow" in r.getMessage() for r in caplog.records)


def test_redaction_leaves_other_sdk_use_alone(caplog: pytest.LogCaptureFixture) -> None:
    from costflow.secrets import redact

    redact.install()
    with debug_everywhere(caplog):
        logging.getLogger("botocore.endpoint").debug("Making request with params: %s", "p1")
        with redact.secret_call():
            logging.getLogger("botocore.endpoint").debug("Making request with params: %s", "p2")
    messages = [r.getMessage() for r in caplog.records if r.name == "botocore.endpoint"]
    assert messages == ["Making request with params: p1",
                        "[botocore.endpoint: record of a secret operation withheld by costflow]"]


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE + [None, b"llm/openai", 42])
def test_validate_name_refuses(hostile: Any) -> None:
    with pytest.raises(ConfigError, match="cloud-creds/\\{tenant\\}/\\{provider\\}|too long"):
        validate_name(hostile)


def test_a_value_passed_as_name_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        validate_name("sk-live-0123456789abcdef")
    assert "sk-live" not in str(info.value)
    assert "24 characters" in str(info.value)


@pytest.mark.parametrize("name", ["cloud-creds/acme/aws", "api-keys/acme-eu/slack_webhook",
                                  "llm/openai", "cloud-creds/t1_2-3/gcp"])
def test_the_design_patterns_are_accepted(name: str) -> None:
    assert validate_name(name) == name


def test_make_name() -> None:
    assert make_name("cloud-creds", "acme", "aws") == "cloud-creds/acme/aws"
    with pytest.raises(ConfigError):
        make_name("llm", "..")


_segment = st.builds(
    lambda first, rest: first + "".join(sep + run_ for sep, run_ in rest),
    st.text("abz019", min_size=1, max_size=5),
    st.lists(st.tuples(st.sampled_from("-_"), st.text("abz019", min_size=1, max_size=5)),
             max_size=3))
_names = st.one_of(
    st.tuples(st.just("cloud-creds"), _segment, _segment),
    st.tuples(st.just("api-keys"), _segment, _segment),
    st.tuples(st.just("llm"), _segment),
).map("/".join)


@given(_names)
def test_backend_spellings_are_reversible_and_allowed(name: str) -> None:
    assert validate_name(name) == name
    gcp, azure = sn.to_gcp(name), sn.to_azure(name)
    assert sn.from_gcp(gcp) == name and sn.from_azure(azure) == name
    assert set(gcp) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") and len(gcp) <= 255
    assert set(azure) <= set("abcdefghijklmnopqrstuvwxyz0123456789-") and len(azure) <= 127


@given(_names, _names)
def test_backend_spellings_are_injective(a: str, b: str) -> None:
    if a != b:
        assert sn.to_gcp(a) != sn.to_gcp(b)
        assert sn.to_azure(a).lower() != sn.to_azure(b).lower()  # Azure ignores case


@pytest.mark.parametrize("spelled", ["cloud-creds----acme", "llm---a---b", "llm--x", "x"])
def test_decoding_a_foreign_spelling_is_refused(spelled: str) -> None:
    with pytest.raises(ConfigError):
        sn.from_azure(spelled)


# --- connect -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url, kind, where", [
    ("local:///.costflow/secrets", "LocalSecretManager", "the local secret store "
                                                          ".costflow/secrets"),
    ("local:////var/lib/costflow/s", "LocalSecretManager", "/var/lib/costflow/s"),
    ("aws-sm://eu-west-1", "AwsSecretManager", "AWS Secrets Manager (eu-west-1)"),
    ("gcp-sm://my-project-1", "GcpSecretManager", "GCP Secret Manager (project my-project-1)"),
    ("azure-kv://myvault", "AzureKeyVaultSecretManager", "https://myvault.vault.azure.net"),
    ("azure-kv://myvault.vault.azure.cn", "AzureKeyVaultSecretManager",
     "https://myvault.vault.azure.cn"),
])
def test_connect_picks_the_backend_by_url(url: str, kind: str, where: str) -> None:
    manager = connect(url)
    assert type(manager).__name__ == kind and where in manager.where


@pytest.mark.parametrize("url", [
    "", "local:///", "local:///.", "local:///x?y=1", "local:///x#f", "s3://bucket",
    "aws-sm://", "aws-sm://us-east-1/x", "aws-sm://u@us-east-1", "aws-sm://us-east-1:443",
    "aws-sm://not_a_region", "gcp-sm://Bad_Project", "gcp-sm://p?x=1", "azure-kv://a",
    "azure-kv://-vault", "azure-kv://vault/secrets", "local:///x\n", "gcp-sm://proj\x00ect",
])
def test_connect_refuses_other_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        connect(url)


def test_resolve_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSTFLOW_SECRETS", raising=False)
    assert resolve_url() == "local:///.costflow/secrets"
    monkeypatch.setenv("COSTFLOW_SECRETS", "gcp-sm://p1-project")
    assert resolve_url() == "gcp-sm://p1-project"
    assert resolve_url("aws-sm://us-east-1") == "aws-sm://us-east-1"


# --- local store -------------------------------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username))


class LockedKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the keyring is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("the keyring is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("the keyring is locked")


@pytest.fixture
def use_keyring() -> Iterator[Callable[[keyring.backend.KeyringBackend], None]]:
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, key)
    return key, tmp_path / "store"


def test_local_files_are_private_encrypted_and_versioned(local_store: tuple[str, Path]) -> None:
    key, root = local_store
    planted = f"planted-{uuid.uuid4().hex}"
    manager = connect("local:///" + str(root))
    run(manager.create_secret(NAME, planted))
    run(manager.rotate_secret(NAME, "second"))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    files = sorted(p.name for p in root.iterdir())
    assert files == [".lock", "cloud-creds__acme_eu__aws.secret"]  # no temporary file left
    for path in root.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert planted.encode() not in path.read_bytes()
        assert base64.b64encode(planted.encode()) not in path.read_bytes()
    doc = json.loads(Fernet(key.encode()).decrypt((root / files[1]).read_bytes()))
    assert [(v["id"], v["value"]) for v in doc["versions"]] == [("1", planted), ("2", "second")]


def test_local_without_a_key_refuses_and_says_how_to_make_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_keyring: Any) -> None:
    import keyring.backends.fail

    monkeypatch.delenv(KEY_ENV, raising=False)
    for backend in (keyring.backends.fail.Keyring(), LockedKeyring()):
        use_keyring(backend)
        manager = connect("local:///" + str(tmp_path / "store"))
        for call in (manager.create_secret(NAME, "v"), manager.get_secret(NAME)):
            with pytest.raises(ConfigError) as info:
                run(call)
            assert "python -m costflow.secrets keygen" in str(info.value)
            assert KEY_ENV in str(info.value)
    assert not (tmp_path / "store").exists()  # nothing written, nothing in clear text


def test_local_key_from_the_os_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       use_keyring: Any) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    memory = MemoryKeyring()
    key = Fernet.generate_key().decode()
    memory.set_password(KEYRING_SERVICE, KEYRING_USER, key)
    use_keyring(memory)
    manager = connect("local:///" + str(tmp_path / "store"))
    run(manager.create_secret(NAME, "from-keyring"))
    assert run(connect("local:///" + str(tmp_path / "store")).get_secret(NAME)) == "from-keyring"
    data = (tmp_path / "store" / "cloud-creds__acme_eu__aws.secret").read_bytes()
    assert b"from-keyring" in Fernet(key.encode()).decrypt(data)


def test_local_bad_key_is_refused_without_echo(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "not-a-key-0123456789")
    with pytest.raises(ConfigError, match="is not a Fernet key") as info:
        run(connect("local:///" + str(tmp_path)).get_secret(NAME))
    assert "not-a-key" not in str(info.value)


def test_local_rekey_with_new_comma_old(local_store: tuple[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    old, root = local_store
    url = "local:///" + str(root)
    run(connect(url).create_secret(NAME, "v1"))
    new = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, f"{new},{old}")
    assert run(connect(url).get_secret(NAME)) == "v1"
    run(connect(url).rotate_secret(NAME, "v2"))  # the write re-encrypts with the new key
    monkeypatch.setenv(KEY_ENV, new)
    assert run(connect(url).get_secret(NAME, "1")) == "v1"
    monkeypatch.setenv(KEY_ENV, old)
    with pytest.raises(SecretAccessDenied, match="another key"):
        run(connect(url).get_secret(NAME))


def test_local_altered_swapped_or_linked_files_are_refused(local_store: tuple[str, Path]
                                                           ) -> None:
    _, root = local_store
    manager = connect("local:///" + str(root))
    run(manager.create_secret(NAME, "a"))
    run(manager.create_secret("llm/openai", "b"))
    path = root / "cloud-creds__acme_eu__aws.secret"
    other = root / "llm__openai.secret"
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SecretAccessDenied, match="altered"):
        run(manager.get_secret(NAME))
    path.write_bytes(other.read_bytes())  # another secret's (valid) file under this name
    with pytest.raises(SecretError, match="does not hold secret"):
        run(manager.get_secret(NAME))
    path.unlink()
    path.symlink_to(other)
    with pytest.raises(SecretAccessDenied, match="regular file"):
        run(manager.get_secret(NAME))


def test_local_directory_checks(local_store: tuple[str, Path],
                                monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    _, root = local_store
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    manager = connect("local:///" + str(root))
    run(manager.create_secret(NAME, "v"))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert "tightened to 0700" in caplog.text
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    with pytest.raises(ConfigError, match="not to you"):
        run(manager.get_secret(NAME))


def test_local_concurrent_rotations_lose_no_version(local_store: tuple[str, Path]) -> None:
    _, root = local_store
    manager = connect("local:///" + str(root))
    run(manager.create_secret(NAME, "v0"))

    async def rotate_many() -> list[SecretVersion]:
        return list(await asyncio.gather(*(manager.rotate_secret(NAME, f"v{i}")
                                           for i in range(1, 9))))

    rotated = run(rotate_many())
    assert sorted(int(v.version) for v in rotated) == list(range(2, 10))
    values = {run(manager.get_secret(NAME, str(n))) for n in range(1, 10)}
    assert values == {f"v{i}" for i in range(9)}


def test_keygen_prints_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert secrets_cli.main(["keygen"]) == 0
    out, err = capsys.readouterr()
    Fernet(out.strip().encode())  # a valid key, alone on stdout
    assert KEY_ENV in err


def test_keygen_into_the_keyring(capsys: pytest.CaptureFixture[str], use_keyring: Any) -> None:
    memory = MemoryKeyring()
    use_keyring(memory)
    assert secrets_cli.main(["keygen", "--keyring"]) == 0
    Fernet(memory.store[(KEYRING_SERVICE, KEYRING_USER)].encode())
    assert capsys.readouterr().out == ""  # the key is not printed
    assert secrets_cli.main(["keygen", "--keyring"]) == 2  # never replaces a key
    assert "already holds a key" in capsys.readouterr().err
    use_keyring(LockedKeyring())
    assert secrets_cli.main(["keygen", "--keyring"]) == 2
    assert "no working OS keyring" in capsys.readouterr().err


# --- AWS ---------------------------------------------------------------------------------------


def test_aws_rotation_moves_the_staging_labels(moto: MotoServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    h = _aws(moto, monkeypatch)
    old = run(h.manager.create_secret(NAME, "one"))
    new = run(h.manager.rotate_secret(NAME, "two"))
    client = h.manager.client()  # type: ignore[attr-defined]
    stages = {v["VersionId"]: v["VersionStages"]
              for v in client.list_secret_version_ids(SecretId=NAME)["Versions"]}
    assert stages == {old.version: ["AWSPREVIOUS"], new.version: ["AWSCURRENT"]}
    h.manager.close()


def test_aws_endpoint_from_the_environment(moto: MotoServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    moto.reset()
    _aws_env(moto, monkeypatch)
    manager = connect("aws-sm://us-east-1")  # builds its own client, endpoint from the env
    run(manager.create_secret("llm/openai", "env"))
    assert run(manager.get_secret("llm/openai")) == "env"
    assert manager.client().meta.endpoint_url == moto.url  # type: ignore[attr-defined]
    manager.close()


def test_aws_unreachable_endpoint_is_a_secret_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    manager = connect("aws-sm://us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}")
    manager.client().meta.config.retries = {"max_attempts": 0}  # type: ignore[attr-defined]
    with pytest.raises(SecretError, match="cannot reach AWS Secrets Manager"):
        run(manager.get_secret(NAME))


# --- GCP ---------------------------------------------------------------------------------------


def test_gcp_wire_format(gcp_peer: GcpSecretManagerPeer) -> None:
    h = _gcp(gcp_peer)
    run(h.manager.create_secret(NAME, "wire", labels={"team": "finops"}))
    for _ in range(4):
        run(h.manager.rotate_secret(NAME, "again"))
    calls = [(method, path) for method, path, _ in gcp_peer.requests]
    base = "/v1/projects/costflow-test/secrets"
    assert calls[:2] == [("POST", base), ("POST", f"{base}/cloud-creds__acme_eu__aws:addVersion")]
    create_body = json.loads(gcp_peer.requests[0][2])
    assert create_body == {"replication": {"automatic": {}}, "labels": {"team": "finops"}}
    add_body = json.loads(gcp_peer.requests[1][2])
    assert base64.b64decode(add_body["payload"]["data"]) == b"wire"
    assert int(add_body["payload"]["dataCrc32c"]) > 0  # the checksum travels with the data
    gcp_peer.requests.clear()
    versions = run(h.manager.list_versions(NAME))
    assert [v.version for v in versions] == ["5", "4", "3", "2", "1"]
    assert len(gcp_peer.requests) == 3  # 2 per page: the pager followed nextPageToken
    h.manager.close()


def test_gcp_completes_a_create_that_failed_halfway(gcp_peer: GcpSecretManagerPeer) -> None:
    h = _gcp(gcp_peer)
    gcp_peer.secrets["llm__openai"] = {"labels": {}, "createTime": "2026-01-01T00:00:00Z",
                                       "replication": {"automatic": {}}, "versions": []}
    created = run(h.manager.create_secret("llm/openai", "finally"))
    assert created.version == "1"
    assert run(h.manager.get_secret("llm/openai")) == "finally"


def test_gcp_corrupted_payload_is_refused(gcp_peer: GcpSecretManagerPeer) -> None:
    h = _gcp(gcp_peer)
    run(h.manager.create_secret(NAME, "v"))
    gcp_peer.corrupt_crc = True
    with pytest.raises(SecretError, match="CRC32C"):
        run(h.manager.get_secret(NAME))


def test_gcp_endpoint_from_the_environment(gcp_peer: GcpSecretManagerPeer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials

    gcp_peer.reset()
    monkeypatch.setenv("COSTFLOW_SECRETS_GCP_ENDPOINT", gcp_peer.url)
    manager = connect("gcp-sm://costflow-test", credentials=AnonymousCredentials())
    run(manager.create_secret("llm/openai", "env"))
    assert run(manager.get_secret("llm/openai")) == "env"


def test_gcp_unreachable_endpoint_is_a_secret_error() -> None:
    from google.auth.credentials import AnonymousCredentials

    manager = connect("gcp-sm://costflow-test", credentials=AnonymousCredentials(),
                      api_endpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SecretError, match="cannot reach GCP Secret Manager"):
        run(manager.get_secret(NAME))


# --- Azure -------------------------------------------------------------------------------------


def test_azure_answers_the_challenge_before_sending_a_value() -> None:
    h, vault, credential = _azure()
    run(h.manager.create_secret(NAME, "challenge", labels={"team": "finops"}))
    method, url, authorized = vault.requests[0]
    assert not authorized  # the first request got the 401 challenge...
    assert vault.unauthenticated_bodies == []  # ...and carried no body (no value)
    assert credential.asked and all(
        scopes == (AZURE_SCOPE,) and tenant == AZURE_TENANT for scopes, tenant in credential.asked)
    puts = [u for m, u, a in vault.requests if m == "PUT" and a]
    assert len(puts) == 1 and "/secrets/cloud-creds---acme--eu---aws?api-version=" in puts[0]
    assert vault.api_versions  # the SDK's api-version travels on every call


def test_azure_lists_across_pages() -> None:
    h, vault, _ = _azure()
    made = [run(h.manager.create_secret(NAME, "v0"))]
    made += [run(h.manager.rotate_secret(NAME, f"v{i}")) for i in range(1, 5)]
    listed = run(h.manager.list_versions(NAME))
    assert [v.version for v in listed] == [v.version for v in reversed(made)]
    assert sum("$skiptoken" in u for _, u, _ in vault.requests) == 2


def test_azure_soft_deleted_name_says_recover_or_purge() -> None:
    h, vault, _ = _azure()
    vault.deleted.add(sn.to_azure(NAME))
    with pytest.raises(SecretError, match="recovered or purged"):
        run(h.manager.create_secret(NAME, "v"))


def test_azure_rotate_of_a_missing_secret_creates_nothing() -> None:
    h, vault, _ = _azure()
    with pytest.raises(SecretNotFound):
        run(h.manager.rotate_secret(NAME, "v"))
    assert vault.secrets == {}
