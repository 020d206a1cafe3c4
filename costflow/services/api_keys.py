"""Bearer keys of the MCP HTTP server: one per agent or team, bound to one tenant, revocable.

A key is ``cfk_<id>_<secret>``: ``id`` is 12 hex digits that name it in listings and audit
lines, ``secret`` 32 random bytes (256 bits, `secrets.token_urlsafe`). It is shown once, when
created; the metadata store keeps only its SHA-256 (``api_keys/{id}``, `costflow.metadata.paths`)
beside the tenant, the name and the creation and revocation times. A plain hash is enough for a
random 256-bit secret (there is nothing to guess by brute force, so no slow password hash is
needed); the comparison is constant-time.

`verify` says which key a presented value is, or raises `KeyRejected` with the reason the
server returns (401): no key, not a costflow key, unknown here (another deployment's key, or a
deleted one), wrong secret, revoked. It never returns a key without a tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from costflow.errors import ConfigError
from costflow.metadata import MetadataStore, paths

PREFIX = "cfk_"
_SHAPE = re.compile(r"cfk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
NAME_MAX = 100


class KeyRejected(Exception):
    """A presented bearer key is not a valid, live key of this deployment (the 401 reason)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    key_id: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def digest(key: str) -> str:
    """The SHA-256 (hex) the store keeps of a whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: MetadataStore, tenant: str, name: str) -> tuple[ApiKey, str]:
    """A new key for ``tenant`` named ``name``: the stored record and the key itself (shown
    once; only its hash is stored).

    Raises:
        ConfigError: an empty or overlong name, or a tenant id not usable in a path.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or \
            not name.isprintable():
        raise ConfigError(f"a key name is 1 to {NAME_MAX} printable characters (e.g. "
                          "finops-agent).")
    paths.tenant(tenant)  # the tenant id is a valid path segment
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id, tenant, name.strip(), datetime.now(UTC))
    store.set(paths.api_key(key_id), {"tenant": tenant, "name": record.name,
                                      "sha256": digest(key), "created_at": record.created_at,
                                      "revoked_at": None})
    return record, key


def list_keys(store: MetadataStore) -> list[ApiKey]:
    """Every key (revoked ones too), oldest first."""
    keys = [_record(key_id, doc) for key_id, doc in store.list(paths.api_keys())]
    return sorted(keys, key=lambda k: (k.created_at, k.key_id))


def revoke_key(store: MetadataStore, key_id: str) -> ApiKey:
    """Revoke a key (idempotent: a revoked key keeps its first revocation time).

    Raises:
        ConfigError: no key with that id (the message lists how to find them).
    """
    doc = store.get(paths.api_key(key_id))
    if doc is None:
        raise ConfigError(f"no API key {key_id!r}; `costflow keys list` shows the key ids.")
    if doc.get("revoked_at") is None:
        store.merge(paths.api_key(key_id), {"revoked_at": datetime.now(UTC)})
        doc = store.get(paths.api_key(key_id)) or doc
    return _record(key_id, doc)


def verify(store: MetadataStore, presented: str | None) -> ApiKey:
    """The live key ``presented`` is, or `KeyRejected` saying why not."""
    if not presented:
        raise KeyRejected("this server needs a bearer key: send 'Authorization: Bearer "
                          "cfk_...' (create one with `costflow keys create --tenant T --name "
                          "N`).")
    found = _SHAPE.fullmatch(presented.strip())
    if not found:
        raise KeyRejected("the bearer key is not a costflow key (cfk_<id>_<secret>).")
    key_id = found.group(1)
    doc = store.get(paths.api_key(key_id))
    if doc is None or not hmac.compare_digest(str(doc.get("sha256", "")),
                                              digest(presented.strip())):
        raise KeyRejected(f"bearer key {key_id} is not a key of this deployment (unknown or "
                          "wrong secret).")
    record = _record(key_id, doc)
    if record.revoked:
        raise KeyRejected(f"bearer key {key_id} ({record.name}) was revoked at "
                          f"{record.revoked_at:%Y-%m-%d %H:%M:%S} UTC.")
    return record


def _record(key_id: str, doc: dict) -> ApiKey:
    return ApiKey(key_id, str(doc["tenant"]), str(doc["name"]), doc["created_at"],
                  doc.get("revoked_at"))
