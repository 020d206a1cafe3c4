"""``opencost://``: the allocation API over HTTP, against a local server started by the tests.

The server answers like OpenCost (the generated answers have the real sample's shape): one
answer per requested window, ``/allocation/compute`` or ``/allocation``, empty windows, idle
rows, and the failures (404 on one path, 500, malformed JSON, a redirect, a slow answer).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.opencost import http_api
from costflow.providers.opencost.samples import allocations as generated

DATA_DAYS = (date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3))
OCTOBER = "window=2026-10-01T00:00:00Z,2026-11-01T00:00:00Z"


@dataclass
class FakeOpenCost:
    """What the server answers: allocations on ``days``, an empty window on the others."""

    days: tuple[date, ...] = DATA_DAYS
    compute_404: bool = False        # /allocation/compute missing (answer on /allocation)
    fail: dict[date, int] = field(default_factory=dict)      # day -> HTTP status
    malformed: tuple[date, ...] = ()
    redirect: bool = False
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def respond(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((path, query))
        if self.redirect:
            return 302, {"Location": "http://example.com/allocation"}, b""
        if path not in http_api.PATHS or (self.compute_404 and path == http_api.PATHS[0]):
            return 404, {}, b"404 page not found"
        day = date.fromisoformat(query["window"][:10])
        if day in self.fail:
            return self.fail[day], {}, b'{"code":500,"message":"error querying prometheus"}'
        if day in self.malformed:
            return 200, {}, b'{"code":200,"data":[{"a":{"totalCost":0.1'
        maps = [generated.day_allocations(day)] if day in self.days else [{}]
        return 200, {}, generated.answer_text(generated.answer(maps)).encode()


@pytest.fixture
def opencost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeOpenCost, str]]:
    """A local OpenCost on 127.0.0.1 (ephemeral port), and its ``opencost://`` base."""
    fake = FakeOpenCost()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if fake.delay:
                time.sleep(fake.delay)
            status, headers, body = fake.respond(url.path, query)
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # the client may have given up (the timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.chdir(tmp_path)  # the answer cache (.costflow/cache/opencost) goes here
    try:
        yield fake, f"opencost://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_month_pages_by_day_falls_back_to_allocation_and_reconciles(opencost,
                                                                        ingest) -> None:
    fake, base = opencost
    fake.compute_404 = True
    report, found = ingest(f"{base}?{OCTOBER}&aggregate=namespace&step=1d",
                           provider="opencost", queries={"day": """
        SELECT BillingAccountId AS cluster, CAST(ChargePeriodStart AS DATE) AS day,
               SUM(BilledCost) AS billed, COUNT(*) AS n,
               COUNT(*) FILTER (WHERE x_LineItemType = 'Idle') AS idle,
               MIN(x_SourceUri) AS uri
        FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2"""})
    assert report["status"] == "succeeded", report.get("error")
    # One 404 on /allocation/compute, then every day of October on /allocation.
    assert [p for p, _ in fake.requests] == ["/allocation/compute"] + ["/allocation"] * 31
    windows = [q["window"] for _, q in fake.requests[1:]]
    assert windows[0] == "2026-10-01T00:00:00Z,2026-10-02T00:00:00Z"
    assert windows[-1] == "2026-10-31T00:00:00Z,2026-11-01T00:00:00Z"
    assert {(q["step"], q["aggregate"], q["includeIdle"], q["accumulate"])
            for _, q in fake.requests} == {("1d", "namespace", "true", "false")}
    truth = generated.truth(generated.answer([generated.day_allocations(d) for d in DATA_DAYS]))
    assert {(r["cluster"], r["day"]): r["billed"] for r in found["day"]} == truth
    assert [(r["n"], r["idle"]) for r in found["day"]] == [(4, 1)] * 3
    assert found["day"][0]["uri"].startswith(base.replace("opencost://", "http://")
                                             + "/allocation?window=2026-10-01T00:00:00Z")
    (only,) = report["slices"]
    assert (only["reconciled"], only["difference"], only["rows_loaded"]) == (True, "0", 12)
    assert Decimal(only["billed_cost"]) == sum(truth.values())
    assert any("32 request(s)" not in w and "31 request(s) of one day" in w
               and "28 empty window(s)" in w for w in report["warnings"])


def test_a_period_without_any_allocation_loads_nothing_and_succeeds(opencost, ingest) -> None:
    fake, base = opencost
    fake.days = ()
    report = ingest(f"{base}?window=2026-09-01,2026-10-01", provider="opencost")
    assert report["status"] == "succeeded", report.get("error")
    assert report["slices"] == [] and report["totals"]["rows_read"] == 0
    assert len(report["empty_files"]) == 30


def test_a_500_is_a_clear_error_naming_the_url(opencost) -> None:
    fake, base = opencost
    fake.fail = {date(2026, 10, 2): 500}
    with pytest.raises(SourceError) as caught:
        CATALOG.plan([f"{base}?{OCTOBER}"], "opencost")
    said = str(caught.value)
    assert "/allocation/compute?window=2026-10-02T00:00:00Z,2026-10-03T00:00:00Z" in said
    assert "HTTP 500" in said and "error querying prometheus" in said


def test_malformed_json_is_a_clear_error_naming_the_url(opencost) -> None:
    fake, base = opencost
    fake.malformed = (date(2026, 10, 3),)
    with pytest.raises(SourceError, match=r"window=2026-10-03T00:00:00Z.*not valid JSON"):
        CATALOG.plan([f"{base}?{OCTOBER}"], "opencost")


def test_404_on_both_paths_names_them(opencost) -> None:
    _, base = opencost
    with pytest.raises(SourceError, match=r"/nothing/allocation\?.*HTTP 404 on both"):
        CATALOG.plan([f"{base}/nothing?{OCTOBER}"], "opencost")


def test_requests_go_only_to_the_named_host(opencost) -> None:
    fake, base = opencost
    fake.redirect = True
    with pytest.raises(SourceError, match=r"HTTP 302.*redirect to http://example.com"):
        CATALOG.plan([f"{base}?{OCTOBER}"], "opencost")
    assert len(fake.requests) == 1


def test_a_slow_answer_times_out(opencost) -> None:
    fake, base = opencost
    fake.delay = 1.0
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"did not answer within 0.3 s"):
        CATALOG.plan([f"{base}?{OCTOBER}&timeout=0.3"], "opencost")
    assert time.monotonic() - started < 1.0


def test_nothing_listens_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:  # a port nothing listens on (bound, never listening)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(SourceError, match=r"could not be reached"):
            CATALOG.plan([f"opencost://127.0.0.1:{port}?{OCTOBER}"], "opencost")


@pytest.mark.parametrize(("uri", "said"), [
    ("opencost://h?window=2026-10-01", "window must be START,END"),
    ("opencost://h?window=2026-10-01T00:00:00,2026-11-01", "with a zone"),
    ("opencost://h?window=2026-11-01,2026-10-01", "ends before it starts"),
    (f"opencost://h?{OCTOBER}&step=7h", "must divide a day"),
    (f"opencost://h?{OCTOBER}&includeIdle=false", "includeIdle must stay true"),
    (f"opencost://h?{OCTOBER}&shareTenancyCosts=true", "unknown parameter"),
    (f"opencost://h?{OCTOBER}&start=2026-10-01&end=2026-11-01", "give the period once"),
    ("opencost://h", "give the period"),
    ("opencost://?window=2026-10-01,2026-11-01", "expected opencost://HOST"),
    (f"opencost://h?{OCTOBER}&timeout=0", "timeout="),
])
def test_uri_mistakes_are_refused_before_any_request(uri: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        http_api.parse_uri(uri)


def test_part_of_a_month_is_widened_and_the_future_left_out() -> None:
    spec = http_api.parse_uri("opencost+https://oc.example/model?window=2026-10-15T06:00:00Z,"
                              "2026-11-03T00:00:00Z&aggregate=namespace,pod",
                              today=date(2026, 12, 20))
    assert spec.base == "https://oc.example:443/model"
    assert (spec.start.isoformat(), spec.end.isoformat(), spec.widened) == (
        "2026-10-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00", True)
    assert len(spec.pages()) == 61
    spec = http_api.parse_uri("opencost://oc:9003?start=2026-11-01&end=2026-12-01",
                              today=date(2026, 11, 20))
    assert (spec.end.isoformat(), spec.widened, len(spec.pages())) == (
        "2026-11-21T00:00:00+00:00", True, 20)
    assert http_api.page_url(spec, "/allocation/compute", *spec.pages()[0]) == (
        "http://oc:9003/allocation/compute?window=2026-11-01T00:00:00Z,2026-11-02T00:00:00Z"
        "&step=1d&includeIdle=true&accumulate=false")
