"""Source credentials by reference (costflow.sources.credentials) and `costflow secrets`.

The S3 and Cost Explorer peers are moto's server with authentication on
(tests/aws_auth_peer.py): it accepts only requests signed with a key IAM issued and still holds,
so a load that succeeds proves the client was built from the secret, and deleting the key in IAM
revokes it the way AWS does (403 InvalidAccessKeyId). The secret store is the local encrypted
store under tmp_path. The process environment holds no AWS credentials at all.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from costflow import cli
from costflow.commands import secrets as secrets_command
from costflow.errors import ConfigError
from costflow.providers import CATALOG
from costflow.providers.aws import cost_explorer_api as aws_ce
from costflow.providers.aws import s3 as s3_sources
from costflow.secrets import connect
from costflow.secrets.local import KEY_ENV
from costflow.sources import credentials as creds
from costflow.sources.credentials import CredentialsError, CredentialsRef, parse_ref
from tests.aws_auth_peer import AuthMotoServer, Keys
from tests.aws_bucket import BUCKET, FOCUS_PAYER, build_layout, upload

NAME = "cloud-creds/acme/aws"
REF = f"secret://{NAME}"
FOCUS = f"s3://{BUCKET}/exports/focus/"
COUNT = "SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items"
RUNS = "SELECT status FROM cost_analytics.load_runs ORDER BY started_at"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthMotoServer, Any]]:
    """moto with authentication, holding the billing bucket (uploaded by the admin)."""
    server = AuthMotoServer().start()
    layout = build_layout(tmp_path_factory.mktemp("bucket"))
    upload(layout.root, server.client("s3"))
    yield server, layout
    server.stop()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local secret store (its URL in $COSTFLOW_SECRETS), no AWS credentials anywhere."""
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    url = f"local:///{tmp_path}/secrets"
    monkeypatch.setenv("COSTFLOW_SECRETS", url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    creds.clear_cache()
    s3_sources.reset_client()
    # cli.main gives the costflow logger a handler on the sys.stderr of its first call; drop
    # it, so that a later test's (closed) capture is never written to.
    monkeypatch.setattr(logging.getLogger("costflow"), "handlers", [])
    yield url
    creds.clear_cache()
    s3_sources.reset_client()


@pytest.fixture
def s3_peer(aws: tuple[AuthMotoServer, Any], monkeypatch: pytest.MonkeyPatch) -> AuthMotoServer:
    server, _ = aws
    monkeypatch.setenv(s3_sources.ENDPOINT_ENV, server.url)
    monkeypatch.setenv(aws_ce.ENDPOINT_ENV, server.url)
    return server


def put_secret(store: str, name: str, value: str) -> None:
    import asyncio

    asyncio.run(connect(store).create_secret(name, value))


def run_cli(ingest: Any, capsys: pytest.CaptureFixture[str], *extra: str,
            source: str = FOCUS) -> tuple[int, str, str]:
    code = cli.main(["ingest", *ingest.argv(source, provider="aws"), *extra])
    out, err = capsys.readouterr()
    return code, out, err


# --- the reference ----------------------------------------------------------------------------


def test_a_reference_names_the_secret_and_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTFLOW_SECRETS", "aws-sm://eu-west-1")
    assert parse_ref(REF) == CredentialsRef(NAME, "aws-sm://eu-west-1")
    assert parse_ref(REF, "gcp-sm://billing") == CredentialsRef(NAME, "gcp-sm://billing")
    assert parse_ref(REF).uri == REF and str(parse_ref(REF)) == REF
    assert parse_ref(None) is None and parse_ref("") is None


@pytest.mark.parametrize("given", [
    "AKIAIOSFODNN7EXAMPLE",                               # a value where the reference belongs
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "secret://../../etc/passwd", "secret://cloud-creds/Acme/aws", "secret://cloud-creds/zeta",
    "secrets://cloud-creds/acme/aws", "secret:///cloud-creds/acme/aws",
])
def test_anything_else_is_refused_without_repeating_it(given: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ref(given)
    message = str(caught.value)
    assert given not in message and given.removeprefix("secret://") not in message
    assert "secret://" in message


def test_planned_files_carry_the_reference_never_the_value(tmp_path: Path, store: str,
                                                           cur_sample: Path) -> None:
    value = json.dumps({"aws_access_key_id": "AKIAPLANNEDONLY12345",
                        "aws_secret_access_key": "planned-secret-" + "x" * 30})
    put_secret(store, NAME, value)
    ref = parse_ref(REF)
    plan = CATALOG.plan([str(cur_sample)], "aws", credentials=ref)
    assert plan.files and {f.credentials for f in plan.files} == {ref}
    pickled = pickle.dumps(plan.files)  # what Beam ships to workers
    assert b"planned-secret-" not in pickled and NAME.encode() in pickled
    assert CATALOG.plan([str(cur_sample)], "aws").files[0].credentials is None


# --- resolving --------------------------------------------------------------------------------


def test_the_value_is_read_once_per_process_and_store(store: str) -> None:
    first = {"aws_access_key_id": "AKIAFIRSTVALUE000001", "aws_secret_access_key": "a" * 40}
    put_secret(store, NAME, json.dumps(first))
    ref = parse_ref(REF)
    session = creds.aws_session(ref)
    assert session.get_credentials().access_key == "AKIAFIRSTVALUE000001"
    import asyncio

    asyncio.run(connect(store).rotate_secret(NAME, json.dumps(
        {**first, "aws_access_key_id": "AKIASECONDVALUE00002"})))
    assert creds.aws_session(ref).get_credentials().access_key == "AKIAFIRSTVALUE000001"
    creds.clear_cache()  # a new process (or a cleared cache) reads the rotated value
    assert creds.aws_session(ref).get_credentials().access_key == "AKIASECONDVALUE00002"


@pytest.mark.parametrize(("build", "value", "missing"), [
    (creds.aws_session, {"aws_access_key_id": "AKIAONLYTHEID0000001"}, "aws_secret_access_key"),
    (creds.aws_session, {"aws_secret_access_key": "only-the-secret-value-00"},
     "aws_access_key_id"),
    (creds.gcp_credentials, {"type": "service_account", "private_key": "pem-text-hidden-0"},
     "client_email, token_uri"),
    (creds.azure_credential, {"tenant_id": "t", "client_id": "c"}, "client_secret"),
])
def test_a_malformed_payload_names_the_secret_and_the_field(store: str, build: Any,
                                                            value: dict[str, str],
                                                            missing: str) -> None:
    put_secret(store, NAME, json.dumps(value))
    with pytest.raises(CredentialsError) as caught:
        build(parse_ref(REF), "s3://somewhere/")
    message = str(caught.value)
    assert message.startswith(f"s3://somewhere/: credentials {REF}: the secret lacks {missing}")
    assert "costflow secrets rotate cloud-creds/acme/aws --from-file" in message
    for field, secret in value.items():
        if field != "type" and len(secret) > 3:
            assert secret not in message


def test_a_payload_that_is_not_json_is_refused_without_echo(store: str) -> None:
    put_secret(store, NAME, "AKIA-not-json-at-all-0123456789")
    with pytest.raises(CredentialsError, match="does not hold a JSON object") as caught:
        creds.aws_session(parse_ref(REF))
    assert "not-json-at-all" not in str(caught.value)


def test_gcp_and_azure_payloads_become_sdk_credentials(store: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    put_secret(store, "cloud-creds/acme/gcp", json.dumps({
        "type": "service_account", "project_id": "acme-billing", "private_key_id": "k1",
        "private_key": pem, "client_email": "costflow@acme-billing.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"}))
    gcp = parse_ref("secret://cloud-creds/acme/gcp")
    made = creds.gcp_credentials(gcp)
    assert made.service_account_email == "costflow@acme-billing.iam.gserviceaccount.com"
    assert made.scopes == list(creds.GCP_SCOPES) or made.scopes == creds.GCP_SCOPES
    assert creds.gcp_credentials(gcp) is made  # cached: its token is reused
    assert creds.gcp_project(gcp) == "acme-billing"

    put_secret(store, "cloud-creds/acme/azure", json.dumps({
        "tenant_id": "00000000-0000-0000-0000-0000000000aa", "client_id": "app",
        "client_secret": "azure-client-secret-value"}))
    from azure.identity import ClientSecretCredential

    assert isinstance(creds.azure_credential(parse_ref("secret://cloud-creds/acme/azure")),
                      ClientSecretCredential)
    put_secret(store, "cloud-creds/blob/azure", json.dumps({
        "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=" + "A" * 86 + "==;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"}))
    service = creds.azure_blob_service(parse_ref("secret://cloud-creds/blob/azure"), None)
    assert service.account_name == "devstoreaccount1"


def test_a_bad_private_key_is_refused_without_echo(store: str) -> None:
    put_secret(store, "cloud-creds/acme/gcp", json.dumps({
        "type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key-xyz",
        "client_email": "a@b.iam.gserviceaccount.com", "token_uri": "https://x/token"}))
    with pytest.raises(CredentialsError, match="not a PEM private key") as caught:
        creds.gcp_credentials(parse_ref("secret://cloud-creds/acme/gcp"))
    assert "not-a-key-xyz" not in str(caught.value)


# --- ingest from S3 with the secret's keys ----------------------------------------------------


def test_s3_is_read_with_the_keys_in_the_secret(s3_peer: AuthMotoServer, store: str, ingest,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(ingest, capsys)  # no credentials anywhere: S3 refuses
    assert code != 0 and "Traceback" not in err
    keys = s3_peer.reader()
    put_secret(store, NAME, keys.secret_json())
    code, out, err = run_cli(ingest, capsys, "--credentials", REF, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "succeeded"
    assert {s["uri"].rsplit("/", 1)[0] for s in report["sources"]} == {
        f"s3://{BUCKET}/exports/focus/my-focus/data/BILLING_PERIOD=2023-11/"
        "20231121T020304Z-3333-focus"}
    rows = ingest.rows("SELECT BillingAccountId AS a, COUNT(*) AS n FROM "
                       "cost_analytics.cost_line_items GROUP BY 1")
    assert rows == [{"a": FOCUS_PAYER, "n": 230}]


def test_a_session_token_is_passed_on(s3_peer: AuthMotoServer, store: str, ingest,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    keys = s3_peer.role_session()
    assert keys.session_token
    put_secret(store, NAME, keys.secret_json())
    code, _, err = run_cli(ingest, capsys, "--credentials", REF)
    assert code == 0, err
    # Without the token moto cannot find the temporary key's session: the token was used.
    put_secret(store, "cloud-creds/acme-no-token/aws", Keys(
        keys.access_key_id, keys.secret_access_key).secret_json())
    code, _, err = run_cli(ingest, capsys, "--credentials",
                           "secret://cloud-creds/acme-no-token/aws")
    assert code != 0 and "secret://cloud-creds/acme-no-token/aws" in err


def _one_paragraph(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("costflow: error:")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err  # nothing after it: one paragraph, one line
    assert "Traceback" not in err
    return errors[0]


def test_a_missing_secret_is_one_paragraph_and_nothing_is_committed(
        s3_peer: AuthMotoServer, store: str, ingest, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(ingest, capsys, "--credentials", REF)
    assert code == 3
    message = _one_paragraph(err)
    assert f"{FOCUS}: credentials {REF}: there is no secret 'cloud-creds/acme/aws'" in message
    assert f"costflow secrets set {NAME} --from-file FILE" in message
    assert ingest.rows(COUNT) == [{"n": 0}]
    assert ingest.rows(RUNS) == [{"status": "failed"}]


def test_a_revoked_key_fails_naming_source_and_secret_and_keeps_the_last_load(
        s3_peer: AuthMotoServer, store: str, ingest, capsys: pytest.CaptureFixture[str]) -> None:
    keys = s3_peer.reader()
    put_secret(store, NAME, keys.secret_json())
    assert run_cli(ingest, capsys, "--credentials", REF)[0] == 0
    loaded = ingest.rows(COUNT)
    s3_peer.revoke(keys)  # AWS now answers 403 InvalidAccessKeyId
    creds.clear_cache()
    s3_sources.reset_client()
    code, _, err = run_cli(ingest, capsys, "--credentials", REF)
    assert code != 0
    message = _one_paragraph(err)
    assert message.startswith(f"costflow: error: {FOCUS}: S3 refused the credentials {REF} "
                              "(InvalidAccessKeyId:")
    assert f"costflow secrets rotate {NAME} --from-file FILE" in message
    assert keys.access_key_id not in err and keys.secret_access_key not in err
    assert ingest.rows(COUNT) == loaded
    assert ingest.rows(RUNS) == [{"status": "succeeded"}, {"status": "failed"}]


def test_a_wrong_secret_key_is_a_refused_signature(s3_peer: AuthMotoServer, store: str,
                                                   ingest,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    keys = s3_peer.reader()
    put_secret(store, NAME, Keys(keys.access_key_id, "0" * 40).secret_json())
    code, _, err = run_cli(ingest, capsys, "--credentials", REF)
    assert code != 0
    assert f"S3 refused the credentials {REF} (SignatureDoesNotMatch" in _one_paragraph(err)
    assert ingest.rows(COUNT) == [{"n": 0}]


def test_cost_explorer_with_revoked_keys_names_the_secret(
        s3_peer: AuthMotoServer, store: str, ingest, capsys: pytest.CaptureFixture[str]) -> None:
    keys = s3_peer.reader()
    s3_peer.revoke(keys)
    put_secret(store, NAME, keys.secret_json())
    source = "aws-ce://123456789012?start=2026-01-01&end=2026-02-01"
    code, _, err = run_cli(ingest, capsys, "--credentials", REF, source=source)
    assert code != 0
    message = _one_paragraph(err)
    assert f"{source}: Cost Explorer refused the query with the credentials {REF}" in message
    # moto answers 403 with an XML body a JSON client cannot parse: the status is what is said
    assert message.endswith("secret://cloud-creds/acme/aws: HTTP 403. Expected credentials "
                            "allowed ce:GetCostAndUsage for the period: if the keys were revoked "
                            "or rotated, store the current ones with `costflow secrets rotate "
                            "cloud-creds/acme/aws --from-file FILE`.")
    assert ingest.rows(COUNT) == [{"n": 0}]


def test_ingest_argv_passes_the_reference_and_the_store() -> None:
    args = cli._parser().parse_args(["ingest", "--source", "s3://b/p/", "--credentials", REF,
                                     "--secrets", "aws-sm://us-east-1"])
    argv = cli.ingest_argv(args, [])
    assert f"--credentials={REF}" in argv and "--secrets=aws-sm://us-east-1" in argv


# --- costflow secrets -------------------------------------------------------------------------


def secrets_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="costflow")
    sub = parser.add_subparsers(dest="command", required=True)
    secrets_command.add_parser(sub)
    return secrets_command.run(parser.parse_args(list(argv)))


def test_secrets_set_rotate_list_disable(tmp_path: Path, store: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    first = Keys("AKIACOMMANDFIRST0001", "command-secret-first-" + "1" * 19).secret_json()
    second = Keys("AKIACOMMANDSECOND002", "command-secret-second-" + "2" * 18).secret_json()
    path = tmp_path / "key.json"
    path.write_text(first + "\n")
    assert secrets_cli("secrets", "set", NAME, "--from-file", str(path)) == 0
    assert capsys.readouterr().out.startswith(f"{NAME} version 1: enabled, created ")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(second.encode())))
    assert secrets_cli("secrets", "set", NAME, "--from-file", "-") == 0  # exists: rotates
    assert "version 2: enabled" in capsys.readouterr().out
    assert creds.payload(parse_ref(REF))["aws_access_key_id"] == "AKIACOMMANDSECOND002"
    assert secrets_cli("secrets", "list-versions", NAME) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == [f"{NAME} version 2", f"{NAME} version 1"]
    assert secrets_cli("secrets", "disable", NAME, "1") == 0
    assert "version 1: disabled" in capsys.readouterr().out
    path.write_text(first)
    assert secrets_cli("secrets", "rotate", NAME, "--from-file", str(path)) == 0
    assert "version 3: enabled" in capsys.readouterr().out
    other = f"local:///{tmp_path}/other-store"
    assert secrets_cli("secrets", "--secrets", other, "set", NAME, "--from-file",
                       str(path)) == 0
    assert secrets_cli("secrets", "list-versions", NAME, "--secrets", other) == 0
    out = capsys.readouterr().out
    assert out.count("version 1: enabled") == 2
    assert "command-secret" not in out and "AKIACOMMAND" not in out


def test_secrets_set_refuses_credentials_the_sources_could_not_use(
        tmp_path: Path, store: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"aws_access_key_id": "AKIAHALFACREDENTIAL1"}))
    with pytest.raises(ConfigError, match="lacks aws_secret_access_key") as caught:
        secrets_cli("secrets", "set", NAME, "--from-file", str(path))
    assert "AKIAHALF" not in str(caught.value)
    path.write_text("just-a-token-not-json")
    with pytest.raises(ConfigError, match="not a JSON object") as caught:
        secrets_cli("secrets", "set", "cloud-creds/acme/gcp", "--from-file", str(path))
    assert "just-a-token" not in str(caught.value)
    assert secrets_cli("secrets", "set", "api-keys/acme/slack", "--from-file", str(path)) == 0
    with pytest.raises(ConfigError, match="cannot read --from-file"):
        secrets_cli("secrets", "set", NAME, "--from-file", str(tmp_path / "missing.json"))
    with pytest.raises(SystemExit):  # a value on the command line has no flag to go to
        secrets_cli("secrets", "set", NAME, "--value", "x")


def test_secrets_through_the_cli(tmp_path: Path, store: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["secrets", "list-versions", NAME]) == 3
    err = capsys.readouterr().err
    assert err.startswith("costflow: error: secret 'cloud-creds/acme/aws' not found in the "
                          "local secret store") and "Traceback" not in err
    path = tmp_path / "key.json"
    path.write_text(Keys("AKIATHROUGHTHECLI001", "through-the-cli-" + "3" * 24).secret_json())
    assert cli.main(["secrets", "set", NAME, "--from-file", str(path)]) == 0
    assert cli.main(["secrets", "list-versions", NAME]) == 0
    out = capsys.readouterr().out
    assert f"{NAME} version 1: enabled" in out and "through-the-cli" not in out
