"""The metadata store (F6 §5): what `costflow sync` reads and writes besides the warehouse.

Tenants, their settings and policies, cloud accounts and their sync state (last delivery seen,
last success, consecutive failures), users, and the lock that keeps two syncs from loading the
same warehouse at once, in the design's Firestore layout (`paths`), over two backends chosen
by URL:

    local:///.costflow/metadata.sqlite        SQLite file, relative to the working directory
    local:////abs/path/metadata.sqlite        SQLite file, absolute path
    firestore://PROJECT                       Firestore, the "(default)" database
    firestore://PROJECT/DATABASE              Firestore, a named database

    store = connect(resolve_url())
    store.merge(paths.cloud_account("acme", "123456789012"), {"last_success": now})
    lease = store.acquire_lock("sync", owner="host:1234", stale_after=timedelta(hours=6))
    if lease is None: ...                     # a live sync holds it: see lock_holder()
    store.heartbeat(lease); store.release(lease)

Both backends implement `MetadataStore` through `DocumentStore`, so they accept, refuse and
return exactly the same values (see `base`). Errors are `MetadataError` subclasses (`errors`).
`connect` opens nothing: a file or client is opened on first use.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from costflow.metadata import paths
from costflow.metadata.base import (
    DocumentStore,
    Lease,
    LockHolder,
    MetadataStore,
    canonical_document,
    lock_holder,
)
from costflow.metadata.errors import (
    LockLost,
    MetadataAccessDenied,
    MetadataError,
    MetadataInputError,
    MetadataUnavailable,
)

ENV_VAR = "COSTFLOW_METADATA"
DEFAULT_URL = "local:///.costflow/metadata.sqlite"
LOCAL_PREFIX = "local:///"
ACCEPTED = (
    "Accepted metadata store URLs: local:///relative/file.sqlite (relative to the working "
    "directory), local:////absolute/file.sqlite, firestore://PROJECT and "
    f"firestore://PROJECT/DATABASE. Set it with --metadata or {ENV_VAR}; the default is "
    f"{DEFAULT_URL}."
)

__all__ = ["DEFAULT_URL", "ENV_VAR", "DocumentStore", "Lease", "LockHolder", "LockLost",
           "MetadataAccessDenied", "MetadataError", "MetadataInputError", "MetadataStore",
           "MetadataUnavailable", "canonical_document", "check_url", "connect", "lock_holder",
           "paths", "resolve_url"]


def resolve_url(flag: str | None = None) -> str:
    """The metadata URL to use: the flag, else ``$COSTFLOW_METADATA``, else the default."""
    return flag or os.environ.get(ENV_VAR) or DEFAULT_URL


def check_url(url: object) -> tuple[str, tuple[str, ...]]:
    """``("local", (path,))`` or ``("firestore", (project, database))`` for a valid URL.

    Opens nothing (the config loader calls it to check a URL). Raises `MetadataInputError`
    (a `ConfigError`) naming the accepted forms.
    """
    if not isinstance(url, str) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise MetadataInputError(f"the metadata store URL must be printable text. {ACCEPTED}")
    if url.startswith(LOCAL_PREFIX):
        path = url[len(LOCAL_PREFIX):]
        if (not path or "?" in path or "#" in path or path.endswith("/")
                or path.rstrip("/").split("/")[-1] in ("", ".", "..")):
            raise MetadataInputError(f"{url!r} does not name a file. {ACCEPTED}")
        return "local", (path,)
    parts = urlsplit(url)
    if (parts.scheme == "firestore" and parts.netloc and not parts.query and not parts.fragment
            and "@" not in parts.netloc and ":" not in parts.netloc):
        database = parts.path.strip("/") or "(default)"
        if "/" not in database:
            from costflow.metadata.firestore import check_ids

            check_ids(parts.netloc, database)
            return "firestore", (parts.netloc, database)
    raise MetadataInputError(f"{url[:120]!r} is not a metadata store URL. {ACCEPTED}")


def connect(url: str = DEFAULT_URL, **options: Any) -> DocumentStore:
    """The metadata store a URL names (nothing is opened until it is used).

    Args:
        url: one of the forms above.
        **options: passed to the backend: ``timeout`` (seconds) and ``clock`` (both);
            ``client`` or ``credentials`` (Firestore).

    Raises:
        MetadataInputError: the URL is not one of the accepted forms.
    """
    kind, args = check_url(url)
    if kind == "local":
        from costflow.metadata.local import LocalMetadataStore

        return LocalMetadataStore(args[0], url=url, **options)
    from costflow.metadata.firestore import FirestoreMetadataStore

    return FirestoreMetadataStore(*args, **options)
