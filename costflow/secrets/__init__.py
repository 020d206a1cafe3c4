"""Secrets (F6 §6): the design's SecretManager over four backends, chosen by URL.

    local:///.costflow/secrets      encrypted files, relative to the working directory (default)
    local:////abs/path              encrypted files, absolute path
    aws-sm://REGION                 AWS Secrets Manager
    gcp-sm://PROJECT                GCP Secret Manager
    azure-kv://VAULT_NAME           Azure Key Vault

    manager = connect(resolve_url())
    await manager.create_secret("cloud-creds/acme/aws", value, labels={"team": "finops"})
    await manager.rotate_secret("cloud-creds/acme/aws", new_value)
    value = await manager.get_secret("cloud-creds/acme/aws")          # the newest version
    old = await manager.get_secret("cloud-creds/acme/aws", version)   # a version id

Every backend: validates names against the design's patterns (`names`), returns
`SecretVersion` (never a value), raises `ConfigError` for bad input and `SecretError`
subclasses for what the backend refuses (`SecretNotFound`, `SecretExists`,
`SecretAccessDenied`, `SecretVersionDisabled`), and never puts a value in a message or a log
record (`redact`). Backends are imported only when asked for, and build their SDK client on
first use: `connect` opens nothing.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from costflow.errors import ConfigError
from costflow.secrets.base import LATEST, SecretBackend, SecretManager, SecretVersion
from costflow.secrets.errors import (
    SecretAccessDenied,
    SecretError,
    SecretExists,
    SecretNotFound,
    SecretVersionDisabled,
)
from costflow.secrets.names import make_name, validate_name

ENV_VAR = "COSTFLOW_SECRETS"
DEFAULT_URL = "local:///.costflow/secrets"
LOCAL_PREFIX = "local:///"
ACCEPTED = (
    "Accepted secret store URLs: local:///relative/dir (relative to the working directory), "
    "local:////absolute/dir, aws-sm://REGION, gcp-sm://PROJECT and azure-kv://VAULT_NAME. Set "
    f"it with {ENV_VAR}; the default is {DEFAULT_URL}."
)

__all__ = ["DEFAULT_URL", "ENV_VAR", "LATEST", "SecretAccessDenied", "SecretBackend",
           "SecretError", "SecretExists", "SecretManager", "SecretNotFound", "SecretVersion",
           "SecretVersionDisabled", "connect", "make_name", "resolve_url", "validate_name"]


def resolve_url(flag_value: str | None = None) -> str:
    """The secret store URL to use: the flag, else ``$COSTFLOW_SECRETS``, else the default."""
    return flag_value or os.environ.get(ENV_VAR) or DEFAULT_URL


def connect(url: str = DEFAULT_URL, **options: Any) -> SecretBackend:
    """The secret manager a URL names (nothing is opened until it is used).

    Args:
        url: one of the forms above.
        **options: passed to the backend's constructor: ``key`` (local), ``endpoint_url`` or
            ``client`` (AWS), ``api_endpoint``, ``credentials`` or ``client`` (GCP),
            ``credential``, ``client`` or ``SecretClient`` options such as ``transport`` (Azure).

    Raises:
        ConfigError: the URL is not one of the accepted forms.
    """
    if not isinstance(url, str) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ConfigError(f"the secret store URL must be printable text. {ACCEPTED}")
    if url.startswith(LOCAL_PREFIX):
        path = url[len(LOCAL_PREFIX):]
        if not path or "?" in path or "#" in path or path.rstrip("/") in ("", "."):
            raise ConfigError(f"{url!r} does not name a directory. {ACCEPTED}")
        from costflow.secrets.local import LocalSecretManager

        return LocalSecretManager(path, **options)
    parts = urlsplit(url)
    host = parts.netloc
    if (parts.scheme in ("aws-sm", "gcp-sm", "azure-kv") and host and parts.path in ("", "/")
            and not parts.query and not parts.fragment and "@" not in host
            and ":" not in host):
        if parts.scheme == "aws-sm":
            from costflow.secrets.aws import AwsSecretManager

            return AwsSecretManager(host, **options)
        if parts.scheme == "gcp-sm":
            from costflow.secrets.gcp import GcpSecretManager

            return GcpSecretManager(host, **options)
        from costflow.secrets.azure import AzureKeyVaultSecretManager

        return AzureKeyVaultSecretManager(host, **options)
    raise ConfigError(f"{url[:120]!r} is not a secret store URL. {ACCEPTED}")
