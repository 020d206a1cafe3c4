"""Loading OpenShift usage payloads into `k8s_usage` (what allocation splits by)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from costflow.allocation.store import replace_usage
from costflow.usage.openshift import open_payload, read_payload


@dataclass(frozen=True)
class UsageLoad:
    source: str
    cluster_id: str
    uuid: str
    rows: dict[str, int]        # rows per report kind
    periods: list[datetime]     # report periods touched
    first_hour: datetime | None
    last_hour: datetime | None


def load_usage(warehouse: Any, source: str) -> UsageLoad:
    """Read the payload at ``source`` (directory or .tar.gz) and replace its days atomically."""
    with open_payload(source) as payload:
        table = read_payload(payload, datetime.now(UTC))
        counts = replace_usage(warehouse, table)
        starts = table.column("interval_start").to_pylist()
        periods = sorted(set(table.column("report_period_start").to_pylist()))
        return UsageLoad(source, payload.cluster_id, payload.uuid, counts, periods,
                         min(starts) if starts else None, max(starts) if starts else None)
