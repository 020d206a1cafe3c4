"""GCP Secret Manager: ``gcp-sm://PROJECT`` (the design's primary backend, F6 §6.1).

A name's ``/`` is spelled ``__`` in the secret id (`costflow.secrets.names.to_gcp`, GCP ids
allow only ``[A-Za-z0-9_-]``); labels become the secret's labels; replication is automatic.
Version ids are GCP's version numbers; ``latest`` is GCP's alias for the newest version.

* `create_secret` is ``projects.secrets.create`` then ``:addVersion``. If a previous attempt
  created the secret but failed before adding its first version, the next attempt completes it
  instead of reporting "already exists".
* `rotate_secret` is ``:addVersion``; `disable_version` is ``versions/N:disable``.
* Payloads carry a CRC32C both ways (``payload.dataCrc32c``): GCP rejects a corrupted write,
  costflow rejects a corrupted read.

The client is the REST transport (``transport="rest"``; no gRPC channel to configure), with
Application Default Credentials unless ``credentials`` is given. ``COSTFLOW_SECRETS_GCP_ENDPOINT``
(or ``api_endpoint``) points it at another server (``http://127.0.0.1:PORT`` in the tests). Roles:
``roles/secretmanager.secretAccessor`` to read, ``roles/secretmanager.secretVersionAdder`` to
rotate, ``roles/secretmanager.admin`` to create and disable.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from costflow.errors import ConfigError
from costflow.secrets import errors, redact
from costflow.secrets.base import DESTROYED, DISABLED, ENABLED, SecretBackend, SecretVersion
from costflow.secrets.names import to_gcp

log = logging.getLogger(__name__)

ENDPOINT_ENV = "COSTFLOW_SECRETS_GCP_ENDPOINT"
PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}", re.ASCII)  # id or number
_STATES = {1: ENABLED, 2: DISABLED, 3: DESTROYED}
TIMEOUT_S = 30.0
T = TypeVar("T")


class GcpSecretManager(SecretBackend):
    """Secrets in one GCP project.

    Args:
        project: project id or number.
        api_endpoint: another server (default: ``$COSTFLOW_SECRETS_GCP_ENDPOINT``).
        credentials: google-auth credentials (default: Application Default Credentials).
        client: a ready ``SecretManagerServiceClient``.
    """

    PERMISSIONS = ("roles/secretmanager.secretAccessor to read, secretVersionAdder to rotate, "
                   "admin to create or disable")

    def __init__(self, project: str, *, api_endpoint: str | None = None,
                 credentials: Any = None, client: Any = None) -> None:
        if not PROJECT.fullmatch(project):
            raise ConfigError(f"{project[:40]!r} is not a GCP project id or number.")
        self.project = project
        self.api_endpoint = api_endpoint or os.environ.get(ENDPOINT_ENV) or None
        self.where = f"GCP Secret Manager (project {project})"
        self._credentials, self._client = credentials, client
        self._lock = threading.Lock()
        redact.install()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.api_core.client_options import ClientOptions
                from google.cloud import secretmanager

                options = ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint \
                    else None
                self._client = secretmanager.SecretManagerServiceClient(
                    credentials=self._credentials, transport="rest", client_options=options)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.transport.close()

    def _path(self, name: str) -> str:
        return f"projects/{self.project}/secrets/{to_gcp(name)}"

    # --- the blocking operations ---------------------------------------------------------------

    def _get(self, name: str, version: str) -> str:
        import google_crc32c

        answer = self._call(name, version, lambda c: c.access_secret_version(
            request={"name": f"{self._path(name)}/versions/{version}"}, timeout=TIMEOUT_S))
        data = bytes(answer.payload.data)
        if "data_crc32c" in answer.payload and \
                google_crc32c.value(data) != answer.payload.data_crc32c:
            raise errors.SecretError(f"secret {name!r} from {self.where} arrived corrupted "
                                     "(CRC32C mismatch): try again.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.SecretError(f"secret {name!r} in {self.where} holds binary data, not "
                                     "UTF-8 text: costflow stores text.") from None

    def _create(self, name: str, value: str, labels: dict[str, str]) -> SecretVersion:
        secret = {"replication": {"automatic": {}}, "labels": labels}
        unfinished = False
        try:
            self._call(name, None, lambda c: c.create_secret(request={
                "parent": f"projects/{self.project}", "secret_id": to_gcp(name),
                "secret": secret}, timeout=TIMEOUT_S))
        except errors.SecretExists:
            unfinished = True
        if unfinished:
            if self._list(name):
                raise errors.exists(name, self.where)
            log.info("secret %s exists in %s without a version: adding its first", name,
                     self.where)
        created = self._add(name, value)
        log.info("created secret %s (version %s) in %s", name, created.version, self.where)
        return created

    def _rotate(self, name: str, value: str) -> SecretVersion:
        added = self._add(name, value)
        log.info("rotated secret %s to version %s in %s", name, added.version, self.where)
        return added

    def _list(self, name: str) -> list[SecretVersion]:
        pages = self._call(name, None, lambda c: list(c.list_secret_versions(
            request={"parent": self._path(name)}, timeout=TIMEOUT_S)))
        versions = [self._version(name, v) for v in pages]
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    def _disable(self, name: str, version: str) -> SecretVersion:
        answer = self._call(name, version, lambda c: c.disable_secret_version(
            request={"name": f"{self._path(name)}/versions/{version}"}, timeout=TIMEOUT_S))
        log.info("disabled version %s of secret %s in %s", version, name, self.where)
        return self._version(name, answer)

    # --- helpers -------------------------------------------------------------------------------

    def _add(self, name: str, value: str) -> SecretVersion:
        import google_crc32c

        data = value.encode("utf-8")
        answer = self._call(name, None, lambda c: c.add_secret_version(request={
            "parent": self._path(name),
            "payload": {"data": data, "data_crc32c": google_crc32c.value(data)}},
            timeout=TIMEOUT_S), value)
        return self._version(name, answer)

    @staticmethod
    def _version(name: str, version: Any) -> SecretVersion:
        # version.name is projects/{number}/secrets/{id}/versions/{n}: the service answers
        # with the project NUMBER even when asked with the id, so only the last part is read.
        created = version.create_time
        when = created.astimezone(UTC) if isinstance(created, datetime) else datetime.now(UTC)
        return SecretVersion(name, str(version.name).rsplit("/", 1)[-1], when,
                             _STATES.get(int(version.state), DISABLED))

    def _call(self, name: str, version: str | None, call: Callable[[Any], T],
              value: str = "") -> T:
        try:
            return call(self.client())
        except Exception as exc:
            error = self._translate(exc, name, version, value)
        raise error  # outside the handler: the SDK's exception is not chained

    def _translate(self, exc: Exception, name: str, version: str | None,
                   value: str) -> Exception:
        import requests
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import GoogleAuthError

        if isinstance(exc, GoogleAuthError):
            return errors.SecretAccessDenied(
                f"no usable Google credentials for {self.where} (secret {name!r}): run `gcloud "
                "auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS "
                f"({type(exc).__name__}).")
        if isinstance(exc, requests.exceptions.RequestException | gexc.RetryError):
            return errors.SecretError(f"cannot reach {self.where} at "
                                      f"{self.api_endpoint or 'secretmanager.googleapis.com'} "
                                      f"(secret {name!r}): {type(exc).__name__}.")
        if not isinstance(exc, gexc.GoogleAPICallError):
            return exc  # not the service's answer: a bug, raised as is
        # Over REST the exception class follows the HTTP status only (FAILED_PRECONDITION is a
        # 400 like INVALID_ARGUMENT): the RPC status in the error body tells them apart.
        status, said = _rpc_error(exc)
        detail = errors.scrub(said, value)
        if isinstance(exc, gexc.NotFound) or status == "NOT_FOUND":
            return errors.not_found(name, self.where, version)
        if isinstance(exc, gexc.Conflict) or status == "ALREADY_EXISTS":
            return errors.exists(name, self.where)
        if isinstance(exc, gexc.Forbidden | gexc.Unauthorized) or status in (
                "PERMISSION_DENIED", "UNAUTHENTICATED"):
            return errors.denied(name, self.where, self.PERMISSIONS, detail)
        if status == "FAILED_PRECONDITION" and version:
            state = DESTROYED if "DESTROYED" in detail else DISABLED
            return errors.disabled(name, self.where, version, state)
        return errors.SecretError(f"{self.where} refused an operation on secret {name!r}: "
                                  f"{exc.code} {status} {detail}".rstrip())


def _rpc_error(exc: Any) -> tuple[str, str]:
    """(RPC status name, the service's message) of a google-api-core error, REST or gRPC."""
    code = getattr(exc, "grpc_status_code", None)
    status = getattr(code, "name", "") or ""
    message = ""
    response = getattr(exc, "response", None)
    try:
        error = response.json()["error"] if response is not None else {}
        status = status or str(error.get("status", ""))
        message = str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return status, message or str(getattr(exc, "message", "") or "")
