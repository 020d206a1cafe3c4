"""The local metadata store: one SQLite file, ``.costflow/metadata.sqlite`` (the default).

    local:///.costflow/metadata.sqlite        relative to the working directory (the default)
    local:////var/lib/costflow/meta.sqlite    absolute path

One table, ``documents``: the full document path is the key, beside the parent collection
(indexed, for `list`), the id and the body as JSON (datetimes as ``{"__dt__": ISO text}``, a
field name no document can have: ``__name__`` names are refused). SQLite and not the
warehouse: DuckDB lets one process write a file at a time, while `costflow sync` runs ingests
beside the process that records their state and holds the lock.

Two processes at once are safe: the file is in WAL mode (readers never wait for the writer),
every read-modify-write (merge, and the three lock operations) runs in one ``BEGIN IMMEDIATE``
transaction, which takes the write lock before reading, so two `acquire_lock` calls never both
see the lock free; a writer that finds the file busy waits up to ``timeout`` seconds
(``busy_timeout``) and then fails with `MetadataUnavailable`. A commit is all or nothing, even
when the process dies halfway (``synchronous=FULL``). Not for a network file system: SQLite's
locking (and WAL's shared memory) needs one machine's local disk.

The file is created 0600 in a directory created 0700 (its WAL and shared-memory files take the
file's mode); a file found readable by others is tightened to 0600. It holds no secrets:
accounts name their credentials by reference (``secret://...``) only. A connection opened
before a fork is never reused by the child: it opens its own.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from costflow.metadata.base import KEEP, Clock, DocumentStore
from costflow.metadata.errors import (
    MetadataAccessDenied,
    MetadataError,
    MetadataUnavailable,
    one_line,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_DATETIME = "__dt__"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    path       TEXT PRIMARY KEY,   -- tenants/acme/cloud_accounts/123
    parent     TEXT NOT NULL,      -- tenants/acme/cloud_accounts
    id         TEXT NOT NULL,      -- 123
    body       TEXT NOT NULL,      -- the document, JSON
    updated_at TEXT NOT NULL       -- UTC, ISO 8601
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_parent ON documents (parent, id);
"""


class LocalMetadataStore(DocumentStore):
    """Documents in one SQLite file (see the module docstring).

    Args:
        path: the file (created 0600, its directory 0700, on first use).
        url: how messages name the store (default ``local:///`` + the absolute path).
        timeout: seconds to wait for a file another process is writing (default 30).
        clock: the time source for leases.
    """

    def __init__(self, path: str | Path, *, url: str | None = None, timeout: float = 30.0,
                 clock: Clock | None = None) -> None:
        self.path = Path(path).absolute()
        super().__init__(url or f"local:///{self.path}", clock)
        self.timeout = float(timeout)
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._mutex = threading.RLock()

    # --- primitives ----------------------------------------------------------------------------

    def _get(self, path: str) -> dict[str, Any] | None:
        with self._session(path) as db:
            row = db.execute("SELECT body FROM documents WHERE path = ?", (path,)).fetchone()
        return None if row is None else _decode(row[0])

    def _set(self, path: str, doc: dict[str, Any]) -> None:
        with self._session(path) as db:
            _write(db, path, doc)

    def _delete(self, path: str) -> None:
        with self._session(path) as db:
            db.execute("DELETE FROM documents WHERE path = ?", (path,))

    def _list(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with self._session(collection) as db:
            rows = db.execute("SELECT id, body FROM documents WHERE parent = ? ORDER BY id",
                              (collection,)).fetchall()
        return [(ident, _decode(body)) for ident, body in rows]

    def _update(self, path: str,
                change: Callable[[dict[str, Any] | None], tuple[object, Any]]) -> Any:
        with self._session(path) as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no one changes it under us
            try:
                row = db.execute("SELECT body FROM documents WHERE path = ?",
                                 (path,)).fetchone()
                new, result = change(None if row is None else _decode(row[0]))
                if new is None:
                    db.execute("DELETE FROM documents WHERE path = ?", (path,))
                elif new is not KEEP:
                    _write(db, path, new)  # type: ignore[arg-type]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return result

    def close(self) -> None:
        with self._mutex:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    # --- the file ------------------------------------------------------------------------------

    @contextmanager
    def _session(self, path: str) -> Iterator[sqlite3.Connection]:
        """The connection, one operation at a time, with SQLite's errors as costflow's."""
        with self._mutex:
            try:
                yield self._connect()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "locked" in text or "busy" in text:
                    raise MetadataUnavailable(
                        f"the metadata store {self.path} stayed busy for more than "
                        f"{self.timeout:g} s while reading or writing {path}: another process "
                        "holds it (a long sync?). Try again later.") from None
                raise MetadataError(f"the metadata store {self.path} failed on {path}: "
                                    f"{one_line(text)}.") from None
            except sqlite3.DatabaseError as exc:
                raise MetadataError(f"{self.path} is not a usable costflow metadata store "
                                    f"(SQLite says: {one_line(str(exc))}). Point the metadata "
                                    "URL at another file, or move this one away.") from None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        self._connection = None  # a connection inherited over fork is left alone
        self._prepare_file()
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                             check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise MetadataError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); "
                                    "the metadata store needs a local file system.")
            db.execute("PRAGMA synchronous = FULL")
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MetadataError(f"{self.path} was written by a newer costflow (schema "
                                    f"{version}; this one knows {SCHEMA_VERSION}): upgrade "
                                    "costflow.")
            if version < SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        self._connection, self._pid = db, os.getpid()
        return db

    def _prepare_file(self) -> None:
        """Create the directory (0700) and the file (0600), or check the ones found."""
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600)
                os.close(fd)
                log.info("created the metadata store %s", self.path)
            except FileExistsError:
                pass
            st = os.lstat(self.path)
        except PermissionError as exc:
            raise MetadataAccessDenied(f"cannot create or open the metadata store {self.path}: "
                                       f"{exc.strerror}.") from None
        except OSError as exc:
            raise MetadataUnavailable(f"cannot create or open the metadata store {self.path}: "
                                      f"{exc.strerror}.") from None
        if not stat.S_ISREG(st.st_mode):
            raise MetadataAccessDenied(f"{self.path} is not a regular file (a directory or a "
                                       "symbolic link?): the metadata store must be a file only "
                                       "you can read.")
        if st.st_uid != os.geteuid():
            raise MetadataAccessDenied(f"{self.path} belongs to user id {st.st_uid}, not to "
                                       "you: the metadata store must be a file only you can "
                                       "read.")
        if st.st_mode & 0o077:
            log.warning("%s was readable by others (mode %o): tightened to 0600", self.path,
                        stat.S_IMODE(st.st_mode))
            os.chmod(self.path, 0o600)


def _write(db: sqlite3.Connection, path: str, doc: dict[str, Any]) -> None:
    parent, _, ident = path.rpartition("/")
    db.execute("INSERT INTO documents (path, parent, id, body, updated_at) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
               "body = excluded.body, updated_at = excluded.updated_at",
               (path, parent, ident, _encode(doc), datetime.now(UTC).isoformat()))


def _encode(doc: dict[str, Any]) -> str:
    def tagged(value: object) -> object:
        if isinstance(value, datetime):
            return {_DATETIME: value.isoformat()}
        raise TypeError(f"not a canonical metadata value: {type(value).__name__}")

    return json.dumps(doc, default=tagged, ensure_ascii=False, separators=(",", ":"))


def _decode(body: str) -> dict[str, Any]:
    def untagged(obj: dict[str, Any]) -> object:
        if len(obj) == 1 and _DATETIME in obj:
            return datetime.fromisoformat(obj[_DATETIME]).replace(tzinfo=UTC)
        return dict(sorted(obj.items()))  # fields by name, as the Firestore backend gives them

    doc: dict[str, Any] = json.loads(body, object_hook=untagged)
    return doc
