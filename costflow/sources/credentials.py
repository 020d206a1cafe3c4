"""Source credentials by reference: ``secret://NAME`` travels, the value stays in memory.

Why this module exists: a team's sources each read with their own credentials (one AWS payer,
one GCP billing project, one Azure subscription...). Putting those values on a command line,
in pipeline options or in a planned `SourceFile` would write them into process lists, Dataflow
job graphs, the run ledger and logs. So a source names its credentials by *reference*::

    costflow ingest --source s3://acme-cur/cur/ --credentials secret://cloud-creds/acme/aws

`CredentialsRef` (the secret's name and the store URL, never the value) travels in argv, the
pipeline options, `PlanRequest` and every `SourceFile`. The process that builds an SDK client
resolves it: the launching process while planning, each Dataflow worker while reading (the
reference is in the element; the worker reads the secret with *its own* identity, so the
worker service account needs read access to the secret, e.g. ``roles/secretmanager.
secretAccessor`` on ``gcp-sm://``; a ``local:///`` store only exists on the launching machine).

Resolution: `costflow.secrets.connect(store)` (store = ``--secrets``, else ``$COSTFLOW_SECRETS``,
else the local default), ``get_secret(name)``, cached in memory per (store, name) for the life
of the process. The value is JSON, one shape per provider:

==========  ==========================================================================
aws         ``{"aws_access_key_id", "aws_secret_access_key"[, "aws_session_token"]
            [, "region"]}`` -> `aws_session` (a ``boto3.session.Session``)
gcp         a service-account key file (``{"type": "service_account", "client_email",
            "private_key", "token_uri", ...}``) -> `gcp_credentials`
            (``google.oauth2.service_account.Credentials``)
azure       ``{"tenant_id", "client_id", "client_secret"}`` -> `azure_credential`
            (``azure.identity.ClientSecretCredential``), or ``{"connection_string"}`` for
            Blob Storage (`azure_blob_service`); ``account_url`` optional beside the first
==========  ==========================================================================

Every value of a resolved secret is registered with a log-record factory (`_scrub_records`)
that blots it (and its JSON, base64 and URL-encoded spellings) out of every log record made
in the process afterwards: at DEBUG, botocore logs request headers (a session token) and
response bodies (an access key id). Errors name the reference and the missing field, never a
value.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from costflow.errors import ConfigError, CostflowError
from costflow.secrets import SecretError, SecretNotFound, connect, resolve_url
from costflow.secrets.names import validate_name

PREFIX = "secret://"
# The fields of each payload: required, optional, and which of them are secret (scrubbed).
AWS_REQUIRED = ("aws_access_key_id", "aws_secret_access_key")
AWS_OPTIONAL = ("aws_session_token", "region")
GCP_REQUIRED = ("client_email", "private_key", "token_uri")
AZURE_REQUIRED = ("tenant_id", "client_id", "client_secret")
SECRET_FIELDS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                           "private_key", "private_key_id", "client_secret",
                           "connection_string"})
EXAMPLES = {
    "aws": '{"aws_access_key_id": ..., "aws_secret_access_key": ...} (optional '
           '"aws_session_token", "region")',
    "gcp": "a service-account key file as downloaded from IAM (type service_account, "
           "client_email, private_key, token_uri)",
    "azure": '{"tenant_id": ..., "client_id": ..., "client_secret": ...} or, for Blob '
             'Storage, {"connection_string": ...}',
}
GCP_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class CredentialsError(ConfigError):
    """The credentials a source names cannot be read or used (one paragraph, no value)."""

    exit_code = 3


@dataclass(frozen=True)
class CredentialsRef:
    """Which secret holds a source's credentials, and in which store. Never the value.

    Attributes:
        name: a `costflow.secrets` name, e.g. ``cloud-creds/acme/aws``.
        store: the secret store URL (`costflow.secrets.connect`), resolved when the reference
            is made so that workers read the same store as the launcher.
    """

    name: str
    store: str

    @property
    def uri(self) -> str:
        return PREFIX + self.name

    def __str__(self) -> str:
        return self.uri


def parse_ref(reference: str | None, store: str | None = None) -> CredentialsRef | None:
    """``secret://NAME`` (and the store: ``store``, else $COSTFLOW_SECRETS, else the default)
    -> a `CredentialsRef`; None for None or ``""``.

    Raises:
        ConfigError: not ``secret://`` followed by a valid secret name. The text is not
            repeated: a value pasted where the reference belongs must not reach the terminal.
    """
    if reference is None or reference == "":
        return None
    if not isinstance(reference, str) or not reference.startswith(PREFIX):
        raise ConfigError(f"--credentials takes a reference to a secret, secret://NAME (e.g. "
                          f"{PREFIX}cloud-creds/acme/aws), never the credentials themselves; "
                          f"the value given ({len(str(reference))} characters) does not start "
                          f"with {PREFIX}. Store the credentials with `costflow secrets set "
                          "NAME --from-file FILE`.")
    try:
        name = validate_name(reference[len(PREFIX):])
    except ConfigError as exc:
        raise ConfigError(f"--credentials {PREFIX}...: {exc}") from None
    return CredentialsRef(name, resolve_url(store))


# --- resolution (cached per process) ----------------------------------------------------------

_values: dict[tuple[str, str], dict[str, Any]] = {}
_built: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every resolved secret and built credential (tests; after a rotation)."""
    with _lock:
        _values.clear()
        _built.clear()


def payload(ref: CredentialsRef, source: str | None = None) -> dict[str, Any]:
    """The secret's JSON object, read once per process per (store, name)."""
    key = (ref.store, ref.name)
    with _lock:
        found = _values.get(key)
    if found is not None:
        return found
    text = _read(ref, source)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        _register([text])
        raise CredentialsError(f"{_for(source)}credentials {ref.uri}: the secret does not hold "
                               "a JSON object. Store one of: " + "; ".join(
                                   f"{p}: {e}" for p, e in EXAMPLES.items()) + ".")
    _register([text, *(str(v) for k, v in parsed.items() if k in SECRET_FIELDS and v)])
    with _lock:
        _values[key] = parsed
    return parsed


def _read(ref: CredentialsRef, source: str | None) -> str:
    manager = connect(ref.store)
    try:
        return _run(manager.get_secret(ref.name))
    except SecretNotFound:
        raise CredentialsError(
            f"{_for(source)}credentials {ref.uri}: there is no secret {ref.name!r} in the "
            f"secret store {ref.store}. Store it with `costflow secrets set {ref.name} "
            "--from-file FILE` (a JSON file; `--from-file -` reads stdin), or point --secrets "
            "/ COSTFLOW_SECRETS at the store that holds it.") from None
    except SecretError as exc:
        raise CredentialsError(f"{_for(source)}credentials {ref.uri} could not be read: "
                               f"{exc}") from None
    except CostflowError as exc:  # no key for the local store, a bad store URL
        raise CredentialsError(f"{_for(source)}credentials {ref.uri}: {exc}") from None
    finally:
        manager.close()


def _run(awaitable: Any) -> Any:
    """Await in this thread, or in a helper thread when this one already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(awaitable)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, awaitable).result()


def _for(source: str | None) -> str:
    return f"{source}: " if source else ""


def _fields(ref: CredentialsRef, provider: str, data: dict[str, Any],
            required: tuple[str, ...], source: str | None) -> None:
    missing = [f for f in required if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        raise CredentialsError(
            f"{_for(source)}credentials {ref.uri}: the secret lacks {', '.join(missing)} (a "
            f"non-empty string each) for {provider}. A {provider} secret is "
            f"{EXAMPLES[provider]}; update it with `costflow secrets rotate {ref.name} "
            "--from-file FILE`.")


REQUIRED = {"aws": AWS_REQUIRED, "gcp": GCP_REQUIRED, "azure": AZURE_REQUIRED}


def check_value(name: str, value: str) -> None:
    """Refuse, before it is stored, a ``cloud-creds/{tenant}/{aws|gcp|azure}`` value the
    sources could not use (not a JSON object, or a required field missing). Other names (API
    keys, other providers) are stored as given.

    Raises:
        ConfigError: naming the secret and the missing field, never the value.
    """
    kind, _, rest = name.partition("/")
    provider = rest.rpartition("/")[2]
    if kind != "cloud-creds" or provider not in REQUIRED:
        return
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"secret {name!r}: a {provider} credentials secret is a JSON object, "
                          f"{EXAMPLES[provider]}; the file given is not a JSON object.")
    if provider == "azure" and isinstance(data.get("connection_string"), str) and \
            data["connection_string"]:
        return
    missing = [f for f in REQUIRED[provider]
               if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        raise ConfigError(f"secret {name!r}: the file lacks {', '.join(missing)} (a non-empty "
                          f"string each). A {provider} credentials secret is "
                          f"{EXAMPLES[provider]}.")


def _cached(ref: CredentialsRef, kind: str, build: Callable[[], Any]) -> Any:
    key = (ref.store, ref.name, kind)
    with _lock:
        if key in _built:
            return _built[key]
    made = build()
    with _lock:
        return _built.setdefault(key, made)


# --- per provider -----------------------------------------------------------------------------


def aws_session(ref: CredentialsRef, source: str | None = None) -> Any:
    """A new ``boto3.session.Session`` holding the secret's keys (and region, if given).

    A new session per call: boto3 sessions are not thread-safe, and callers cache clients.
    """
    import boto3

    data = payload(ref, source)
    _fields(ref, "aws", data, AWS_REQUIRED, source)
    return boto3.session.Session(
        aws_access_key_id=data["aws_access_key_id"],
        aws_secret_access_key=data["aws_secret_access_key"],
        aws_session_token=data.get("aws_session_token") or None,
        region_name=data.get("region") or None)


def gcp_credentials(ref: CredentialsRef, source: str | None = None) -> Any:
    """``google.oauth2.service_account.Credentials`` from a service-account key (cached)."""
    data = payload(ref, source)
    _fields(ref, "gcp", data, GCP_REQUIRED, source)
    if data.get("type", "service_account") != "service_account":
        raise CredentialsError(f"{_for(source)}credentials {ref.uri}: the secret's type is "
                               f"{str(data.get('type'))[:40]!r}, not 'service_account': store "
                               "a service-account key file.")

    def build() -> Any:
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_info(
                data, scopes=GCP_SCOPES)
        except (ValueError, TypeError, IndexError):
            raise CredentialsError(
                f"{_for(source)}credentials {ref.uri}: the service-account key's private_key "
                "is not a PEM private key: store the key file exactly as IAM gave it."
            ) from None

    return _cached(ref, "gcp", build)


def gcp_project(ref: CredentialsRef, source: str | None = None) -> str | None:
    """The project of a service-account key (``project_id``), for clients that need one."""
    value = payload(ref, source).get("project_id")
    return value if isinstance(value, str) and value else None


def azure_credential(ref: CredentialsRef, source: str | None = None) -> Any:
    """``azure.identity.ClientSecretCredential`` for a service principal (cached: it caches
    its tokens)."""
    data = payload(ref, source)
    _fields(ref, "azure", data, AZURE_REQUIRED, source)

    def build() -> Any:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(data["tenant_id"], data["client_id"],
                                      data["client_secret"])

    return _cached(ref, "azure", build)


def azure_blob_service(ref: CredentialsRef, account_url: str | None,
                       source: str | None = None) -> Any:
    """A ``BlobServiceClient``: from the secret's ``connection_string``, else a service
    principal on ``account_url`` (the secret's ``account_url``, else the argument)."""
    from azure.storage.blob import BlobServiceClient

    data = payload(ref, source)
    connection = data.get("connection_string")
    if isinstance(connection, str) and connection:
        try:
            return BlobServiceClient.from_connection_string(connection)
        except ValueError:
            raise CredentialsError(f"{_for(source)}credentials {ref.uri}: the secret's "
                                   "connection_string is not an Azure Storage connection "
                                   "string.") from None
    url = data.get("account_url") or account_url
    if not url:
        raise CredentialsError(
            f"{_for(source)}credentials {ref.uri}: a service principal needs the storage "
            "account: add account_url (https://ACCOUNT.blob.core.windows.net) to the secret or "
            "set AZURE_STORAGE_ACCOUNT_URL / AZURE_STORAGE_ACCOUNT; or store "
            '{"connection_string": ...} instead.')
    return BlobServiceClient(account_url=url, credential=azure_credential(ref, source))


# --- keeping values out of logs and messages --------------------------------------------------

_secret_forms: tuple[str, ...] = ()
_factory_installed = False


def spellings(value: str) -> set[str]:
    """A value and the encodings it is most likely to appear in (JSON, base64, URL)."""
    raw = value.encode("utf-8")
    forms = {value, json.dumps(value)[1:-1], base64.b64encode(raw).decode(),
             base64.urlsafe_b64encode(raw).decode(), quote(value, safe=""), quote_plus(value)}
    return {f for f in forms if len(f) >= 8}


def _register(values: list[str]) -> None:
    global _secret_forms, _factory_installed
    forms = set(_secret_forms)
    for value in values:
        forms |= spellings(value)
        # PEM keys reach logs line by line too; each base64 line of the body is a secret.
        forms |= {line for line in value.splitlines() if len(line) >= 32}
    with _lock:
        _secret_forms = tuple(sorted(forms, key=len, reverse=True))
        if not _factory_installed:
            previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_scrub_records(previous))
            _factory_installed = True


def scrub(text: str) -> str:
    """``text`` with every registered secret value (in each spelling) replaced by ``***``."""
    for form in _secret_forms:
        if form in text:
            text = text.replace(form, "***")
    return text


def _scrub_records(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _secret_forms:
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging reports it later
            return record
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    return factory
