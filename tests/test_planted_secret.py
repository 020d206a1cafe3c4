"""The planted-secret test: a source's credentials never reach any output.

Credentials moto issued at random (a role session: access key id, secret access key, session
token; and a user's key that is then revoked) are planted in the local secret store as the
credentials of an S3 source on moto's authenticating server (tests/aws_auth_peer.py). One
ingest succeeds, one fails with 403, with every logger at DEBUG (botocore logs request headers,
where the session token travels, and response bodies). Then every output is searched for each
value and its base64, URL-encoded and JSON-escaped spellings: stdout and stderr, every log
record (message, arguments, extras, formatted exception), the run report JSON and HTML quality
report files, the staging directory, every column of every table of the DuckDB warehouse (the
ledger and dead_letters included) and the raised exception with its traceback.

`test_the_search_finds_a_planted_leak` shows the search fails when a value does leak.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import duckdb
import pytest
from cryptography.fernet import Fernet

from costflow import cli
from costflow.errors import CostflowError
from costflow.providers.aws import s3 as s3_sources
from costflow.secrets import connect
from costflow.secrets.local import KEY_ENV
from costflow.sources import credentials as creds
from tests.aws_auth_peer import AuthMotoServer, Keys
from tests.aws_bucket import BUCKET, build_layout, upload

SOURCE = f"s3://{BUCKET}/exports/focus/"
GOOD, REVOKED = "cloud-creds/acme/aws", "cloud-creds/acme-old/aws"
DEBUG_LOGGERS = ("", "botocore", "boto3", "urllib3", "s3transfer", "costflow",
                 "costflow.ingest", "apache_beam")


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMotoServer]:
    server = AuthMotoServer().start()
    layout = build_layout(tmp_path_factory.mktemp("bucket"))
    upload(layout.root, server.client("s3"))
    yield server
    server.stop()


class Capture(logging.Handler):
    """Keeps every record; its level cannot be raised (the CLI lowers root handlers to WARNING)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def setLevel(self, level: Any) -> None:  # noqa: N802 - logging's name
        return None

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        self.texts.append(formatter.format(record))  # with the exception, if any
        self.texts.append(repr(vars(record)))        # arguments and structured extras


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    capture = Capture()
    loggers = [logging.getLogger(name) for name in DEBUG_LOGGERS]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(capture)
    logging.getLogger("costflow").addHandler(capture)  # the CLI stops it propagating
    try:
        yield capture
    finally:
        logging.getLogger().removeHandler(capture)
        logging.getLogger("costflow").removeHandler(capture)
        for lg, level, propagate in saved:
            lg.setLevel(level)
            lg.propagate = propagate


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: AuthMotoServer) -> str:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    store = f"local:///{tmp_path}/secret-store"
    monkeypatch.setenv("COSTFLOW_SECRETS", store)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(s3_sources.ENDPOINT_ENV, aws.url)
    creds.clear_cache()
    s3_sources.reset_client()
    monkeypatch.setattr(logging.getLogger("costflow"), "handlers", [])  # see debug_logs
    yield store
    creds.clear_cache()
    s3_sources.reset_client()


def spellings(value: str) -> dict[str, str]:
    raw = value.encode()
    return {"plain": value, "base64": base64.b64encode(raw).decode(),
            "base64url": base64.urlsafe_b64encode(raw).decode(),
            "base64-unpadded": base64.b64encode(raw).decode().rstrip("="),
            "url": quote(value, safe=""), "url+": quote_plus(value),
            "json": json.dumps(value)[1:-1]}


def warehouse_text(path: Path) -> list[str]:
    """Every value of every column of every table (and view) of the DuckDB file, as text."""
    out = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_catalog = current_database()").fetchall()
        assert any(name == "load_runs" for _, name in tables)
        assert any(name == "dead_letters" for _, name in tables)
        for schema, name in tables:
            rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
            out += [f"{schema}.{name}: {row!r}" for row in rows]
    finally:
        con.close()
    return out


def files_text(root: Path, skip: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the secret store (which holds the values, encrypted)."""
    return {str(p): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and skip not in p.parents and not p.name.startswith("no-")}


def leaks(values: list[str], outputs: dict[str, str | bytes]) -> list[str]:
    found = []
    for value in values:
        for form_name, form in spellings(value).items():
            for where, text in outputs.items():
                data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
                if form.encode() in data:
                    found.append(f"{form_name} form of a planted value in {where}")
    return found


def collect(tmp_path: Path, store: str, out: str, err: str, logs: Capture,
            exceptions: list[str]) -> dict[str, str | bytes]:
    outputs: dict[str, str | bytes] = {"stdout": out, "stderr": err,
                                       "log records": "\n".join(logs.texts)}
    outputs.update({f"exception {i}": text for i, text in enumerate(exceptions)})
    outputs.update(files_text(tmp_path, Path(store.removeprefix("local:///"))))
    for db in tmp_path.glob("*.duckdb"):
        outputs[f"warehouse {db.name}"] = "\n".join(warehouse_text(db))
    return outputs


def run_ingests(aws: AuthMotoServer, ingest: Any, store: str, logs: Capture,
                capsys: pytest.CaptureFixture[str]) -> tuple[list[str], str, str, list[str]]:
    session = aws.role_session()                     # key id, secret key and session token
    old = aws.reader()
    manager = connect(store)
    asyncio.run(manager.create_secret(GOOD, session.secret_json()))
    asyncio.run(manager.create_secret(REVOKED, old.secret_json()))
    aws.revoke(old)
    planted = session.values() + old.values()
    assert len(planted) == 5 and len(set(planted)) == 5
    # The test's own setup (IAM and STS answers, at DEBUG) held the values; costflow starts here.
    logs.records.clear()
    logs.texts.clear()
    capsys.readouterr()

    ok = cli.main(["ingest", *ingest.argv(SOURCE, provider="aws"), "--json",
                   "--credentials", f"secret://{GOOD}"])
    out, err = capsys.readouterr()
    assert ok == 0, err
    assert json.loads(out)["status"] == "succeeded"
    assert ingest.rows("SELECT COUNT(*) AS n FROM cost_analytics.cost_line_items") == [
        {"n": 230}]

    failed = cli.main(["ingest", *ingest.argv(SOURCE, provider="aws", db="w2"),
                       "--credentials", f"secret://{REVOKED}"])
    out2, err2 = capsys.readouterr()
    assert failed != 0 and "S3 refused the credentials secret://" in err2
    exceptions = []
    from costflow.pipelines.ingest import run

    with pytest.raises(CostflowError) as caught:
        run(ingest.argv(SOURCE, provider="aws", db="w3") + [f"--credentials=secret://{REVOKED}"])
    exceptions += [str(caught.value), repr(caught.value),
                   "".join(traceback.format_exception(caught.value))]
    # The message a missing secret gives, too.
    with pytest.raises(CostflowError) as missing:
        run(ingest.argv(SOURCE, provider="aws", db="w4")
            + ["--credentials=secret://cloud-creds/acme-none/aws"])
    exceptions.append("".join(traceback.format_exception(missing.value)))
    return planted, out + out2, err + err2, exceptions


def test_no_planted_value_reaches_any_output(aws: AuthMotoServer, env: str, ingest,
                                             tmp_path: Path, debug_logs: Capture,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    planted, out, err, exceptions = run_ingests(aws, ingest, env, debug_logs, capsys)
    outputs = collect(tmp_path, env, out, err, debug_logs, exceptions)
    # The search covered what it claims to: botocore's debug log, reports, staging, ledger.
    names = {r.name for r in debug_logs.records}
    assert {"botocore.endpoint", "botocore.parsers"} <= names
    assert any("x-amz-security-token" in t.lower() for t in debug_logs.texts)  # withheld, seen
    assert any(k.endswith(".json") and "/runs/" in k for k in outputs)
    assert any(k.endswith(".html") for k in outputs)
    assert {"warehouse w.duckdb", "warehouse w2.duckdb"} <= set(outputs)
    assert "failed" in str(outputs["warehouse w2.duckdb"])
    assert leaks(planted, outputs) == []


def test_the_search_finds_a_planted_leak(env: str, tmp_path: Path, debug_logs: Capture,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The same collection and search find a value printed, logged, written or raised."""
    planted = [Keys("AKIA" + "Q" * 16, "s3cr3t/" + Fernet.generate_key().decode()[:33],
                    "FwoGZXIvYXdzE" + "t0k3n+" * 10).values()[i] for i in (0, 1, 2)]
    print(planted[1])                                             # the secret access key
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "leak.html").write_text(base64.b64encode(planted[2].encode()).decode())
    logging.getLogger("botocore.endpoint").debug("headers: %s", {"X-Amz-Security-Token":
                                                                  planted[2].encode()})
    exceptions = [f"ValueError: token={quote(planted[0], safe='')}"]
    out, err = capsys.readouterr()
    found = leaks(planted, collect(tmp_path, env, out, err, debug_logs, exceptions))
    assert "plain form of a planted value in stdout" in found
    assert any(f.startswith("base64 form") and f.endswith("leak.html") for f in found)
    assert "plain form of a planted value in log records" in found
    assert "url form of a planted value in exception 0" in found
