"""Azure Key Vault: ``azure-kv://VAULT_NAME`` (``https://VAULT_NAME.vault.azure.net``).

A sovereign cloud's vault is named by its host: ``azure-kv://myvault.vault.azure.cn``.
Key Vault names allow only ``[0-9A-Za-z-]`` and compare case-insensitively, so a name's ``_``
is spelled ``--`` and its ``/`` ``---`` (`costflow.secrets.names.to_azure`). Labels become
tags; version ids are Key Vault's 32 hex digits; ``latest`` is the vault's current version.

* Key Vault has one write, ``SetSecret``, which creates the secret or adds a version. So
  `create_secret` first reads the secret and refuses if it exists, and `rotate_secret` first
  reads it and refuses if it does not (two concurrent `create_secret` calls can both pass the
  check: the second becomes version 2). Reading needs the *get* permission.
* `disable_version` sets ``attributes.enabled = false``; the vault then answers 403 to a read.
* A deleted secret stays "deleted but recoverable" for the soft-delete period and blocks its
  name: recover or purge it (the error says so).

Credentials: ``azure.identity.DefaultAzureCredential`` unless ``credential`` is given; the
vault's 401 challenge tells the client which tenant to ask for a token. Permissions: the
"Key Vault Secrets Officer" role (RBAC), or get/list/set secret permissions (access policies).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from costflow.errors import ConfigError
from costflow.secrets import errors, redact
from costflow.secrets.base import DISABLED, ENABLED, LATEST, SecretBackend, SecretVersion
from costflow.secrets.names import to_azure

log = logging.getLogger(__name__)

VAULT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]", re.ASCII)
VAULT_HOST = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9](?:\.[a-z0-9-]+){2,}", re.ASCII)
T = TypeVar("T")


def vault_url(vault: str) -> str:
    """``https://`` URL of a vault named by its name or (sovereign clouds) its host."""
    if VAULT_NAME.fullmatch(vault):
        return f"https://{vault.lower()}.vault.azure.net"
    if VAULT_HOST.fullmatch(vault):
        return f"https://{vault.lower()}"
    raise ConfigError(f"{vault[:60]!r} is not a Key Vault name (3-24 letters, digits and '-', "
                      "starting with a letter) or host (name.vault.azure.cn).")


class AzureKeyVaultSecretManager(SecretBackend):
    """Secrets in one Key Vault.

    Args:
        vault: the vault's name or host.
        credential: an azure-identity credential (default: ``DefaultAzureCredential()``).
        client: a ready ``SecretClient``.
        **client_options: passed to ``SecretClient`` (``transport``, ``api_version``,
            ``verify_challenge_resource``...).
    """

    VERSION_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
    VERSION_HINT = "a version id (32 hex digits) returned by create_secret or rotate_secret"
    PERMISSIONS = ("the 'Key Vault Secrets Officer' role, or get, list and set secret "
                   "permissions in the vault's access policy")

    def __init__(self, vault: str, *, credential: Any = None, client: Any = None,
                 **client_options: Any) -> None:
        self.vault_url = vault_url(vault)
        self.where = f"Azure Key Vault {self.vault_url}"
        self._credential, self._client, self._options = credential, client, client_options
        self._lock = threading.Lock()
        redact.install()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.keyvault.secrets import SecretClient

                credential = self._credential
                if credential is None:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                self._client = SecretClient(self.vault_url, credential, **self._options)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- the blocking operations ---------------------------------------------------------------

    def _get(self, name: str, version: str) -> str:
        secret = self._call(name, version, lambda c: c.get_secret(
            to_azure(name), None if version == LATEST else version))
        if secret.value is None:
            raise errors.SecretError(f"secret {name!r} in {self.where} has no value.")
        return str(secret.value)

    def _create(self, name: str, value: str, labels: dict[str, str]) -> SecretVersion:
        if self._exists(name):
            raise errors.exists(name, self.where)
        created = self._set(name, value, labels or None)
        log.info("created secret %s (version %s) in %s", name, created.version, self.where)
        return created

    def _rotate(self, name: str, value: str) -> SecretVersion:
        if not self._exists(name):
            raise errors.not_found(name, self.where)
        rotated = self._set(name, value, None)
        log.info("rotated secret %s to version %s in %s", name, rotated.version, self.where)
        return rotated

    def _list(self, name: str) -> list[SecretVersion]:
        items = self._call(name, None, lambda c: list(
            c.list_properties_of_secret_versions(to_azure(name))))
        if not items:
            raise errors.not_found(name, self.where)
        versions = [_version(name, p) for p in items]
        # Newest first. Key Vault's timestamps have one-second resolution and its listing has
        # no order: versions made within one second are in the service's order.
        return sorted(versions, key=lambda v: v.created, reverse=True)

    def _disable_checked(self, name: str, version: str) -> SecretVersion:
        current = self._call(name, None, lambda c: c.get_secret(to_azure(name)))
        if current.properties.version == version:
            raise errors.SecretError(f"version {version} is the current version of secret "
                                     f"{name!r} in {self.where}: rotate the secret first, then "
                                     "disable the old version.")
        return self._disable(name, version)

    def _disable(self, name: str, version: str) -> SecretVersion:
        props = self._call(name, version, lambda c: c.update_secret_properties(
            to_azure(name), version, enabled=False))
        log.info("disabled version %s of secret %s in %s", version, name, self.where)
        return _version(name, props)

    # --- helpers -------------------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        """Whether the secret has a current version (read, value discarded)."""
        try:
            self._call(name, None, lambda c: c.get_secret(to_azure(name)))
        except errors.SecretNotFound:
            return False
        except errors.SecretVersionDisabled:
            return True
        return True

    def _set(self, name: str, value: str, tags: dict[str, str] | None) -> SecretVersion:
        secret = self._call(name, None, lambda c: c.set_secret(
            to_azure(name), value, tags=tags, content_type="text/plain"), value)
        return _version(name, secret.properties)

    def _call(self, name: str, version: str | None, call: Callable[[Any], T],
              value: str = "") -> T:
        from azure.core.exceptions import AzureError

        try:
            return call(self.client())
        except AzureError as exc:
            error = self._translate(exc, name, version, value)
        raise error  # outside the handler: the SDK's exception is not chained

    def _translate(self, exc: Exception, name: str, version: str | None,
                   value: str) -> errors.SecretError:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceExistsError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        if type(exc).__name__ == "CredentialUnavailableError":
            return errors.SecretAccessDenied(
                f"no Azure credentials for {self.where} (secret {name!r}): run `az login`, or "
                "set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use a managed "
                "identity.")
        if isinstance(exc, ServiceRequestError):
            return errors.SecretError(f"cannot reach {self.where} (secret {name!r}): "
                                      f"{type(exc).__name__}; check the vault name and network.")
        odata = getattr(exc, "error", None)
        code = str(getattr(odata, "code", "") or "")
        inner = str((getattr(odata, "innererror", None) or {}).get("code", ""))
        detail = errors.scrub(str(getattr(odata, "message", "") or ""), value)
        if isinstance(exc, ResourceNotFoundError):
            return errors.not_found(name, self.where, version)
        if isinstance(exc, ResourceExistsError):
            return errors.SecretError(f"secret {name!r} cannot be written in {self.where}: "
                                      f"{detail or 'conflict'} (a deleted secret keeps its name "
                                      "until it is recovered or purged).")
        status = getattr(exc, "status_code", None)
        if status == 403 and (inner == "SecretDisabled" or "disabled secret" in detail):
            return errors.disabled(name, self.where, version or LATEST)
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return errors.denied(name, self.where, self.PERMISSIONS, detail)
        if isinstance(exc, HttpResponseError):
            return errors.SecretError(f"{self.where} refused an operation on secret {name!r}: "
                                      f"{status} {code} {detail}".rstrip())
        return errors.SecretError(f"{self.where} failed on secret {name!r}: "
                                  f"{type(exc).__name__}.")


def _version(name: str, props: Any) -> SecretVersion:
    created = props.created_on
    when = created.astimezone(UTC) if isinstance(created, datetime) else datetime.now(UTC)
    return SecretVersion(name, str(props.version), when, ENABLED if props.enabled else DISABLED)
