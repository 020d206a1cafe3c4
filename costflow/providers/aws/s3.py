"""AWS billing deliveries in S3: plan only the current delivery of each billing period.

Why this module exists: AWS delivers every CUR / Data Export refresh as a full month-to-date
snapshot, beside the older ones, and says which is current only in a manifest [PF §2.3, §2.4].
Reading every file under the prefix would count a month several times. This planner lists the
prefix, finds the manifests, reads only the files the current manifest of each billing period
names, and records the delivery (assembly / execution id) on every `SourceFile`, so the ledger
knows what was loaded and an unchanged delivery can be skipped (`costflow.pipelines.unchanged`).

Layouts understood:

* legacy CUR, CREATE_NEW_REPORT: ``<prefix>/<name>/<yyyymmdd-yyyymmdd>/<name>-Manifest.json``
  (overwritten on every update, names the current ``assemblyId`` and its ``reportKeys``);
  per-assembly manifests one level down are ignored. OVERWRITE_REPORT uses the same manifest.
* Data Exports (CUR 2.0, FOCUS): ``<export>/metadata/BILLING_PERIOD=YYYY-MM/[...]/
  <export>-Manifest.json``; its data files come from ``dataFiles`` (or ``reportKeys``), else
  from the latest ``<YYYYMMDDTHHMMSSZ>-<executionId>/`` folder of the data partition.
* no manifest at all (e.g. Athena Parquet, always overwritten): every data file is read.

Reading streams objects (`S3ObjectFile`: one GET per sequential read, a ranged GET per seek, so
Parquet footers and row groups are fetched without downloading the file) instead of downloading
to a temporary directory at planning: planning happens on the launching machine, reading on the
workers (Dataflow), which cannot see the launcher's disk. The boto3 client is built lazily per
thread, from the source's credentials reference (`costflow.sources.credentials`, resolved where
the client is built) or else the standard chain (environment, profile, SSO, instance role). The
endpoint can be overridden (moto, MinIO) with ``COSTFLOW_S3_ENDPOINT_URL`` or boto3's own
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

[PF x] = ../shared/reference/provider_formats.md section x.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import posixpath
import re
import threading
from typing import Any

from costflow.errors import ConfigError, CostflowError, SourceError
from costflow.sources import credentials as creds
from costflow.sources import files as file_sources
from costflow.sources.contract import Plan, PlanRequest
from costflow.sources.credentials import CredentialsRef

ENDPOINT_ENV = "COSTFLOW_S3_ENDPOINT_URL"
READ_BLOCK_BYTES = 8 << 20
_LEGACY_MANIFEST = re.compile(r"^(?P<root>.*?)(?P<period>\d{8}-\d{8})/(?P<name>[^/]+)"
                              r"-Manifest\.json$")
_EXPORT_MANIFEST = re.compile(r"^(?P<root>.*?)metadata/BILLING_PERIOD=(?P<period>[^/]+)/"
                              r"(?P<rest>.*-Manifest\.json)$")
_EXECUTION_DIR = re.compile(r"^\d{8}T\d{6}Z-(?P<id>[0-9A-Za-z-]+)$")
_local = threading.local()


def client(credentials: CredentialsRef | None = None, uri: str | None = None) -> Any:
    """This thread's boto3 S3 client for ``credentials`` (None: boto3's standard chain),
    built on first use (never pickled into the pipeline). ``uri`` names the source in the
    error when the credentials cannot be resolved."""
    clients: dict[Any, Any] = getattr(_local, "clients", None) or {}
    _local.clients = clients
    key = None if credentials is None else (credentials.store, credentials.name)
    if clients.get(key) is None:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - boto3 is a runtime dependency
            raise ConfigError("Reading s3:// needs boto3 (pip install costflow).") from exc
        session = (boto3.session.Session() if credentials is None
                   else creds.aws_session(credentials, uri))
        clients[key] = session.client("s3", endpoint_url=os.environ.get(ENDPOINT_ENV) or None)
    return clients[key]


def reset_client() -> None:
    """Forget this thread's clients (after the endpoint or credentials changed)."""
    _local.clients = {}


def split_uri(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket; expected s3://bucket/prefix/.")
    return bucket, key


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


# What S3 answers for keys that are wrong, revoked or expired (and for a refused signature).
_BAD_KEY = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                      "InvalidToken", "TokenRefreshRequired"})


def _client_error(uri: str, exc: Exception,
                  credentials: CredentialsRef | None = None) -> SourceError:
    code = _error_code(exc)
    said = creds.scrub(str(exc))
    if credentials is None:
        return SourceError(uri, f"cannot be read from S3 ({code}: {said}).",
                           expected="an object the credentials in use may read (s3:GetObject, "
                           "s3:ListBucket)")
    if code in _BAD_KEY or code in ("AccessDenied", "403", "Forbidden"):
        fix = ("the keys were revoked, rotated or mistyped: store the current ones with "
               f"`costflow secrets rotate {credentials.name} --from-file FILE`"
               if code in _BAD_KEY else "grant these credentials s3:ListBucket and "
               "s3:GetObject on the bucket, or store other keys with `costflow secrets rotate "
               f"{credentials.name} --from-file FILE`")
        return SourceError(uri, f"S3 refused the credentials {credentials.uri} ({code}: "
                           f"{said}). Nothing was loaded from this source.",
                           expected=f"credentials S3 accepts: {fix}")
    return SourceError(uri, f"cannot be read from S3 with the credentials {credentials.uri} "
                       f"({code}: {said}).", expected="an object these credentials may read "
                       "(s3:GetObject, s3:ListBucket)")


class S3ObjectFile(io.RawIOBase):
    """A seekable, read-only file over one S3 object.

    Sequential reads share one streaming GET; a seek elsewhere starts a ranged GET there.
    """

    def __init__(self, uri: str, credentials: CredentialsRef | None = None) -> None:
        super().__init__()
        self.uri = uri
        self.credentials = credentials
        self.bucket, self.key = split_uri(uri)
        try:
            head = client(credentials, uri).head_object(Bucket=self.bucket, Key=self.key)
        except CostflowError:
            raise
        except Exception as exc:
            raise _client_error(uri, exc, credentials) from None
        self.size = int(head["ContentLength"])
        # Every GET of this file asks for this version (If-Match): a ranged GET after a seek
        # never mixes the bytes of an object that was overwritten while it was read.
        self.etag = head.get("ETag")
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self.size or not len(buffer):
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._close_body()
            pinned = {"IfMatch": self.etag} if self.etag else {}
            try:
                response = client(self.credentials, self.uri).get_object(
                    Bucket=self.bucket, Key=self.key, Range=f"bytes={self._pos}-", **pinned)
            except Exception as exc:
                if _error_code(exc) in ("PreconditionFailed", "412"):
                    raise SourceError(
                        self.uri, "changed while the run read it: the object was overwritten "
                        f"after it was opened (ETag {self.etag} is gone). Nothing from this run "
                        "was committed.", expected="an object that stays unchanged until the "
                        "run ends: ingest a finished delivery, then rerun") from None
                raise _client_error(self.uri, exc, self.credentials) from None
            self._body, self._body_pos = response["Body"], self._pos
        data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        self._body_pos += n
        return n

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()


def open_s3(uri: str, credentials: CredentialsRef | None = None) -> io.BufferedReader:
    return io.BufferedReader(S3ObjectFile(uri, credentials), buffer_size=READ_BLOCK_BYTES)


def _list(bucket: str, prefix: str, uri: str,
          credentials: CredentialsRef | None = None) -> dict[str, int]:
    """Every key under ``prefix`` with its size."""
    keys: dict[str, int] = {}
    try:
        pages = client(credentials, uri).get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix)
        for page in pages:
            keys.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    except CostflowError:
        raise
    except Exception as exc:
        raise _client_error(uri, exc, credentials) from None
    return keys


class _S3Store:
    """A bucket prefix: keys are bucket keys."""

    def __init__(self, pattern: str, credentials: CredentialsRef | None = None) -> None:
        self.bucket, self.prefix = split_uri(pattern)
        self.pattern = pattern
        self.credentials = credentials

    def list(self) -> dict[str, int]:
        return _list(self.bucket, self.prefix, self.pattern, self.credentials)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def read(self, key: str) -> bytes:
        try:
            return client(self.credentials, self.uri(key)).get_object(
                Bucket=self.bucket, Key=key)["Body"].read()
        except CostflowError:
            raise
        except Exception as exc:
            raise _client_error(self.uri(key), exc, self.credentials) from None


class _LocalStore:
    """A local copy of a bucket (or of a report prefix): keys are relative POSIX paths."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.bucket = os.path.basename(self.root)

    def list(self) -> dict[str, int]:
        found = {}
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                found[os.path.relpath(path, self.root).replace(os.sep, "/")] = (
                    os.path.getsize(path))
        return found

    def uri(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def read(self, key: str) -> bytes:
        with open(self.uri(key), "rb") as f:
            return f.read()


def _read_json(store: Any, key: str) -> dict[str, Any]:
    uri = store.uri(key)
    try:
        manifest = json.loads(store.read(key))
    except ValueError:
        raise SourceError(uri, "is not valid JSON, so the delivery it describes cannot be "
                          "trusted.", expected="an AWS export manifest (JSON object)") from None
    if not isinstance(manifest, dict):
        raise SourceError(uri, "is not a JSON object.", expected="an AWS export manifest")
    return manifest


@dataclasses.dataclass
class _Delivery:
    manifest_key: str
    delivery_id: str | None
    keys: list[str]


def _manifest_keys(manifest: dict[str, Any], bucket: str | None) -> list[str] | None:
    """Data file keys a manifest names (legacy reportKeys, Data Exports dataFiles)."""
    listed = manifest.get("dataFiles", manifest.get("reportKeys"))
    if listed is None:
        return None
    keys = []
    for item in listed:
        text = item if isinstance(item, str) else (item or {}).get("key") or ""
        if text.startswith("s3://"):
            other, text = split_uri(text)
            if bucket is not None and other != bucket:
                raise SourceError(f"s3://{bucket}", f"the manifest names {item!r} in another "
                                  f"bucket ({other}).", expected="data files in the same bucket")
        keys.append(text.lstrip("/"))
    return keys


def _latest_execution(keys: dict[str, int], data_prefix: str) -> tuple[str | None, list[str]]:
    """(execution id, data keys) of the newest execution folder of a Data Exports partition."""
    folders: dict[str, list[str]] = {}
    for key in keys:
        if key.startswith(data_prefix) and key.lower().endswith(
                file_sources.SUPPORTED_SUFFIXES):
            rest = key[len(data_prefix):]
            folder = rest.split("/", 1)[0] if "/" in rest else ""
            folders.setdefault(folder, []).append(key)
    if not folders:
        return None, []
    newest = max(folders)  # <YYYYMMDDTHHMMSSZ>-<uuid> sorts by time; "" = overwrite mode
    match = _EXECUTION_DIR.match(newest)
    return (match.group("id") if match else None), sorted(folders[newest])


def _resolve(key: str, keys: dict[str, int]) -> str:
    """The listed key a manifest's (bucket-relative) key stands for; a local copy may be
    rooted below the bucket, so a listed key that ends the manifest's key matches too."""
    if key in keys:
        return key
    return next((k for k in keys if key.endswith("/" + k)), key)


def _deliveries(store: Any, keys: dict[str, int]) -> list[_Delivery]:
    """The current delivery of each (report, billing period) found under the listing."""
    current: dict[tuple[str, str], tuple[tuple[int, str], str]] = {}
    for key in keys:
        export = _EXPORT_MANIFEST.match(key)
        legacy = _LEGACY_MANIFEST.match(key) if export is None else None
        if export:
            group = (export.group("root"), export.group("period"))
            # The manifest at the partition root is the one AWS overwrites on every refresh;
            # otherwise the newest execution folder's.
            rank = (1 if "/" not in export.group("rest") else 0, export.group("rest"))
        elif legacy and legacy.group("root").endswith(legacy.group("name") + "/"):
            group = (legacy.group("root"), legacy.group("period"))
            rank = (1, "")
        else:
            continue
        if group not in current or rank > current[group][0]:
            current[group] = (rank, key)
    deliveries = []
    for (root, period), (_, key) in sorted(current.items()):
        manifest = _read_json(store, key)
        delivery_id = manifest.get("assemblyId") or manifest.get("executionId")
        files = _manifest_keys(manifest, store.bucket if isinstance(store, _S3Store) else None)
        files = None if files is None else [_resolve(k, keys) for k in files]
        if files is None:
            data_prefix = f"{root}data/BILLING_PERIOD={period}/"
            listed_id, files = _latest_execution(keys, data_prefix)
            delivery_id = delivery_id or listed_id
        deliveries.append(_Delivery(key, str(delivery_id) if delivery_id else None, files))
    return deliveries


def plan_s3(pattern: str, request: PlanRequest) -> Plan:
    """Plan ``s3://bucket/prefix/``: the current delivery per billing period, manifest first."""
    return _plan(_S3Store(pattern, request.credentials), pattern, request)


def plan_local(pattern: str, request: PlanRequest) -> Plan | None:
    """A local directory holding AWS manifests is planned like the bucket it copies; None for
    any other path, directory or glob (the plain file planner takes those)."""
    if not os.path.isdir(pattern) or not any(
            name.endswith("-Manifest.json") for _, _, names in os.walk(pattern)
            for name in names):
        return None
    return _plan(_LocalStore(pattern), pattern, request)


def _plan(store: Any, pattern: str, request: PlanRequest) -> Plan:
    keys = store.list()
    if not keys:
        raise SourceError(pattern, "holds no object (wrong bucket or prefix, or no delivery "
                          "yet).", expected="an AWS CUR or Data Exports prefix")
    plan = Plan()
    deliveries = _deliveries(store, keys)
    if not deliveries:
        data = sorted(k for k in keys if k.lower().endswith(file_sources.SUPPORTED_SUFFIXES))
        if not data:
            raise SourceError(pattern, "holds no manifest and no CSV or Parquet file.",
                              expected="an AWS CUR or Data Exports prefix")
        plan.notes.append(f"{pattern}: no manifest found; all {len(data)} data file(s) read "
                          "(overwrite-mode layout)")
        deliveries = [_Delivery("", None, data)]
    chosen: set[str] = set()
    for delivery in deliveries:
        manifest_uri = store.uri(delivery.manifest_key) if delivery.manifest_key else None
        missing = [k for k in delivery.keys if k not in keys]
        if missing:
            raise SourceError(manifest_uri or pattern, f"names {len(missing)} data file(s) that "
                              f"are not in the bucket: {', '.join(missing[:3])}"
                              f"{' ...' if len(missing) > 3 else ''}.",
                              expected="every file of the delivery present (AWS writes the "
                              "manifest last; a partial copy or deleted files cannot be "
                              "loaded). Nothing was loaded; the previous data is intact")
        for key in delivery.keys:
            uri = store.uri(key)
            source = file_sources.inspect(uri, request)
            chosen.add(key)
            if source is None:
                plan.empty_files.append(uri)
                continue
            plan.files.append(dataclasses.replace(
                source, delivery_id=delivery.delivery_id,
                delivery=manifest_uri and posixpath.dirname(manifest_uri)))
    passed = [k for k in keys if k.lower().endswith(file_sources.SUPPORTED_SUFFIXES)
              and k not in chosen]
    if passed:
        plan.notes.append(f"{pattern}: {len(passed)} data file(s) of older deliveries passed "
                          "over (each delivery restates its whole billing period)")
    return plan

