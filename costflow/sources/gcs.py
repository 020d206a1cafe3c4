"""``gs://`` with a source's own service account instead of the process's default identity.

Why this module exists: Beam's filesystem registry (`FileSystems`) builds one GCS client per
process from Application Default Credentials. A source that names its credentials
(``--credentials secret://cloud-creds/acme/gcp``) must list and read with *that* service
account, so its gs:// paths go through a `GCSFileSystem` whose `GcsIO` wraps a
``google.cloud.storage.Client`` built from the secret (`costflow.sources.credentials`). One
per (store, secret) per process; the storage client is thread-safe. ``STORAGE_EMULATOR_HOST``
is honoured by the storage library itself, as for the default client.
"""

from __future__ import annotations

import threading
from typing import Any

from costflow.sources import credentials as creds
from costflow.sources.credentials import CredentialsRef

_filesystems: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def filesystem(ref: CredentialsRef, uri: str | None = None) -> Any:
    """A Beam `GCSFileSystem` reading with the service account ``ref`` names."""
    key = (ref.store, ref.name)
    with _lock:
        found = _filesystems.get(key)
    if found is not None:
        return found
    from apache_beam.io.gcp import gcsio
    from apache_beam.io.gcp.gcsfilesystem import GCSFileSystem
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.cloud import storage

    client = storage.Client(project=creds.gcp_project(ref, uri),
                            credentials=creds.gcp_credentials(ref, uri))
    io = gcsio.GcsIO(storage_client=client)

    class _WithCredentials(GCSFileSystem):
        def _gcsIO(self) -> Any:  # noqa: N802 - Beam's name
            return io

    made = _WithCredentials(PipelineOptions())
    with _lock:
        return _filesystems.setdefault(key, made)


def clear_cache() -> None:
    with _lock:
        _filesystems.clear()
