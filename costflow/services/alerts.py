"""Budget alerts: each (budget, threshold, period) announced once, to stdout/JSON and a webhook.

Why this module exists: a check runs after every sync and on demand, so the same crossed
threshold is seen many times; people want to hear about it once. Where "once" is remembered,
and how two checks running at the same moment are kept from both sending, is decided here.

**Where**: the metadata store (`costflow.metadata`), not the warehouse. It is where the
tenant's policies, and so its budgets, already live; it is writable while an ingest holds the
DuckDB file (a DuckDB file has one writer at a time, and a sync runs its hook right after its
ingests); and on BigQuery a table has no atomic insert-if-absent, while both metadata backends
have an atomic read-modify-write. An alert that was sent is the document
``tenants/{tenant}/budget_alerts/{budget}~{threshold}~{period start}``.

**Once, under concurrency**: before sending, a check takes the lease
``locks/budget-alert-<hash>`` (`MetadataStore.acquire_lock`: atomic in both backends). Holding
it, it reads the sent document; when present it releases and reports ``already-sent``;
otherwise it sends, writes the document, then releases. A check that finds the lease held by
a live holder reports ``in-progress`` and sends nothing (the holder sends). A check that died
while holding it leaves a lease that goes stale after `CLAIM_STALE` and is then taken over,
so an alert is never lost; a crash between the POST and the write of the document can repeat
that one alert (at least once, never silently dropped).

**Webhook**: a Slack-compatible JSON POST (``text`` plus ``blocks``) to the URL stored in the
secret manager under the budget's ``webhook: secret://...`` reference; the URL is a
credential and never appears in a message or a log. 5xx, 429 and connection errors are retried
with exponential backoff (`RETRIES` attempts after the first); other 4xx fail at once. A
failed delivery writes nothing, so the next check tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from costflow.errors import CostflowError
from costflow.metadata import MetadataStore, paths
from costflow.text import exact, money

if TYPE_CHECKING:
    from costflow.services.budgets import BudgetStatus, Crossing

LOG = logging.getLogger("costflow.alerts")
COLLECTION = "budget_alerts"
CLAIM_STALE = timedelta(minutes=10)
RETRIES = 4
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 10.0
USER_AGENT = "costflow-budget-alerts"


class WebhookError(CostflowError):
    """The webhook did not accept the alert after the retries (the URL is never named)."""

    exit_code = 3

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class Alert:
    """One crossed threshold of one budget in one period."""

    status: BudgetStatus
    crossing: Crossing

    @property
    def key(self) -> str:
        """``budget~threshold~period-start``: the document id of the alert once sent."""
        s = self.status
        return f"{s.budget.name}~{self.crossing.name}~{s.period_start.isoformat()}"

    @property
    def text(self) -> str:
        s, c, b = self.status, self.crossing, self.status.budget
        head = (f"Budget {b.name} of {s.tenant}: {money(s.actual, b.currency)} {b.currency} "
                f"spent of {money(b.amount, b.currency)} ({s.used_percent:.1f} %) for "
                f"{s.period_start}..{s.period_end}")
        if c.kind == "actual":
            return f"{head}; passed {c.percent} % of the budget."
        projected = money(s.projected, b.currency) if s.projected is not None else "?"
        return (f"{head}; forecast to reach {projected} {b.currency} by {s.period_end}, over "
                "the budget.")

    def payload(self) -> dict[str, Any]:
        """The Slack-compatible message (incoming-webhook ``text`` and ``blocks``)."""
        s = self.status
        return {"text": self.text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{self.text}*"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"costflow · tenant {s.tenant} · threshold {self.crossing.name} · actual "
                f"{exact(s.actual)} {s.budget.currency} (exact) · as of {s.as_of}")}]}]}

    def as_json(self) -> dict[str, Any]:
        s = self.status
        return {"tenant": s.tenant, "budget": s.budget.name, "threshold": self.crossing.name,
                "period_start": s.period_start.isoformat(),
                "period_end": s.period_end.isoformat(), "actual": exact(s.actual),
                "amount": exact(s.budget.amount), "currency": s.budget.currency,
                "projected": None if s.projected is None else exact(s.projected),
                "text": self.text}


@dataclass
class Delivery:
    """What happened to one alert: ``sent`` (new), ``already-sent``, ``in-progress`` (another
    check holds it) or ``failed`` (nothing recorded; the next check retries)."""

    alert: Alert
    status: str
    channels: tuple[str, ...] = ()
    attempts: int = 0
    error: str | None = None

    def describe(self) -> str:
        where = f" via {', '.join(self.channels)}" if self.channels else ""
        tail = f": {self.error}" if self.error else ""
        return f"[{self.status}{where}] {self.alert.text}{tail}"

    def as_json(self) -> dict[str, Any]:
        return {**self.alert.as_json(), "status": self.status, "channels": list(self.channels),
                "attempts": self.attempts, "error": self.error}


Post = Callable[[str, dict[str, Any]], int]


def deliver(statuses: list[BudgetStatus], store: MetadataStore, secrets_url: str | None = None,
            *, backoff: float = BACKOFF_SECONDS, retries: int = RETRIES,
            owner: str | None = None, now: Callable[[], datetime] | None = None
            ) -> list[Delivery]:
    """Send every crossing of ``statuses`` not sent before (see the module docstring)."""
    who = owner or f"{socket.gethostname()}:{os.getpid()}"
    clock = now or (lambda: datetime.now(UTC))
    urls: dict[str, str | CostflowError] = {}   # each reference resolved once per check
    out = []
    for status in statuses:
        for crossing in status.crossed:
            alert = Alert(status, crossing)
            out.append(_deliver_one(alert, store, secrets_url, urls, who, clock, backoff,
                                    retries))
    return out


def sent_path(tenant: str, key: str) -> str:
    return f"{paths.tenant(tenant)}/{COLLECTION}/{paths.check_segment(key, 'alert id')}"


def _deliver_one(alert: Alert, store: MetadataStore, secrets_url: str | None,
                 urls: dict[str, str | CostflowError], owner: str, clock: Callable[[], datetime],
                 backoff: float, retries: int) -> Delivery:
    tenant = alert.status.tenant
    path = sent_path(tenant, alert.key)
    claim = "budget-alert-" + hashlib.sha256(path.encode()).hexdigest()[:40]
    lease = store.acquire_lock(claim, owner, CLAIM_STALE)
    if lease is None:
        return Delivery(alert, "in-progress")
    try:
        done = store.get(path)
        if done is not None:
            return Delivery(alert, "already-sent", tuple(done.get("channels") or ()))
        channels: tuple[str, ...] = ("stdout",)
        attempts = 0
        ref = alert.status.budget.webhook
        if ref is not None:
            try:
                if ref not in urls:
                    try:
                        urls[ref] = _resolve(ref, secrets_url)
                    except CostflowError as err:
                        urls[ref] = err
                url = urls[ref]
                if isinstance(url, CostflowError):
                    raise url
                attempts = post_with_retries(url, alert.payload(), ref, retries=retries,
                                             backoff=backoff)
            except CostflowError as err:
                LOG.warning("budget alert %s of %s not sent: %s", alert.key, tenant, err)
                return Delivery(alert, "failed", (), getattr(err, "attempts", 0), str(err))
            channels += ("webhook",)
        store.set(path, {**alert.as_json(), "channels": list(channels), "sent_at": clock(),
                         "sent_by": owner, "attempts": attempts})
        return Delivery(alert, "sent", channels, attempts)
    finally:
        store.release(lease)


def _resolve(ref: str, secrets_url: str | None) -> str:
    """The webhook URL behind ``secret://NAME`` (the value is never logged)."""
    from costflow.secrets import SecretNotFound, connect, resolve_url

    name = ref.removeprefix("secret://")
    store = resolve_url(secrets_url)
    manager = connect(store)
    try:
        url = asyncio.run(manager.get_secret(name)).strip()
    except SecretNotFound:
        raise WebhookError(f"the webhook {ref} is not in the secret store {store}: store the "
                           f"webhook URL with `costflow secrets set {name} --from-file FILE` "
                           "(a file holding the URL), or correct `webhook:` of the budget."
                           ) from None
    finally:
        manager.close()
    if not url.startswith(("https://", "http://")):
        raise WebhookError(f"the secret {ref} does not hold an http(s) URL; store the webhook "
                           "URL itself in it (`costflow secrets rotate ...`).")
    return url


def post_json(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST ``payload`` as JSON; the HTTP status (raises `urllib.error.HTTPError` >= 400)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s)
        response.read()
        return int(response.status)


def post_with_retries(url: str, payload: dict[str, Any], label: str, *, retries: int = RETRIES,
                      backoff: float = BACKOFF_SECONDS, post: Post = post_json) -> int:
    """POST until accepted; retries 5xx, 429 and connection errors with backoff doubling from
    ``backoff`` seconds. Returns the attempts made.

    Raises:
        WebhookError: a 4xx other than 429, or still failing after ``retries`` retries (the
            message names ``label``, the secret reference, never the URL).
    """
    problem = ""
    for attempt in range(1, retries + 2):
        try:
            post(url, payload)
            return attempt
        except urllib.error.HTTPError as err:
            problem = f"HTTP {err.code}"
            if err.code < 500 and err.code != 429:
                raise WebhookError(f"the webhook {label} refused the alert ({problem}); check "
                                   "the URL stored in that secret.", attempt) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            problem = f"connection failed ({type(reason).__name__})"
        if attempt <= retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise WebhookError(f"the webhook {label} did not accept the alert after {retries + 1} "
                       f"attempts (last: {problem}); it will be tried again at the next check.",
                       retries + 1)
