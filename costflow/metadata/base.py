"""The MetadataStore protocol, the lease a lock hands out, and what both backends share.

A metadata store holds small JSON-like documents at slash-separated paths (`paths`): account
state, settings, policies, users, locks. `DocumentStore` implements the whole protocol once, on
top of five primitives a backend supplies (read, replace, delete, list one collection, and an
atomic read-modify-write ``_update``), so merge and the three lock operations have exactly one
definition and both backends agree on every edge case.

Values are checked and normalized before any backend sees them (`canonical`):

* ``str``, ``int`` (64-bit), ``bool``, ``None``, lists and dicts (string keys) as they are;
* ``Decimal`` is stored as its exact text (``Decimal("1.50")`` -> ``"1.5"``, as
  `costflow.text.exact` writes money) and read back as that ``str``: money never becomes float;
* ``datetime`` must be timezone-aware; it is stored in UTC (microseconds) and read back as an
  aware ``datetime`` whose tzinfo is ``datetime.UTC``;
* everything else is refused with a `MetadataInputError` naming the document and the field:
  ``float`` (NaN and infinities included: money must not be float, write a Decimal or a str),
  naive datetimes, dates, bytes, sets, non-finite Decimals, lists directly inside lists and
  field names of the form ``__name__`` (Firestore cannot store either), more than 20 levels of
  nesting, and documents over Firestore's 1 MiB (computed as Firestore does). Tuples are
  stored as lists.

Both backends then return identical Python values for the same document (one test suite,
`tests/test_metadata_store.py`, runs against both).
"""

from __future__ import annotations

import builtins
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from costflow.metadata import paths
from costflow.metadata.errors import LockLost, MetadataError, MetadataInputError
from costflow.text import exact

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 20                    # Firestore: maps and arrays nest at most 20 deep
MAX_DOCUMENT_BYTES = 1_048_576    # Firestore: 1 MiB per document, counted as `document_size`
FIELD_NAME_MAX_BYTES = 1_500
OWNER_MAX_CHARS = 256
ALLOWED = ("str, int, bool, None, Decimal (stored as its exact text), a timezone-aware "
           "datetime, a list or a dict with string keys")
KEEP = object()  # what an `_update` function returns to leave the document as it is

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Lease:
    """A lock held by one owner, from `MetadataStore.acquire_lock`.

    Attributes:
        name: the lock's name (its document is ``locks/{name}``).
        owner: who holds it, as given (e.g. ``host:pid``); shown to whoever finds it held.
        token: unique to this acquisition: heartbeat and release check it, so a lease taken
            over and re-acquired by the same owner is still a different lease.
        acquired_at: when it was acquired (UTC, the acquirer's clock).
        previous_owner: who held it before, when this lease took a stale lock over; else None.
        previous_heartbeat: that holder's last heartbeat (UTC), when taken over; else None.
    """

    name: str
    owner: str
    token: str
    acquired_at: datetime
    previous_owner: str | None = None
    previous_heartbeat: datetime | None = None

    @property
    def path(self) -> str:
        return paths.lock(self.name)

    @property
    def took_over(self) -> bool:
        return self.previous_owner is not None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as read from its document (see `lock_holder`)."""

    owner: str
    acquired_at: datetime
    heartbeat_at: datetime


@runtime_checkable
class MetadataStore(Protocol):
    """Documents at slash-separated paths (`costflow.metadata.paths`), and leases."""

    def get(self, path: str) -> dict[str, Any] | None:
        """The document at ``path``, or None when there is none."""
        ...

    def set(self, path: str, doc: Mapping[str, Any]) -> None:
        """Replace the whole document (create it when missing)."""
        ...

    def merge(self, path: str, fields: Mapping[str, Any]) -> None:
        """Create the document, or replace only the given top-level fields (atomically)."""
        ...

    def delete(self, path: str) -> None:
        """Delete the document; a missing one is fine. Sub-collections are not touched."""
        ...

    def list(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """``(id, document)`` of every document directly in ``collection``, sorted by id."""
        ...

    def acquire_lock(self, name: str, owner: str, stale_after: timedelta) -> Lease | None:
        """Take the lock atomically; None when a live owner holds it (its last heartbeat is
        younger than ``stale_after``); a stale lock is taken over (see `Lease`)."""
        ...

    def heartbeat(self, lease: Lease) -> None:
        """Keep the lease alive; `LockLost` when it is no longer ours."""
        ...

    def release(self, lease: Lease) -> None:
        """Release the lease; `LockLost` when another owner holds the lock now (theirs is
        left alone); a lock already gone is fine."""
        ...

    def close(self) -> None:
        """Release connections; the object may not be used after."""
        ...


# --- values ------------------------------------------------------------------------------------


def canonical_document(path: str, doc: object) -> dict[str, Any]:
    """``doc`` checked and normalized (see the module docstring); else `MetadataInputError`."""
    if not isinstance(doc, Mapping):
        raise MetadataInputError(f"the document for {path} must be a mapping of field names to "
                                 f"values, not {type(doc).__name__}.")
    return _mapping(path, doc, "", 1)


def _mapping(path: str, value: Mapping[Any, Any], where: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        _refuse(path, where, f"it nests more than {MAX_DEPTH} levels deep (Firestore's limit)")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _field_name(path, where, key)
        out[name] = _value(path, item, f"{where}.{name}" if where else name, depth)
    return out


def _field_name(path: str, where: str, key: object) -> str:
    inside = f" in field {where!r}" if where else ""
    if not isinstance(key, str):
        raise MetadataInputError(f"{path}: a field name{inside} is a {type(key).__name__}; "
                                 "field names must be strings.")
    problem = None
    if not key:
        problem = "it is empty"
    elif len(key.encode("utf-8", "replace")) > FIELD_NAME_MAX_BYTES:
        problem = f"it is longer than {FIELD_NAME_MAX_BYTES} bytes"
    elif not key.isprintable():
        problem = "it contains a control or other non-printable character"
    elif paths._RESERVED.fullmatch(key):
        problem = "names of the form __name__ are reserved by Firestore"
    elif _has_surrogate(key):
        problem = "it is not valid Unicode (a lone surrogate)"
    if problem:
        shown = repr(key) if len(key) <= 80 else repr(key[:70]) + "..."
        raise MetadataInputError(f"{path}: field name {shown}{inside} is not allowed: "
                                 f"{problem}.")
    return str.__str__(key)


def _value(path: str, value: object, where: str, depth: int) -> Any:
    if value is None or type(value) is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            _refuse(path, where, "the integer does not fit in 64 bits (Firestore's integers); "
                                 "store it as a str or a Decimal")
        return int(value)
    if isinstance(value, str):
        if _has_surrogate(value):
            _refuse(path, where, "the string is not valid Unicode (a lone surrogate)")
        return str.__str__(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            _refuse(path, where, f"Decimal {value} is not a finite number")
        return exact(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            _refuse(path, where, "the datetime is naive: give it a timezone (e.g. "
                                 "datetime.now(UTC)); it is stored in UTC")
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            _refuse(path, where, "the datetime is out of range once converted to UTC")
        return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
                        utc.microsecond, tzinfo=UTC)
    if isinstance(value, float):
        _refuse(path, where, "a float is refused: money must not be float (and every float "
                             "is inexact); store a Decimal or a str")
    if isinstance(value, (date, time)):
        _refuse(path, where, f"a {type(value).__name__} is refused (Firestore has no such "
                             "type): store an aware datetime, or its isoformat() text")
    if isinstance(value, Mapping):
        return _mapping(path, value, where, depth + 1)
    if isinstance(value, (list, tuple)):
        if depth + 1 > MAX_DEPTH:
            _refuse(path, where, f"it nests more than {MAX_DEPTH} levels deep "
                                 "(Firestore's limit)")
        items = []
        for number, item in enumerate(value):
            if isinstance(item, (list, tuple)):
                _refuse(path, f"{where}[{number}]", "a list directly inside a list is refused "
                                                    "(Firestore cannot store one): wrap it in "
                                                    "a dict")
            items.append(_value(path, item, f"{where}[{number}]", depth + 1))
        return items
    _refuse(path, where, f"a {type(value).__name__} is not a metadata value")
    raise AssertionError("unreachable")


def _refuse(path: str, where: str, problem: str) -> None:
    raise MetadataInputError(f"{path}, field {where!r}: {problem}. Metadata values are "
                             f"{ALLOWED}.")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def document_size(path: str, doc: Mapping[str, Any]) -> int:
    """The document's size as Firestore counts it (name + fields + 32 bytes)."""
    name = sum(len(part.encode("utf-8")) + 1 for part in path.split("/")) + 16
    return name + _size(doc) + 32


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8")) + 1
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, datetime)):
        return 8
    if isinstance(value, Mapping):
        return sum(len(k.encode("utf-8")) + 1 + _size(v) for k, v in value.items())
    return sum(_size(v) for v in value)


def check_size(path: str, doc: Mapping[str, Any]) -> None:
    size = document_size(path, doc)
    if size > MAX_DOCUMENT_BYTES:
        raise MetadataInputError(f"{path} would be {size:,} bytes: documents are at most "
                                 f"{MAX_DOCUMENT_BYTES:,} bytes (Firestore's limit, kept by "
                                 "both backends). Split it into several documents.")


# --- the protocol, once ------------------------------------------------------------------------


class DocumentStore(ABC):
    """`MetadataStore` over five primitives; see the module docstring.

    Attributes:
        url: the store's URL, for messages.
        clock: the time source for leases (``datetime.now(UTC)``; tests pass their own).
    """

    url: str

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        self.url = url
        self.clock: Clock = clock or utc_now

    def get(self, path: str) -> dict[str, Any] | None:
        return self._get(paths.document(path))

    def set(self, path: str, doc: Mapping[str, Any]) -> None:
        path = paths.document(path)
        value = canonical_document(path, doc)
        check_size(path, value)
        self._set(path, value)

    def merge(self, path: str, fields: Mapping[str, Any]) -> None:
        path = paths.document(path)
        value = canonical_document(path, fields)

        def merged(current: dict[str, Any] | None) -> tuple[object, None]:
            new = {**(current or {}), **value}
            check_size(path, new)
            return new, None

        self._update(path, merged)

    def delete(self, path: str) -> None:
        self._delete(paths.document(path))

    def list(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self._list(paths.collection(collection)), key=lambda item: item[0])

    def acquire_lock(self, name: str, owner: str, stale_after: timedelta) -> Lease | None:
        path = paths.lock(name)
        owner = _check_owner(owner)
        if not isinstance(stale_after, timedelta) or stale_after <= timedelta(0):
            raise MetadataInputError(f"stale_after for lock {name!r} must be a positive "
                                     f"timedelta, not {stale_after!r}.")
        token = uuid.uuid4().hex

        def take(current: dict[str, Any] | None) -> tuple[object, Lease | None]:
            now = _now(self.clock)
            previous = None
            if current is not None:
                previous = _holder(path, current)
                if now - previous.heartbeat_at < stale_after:
                    return KEEP, None
            lease = Lease(name, owner, token, now,
                          previous.owner if previous else None,
                          previous.heartbeat_at if previous else None)
            return {"owner": owner, "token": token, "acquired_at": now, "heartbeat_at": now,
                    "stale_after_seconds": int(stale_after.total_seconds())}, lease

        lease: Lease | None = self._update(path, take)
        return lease

    def heartbeat(self, lease: Lease) -> None:
        path = _lease_path(lease)

        def beat(current: dict[str, Any] | None) -> tuple[object, None]:
            _check_ours(path, lease, current, "is lost")
            return {**(current or {}), "heartbeat_at": _now(self.clock)}, None

        self._update(path, beat)

    def release(self, lease: Lease) -> None:
        path = _lease_path(lease)

        def free(current: dict[str, Any] | None) -> tuple[object, None]:
            if current is None:
                return KEEP, None
            _check_ours(path, lease, current, "was not released")
            return None, None

        self._update(path, free)

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # --- what a backend supplies ---------------------------------------------------------------

    @abstractmethod
    def _get(self, path: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _set(self, path: str, doc: dict[str, Any]) -> None: ...

    @abstractmethod
    def _delete(self, path: str) -> None: ...

    @abstractmethod
    def _list(self, collection: str) -> builtins.list[tuple[str, dict[str, Any]]]: ...

    @abstractmethod
    def _update(self, path: str,
                change: Callable[[dict[str, Any] | None], tuple[object, Any]]) -> Any:
        """Atomically: read the document, call ``change(current)`` -> ``(new, result)``, then
        write ``new`` (a dict), delete it (None) or leave it (`KEEP`), and return ``result``.
        ``change`` may run more than once (a backend retries on contention) and may raise:
        then nothing is written."""

    @abstractmethod
    def close(self) -> None: ...


def lock_holder(store: MetadataStore, name: str) -> LockHolder | None:
    """Who holds lock ``name`` now (live or stale), or None: for "held by ... since" messages."""
    path = paths.lock(name)
    doc = store.get(path)
    return None if doc is None else _holder(path, doc)


def _holder(path: str, doc: Mapping[str, Any]) -> LockHolder:
    owner, acquired, beat = doc.get("owner"), doc.get("acquired_at"), doc.get("heartbeat_at")
    if not (isinstance(owner, str) and isinstance(acquired, datetime)
            and isinstance(beat, datetime) and isinstance(doc.get("token"), str)):
        raise MetadataError(f"{path} is not a costflow lock (it needs owner, token, acquired_at "
                            "and heartbeat_at): another program wrote it. Delete the document "
                            "if no costflow process is running.")
    return LockHolder(owner, acquired, beat)


def _check_ours(path: str, lease: Lease, current: Mapping[str, Any] | None, what: str) -> None:
    if current is None:
        raise LockLost(f"the lease of {lease.owner!r} on {path} {what}: the lock was released "
                       "(or deleted) meanwhile. Stop the work it protected.")
    if current.get("token") != lease.token:
        holder = _holder(path, current)
        raise LockLost(f"the lease of {lease.owner!r} on {path} {what}: {holder.owner!r} holds "
                       f"the lock since {holder.acquired_at.isoformat()} (it took the lock "
                       "over when this lease's heartbeat was older than its stale_after). Stop "
                       "the work the lock protected.")


def _lease_path(lease: object) -> str:
    if not isinstance(lease, Lease):
        raise MetadataInputError(f"expected a Lease from acquire_lock, not "
                                 f"{type(lease).__name__}.")
    return paths.lock(lease.name)


def _check_owner(owner: object) -> str:
    if not (isinstance(owner, str) and owner and len(owner) <= OWNER_MAX_CHARS
            and owner.isprintable() and not _has_surrogate(owner)):
        raise MetadataInputError(f"a lock owner must be 1 to {OWNER_MAX_CHARS} printable "
                                 "characters (e.g. 'host:pid'), not "
                                 f"{owner!r:.80}.")
    return str.__str__(owner)


def _now(clock: Clock) -> datetime:
    now: datetime = _value("the lock clock", clock(), "now", 1)
    return now
