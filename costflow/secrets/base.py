"""The SecretManager protocol (F6 §6.2), its result type, and what every backend shares.

`SecretBackend` does the checks once (name, version id, value, labels) and runs the backend's
blocking SDK call in a worker thread (`asyncio.to_thread`) inside `redact.secret_call()`, so
the async methods never block the event loop and the SDKs' debug logs never hold a value.
A backend implements the five blocking ``_get``/``_create``/``_rotate``/``_list``/``_disable``.

Beyond the design's three methods every backend has `list_versions` and `disable_version`
(retire an old value once its consumers have moved to the new one; the current version cannot
be disabled: rotate first). Rotation keeps the previous version readable, so a consumer that
read it a moment before the rotation keeps working until it reloads.
"""

from __future__ import annotations

import asyncio
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from costflow.errors import ConfigError
from costflow.secrets import errors, redact
from costflow.secrets.names import validate_name

LATEST = "latest"
ENABLED, DISABLED, DESTROYED = "enabled", "disabled", "destroyed"
VALUE_MAX_BYTES = 25_000  # Azure Key Vault's limit, the smallest of the backends (GCP 64 KiB)
LABELS_MAX = 15           # Azure Key Vault's tag limit (AWS 50, GCP 64)
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)    # GCP label rules, ASCII only
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}", re.ASCII)

T = TypeVar("T")


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret: never its value.

    Attributes:
        name: the costflow name (``cloud-creds/acme/aws``), not the backend's spelling.
        version: the backend's version id: ``"1"``, ``"2"``... (local, GCP), a UUID (AWS),
            32 hex digits (Azure). `get_secret(name, version)` takes it back.
        created: when the version was created (UTC; Azure has one-second resolution).
        state: ``"enabled"``, ``"disabled"`` or ``"destroyed"``.
    """

    name: str
    version: str
    created: datetime
    state: str = ENABLED

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


@runtime_checkable
class SecretManager(Protocol):
    """Secret management interface (F6 §6.2)."""

    async def get_secret(self, name: str, version: str = LATEST) -> str:
        """Retrieve secret value."""
        ...

    async def create_secret(self, name: str, value: str,
                            labels: dict[str, str] | None = None) -> SecretVersion:
        """Create new secret."""
        ...

    async def rotate_secret(self, name: str, new_value: str) -> SecretVersion:
        """Rotate secret to new value."""
        ...


def check_value(name: str, value: object) -> str:
    """A value a backend can hold (non-empty text up to 25,000 bytes); else `ConfigError`."""
    if not isinstance(value, str):
        raise ConfigError(f"the value of secret {name!r} must be a string, not "
                          f"{type(value).__name__}.")
    size = len(value.encode("utf-8"))
    if not size or size > VALUE_MAX_BYTES:
        raise ConfigError(f"the value of secret {name!r} is {size} bytes: it must be 1 to "
                          f"{VALUE_MAX_BYTES} bytes (UTF-8), the limit every backend accepts.")
    return value


def check_labels(name: str, labels: object) -> dict[str, str]:
    """Labels every backend accepts (GCP's rules, Azure's count); else `ConfigError`."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ConfigError(f"labels of secret {name!r} must be a dict of strings.")
    if len(labels) > LABELS_MAX:
        raise ConfigError(f"secret {name!r} has {len(labels)} labels: at most {LABELS_MAX}.")
    for key, value in labels.items():
        if not (isinstance(key, str) and _LABEL_KEY.fullmatch(key)):
            raise ConfigError(f"label key {str(key)[:70]!r} of secret {name!r}: keys are a "
                              "lowercase letter then up to 62 lowercase letters, digits, '_' "
                              "or '-'.")
        if not (isinstance(value, str) and _LABEL_VALUE.fullmatch(value)):
            raise ConfigError(f"label {key!r} of secret {name!r}: values are up to 63 lowercase "
                              "letters, digits, '_' or '-'.")
    return dict(labels)


class SecretBackend(ABC):
    """A `SecretManager` over one backend; subclasses implement the blocking calls.

    Attributes:
        where: how messages name the backend, e.g. ``GCP Secret Manager (project p)``.
        VERSION_ID: the backend's version ids (other than ``latest``).
        PERMISSIONS: what to grant, for the access-denied message.
    """

    where: str
    VERSION_ID: ClassVar[re.Pattern[str]] = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
    VERSION_HINT: ClassVar[str] = "a version number such as 1"
    PERMISSIONS: ClassVar[str] = ""

    # --- the design's protocol -----------------------------------------------------------------

    async def get_secret(self, name: str, version: str = LATEST) -> str:
        name = validate_name(name)
        return await self._run(self._get, name, self.check_version(name, version))

    async def create_secret(self, name: str, value: str,
                            labels: dict[str, str] | None = None) -> SecretVersion:
        name = validate_name(name)
        return await self._run(self._create, name, check_value(name, value),
                               check_labels(name, labels))

    async def rotate_secret(self, name: str, new_value: str) -> SecretVersion:
        name = validate_name(name)
        return await self._run(self._rotate, name, check_value(name, new_value))

    # --- beyond the protocol -------------------------------------------------------------------

    async def list_versions(self, name: str) -> list[SecretVersion]:
        """Every version of the secret, newest first (no values)."""
        name = validate_name(name)
        return await self._run(self._list, name)

    async def disable_version(self, name: str, version: str) -> SecretVersion:
        """Disable an old version; the current one cannot be disabled (rotate first)."""
        name = validate_name(name)
        version = self.check_version(name, version)
        if version == LATEST:
            raise ConfigError(f"disable_version({name!r}) needs a version id, not 'latest'.")
        return await self._run(self._disable_checked, name, version)

    def close(self) -> None:
        """Release the backend's client (connections); the object may not be used after."""
        return None

    # --- shared plumbing -----------------------------------------------------------------------

    def check_version(self, name: str, version: object) -> str:
        """``latest`` or a version id of this backend; else `ConfigError` (ids are URL parts)."""
        if version == LATEST:
            return LATEST
        if isinstance(version, str) and self.VERSION_ID.fullmatch(version):
            return version
        return self._bad_version(name, version)

    def _bad_version(self, name: str, version: object) -> str:
        shown = f"{len(version)} characters" if isinstance(version, str) else \
            type(version).__name__  # described, not repeated: it may hold anything
        raise ConfigError(f"the version given ({shown}) is not a version of secret {name!r} "
                          f"in {self.where}: use 'latest' or {self.VERSION_HINT}.")

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(functools.partial(_in_secret_call, call), *args)

    def _disable_checked(self, name: str, version: str) -> SecretVersion:
        versions = self._list(name)
        match = [v for v in versions if v.version == version]
        if not match:
            raise errors.not_found(name, self.where, version)
        if versions and versions[0].version == version:
            raise errors.SecretError(f"version {version} is the current version of secret "
                                     f"{name!r} in {self.where}: rotate the secret first, then "
                                     "disable the old version.")
        if not match[0].enabled:
            return match[0]
        return self._disable(name, version)

    @abstractmethod
    def _get(self, name: str, version: str) -> str: ...

    @abstractmethod
    def _create(self, name: str, value: str, labels: dict[str, str]) -> SecretVersion: ...

    @abstractmethod
    def _rotate(self, name: str, value: str) -> SecretVersion: ...

    @abstractmethod
    def _list(self, name: str) -> list[SecretVersion]:
        """Newest first."""

    @abstractmethod
    def _disable(self, name: str, version: str) -> SecretVersion: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"


def _in_secret_call(call: Callable[..., T], *args: Any) -> T:
    with redact.secret_call():
        return call(*args)
