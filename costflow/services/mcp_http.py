"""The MCP tools over streamable HTTP, for many agents and teams, each held to its tenant.

`costflow mcp --transport http` serves the same tools as stdio (`mcp_server.build_server`) with
the MCP SDK's streamable HTTP transport behind uvicorn. In front of it, this ASGI app:

* **authenticates every request** to ``/mcp`` with its bearer key (`api_keys.verify`, a lookup
  in the metadata store on every request, so a revocation takes effect on the next one). No
  key, a malformed, unknown (another deployment's), wrong or revoked key, or a key whose tenant
  is not in this server's config: 401 with a JSON body saying which, and nothing reaches the
  tools. There is no unauthenticated or unrestricted mode.
* **routes the request to its tenant's server**: one `MCPServer` per tenant of costflow.yaml,
  built at start-up (each with its own session manager), so a session opened with tenant A's key
  does not exist for tenant B's key, and every tool runs under `Tenant.of(...)` of that tenant,
  exactly as `InfrastructureModule.from_config` builds it. ``--provider`` restricts every tool
  of every tenant, as on stdio.
* **rate-limits per key**: a token bucket of ``burst`` requests refilled at ``rate`` per second;
  over it, 429 with ``Retry-After``.
* **audits every tool call**: one JSON line on the ``costflow.audit`` logger with the time, key
  id and name, tenant, tool, arguments (values under secret-looking names, and strings shaped
  like secrets or costflow keys, replaced by ``[redacted]``), duration, whether it failed and the
  rows returned. The key itself never appears.
* answers ``GET /healthz`` without a key (Cloud Run's health check).

Responses are JSON (the transport's ``json_response`` mode), so the audit line can count the
rows of the result the client receives.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from costflow.config.cleartext import SECRET_KEYS, shapes
from costflow.config.models import CostflowConfig
from costflow.errors import ConfigError
from costflow.metadata import MetadataStore
from costflow.services import api_keys
from costflow.services.mcp_server import build_server
from costflow.services.tenancy import ALL_PROVIDERS, Tenant, check_provider
from costflow.warehouse.base import Warehouse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MCP_PATH, HEALTH_PATH = "/mcp", "/healthz"
DEFAULT_RATE, DEFAULT_BURST = 5.0, 20
MAX_BODY = 1024 * 1024
AUDIT_LOGGER = "costflow.audit"
REDACTED = "[redacted]"
_KEY_SHAPE = re.compile(r"cfk_[0-9a-f]{12}_[A-Za-z0-9_-]{10,}")
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_key", "_credentials")

audit_log = logging.getLogger(AUDIT_LOGGER)


def tenant_of(config: CostflowConfig, tenant_id: str) -> Tenant:
    """The `Tenant` a config's tenant reads as: its billing accounts, and its sub accounts and
    projects (a GCP project is a sub account in FOCUS), as `InfrastructureModule` builds it."""
    found = config.tenant(tenant_id)
    return Tenant.of(found.id, billing_accounts=found.billing_accounts,
                     sub_accounts=(*found.sub_accounts, *found.projects))


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate`` per second."""

    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or self.burst < 1:
            raise ConfigError(f"the rate limit needs --rate above 0 per second and --burst "
                              f"of at least 1 (got {self.rate!r} and {self.burst!r}).")

    def take(self, key: str) -> float:
        """0 when the request may go; else the seconds until a token is back."""
        with self._lock:
            now = self.clock()
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


def redact(value: Any, name: str = "") -> Any:
    """``value`` with secrets replaced: values of secret-looking names, and strings that look
    like a secret (`costflow.config.cleartext.shapes`) or a costflow key."""
    lowered = name.lower().replace("-", "_")
    if name and (lowered in SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and (_KEY_SHAPE.search(value) or next(shapes(value), None)):
        return REDACTED
    return value


def count_rows(result: Any) -> int | None:
    """Records in a tool's answer: the items of its lists (a per-currency result counts its
    breakdown rows); None when the answer holds no list."""
    if isinstance(result, dict):
        counts = [count_rows(v) for k, v in result.items() if isinstance(v, list)
                  and k not in ("columns", "types")]
        return sum(c or 0 for c in counts) if counts else None
    if isinstance(result, list):
        return sum(len(item["breakdown"]) if isinstance(item, dict) and isinstance(
            item.get("breakdown"), list) else 1 for item in result)
    return None


class McpHttpApp:
    """The ASGI app (see the module docstring).

    Args:
        warehouse: read by every tenant's tools.
        config: the tenants keys may belong to.
        store: the metadata store holding the keys.
        provider_scope: ``all`` or one provider, for every tool.
        limiter: the per-key rate limit.
        host: the address served, for the SDK's DNS-rebinding protection on localhost.
    """

    def __init__(self, warehouse: Warehouse, config: CostflowConfig, store: MetadataStore, *,
                 provider_scope: str = ALL_PROVIDERS, limiter: RateLimiter | None = None,
                 host: str = "127.0.0.1") -> None:
        check_provider(provider_scope)
        self.store, self.provider_scope = store, provider_scope
        self.limiter = limiter or RateLimiter()
        self.tenants = {t.id: tenant_of(config, t.id) for t in config.tenants}
        self.servers = {tid: build_server(warehouse, tenant, provider_scope,
                                          tenant_config=config.tenant(tid))
                         for tid, tenant in self.tenants.items()}
        self._apps = {tid: server.streamable_http_app(
            streamable_http_path=MCP_PATH, json_response=True, host=host)
            for tid, server in self.servers.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == HEALTH_PATH:
            await _json(send, 200, {"status": "ok", "tenants": len(self.tenants),
                                    "provider": self.provider_scope})
            return
        if path.rstrip("/") != MCP_PATH:
            await _json(send, 404, {"error": f"not found; the MCP endpoint is {MCP_PATH}"})
            return
        try:
            key = await anyio.to_thread.run_sync(api_keys.verify, self.store,
                                                 _bearer(scope))
        except api_keys.KeyRejected as err:
            await _json(send, 401, {"error": str(err)},
                        [(b"www-authenticate", b'Bearer realm="costflow"')])
            return
        if key.tenant not in self._apps:
            await _json(send, 401, {"error": f"bearer key {key.key_id} belongs to tenant "
                                             f"{key.tenant!r}, which this server's config does "
                                             "not declare."})
            return
        wait = self.limiter.take(key.key_id)
        if wait:
            await _json(send, 429, {"error": f"rate limit of key {key.key_id} exceeded "
                                             f"({self.limiter.burst} requests, "
                                             f"{self.limiter.rate:g}/s); retry in "
                                             f"{math.ceil(wait)} s."},
                        [(b"retry-after", str(math.ceil(wait)).encode())])
            return
        await self._forward(key, scope, receive, send)

    async def _forward(self, key: api_keys.ApiKey, scope: Scope, receive: Receive,
                       send: Send) -> None:
        app = self._apps[key.tenant]
        if scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _json(send, 413, {"error": f"request body over {MAX_BODY} bytes"})
                return
        call = _tool_call(body)
        sent: list[bytes] = []
        status: list[int] = []
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        audited = call is None

        def audit() -> None:
            nonlocal audited
            if not audited:
                audited = True
                _audit(key, call or {}, time.monotonic() - started, status, b"".join(sent))

        async def capture(message: Message) -> None:
            if not audited:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                elif message["type"] == "http.response.body":
                    sent.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        audit()  # before the client has the answer: the line is never late
            await send(message)

        started = time.monotonic()
        try:
            await app(scope, replay, capture)
        finally:
            audit()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Run every tenant's session manager for the life of the server (one task)."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with AsyncExitStack() as stack:
            try:
                for server in self.servers.values():
                    await stack.enter_async_context(server.session_manager.run())
            except Exception as err:  # noqa: BLE001 - reported to the ASGI server
                await send({"type": "lifespan.startup.failed", "message": str(err)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _tool_call(body: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("method") == "tools/call":
        params = message.get("params") or {}
        return params if isinstance(params, dict) else {}
    return None


def _audit(key: api_keys.ApiKey, call: dict[str, Any], seconds: float, status: list[int],
           body: bytes) -> None:
    rows, error = None, bool(status and status[0] >= 400)
    try:
        answer = json.loads(body) if body else {}
        result = answer.get("result") or {}
        error = error or bool(result.get("isError")) or "error" in answer
        structured = result.get("structuredContent")
        if structured is None and result.get("content"):
            structured = json.loads(result["content"][0].get("text", "null"))
        rows = None if error else count_rows(structured)
    except (ValueError, AttributeError, TypeError, IndexError):
        rows = None  # an answer that is not the SDK's JSON: audited with its rows unknown
    arguments = call.get("arguments")
    audit_log.info(json.dumps({
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "key_id": key.key_id, "key_name": key.name, "tenant": key.tenant,
        "tool": str(call.get("name")),
        "arguments": redact(arguments) if isinstance(arguments, dict) else {},
        "duration_ms": round(seconds * 1000, 1), "status": status[0] if status else None,
        "error": error, "rows": rows}, sort_keys=True))


async def _json(send: Send, status: int, body: dict[str, Any],
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def serve_http(config: CostflowConfig, warehouse_url: str, metadata_url: str, *,
               host: str = "127.0.0.1", port: int = 8765,
               provider_scope: str = ALL_PROVIDERS, rate: float = DEFAULT_RATE,
               burst: int = DEFAULT_BURST, audit_path: str | None = None) -> None:
    """Serve the tools of ``config``'s tenants over HTTP with uvicorn until interrupted; the
    audit lines go to ``audit_path`` (appended) or else to stderr."""
    import sys

    import uvicorn

    from costflow import metadata
    from costflow.services.mcp_server import connect_reader

    if not config.tenants:
        raise ConfigError("the config declares no tenants, so no key could be served: add "
                          "tenants to costflow.yaml (each key belongs to one).")
    handler: logging.Handler = (logging.FileHandler(audit_path, encoding="utf-8")
                                if audit_path else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    audit_log.propagate = False
    store = metadata.connect(metadata_url)
    warehouse = connect_reader(warehouse_url)
    try:
        app = McpHttpApp(warehouse, config, store, provider_scope=provider_scope,
                         limiter=RateLimiter(rate=rate, burst=burst), host=host)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
    finally:
        audit_log.removeHandler(handler)
        handler.close()
        store.close()
        warehouse.close()
