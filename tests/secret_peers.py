"""Local peers the secret backends talk to in the tests: real HTTP or the SDK's transport layer.

* `MotoServer`: moto's AWS server in its own process on 127.0.0.1 (``python -m moto.server``),
  so its request logs stay out of the test's log capture. boto3 talks to it over HTTP.
* `GcpSecretManagerPeer`: an ``http.server`` on 127.0.0.1 speaking the v1 REST paths costflow
  uses (create secret, ``:addVersion``, ``versions/{v}:access``, list versions,
  ``versions/{v}:disable``) with the real API's JSON field names: ``payload.data`` base64,
  ``payload.dataCrc32c`` an int64 as a string, ``createTime`` RFC 3339, ``state`` as a number
  when the client asks ``$alt=json;enum-encoding=int`` (the Python client does), names with
  the project NUMBER as the service answers, errors as ``{"error": {code, message, status}}``,
  and lists paged by ``nextPageToken`` (2 per page, so the client's pager is exercised).
* `FakeKeyVault`: a ``requests`` adapter answering like Key Vault, mounted in the session of
  the SDK's own ``RequestsTransport``: a 401 challenge (``WWW-Authenticate: Bearer
  authorization=..., resource=...``) for any request without the bearer token, secret bundles
  (``value``, ``id`` = vault/secrets/name/version, ``attributes`` with unix times), paged
  version lists (``nextLink``), 404 ``SecretNotFound``, 403 for a disabled version and for a
  denied operation, 409 for a name held by a soft-deleted secret.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google_crc32c
import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on a free port of 127.0.0.1, in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/moto-api/", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} in {timeout_s} s")

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=5).raise_for_status()

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate a peer's server process, kill it if it lingers past 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- GCP Secret Manager over REST ------------------------------------------------------------

_GCP_STATES = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}
_GCP_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_SEG = "([^/:?]+)"
_GCP_ROUTES = [
    ("POST", re.compile(rf"/v1/projects/{_SEG}/secrets"), "create"),
    ("POST", re.compile(rf"/v1/projects/{_SEG}/secrets/{_SEG}:addVersion"), "add"),
    ("GET", re.compile(rf"/v1/projects/{_SEG}/secrets/{_SEG}/versions/{_SEG}:access"), "access"),
    ("GET", re.compile(rf"/v1/projects/{_SEG}/secrets/{_SEG}/versions"), "list"),
    ("POST", re.compile(rf"/v1/projects/{_SEG}/secrets/{_SEG}/versions/{_SEG}:disable"),
     "disable"),
]
# The IAM permission each route needs (a 403 names it, as the service does).
GCP_PERMISSIONS = {"create": "secretmanager.secrets.create",
                   "add": "secretmanager.versions.add",
                   "access": "secretmanager.versions.access",
                   "list": "secretmanager.versions.list",
                   "disable": "secretmanager.versions.disable"}


class GcpApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


class GcpSecretManagerPeer:
    """A GCP Secret Manager REST peer on 127.0.0.1 (see the module docstring).

    Attributes:
        secrets: secret id -> {"labels", "createTime", "versions": [...]}.
        deny: IAM permissions to refuse with 403 (e.g. ``secretmanager.versions.access``).
        requests: (method, path, body) of every request, in order.
        unexpected: requests no route matched (a test asserts it stays empty).
        corrupt_crc: answer accesses with a wrong dataCrc32c.
    """

    PAGE_SIZE = 2

    def __init__(self, project: str = "costflow-test", number: str = "123456789012") -> None:
        self.project, self.number = project, number
        self.lock = threading.Lock()
        self.reset()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer._handle(self)

            def do_POST(self) -> None:
                peer._handle(self)

            def log_message(self, *args: Any) -> None:  # quiet: no request lines in logs
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        with self.lock:
            self.secrets: dict[str, dict[str, Any]] = {}
            self.deny: set[str] = set()
            self.requests: list[tuple[str, str, bytes]] = []
            self.unexpected: list[tuple[str, str]] = []
            self.corrupt_crc = False

    def start(self) -> GcpSecretManagerPeer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # --- HTTP ---------------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        split = urlsplit(http.path)
        query = parse_qs(split.query)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        ints = "enum-encoding=int" in (query.get("$alt") or [""])[0]
        with self.lock:
            self.requests.append((http.command, split.path, body))
            try:
                status, answer = 200, self._route(http.command, split.path, query, body, ints)
            except GcpApiError as exc:
                status = exc.code
                answer = {"error": {"code": exc.code, "message": exc.message,
                                    "status": exc.status}}
        data = json.dumps(answer).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json; charset=UTF-8")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               ints: bool) -> dict[str, Any]:
        for verb, pattern, action in _GCP_ROUTES:
            match = pattern.fullmatch(path)
            if verb == method and match:
                project, *rest = match.groups()
                if project not in (self.project, self.number):
                    raise GcpApiError(403, "PERMISSION_DENIED",
                                      f"Permission denied on resource project {project}.")
                resource = path.removeprefix("/v1/").split(":")[0]
                if action in ("create",):
                    resource = f"{resource}/{(query.get('secretId') or [''])[0]}"
                if GCP_PERMISSIONS[action] in self.deny:
                    raise GcpApiError(403, "PERMISSION_DENIED",
                                      f"Permission '{GCP_PERMISSIONS[action]}' denied for "
                                      f"resource '{resource}' (or it may not exist).")
                payload = json.loads(body) if body else {}
                handler = getattr(self, f"_{action}")
                answer: dict[str, Any] = handler(*rest, query=query, body=payload, ints=ints)
                return answer
        self.unexpected.append((method, path))
        raise GcpApiError(400, "INVALID_ARGUMENT", f"peer: no route for {method} {path}")

    # --- the API ------------------------------------------------------------------------------

    def _secret_name(self, secret_id: str) -> str:
        return f"projects/{self.number}/secrets/{secret_id}"

    def _secret(self, secret_id: str) -> dict[str, Any]:
        if secret_id not in self.secrets:
            raise GcpApiError(404, "NOT_FOUND",
                              f"Secret [{self._secret_name(secret_id)}] not found or has no "
                              "versions.")
        return self.secrets[secret_id]

    def _version_json(self, secret_id: str, v: dict[str, Any], ints: bool) -> dict[str, Any]:
        return {"name": f"{self._secret_name(secret_id)}/versions/{v['n']}",
                "createTime": v["createTime"],
                "state": _GCP_STATES[v["state"]] if ints else v["state"],
                "etag": f'"{v["etag"]}"',
                "replicationStatus": {"automatic": {}},
                "clientSpecifiedPayloadChecksum": v["crc"] is not None}

    def _create(self, *, query: dict[str, list[str]], body: dict[str, Any],
                ints: bool) -> dict[str, Any]:
        secret_id = (query.get("secretId") or [""])[0]
        if not _GCP_ID.fullmatch(secret_id):
            raise GcpApiError(400, "INVALID_ARGUMENT",
                              f"Secret id [{secret_id}] is invalid: it must match "
                              "[a-zA-Z0-9_-]{1,255}.")
        if "automatic" not in body.get("replication", {}) and \
                "userManaged" not in body.get("replication", {}):
            raise GcpApiError(400, "INVALID_ARGUMENT", "Secret.replication is required.")
        labels = body.get("labels", {})
        if any(not _LABEL_KEY.fullmatch(k) for k in labels):
            raise GcpApiError(400, "INVALID_ARGUMENT", "Secret.labels: invalid label key.")
        if secret_id in self.secrets:
            raise GcpApiError(409, "ALREADY_EXISTS",
                              f"Secret [{self._secret_name(secret_id)}] already exists.")
        self.secrets[secret_id] = {"labels": labels, "createTime": rfc3339(datetime.now(UTC)),
                                   "replication": body["replication"], "versions": []}
        return {"name": self._secret_name(secret_id), "replication": body["replication"],
                "createTime": self.secrets[secret_id]["createTime"], "labels": labels,
                "etag": f'"{uuid.uuid4().hex[:14]}"'}

    def _add(self, secret_id: str, *, query: dict[str, list[str]], body: dict[str, Any],
             ints: bool) -> dict[str, Any]:
        secret = self._secret(secret_id)
        payload = body.get("payload", {})
        try:
            data = base64.b64decode(payload.get("data", ""), validate=True)
        except ValueError:
            raise GcpApiError(400, "INVALID_ARGUMENT", "Invalid payload.data.") from None
        crc = payload.get("dataCrc32c")
        if crc is not None and int(crc) != google_crc32c.value(data):
            raise GcpApiError(400, "INVALID_ARGUMENT",
                              "Checksum mismatch: the data_crc32c does not match the data.")
        version = {"n": len(secret["versions"]) + 1, "data": data,
                   "crc": None if crc is None else int(crc), "state": "ENABLED",
                   "createTime": rfc3339(datetime.now(UTC)), "etag": uuid.uuid4().hex[:14]}
        secret["versions"].append(version)
        return self._version_json(secret_id, version, ints)

    def _find(self, secret_id: str, version: str) -> dict[str, Any]:
        secret = self._secret(secret_id)
        if version == "latest":
            if not secret["versions"]:
                raise GcpApiError(404, "NOT_FOUND",
                                  f"Secret [{self._secret_name(secret_id)}] not found or has "
                                  "no versions.")
            return secret["versions"][-1]  # the most recently created version
        for v in secret["versions"]:
            if str(v["n"]) == version:
                return v
        raise GcpApiError(404, "NOT_FOUND", f"Secret Version [{self._secret_name(secret_id)}"
                                            f"/versions/{version}] not found.")

    def _access(self, secret_id: str, version: str, *, query: dict[str, list[str]],
                body: dict[str, Any], ints: bool) -> dict[str, Any]:
        v = self._find(secret_id, version)
        if v["state"] != "ENABLED":
            raise GcpApiError(400, "FAILED_PRECONDITION",
                              f"Secret Version [{self._secret_name(secret_id)}/versions/"
                              f"{v['n']}] is in {v['state']} state.")
        crc = google_crc32c.value(v["data"]) + (1 if self.corrupt_crc else 0)
        return {"name": f"{self._secret_name(secret_id)}/versions/{v['n']}",
                "payload": {"data": base64.b64encode(v["data"]).decode(),
                            "dataCrc32c": str(crc)}}

    def _list(self, secret_id: str, *, query: dict[str, list[str]], body: dict[str, Any],
              ints: bool) -> dict[str, Any]:
        versions = list(reversed(self._secret(secret_id)["versions"]))  # newest first
        size = int((query.get("pageSize") or [self.PAGE_SIZE])[0]) or self.PAGE_SIZE
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        page = versions[start:start + min(size, self.PAGE_SIZE)]
        answer: dict[str, Any] = {"versions": [self._version_json(secret_id, v, ints)
                                               for v in page],
                                  "totalSize": len(versions)}
        if start + len(page) < len(versions):
            answer["nextPageToken"] = str(start + len(page))
        if not page:
            answer.pop("versions")  # the service omits empty repeated fields
        return answer

    def _disable(self, secret_id: str, version: str, *, query: dict[str, list[str]],
                 body: dict[str, Any], ints: bool) -> dict[str, Any]:
        v = self._find(secret_id, version)
        v["state"] = "DISABLED"
        return self._version_json(secret_id, v, ints)


# --- Azure Key Vault through the SDK's RequestsTransport -------------------------------------

AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_SCOPE = "https://vault.azure.net/.default"
_AZURE_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")


class FakeCredential:
    """A TokenCredential that records what it is asked for."""

    TOKEN = "fake-vault-token"

    def __init__(self) -> None:
        self.asked: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, tenant_id: str | None = None, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.asked.append((scopes, tenant_id))
        return AccessToken(self.TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.asked.append((scopes, (options or {}).get("tenant_id")))
        return AccessTokenInfo(self.TOKEN, int(time.time()) + 3600)


class FakeKeyVault(BaseAdapter):
    """Key Vault's secrets API as a ``requests`` adapter (see the module docstring).

    Attributes:
        secrets: lower-cased name -> list of versions (dicts), oldest first.
        deny: operations to refuse with 403: ``get``, ``set``, ``list``, ``update``.
        deleted: lower-cased names held by a soft-deleted secret (409 on set).
        requests: (method, url, authorized) of every request.
        unauthenticated_bodies: bodies sent without a token (must stay empty).
        unexpected: requests no route matched.
    """

    PAGE_SIZE = 2

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name or f"vault{uuid.uuid4().hex[:16]}"
        self.host = f"{self.name}.vault.azure.net"
        self.vault = f"https://{self.host}"
        self.secrets: dict[str, list[dict[str, Any]]] = {}
        self.deny: set[str] = set()
        self.deleted: set[str] = set()
        self.requests: list[tuple[str, str, bool]] = []
        self.unauthenticated_bodies: list[bytes] = []
        self.unexpected: list[tuple[str, str]] = []
        self.api_versions: set[str] = set()
        self.clock = 1_767_225_600  # Key Vault times are unix seconds; one tick per version

    def close(self) -> None:
        pass

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(str(request.url))
        authorized = request.headers.get("Authorization") == f"Bearer {FakeCredential.TOKEN}"
        self.requests.append((str(request.method), str(request.url), authorized))
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        if url.hostname != self.host:
            return self._respond(request, 404, {"error": {"code": "NotFound"}})
        if not authorized:
            if body:
                self.unauthenticated_bodies.append(body)
            return self._respond(request, 401, {"error": {
                "code": "Unauthorized",
                "message": "AKV10000: Request is missing a Bearer or PoP token."}}, {
                "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/'
                                    f'{AZURE_TENANT}", resource="https://vault.azure.net"'})
        query = parse_qs(url.query)
        self.api_versions.update(query.get("api-version", []))
        parts = url.path.split("/")
        try:
            status, answer = self._route(str(request.method), parts, query,
                                         json.loads(body) if body else {})
        except _VaultError as exc:
            status, answer = exc.status, {"error": exc.error}
        return self._respond(request, status, answer)

    def _route(self, method: str, parts: list[str], query: dict[str, list[str]],
               body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        # parts: ['', 'secrets', name] / ['', 'secrets', name, version-or-''] / [..., 'versions']
        if len(parts) < 3 or parts[1] != "secrets":
            self.unexpected.append((method, "/".join(parts)))
            raise _VaultError(400, {"code": "BadParameter", "message": "peer: no route"})
        name = parts[2]
        if not _AZURE_NAME.fullmatch(name):
            raise _VaultError(400, {"code": "BadParameter",
                                    "message": "The request URI contains an invalid name: "
                                               f"{name}"})
        if method == "PUT" and len(parts) == 3:
            return 200, self._set(name, body)
        if method == "GET" and len(parts) == 4 and parts[3] == "versions":
            return 200, self._list(name, query)
        if method == "GET" and len(parts) == 4:
            return 200, self._get(name, parts[3])
        if method == "PATCH" and len(parts) == 4 and parts[3]:
            return 200, self._update(name, parts[3], body)
        self.unexpected.append((method, "/".join(parts)))
        raise _VaultError(400, {"code": "BadParameter", "message": "peer: no route"})

    def _check(self, operation: str) -> None:
        if operation in self.deny:
            raise _VaultError(403, {
                "code": "Forbidden",
                "message": f"The user, group or application 'appid=00000000-0000-0000-0000-"
                           f"000000000001;oid=00000000-0000-0000-0000-000000000002;iss=https://"
                           f"sts.windows.net/{AZURE_TENANT}/' does not have secrets {operation} "
                           f"permission on key vault '{self.host.split('.')[0]};location="
                           "westeurope'. For help resolving this issue, please see "
                           "https://go.microsoft.com/fwlink/?linkid=2125287",
                "innererror": {"code": "AccessDenied"}})

    def _bundle(self, name: str, v: dict[str, Any], value: bool) -> dict[str, Any]:
        answer = {"id": f"{self.vault}/secrets/{name}/{v['version']}",
                  "attributes": {"enabled": v["enabled"], "created": v["created"],
                                 "updated": v["updated"],
                                 "recoveryLevel": "Recoverable+Purgeable",
                                 "recoverableDays": 90},
                  "tags": v["tags"]}
        if v.get("contentType"):
            answer["contentType"] = v["contentType"]
        if value:
            answer["value"] = v["value"]
        return answer

    def _not_found(self, name: str, version: str = "") -> _VaultError:
        shown = f"{name}/{version}" if version else name
        return _VaultError(404, {
            "code": "SecretNotFound",
            "message": f"A secret with (name/id) {shown} was not found in this key vault. If "
                       "you recently deleted this secret you may be able to recover it using "
                       "the correct recovery command. For help resolving this issue, please "
                       "see https://go.microsoft.com/fwlink/?linkid=2125182"})

    def _set(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check("set")
        if name.lower() in self.deleted:
            raise _VaultError(409, {
                "code": "Conflict",
                "message": f"Secret {name} is currently in a deleted but recoverable state, "
                           "and its name cannot be reused; in this state, the secret can only "
                           "be recovered or purged."})
        if not isinstance(body.get("value"), str):
            raise _VaultError(400, {"code": "BadParameter", "message": "value is required"})
        self.clock += 1
        version = {"version": uuid.uuid4().hex, "value": body["value"], "enabled": True,
                   "created": self.clock, "updated": self.clock, "tags": body.get("tags"),
                   "contentType": body.get("contentType")}
        self.secrets.setdefault(name.lower(), []).append(version)
        return self._bundle(name, version, value=True)

    def _get(self, name: str, version: str) -> dict[str, Any]:
        self._check("get")
        versions = self.secrets.get(name.lower())
        if not versions:
            raise self._not_found(name)
        v = versions[-1] if not version else next(
            (x for x in versions if x["version"] == version), None)
        if v is None:
            raise self._not_found(name, version)
        if not v["enabled"]:
            raise _VaultError(403, {"code": "Forbidden",
                                    "message": "Operation get is not allowed on a disabled "
                                               "secret.",
                                    "innererror": {"code": "SecretDisabled"}})
        return self._bundle(name, v, value=True)

    def _list(self, name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        self._check("list")
        versions = self.secrets.get(name.lower(), [])
        start = int((query.get("$skiptoken") or ["0"])[0])
        page = versions[start:start + self.PAGE_SIZE]
        following = None
        if start + len(page) < len(versions):
            api = (query.get("api-version") or [""])[0]
            following = (f"{self.vault}/secrets/{name}/versions?api-version={api}"
                         f"&$skiptoken={start + len(page)}&maxresults={self.PAGE_SIZE}")
        return {"value": [self._bundle(name, v, value=False) for v in page],
                "nextLink": following}

    def _update(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check("update")
        versions = self.secrets.get(name.lower(), [])
        v = next((x for x in versions if x["version"] == version), None)
        if v is None:
            raise self._not_found(name, version)
        attributes = body.get("attributes") or {}
        if "enabled" in attributes:
            v["enabled"] = bool(attributes["enabled"])
        self.clock += 1
        v["updated"] = self.clock
        return self._bundle(name, v, value=False)

    def _respond(self, request: requests.PreparedRequest, status: int, answer: dict[str, Any],
                 headers: dict[str, str] | None = None) -> requests.Response:
        data = json.dumps(answer).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data), status=status, preload_content=False, decode_content=False,
            request_method=request.method,
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Content-Length": str(len(data)), "x-ms-keyvault-service-version":
                     "1.9.2412.1", "x-ms-request-id": str(uuid.uuid4()), **(headers or {})})
        return HTTPAdapter().build_response(request, raw)


class _VaultError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status, self.error = status, error


def azure_transport(vault: FakeKeyVault) -> Any:
    """The SDK's own RequestsTransport over a session whose https adapter is ``vault``."""
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.mount("https://", vault)
    return RequestsTransport(session=session, session_owner=False)


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
