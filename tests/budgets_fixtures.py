"""Small generated warehouses for the budget, alert and report tests, plus a webhook peer.

`daily_rows` writes ~75 days (2026-09-01 .. 2026-11-14) of AWS, GCP and Azure rows with a
weekly rhythm straight into cost_line_items (the budget and report code do not care how rows
got there), with a successful run and its reconciled slices in load_runs / load_slices.
Oracles are computed by the tests from the returned row dicts, never from costflow.

`Webhook` is a real HTTP server on 127.0.0.1 (ephemeral port) that records every POST and
answers with a scripted status sequence (then 200).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from costflow.schemas.operational import LOAD_RUNS, LOAD_SLICES
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import insert
from tests.warehouse_rows import EC2, S3, cost_row

AWS_ACCT = "111111111111"
GCP_BILLING = "01A2B3-C4D5E6-F7A8B9"
AZ_BILLING = "8f1c2d3e-0000-4000-8000-0000000000e2"
FIRST = date(2026, 9, 1)
LAST = date(2026, 11, 14)   # the last day with charges
RUN_ID = "20261115T060000Z-0a1b2c3d"
SPIKE = date(2026, 10, 20)  # Google Cloud costs ten times its usual Tuesday: an anomaly


def _month(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def daily_rows() -> list[dict[str, Any]]:
    """Deterministic rows: EC2 (team=web) and S3 (team=data) on AWS, Compute Engine on GCP (USD),
    Virtual Machines on Azure (EUR). Weekdays cost more than weekends; November's EC2 is 20 %
    up on October's (a month-over-month change to see); Compute Engine spikes on `SPIKE`."""
    rows: list[dict[str, Any]] = []
    day = FIRST
    n = 0
    while day <= LAST:
        weekend = day.weekday() >= 5
        start = datetime(day.year, day.month, day.day, 4, tzinfo=UTC)
        ec2 = Decimal("60.125") if not weekend else Decimal("30.5")
        if day.month == 11:
            ec2 = ec2 * Decimal("1.2")
        items = [
            cost_row(str(ec2), account=AWS_ACCT, sub_account=AWS_ACCT, period=_month(day),
                     charge_start=start, row_number=n, Tags=json.dumps({"team": "web"}),
                     x_RunId=RUN_ID),
            cost_row("12.3456" if not weekend else "11.1111", account=AWS_ACCT,
                     sub_account="222222222222", period=_month(day), service=S3,
                     charge_start=start, row_number=n + 1, Tags=json.dumps({"team": "data"}),
                     x_RunId=RUN_ID),
            cost_row("257.50" if day == SPIKE else "25.75" if not weekend else "20.25",
                     account=GCP_BILLING,
                     sub_account="acme-web", period=_month(day), service="Compute Engine",
                     region="us-central1", charge_start=start, row_number=n + 2,
                     ProviderName="Google Cloud", x_SourceProvider="gcp",
                     Tags=json.dumps({"team": "web"}), x_RunId=RUN_ID),
            cost_row("9.99", account=AZ_BILLING, sub_account="sub-az-1", period=_month(day),
                     service="Virtual Machines", region="westeurope", currency="EUR",
                     charge_start=start, row_number=n + 3, ProviderName="Microsoft",
                     x_SourceProvider="azure", Tags=json.dumps({}), x_RunId=RUN_ID),
        ]
        rows += items
        n += 4
        day += timedelta(days=1)
    assert rows[0]["ServiceName"] == EC2
    return rows


def ledger_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One succeeded run and a reconciled slice per (provider, account, month) of ``rows``."""
    at = datetime(2026, 11, 15, 6, tzinfo=UTC)
    total = sum((r["BilledCost"] for r in rows), Decimal(0))
    run = {n: None for n in LOAD_RUNS.names}
    run.update(run_id=RUN_ID, status="succeeded", provider=None, sources="[]", started_at=at,
               finished_at=at + timedelta(minutes=2), rows_read=len(rows),
               rows_loaded=len(rows), rows_dead_lettered=0, source_basis_total=total,
               billed_cost_total=total, dead_lettered_cost_total=Decimal(0))
    slices: dict[tuple[str, str, datetime], list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["x_SourceProvider"], r["BillingAccountId"], r["BillingPeriodStart"])
        slices.setdefault(key, []).append(r)
    out = []
    for (provider, account, period), members in sorted(slices.items()):
        cost = sum((m["BilledCost"] for m in members), Decimal(0))
        out.append({"run_id": RUN_ID, "x_SourceProvider": provider, "BillingAccountId": account,
                    "BillingPeriodStart": period, "rows_read": len(members),
                    "rows_loaded": len(members), "rows_dead_lettered": 0, "source_basis": cost,
                    "loaded_billed_cost": cost, "dead_lettered_cost": Decimal(0),
                    "committed_at": at, "high_water_export_time": None})
    return [run], out


def build_warehouse(path: Path) -> tuple[DuckDBWarehouse, list[dict[str, Any]]]:
    """The warehouse file with `daily_rows` and its ledger; (warehouse, rows)."""
    warehouse = DuckDBWarehouse(path)
    warehouse.ensure_schema()
    rows = daily_rows()
    insert(warehouse, rows)
    runs, slices = ledger_rows(rows)
    insert(warehouse, runs, LOAD_RUNS)
    insert(warehouse, slices, LOAD_SLICES)
    return warehouse, rows


class Webhook:
    """A local HTTP peer: ``statuses`` are answered in order, then 200; bodies are kept."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status == 200:
                    hook.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/budget"

    @contextmanager
    def running(self) -> Iterator[Webhook]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)
