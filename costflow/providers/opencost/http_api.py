"""``opencost://host[:port][/base]?window=START,END&aggregate=..&step=1d``: the allocation API
as a source (``opencost+https://`` for TLS).

Why this module exists: OpenCost keeps its allocations behind an HTTP API, not in files. The
planner asks it for the period one day per request (a *page*: the window of one UTC day, cut
into ``step`` s), saves each answer under ``.costflow/cache/opencost/`` and plans it as one
source, read like a saved answer (`costflow.providers.opencost.answers`). So a month is 30 small
answers, each named in lineage by the URL it came from.

Choices:

* **Requests.** ``GET <base>/allocation/compute?window=<day start>,<day end>&step=..&aggregate=..
  &includeIdle=true&accumulate=false`` [OpenCost API docs, Allocation API]; on HTTP 404 the
  newer ``<base>/allocation`` is asked instead (and for the pages after). ``includeIdle=true``
  always, so the cluster's idle cost arrives as ``__idle__`` rows and the allocations add up to
  the cluster's cost. OpenCost's own options (``aggregate``, ``step``, ``filter``,
  ``shareIdle``, ``idleByNode``, ``shareNamespaces``, ``shareLabels``, ``shareSplit``) are passed
  through; anything else in the URI is refused.
* **Whole months.** A load replaces (cluster, month) slices, so the window is widened to whole
  UTC months (never past tomorrow), as ``aws-ce://`` does; a plan note says when. The window is
  ``window=START,END`` (RFC 3339 or YYYY-MM-DD), or ``--start/--end``.
* **Only the named host.** Requests go to the URI's host and port and nowhere else: no proxy
  from the environment, and a redirect is an error, not followed.
* **Errors.** A connection failure, a timeout (``timeout=`` seconds, default 60), an HTTP error
  other than that one 404, an answer that is not JSON or not ``code`` 200: each is a
  `SourceError` naming the URL, and nothing is loaded. A day with no allocation (an empty
  window) plans no file; a period with none at all loads zero rows.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from costflow.errors import ConfigError, SourceError
from costflow.providers.opencost import answers
from costflow.providers.opencost.planned import PROVIDER
from costflow.sources.contract import Plan, PlanRequest

SCHEMES = {"opencost": "http", "opencost+https": "https"}
DEFAULT_PORT = 9003  # the OpenCost container's API port
PATHS = ("/allocation/compute", "/allocation")
PASSTHROUGH = ("aggregate", "step", "filter", "shareIdle", "idleByNode", "shareNamespaces",
               "shareLabels", "shareSplit")
OURS = ("window", "start", "end", "timeout")
DEFAULT_STEP, DEFAULT_TIMEOUT = "1d", 60.0
_STEP = re.compile(r"^(\d+)([mhd])$")
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class ApiSpec:
    base: str                   # http(s)://host:port/base, no trailing slash
    start: datetime             # first instant, 00:00 UTC on a 1st
    end: datetime               # exclusive: 00:00 UTC on a 1st, or tomorrow
    widened: bool
    params: dict[str, str]      # OpenCost's options, passed through
    timeout: float

    def pages(self) -> list[tuple[datetime, datetime]]:
        out, day = [], self.start
        while day < self.end:
            out.append((day, min(day + _DAY, self.end)))
            day += _DAY
        return out


def _instant(text: str, uri: str) -> datetime:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ConfigError(f"--source {uri!r}: window bound {text!r} is not an RFC 3339 time "
                          "with a zone (e.g. 2026-10-01T00:00:00Z) or a date (2026-10-01).")
    return parsed.astimezone(UTC)


def _step_minutes(step: str, uri: str) -> int:
    found = _STEP.match(step)
    minutes = (int(found.group(1)) * {"m": 1, "h": 60, "d": 1440}[found.group(2)]
               if found else 0)
    if not minutes or 1440 % minutes:
        raise ConfigError(f"--source {uri!r}: step={step!r} must divide a day (e.g. 1d, 6h, "
                          "1h, 30m): each request asks for one UTC day.")
    return minutes


def parse_uri(uri: str, today: date | None = None) -> ApiSpec:
    parsed = urlparse(uri)
    transport = SCHEMES.get(parsed.scheme.lower())
    if transport is None or not parsed.hostname:
        raise ConfigError(f"--source {uri!r}: expected opencost://HOST[:PORT][/BASE]?window=.."
                          " (or opencost+https://).")
    try:
        port = parsed.port or (DEFAULT_PORT if transport == "http" else 443)
    except ValueError:
        raise ConfigError(f"--source {uri!r}: the port is not a number.") from None
    query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(PASSTHROUGH) - set(OURS) - {"includeIdle"})
    if unknown:
        raise ConfigError(f"--source {uri!r}: unknown parameter(s) {', '.join(unknown)} "
                          f"(known: {', '.join((*OURS, *PASSTHROUGH))}).")
    if query.get("includeIdle", "true").lower() != "true":
        raise ConfigError(f"--source {uri!r}: includeIdle must stay true: without the "
                          "__idle__ rows the allocations do not add up to the cluster's cost.")
    if "window" in query and ("start" in query or "end" in query):
        raise ConfigError(f"--source {uri!r}: give the period once: window= or --start/--end.")
    if "window" in query:
        bounds = query["window"].split(",")
        if len(bounds) != 2:
            raise ConfigError(f"--source {uri!r}: window must be START,END (e.g. "
                              "2026-10-01T00:00:00Z,2026-11-01T00:00:00Z).")
        start, end = (_instant(b.strip(), uri) for b in bounds)
    elif "start" in query and "end" in query:
        start, end = _instant(query["start"], uri), _instant(query["end"], uri)
    else:
        raise ConfigError(f"--source {uri!r}: give the period with window=START,END or "
                          "--start/--end.")
    if end <= start:
        raise ConfigError(f"--source {uri!r}: the window ends before it starts.")
    params = {k: query[k] for k in PASSTHROUGH if k in query}
    params["step"] = params.get("step") or DEFAULT_STEP
    _step_minutes(params["step"], uri)
    try:
        timeout = float(query.get("timeout") or DEFAULT_TIMEOUT)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 3600:
        raise ConfigError(f"--source {uri!r}: timeout= must be seconds in (0, 3600].")
    tomorrow = datetime.combine((today or datetime.now(UTC).date()) + _DAY,
                                datetime.min.time(), UTC)
    whole_start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_after = (end - timedelta(microseconds=1)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0)
    whole_end = min((first_after + timedelta(days=32)).replace(day=1), tomorrow)
    if whole_end <= whole_start:
        raise ConfigError(f"--source {uri!r}: the window starts after today; OpenCost has no "
                          "allocation for it yet.")
    base = f"{transport}://{parsed.hostname}:{port}{parsed.path.rstrip('/')}"
    return ApiSpec(base, whole_start, whole_end, (whole_start, whole_end) != (start, end),
                   params, timeout)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused "
                                     "(requests go only to the host the --source names)",
                                     headers, fp)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def page_url(spec: ApiSpec, path: str, start: datetime, end: datetime) -> str:
    query = {"window": f"{_rfc3339(start)},{_rfc3339(end)}", **spec.params,
             "includeIdle": "true", "accumulate": "false"}
    return f"{spec.base}{path}?{urlencode(query, safe=',:')}"


def _body_said(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(2000).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    line = text.splitlines()[0][:200] if text else ""
    return "" if line.startswith("<") else line


def get(url: str, timeout: float) -> bytes:
    """The body of one GET, or a `SourceError` naming the URL (an HTTPError 404 is raised as is,
    for the caller's fallback)."""
    try:
        with _OPENER.open(urllib.request.Request(url, headers={
                "Accept": "application/json"}), timeout=timeout) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise
        said = _body_said(exc)
        raise SourceError(url, f"OpenCost answered HTTP {exc.code} {exc.reason}"
                          f"{': ' + said if said else ''}; nothing was loaded.",
                          expected="HTTP 200 with an allocation answer: check the OpenCost "
                          "logs (its Prometheus must be reachable), then rerun") from None
    except TimeoutError:
        raise SourceError(url, f"OpenCost did not answer within {timeout:g} s; nothing was "
                          "loaded.", expected="a reachable OpenCost API (or a larger "
                          "timeout= in the --source)") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(url, f"OpenCost could not be reached: {reason}; nothing was loaded.",
                          expected="the OpenCost API at this host and port (e.g. kubectl "
                          "port-forward service/opencost 9003)") from None


def _fetch_page(spec: ApiSpec, paths: list[str], start: datetime,
                end: datetime) -> tuple[str, bytes]:
    """(url, body) of one page; ``paths`` loses /allocation/compute after a 404 on it."""
    while True:
        url = page_url(spec, paths[0], start, end)
        try:
            return url, get(url, spec.timeout)
        except urllib.error.HTTPError:
            if len(paths) == 1:
                raise SourceError(url, "OpenCost answered HTTP 404 on both "
                                  f"{' and '.join(PATHS)}; nothing was loaded.",
                                  expected="the OpenCost allocation API under this base path "
                                  "(the UI's is /model: opencost://HOST:9090/model)") from None
            paths.pop(0)


def plan_api(pattern: str, request: PlanRequest, cache_dir: str | None = None,
             today: date | None = None) -> Plan:
    """Fetch every page of the period and plan each non-empty answer as one source."""
    if request.provider not in (None, PROVIDER):
        raise ConfigError(f"--source {pattern!r} is an OpenCost source, but --provider "
                          f"{request.provider} was given.")
    spec = parse_uri(pattern, today)
    cache = cache_dir or os.path.abspath(os.path.join(".costflow", "cache", "opencost"))
    os.makedirs(cache, exist_ok=True)
    plan, paths, allocations = Plan(), list(PATHS), 0
    for start, end in spec.pages():
        url, body = _fetch_page(spec, paths, start, end)
        digest = hashlib.sha256(body).hexdigest()
        path = os.path.join(cache, f"{digest}.json")
        with open(path, "wb") as f:
            f.write(body)
        source, rows = answers.planned_answer(url, body, cache_path=path)
        if source is None:
            plan.empty_files.append(url)
            continue
        plan.files.append(source)
        allocations += rows
    period = f"{_rfc3339(spec.start)}..{_rfc3339(spec.end)}"
    plan.notes.append(f"{pattern}: OpenCost {paths[0]} for {period} (exclusive): "
                      f"{len(spec.pages())} request(s) of one day, {allocations:,} allocation "
                      f"row(s), {len(plan.empty_files)} empty window(s)")
    if spec.widened:
        plan.notes.append(f"{pattern}: read as whole months ({period}, never past tomorrow): "
                          "a load replaces whole (cluster, month) slices")
    return plan
