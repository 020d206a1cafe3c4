"""``az://container/prefix``: Azure Cost Management exports read from Azure Blob Storage.

Why this module exists: exports land in a storage container, one folder per run and month
[PF §3.3]. This planner lists the prefix once with the official azure-storage-blob client, keeps
only the latest run of each export and month (manifest ``runInfo.submittedTime``, else the run
folder's timestamp) *before* anything is downloaded, and hands the chosen blobs to the ordinary
header checks; an opener streams a blob to the csv/parquet readers. Pairing of actual and
amortized runs is then done by the Azure plan finisher (`costflow.providers.azure.exports`).

Credentials come from the source's reference (``--credentials secret://...``: a
``connection_string``, or a service principal on ``account_url``; see
`costflow.sources.credentials`), else from the environment: ``AZURE_STORAGE_CONNECTION_STRING``
(account key, SAS, or Azurite), else ``AZURE_STORAGE_ACCOUNT_URL`` / ``AZURE_STORAGE_ACCOUNT``
with DefaultAzureCredential (managed identity, az login, ...).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import defaultdict
from typing import IO, Any

from costflow.errors import ConfigError, SourceError
from costflow.providers.azure.exports import EXPORT_LAYOUT
from costflow.sources import credentials as creds
from costflow.sources import files as file_sources
from costflow.sources.contract import Plan, PlanRequest
from costflow.sources.credentials import CredentialsRef

SPOOL_BYTES = 64 << 20  # blobs up to this size stay in memory while read
_local = threading.local()


def split(uri: str) -> tuple[str, str]:
    """``az://container/some/prefix`` -> (container, ``some/prefix``)."""
    rest = uri.split("://", 1)[1]
    container, _, prefix = rest.partition("/")
    if not container:
        raise ConfigError(f"--source {uri!r}: expected az://<container>/<prefix>.")
    return container, prefix


def _account_url() -> str | None:
    url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
    account = os.environ.get("AZURE_STORAGE_ACCOUNT")
    if not url and account:
        url = f"https://{account}.blob.core.windows.net"
    return url


def service_client(credentials: CredentialsRef | None = None, uri: str | None = None):
    """A BlobServiceClient from the source's credentials (one per thread and reference: it
    keeps its connection pool and tokens), else a new one from the environment (see module
    docstring)."""
    if credentials is None:
        return _environment_client()
    clients: dict[Any, Any] = getattr(_local, "clients", None) or {}
    _local.clients = clients
    key = (credentials.store, credentials.name)
    if key not in clients:
        clients[key] = creds.azure_blob_service(credentials, _account_url(), uri)
    return clients[key]


def reset_client() -> None:
    """Forget this thread's clients (after the environment or credentials changed)."""
    _local.clients = {}


def _environment_client():
    from azure.storage.blob import BlobServiceClient

    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        return BlobServiceClient.from_connection_string(connection)
    url = _account_url()
    if not url:
        raise ConfigError("az:// sources need AZURE_STORAGE_CONNECTION_STRING, or "
                          "AZURE_STORAGE_ACCOUNT_URL / AZURE_STORAGE_ACCOUNT with a credential "
                          "DefaultAzureCredential can find.")
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(account_url=url, credential=DefaultAzureCredential())


def open_blob(uri: str, credentials: CredentialsRef | None = None) -> IO[bytes]:
    """A seekable binary file holding the blob (spooled to disk when large)."""
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

    container, name = split(uri)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - caller closes
    try:
        service_client(credentials, uri).get_blob_client(container, name).download_blob(
        ).readinto(spool)
    except ResourceNotFoundError:
        spool.close()
        raise FileNotFoundError(uri) from None
    except ClientAuthenticationError as exc:
        spool.close()
        raise _refused(uri, exc, credentials) from None
    spool.seek(0)
    return spool


def _refused(uri: str, exc: Exception, credentials: CredentialsRef | None) -> SourceError:
    """Storage refused the key / token (403, or a failed token request): one paragraph."""
    said = creds.scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if credentials is None:
        return SourceError(uri, f"Azure Storage refused the credentials in use ({said}).",
                           expected="credentials allowed to list and read the container's "
                           "blobs (Storage Blob Data Reader)")
    return SourceError(uri, f"Azure Storage refused the credentials {credentials.uri} "
                       f"({said}). Nothing was loaded from this source.",
                       expected="credentials allowed to list and read the container's blobs "
                       "(Storage Blob Data Reader): if the key or client secret was revoked "
                       f"or rotated, store the current one with `costflow secrets rotate "
                       f"{credentials.name} --from-file FILE`")


def _manifest_time(container_client, folder: str) -> str:
    try:
        data = container_client.get_blob_client(f"{folder}/manifest.json").download_blob()
        return (json.loads(data.readall()).get("runInfo") or {}).get("submittedTime") or ""
    except Exception:  # noqa: BLE001 - no manifest (or not JSON): order by path instead
        return ""


def latest_runs(container_client, names: list[str]) -> tuple[list[str], list[str]]:
    """(blob names of the latest run per export and month, notes on runs passed over)."""
    runs: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    loose = []
    for name in names:
        match = EXPORT_LAYOUT.match("/" + name)
        if match and match.group("run"):
            folder = name.rsplit("/", 1)[0]
            runs[(match.group("base") + "/" + match.group("export"), match.group("month"))][
                folder].append(name)
        else:
            loose.append(name)
    kept, notes = list(loose), []
    for (export, month), folders in runs.items():
        def order(folder: str) -> tuple[str, str]:
            return (_manifest_time(container_client, folder), folder)
        latest = max(folders, key=order)
        kept += folders[latest]
        if len(folders) > 1:
            notes.append(f"az:{export} {month}: read only the latest export run "
                         f"{latest.rsplit('/', 1)[1]}; {len(folders) - 1} older run(s) "
                         "passed over (each run is a full month-to-date snapshot)")
    return sorted(kept), notes


def plan_az(pattern: str, request: PlanRequest) -> Plan:
    """Plan ``az://container/prefix``: the latest run per export and month, inspected."""
    from azure.core.exceptions import ClientAuthenticationError

    container, prefix = split(pattern)
    client = service_client(request.credentials, pattern).get_container_client(container)
    try:
        names = [b.name for b in client.list_blobs(name_starts_with=prefix or None)
                 if b.name.lower().endswith(file_sources.SUPPORTED_SUFFIXES)]
    except ClientAuthenticationError as exc:
        raise _refused(pattern, exc, request.credentials) from None
    except Exception as exc:  # noqa: BLE001 - the storage error is what the user needs
        said = creds.scrub(str(exc).splitlines()[0] if str(exc) else "")
        raise SourceError(pattern, f"cannot list the container: {type(exc).__name__}: "
                          f"{said}") from None
    if not names:
        raise SourceError(pattern, "matches no blob.",
                          expected=f"blobs ending in {', '.join(file_sources.SUPPORTED_SUFFIXES)}")
    kept, notes = latest_runs(client, names)
    plan = Plan(notes=notes)
    for name in kept:
        uri = f"az://{container}/{name}"
        source = file_sources.inspect(uri, request)
        if source is None:
            plan.empty_files.append(uri)
        else:
            plan.files.append(source)
    return plan

