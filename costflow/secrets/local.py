"""The local secret store: encrypted files under ``.costflow/secrets/`` (the default backend).

    local:///.costflow/secrets        relative to the working directory (the default)
    local:////var/lib/costflow/sec    absolute path

Each secret is one file, ``<name with / spelled __>.secret`` (see `costflow.secrets.names`),
holding every version of the secret as one Fernet token (AES-128-CBC + HMAC-SHA256, from
``cryptography``). The directory is created 0700 and tightened to 0700 if found looser; files
are written 0600 to a temporary file, fsynced and moved into place with ``os.replace`` under an
exclusive ``flock``, so a reader sees the old file or the new one, never half of one, and two
writers never lose each other's version. POSIX only (``fcntl``).

The key is, in this order: ``$COSTFLOW_SECRETS_KEY`` (a Fernet key; ``new,old`` to re-key:
the first encrypts, all decrypt, and each write re-encrypts with the first), or the OS keyring
(service ``costflow``, user ``secrets-key``) when a working keyring backend holds one. With
neither, every operation is refused with a `ConfigError` saying how to make a key: nothing is
ever stored in clear text. ``python -m costflow.secrets keygen [--keyring]`` makes one.

What it protects against:

* other users of the machine: they can neither list the directory (0700) nor read a file
  (0600), and a file alone is ciphertext;
* a copied backup, disk image or synced folder without the key: the files are ciphertext, and
  a file altered or swapped for another secret's file is detected (HMAC; the secret's name is
  inside the encrypted document), never silently returned.

What it does not protect against:

* a process running as the same user (or root): it can read the key from the environment or
  the unlocked keyring and decrypt everything;
* a leaked key: whoever holds the key and a copy of the files has every value; rotate the
  secrets themselves (at their source), then re-key;
* someone with write access to the directory (the same user) deleting a secret or putting back
  an older copy of its file (a rollback decrypts fine);
* what file names and sizes tell: secret names (tenants, providers) are visible, values are not.
"""

from __future__ import annotations

import binascii
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from costflow.errors import ConfigError
from costflow.secrets import errors
from costflow.secrets.base import DISABLED, ENABLED, LATEST, SecretBackend, SecretVersion
from costflow.secrets.names import to_gcp

log = logging.getLogger(__name__)

KEY_ENV = "COSTFLOW_SECRETS_KEY"
KEYRING_SERVICE, KEYRING_USER = "costflow", "secrets-key"
SUFFIX = ".secret"
FORMAT = 1
HOW_TO_MAKE_A_KEY = (
    f"Make a key with `python -m costflow.secrets keygen` and export it as {KEY_ENV} (keep a "
    "copy somewhere safe: without it the secrets cannot be read), or store it in the OS keyring "
    "with `python -m costflow.secrets keygen --keyring` "
    f"(service {KEYRING_SERVICE!r}, user {KEYRING_USER!r}).")


def keyring_key() -> str | None:
    """The key the OS keyring holds, or None when there is none or no working keyring."""
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except Exception as exc:  # no backend, a locked or failing one: "not available"
        log.debug("OS keyring not available for the secrets key (%s)", type(exc).__name__)
        return None
    return value or None


def load_key(key: str | None = None, environ: dict[str, str] | None = None) -> MultiFernet:
    """The Fernet keys to use: ``key``, else ``$COSTFLOW_SECRETS_KEY``, else the OS keyring.

    Raises:
        ConfigError: no key anywhere, or one that is not a Fernet key (never echoed).
    """
    env = os.environ if environ is None else environ
    raw, source = key, "the key given"
    if not raw:
        raw, source = env.get(KEY_ENV), f"${KEY_ENV}"
    if not raw:
        raw, source = keyring_key(), f"the OS keyring entry ({KEYRING_SERVICE}/{KEYRING_USER})"
    if not raw:
        raise ConfigError(f"no key to encrypt the local secret store: {KEY_ENV} is not set and "
                          f"no OS keyring holds one. {HOW_TO_MAKE_A_KEY}")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return MultiFernet([Fernet(part.encode("ascii")) for part in parts])
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error):
        raise ConfigError(f"{source} is not a Fernet key (32 url-safe base64-encoded bytes; "
                          f"'new,old' to re-key). {HOW_TO_MAKE_A_KEY}") from None


class LocalSecretManager(SecretBackend):
    """Encrypted secret files in one directory (see the module docstring).

    Args:
        root: the directory (created 0700 on the first write).
        key: a Fernet key (or ``new,old``) instead of the environment / keyring.
    """

    def __init__(self, root: str | Path, *, key: str | None = None) -> None:
        self.root = Path(root)
        self.where = f"the local secret store {self.root}"
        self._key = key
        self._fernet: MultiFernet | None = None

    # --- the blocking operations ---------------------------------------------------------------

    def _get(self, name: str, version: str) -> str:
        doc = self._read(name)
        if doc is None:
            raise errors.not_found(name, self.where)
        entry = doc["versions"][-1] if version == LATEST else next(
            (v for v in doc["versions"] if v["id"] == version), None)
        if entry is None:
            raise errors.not_found(name, self.where, version)
        if entry["state"] != ENABLED:
            raise errors.disabled(name, self.where, entry["id"], entry["state"])
        return str(entry["value"])

    def _create(self, name: str, value: str, labels: dict[str, str]) -> SecretVersion:
        with self._locked():
            if self._read(name) is not None:
                raise errors.exists(name, self.where)
            doc = {"format": FORMAT, "name": name, "labels": labels, "versions": []}
            return self._append(doc, value)

    def _rotate(self, name: str, value: str) -> SecretVersion:
        with self._locked():
            doc = self._read(name)
            if doc is None:
                raise errors.not_found(name, self.where)
            return self._append(doc, value)

    def _list(self, name: str) -> list[SecretVersion]:
        doc = self._read(name)
        if doc is None:
            raise errors.not_found(name, self.where)
        return [_version(name, v) for v in reversed(doc["versions"])]

    def _disable(self, name: str, version: str) -> SecretVersion:
        with self._locked():
            doc = self._read(name)
            entry = next((v for v in (doc or {}).get("versions", []) if v["id"] == version), None)
            if doc is None or entry is None:
                raise errors.not_found(name, self.where, version)
            entry["state"] = DISABLED
            self._write(name, doc)
        log.info("disabled version %s of secret %s in %s", version, name, self.where)
        return _version(name, entry)

    # --- files ---------------------------------------------------------------------------------

    def _append(self, doc: dict[str, Any], value: str) -> SecretVersion:
        number = int(doc["versions"][-1]["id"]) + 1 if doc["versions"] else 1
        entry = {"id": str(number), "created": datetime.now(UTC).isoformat(),
                 "state": ENABLED, "value": value}
        doc["versions"].append(entry)
        self._write(doc["name"], doc)
        log.info("wrote version %s of secret %s to %s", number, doc["name"], self.where)
        return _version(doc["name"], entry)

    def _keys(self) -> MultiFernet:
        if self._fernet is None:
            self._fernet = load_key(self._key)
        return self._fernet

    def _path(self, name: str) -> Path:
        return self.root / (to_gcp(name) + SUFFIX)

    def _check_dir(self, create: bool) -> bool:
        """True when the directory exists (made 0700 if ``create``), is ours and is private."""
        if create:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{self.root} is not a directory: the local secret store needs one.")
        if st.st_uid != os.geteuid():
            raise ConfigError(f"{self.root} belongs to user id {st.st_uid}, not to you: the "
                              "local secret store must be a directory only you can read.")
        if st.st_mode & 0o077:
            log.warning("%s was readable by others (mode %o): tightened to 0700",
                        self.root, stat.S_IMODE(st.st_mode))
            os.chmod(self.root, 0o700)
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._keys()  # refuse before creating anything when there is no key
        self._check_dir(create=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read(self, name: str) -> dict[str, Any] | None:
        keys = self._keys()
        if not self._check_dir(create=False):
            return None
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:  # PermissionError, ELOOP (a symlink planted in its place)
            raise errors.SecretAccessDenied(
                f"cannot read secret {name!r} from {path}: {exc.strerror}. The file must be a "
                "regular file owned by you (mode 0600).") from None
        with os.fdopen(fd, "rb") as handle:
            token = handle.read()
        try:
            doc: dict[str, Any] = json.loads(keys.decrypt(token))
        except InvalidToken:
            raise errors.SecretAccessDenied(
                f"cannot decrypt secret {name!r} in {self.where} with the configured key: it was "
                "written with another key, or the file was altered. Set the key it was written "
                f"with ({KEY_ENV}, or 'new,old' while re-keying).") from None
        if doc.get("name") != name or doc.get("format") != FORMAT:
            raise errors.SecretError(f"{path} does not hold secret {name!r}: the file was renamed "
                                     "or replaced by another secret's file.")
        return doc

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        path = self._path(name)
        token = self._keys().encrypt(json.dumps(doc).encode("utf-8"))
        tmp = self.root / f".{path.name}.{os.urandom(6).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _version(name: str, entry: dict[str, Any]) -> SecretVersion:
    return SecretVersion(name, entry["id"], datetime.fromisoformat(entry["created"]),
                         entry["state"])
