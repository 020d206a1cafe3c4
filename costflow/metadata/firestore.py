"""The Firestore metadata store (F6 §5.2: "MVP: Firestore"), google-cloud-firestore.

    firestore://PROJECT              the project's "(default)" database
    firestore://PROJECT/DATABASE     a named database

Documents are Firestore documents at the same paths (`costflow.metadata.paths`), holding the
same values (datetimes as Firestore timestamps, Decimals as their exact text).

Read-modify-writes (merge, and the three lock operations) are compare-and-swap writes: read
the document, then write with a precondition, ``create`` (fails if it exists meanwhile) or
an update/delete conditioned on the update time read (fails if anyone wrote since); the loser
reads again. Atomic like a transaction, so two processes never both take a lock, but without
read locks: read-write transactions that race on one document deadlock on their read locks
in the emulator, each attempt waiting out a 2 s lock timeout (measured: four writers merging
into one document exhausted the SDK's attempts). The client is built on first use, with Application
Default Credentials unless ``credentials`` or a ready ``client`` is given; with
``FIRESTORE_EMULATOR_HOST`` set, the SDK talks to that emulator instead (no credentials).

The identity needs the Cloud Datastore User role (``roles/datastore.user``) on the project.
SDK errors become costflow errors naming the URL and the document: PERMISSION_DENIED and
UNAUTHENTICATED `MetadataAccessDenied`; UNAVAILABLE, DEADLINE_EXCEEDED and retries that ran
out of time `MetadataUnavailable`; a database that does not exist, or any other refusal,
`MetadataError`. Calls are retried on UNAVAILABLE/DEADLINE_EXCEEDED for up to ``timeout``
seconds in all. A client is not fork-safe (gRPC): build the store in the process that uses it.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from costflow.metadata.base import KEEP, Clock, DocumentStore
from costflow.metadata.errors import (
    MetadataAccessDenied,
    MetadataError,
    MetadataInputError,
    MetadataUnavailable,
    one_line,
)

DEFAULT_DATABASE = "(default)"
EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"
ROLE = "the Cloud Datastore User role (roles/datastore.user)"
# GCP project ids: 6-30 lowercase letters, digits and hyphens, starting with a letter.
PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", re.ASCII)
# Firestore database ids: 4-63 lowercase letters, digits and hyphens, starting with a letter.
DATABASE_ID = re.compile(r"[a-z][a-z0-9-]{2,61}[a-z0-9]", re.ASCII)


def check_ids(project: str, database: str) -> None:
    """`MetadataInputError` unless both are ids Firestore accepts."""
    if not PROJECT_ID.fullmatch(project):
        raise MetadataInputError(f"{project[:80]!r} is not a GCP project id (6 to 30 lowercase "
                                 "letters, digits and hyphens, starting with a letter).")
    if database != DEFAULT_DATABASE and not DATABASE_ID.fullmatch(database):
        raise MetadataInputError(f"{database[:80]!r} is not a Firestore database id: "
                                 f"{DEFAULT_DATABASE} or 4 to 63 lowercase letters, digits and "
                                 "hyphens starting with a letter.")


class FirestoreMetadataStore(DocumentStore):
    """Documents in a Firestore database (see the module docstring).

    Args:
        project: the GCP project id.
        database: the database id (default ``(default)``).
        url: how messages name the store (default ``firestore://PROJECT[/DATABASE]``).
        client: a ready ``google.cloud.firestore.Client`` (tests, or a shared one).
        credentials: ``google.auth`` credentials instead of Application Default Credentials.
        timeout: seconds a call may take in all, retries included (default 30).
        clock: the time source for leases.
    """

    def __init__(self, project: str, database: str = DEFAULT_DATABASE, *,
                 url: str | None = None, client: Any = None, credentials: Any = None,
                 timeout: float = 30.0, clock: Clock | None = None) -> None:
        check_ids(project, database)
        suffix = "" if database == DEFAULT_DATABASE else f"/{database}"
        super().__init__(url or f"firestore://{project}{suffix}", clock)
        self.project, self.database = project, database
        self.timeout = float(timeout)
        self._client = client
        self._credentials = credentials
        self._retry: Any = None

    # --- primitives ----------------------------------------------------------------------------

    def _get(self, path: str) -> dict[str, Any] | None:
        with self._calls(path, "reading") as client:
            snap = client.document(path).get(**self._options())
            return _decode(snap.to_dict()) if snap.exists else None

    def _set(self, path: str, doc: dict[str, Any]) -> None:
        with self._calls(path, "writing") as client:
            client.document(path).set(doc, **self._options())

    def _delete(self, path: str) -> None:
        with self._calls(path, "deleting") as client:
            client.document(path).delete(**self._options())

    def _list(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with self._calls(collection, "listing") as client:
            return [(snap.id, _decode(snap.to_dict()))
                    for snap in client.collection(collection).stream(**self._options())]

    def _update(self, path: str,
                change: Callable[[dict[str, Any] | None], tuple[object, Any]]) -> Any:
        """Compare-and-swap: read, then write only if the document is still the one read
        (``create`` when it was absent, else a precondition on its update time); on a lost
        race read again, after a short random pause, until ``timeout``."""
        from google.api_core import exceptions as gexc
        from google.cloud import firestore
        from google.cloud.firestore_v1.field_path import FieldPath

        deadline = time.monotonic() + self.timeout
        with self._calls(path, "updating") as client:
            ref = client.document(path)
            for attempt in itertools.count(1):
                snap = ref.get(**self._options())
                current = _decode(snap.to_dict()) if snap.exists else None
                new, result = change(current)
                try:
                    if new is KEEP or (new is None and current is None) or new == current:
                        return result
                    if new is None:
                        ref.delete(option=client.write_option(last_update_time=snap.update_time),
                                   **self._options())
                    elif current is None:
                        ref.create(new, **self._options())
                    else:
                        assert isinstance(new, dict)
                        fields = {FieldPath(key).to_api_repr(): value
                                  for key, value in new.items()}
                        fields.update({FieldPath(key).to_api_repr(): firestore.DELETE_FIELD
                                       for key in current if key not in new})
                        ref.update(fields,
                                   option=client.write_option(last_update_time=snap.update_time),
                                   **self._options())
                    return result
                except (gexc.Conflict, gexc.FailedPrecondition, gexc.Aborted) as exc:
                    if time.monotonic() > deadline:
                        raise _Contention(attempt, exc.message) from None
                    time.sleep(random.uniform(0, min(0.02 * attempt, 0.25)))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- the client ----------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        if self._retry is None:
            from google.api_core import exceptions, retry

            self._retry = retry.Retry(
                predicate=retry.if_exception_type(exceptions.ServiceUnavailable,
                                                  exceptions.DeadlineExceeded),
                initial=0.1, maximum=2.0, multiplier=2.0, timeout=self.timeout)
        return {"retry": self._retry, "timeout": self.timeout}

    def _connect(self) -> Any:
        if self._client is None:
            from google.cloud import firestore

            self._client = firestore.Client(project=self.project, database=self.database,
                                            credentials=self._credentials)
        return self._client

    def _where(self) -> str:
        host = getattr(self._client, "_emulator_host", None) or os.environ.get(EMULATOR_ENV)
        return f"{self.url} (emulator at {host})" if host else self.url

    @contextmanager
    def _calls(self, path: str, doing: str) -> Iterator[Any]:
        """The client, with the SDK's errors as costflow's (no chained traceback)."""
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        problem: MetadataError
        try:
            yield self._connect()
            return
        except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
            problem = MetadataAccessDenied(
                f"access denied {doing} {path} in {self._where()}: the identity needs {ROLE} "
                f"on project {self.project}. Firestore said: {one_line(exc.message)}")
        except auth_exc.GoogleAuthError as exc:
            problem = MetadataAccessDenied(
                f"no usable Google credentials for {self._where()} ({doing} {path}): run "
                "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS "
                f"to a service account key with {ROLE}. ({type(exc).__name__}: "
                f"{one_line(str(exc), 200)})")
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
            problem = MetadataUnavailable(
                f"{self._where()} cannot be reached ({doing} {path}, {self.timeout:g} s "
                "with retries): check the network and the project and database names (and "
                f"{EMULATOR_ENV} when using the emulator). ({type(exc).__name__}: "
                f"{one_line(str(exc), 200)})")
        except gexc.NotFound as exc:
            problem = MetadataError(
                f"{self._where()} was not found ({doing} {path}): create the database (gcloud "
                f"firestore databases create --database={self.database} --project="
                f"{self.project}) or fix the metadata URL. Firestore said: "
                f"{one_line(exc.message)}")
        except gexc.GoogleAPICallError as exc:
            problem = MetadataError(f"{self._where()} refused {doing} {path}: "
                                    f"{type(exc).__name__}: {one_line(exc.message)}")
        except _Contention as exc:
            problem = MetadataUnavailable(
                f"{self._where()}: {doing} {path} lost the race to other writers "
                f"{exc.attempts} times in {self.timeout:g} s; try again. (last: "
                f"{one_line(exc.detail, 200)})")
        raise problem from None


class _Contention(Exception):
    def __init__(self, attempts: int, detail: str) -> None:
        super().__init__(detail)
        self.attempts, self.detail = attempts, detail


def _decode(value: Any) -> Any:
    """Firestore's values as the store's: timestamps become plain aware UTC datetimes, and
    fields come sorted by name (Firestore's own order varies), as the local backend's do."""
    if isinstance(value, dict):
        return {key: _decode(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
                        utc.microsecond, tzinfo=UTC)
    return value
