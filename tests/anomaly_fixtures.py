"""Generated daily costs with planted anomalies, and the precision/recall of what was found.

Eight series (service x AWS account) with a base level, a weekly rhythm (quieter weekends for
some) and multiplicative Gaussian noise (sd 5 %), one row per series and day, written straight
into cost_line_items. Planted in the evaluated period, each on its own series: three spikes
(x2.5 to x4 for one day), one one-day drop (x0.25), two level shifts (x1.7 up and x0.5 down
from a day on), a new service (SageMaker, from a day on) and a dropped one (SQS, 0 from a day
on). A seed fixes everything.

Scoring: a planted event is found when a flag on its series falls in its window (spike and drop:
the day; level shift and disappeared: the onset or the two days after; new: the onset or the day
after). Precision = flags inside some event's window / all flags; recall = events found / events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from costflow.services.anomalies import AnomalyReport
from tests.warehouse_rows import cost_row

FIRST = date(2026, 7, 1)
DAYS = 56 + 35
START = FIRST + timedelta(days=56)
END = FIRST + timedelta(days=DAYS)
# (service, account, base cost per day, weekend factor)
SERIES = [
    ("Amazon Elastic Compute Cloud", "111111111111", 120, Decimal("0.7")),
    ("Amazon Simple Storage Service", "111111111111", 40, Decimal(1)),
    ("Amazon Relational Database Service", "111111111111", 60, Decimal(1)),
    ("AWS Lambda", "222222222222", 15, Decimal("0.4")),
    ("Amazon CloudFront", "222222222222", 25, Decimal("0.9")),
    ("Amazon Elastic Compute Cloud", "222222222222", 80, Decimal("0.8")),
    ("Amazon DynamoDB", "333333333333", 30, Decimal(1)),
    ("Amazon Simple Queue Service", "333333333333", 8, Decimal(1)),
]
NEW = ("Amazon SageMaker", "333333333333", 50, Decimal(1))
WINDOWS = {"spike": 0, "drop": 0, "level_shift": 2, "disappeared": 2, "new": 1}


@dataclass(frozen=True)
class Planted:
    kind: str
    service: str
    account: str
    day: date


def generate(seed: int, noise: float = 0.05) -> tuple[list[dict[str, Any]], list[Planted]]:
    """Rows and the events planted in [START, END); ``noise`` is the sd of the daily noise."""
    rng = random.Random(seed)
    factors: dict[tuple[str, str], dict[int, Decimal]] = {}
    planted: list[Planted] = []
    candidates = SERIES[:-1]
    rng.shuffle(candidates)
    evaluated = DAYS - 56

    def onset(margin: int) -> int:
        return 56 + rng.randrange(2, evaluated - margin)

    for kind, (service, account, _, _) in zip(
            ["spike", "spike", "spike", "drop", "level_shift", "level_shift"], candidates[:6],
            strict=True):
        at = onset(4)
        if kind in ("spike", "drop"):
            factor = Decimal(str(round(rng.uniform(2.5, 4), 2))) if kind == "spike" \
                else Decimal("0.25")
            factors[(service, account)] = {at: factor}
        else:
            factor = Decimal("1.7") if not any(p.kind == "level_shift" for p in planted) \
                else Decimal("0.5")
            factors[(service, account)] = {d: factor for d in range(at, DAYS)}
        planted.append(Planted(kind, service, account, FIRST + timedelta(days=at)))
    gone = onset(5)
    factors[SERIES[-1][:2]] = {d: Decimal(0) for d in range(gone, DAYS)}
    planted.append(Planted("disappeared", *SERIES[-1][:2], FIRST + timedelta(days=gone)))
    born = onset(5)
    factors[NEW[:2]] = {d: Decimal(0) for d in range(born)}
    planted.append(Planted("new", *NEW[:2], FIRST + timedelta(days=born)))

    rows: list[dict[str, Any]] = []
    for service, account, base, weekend in [*SERIES, NEW]:
        for i in range(DAYS):
            day = FIRST + timedelta(days=i)
            level = Decimal(base) * (weekend if day.weekday() >= 5 else 1)
            jitter = Decimal(str(round(rng.gauss(1, noise), 4)))
            cost = (level * jitter * factors.get((service, account), {}).get(i, Decimal(1))
                    ).quantize(Decimal("0.01"))
            if cost == 0:
                continue
            start = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
            rows.append(cost_row(str(cost), account="999999999999", sub_account=account,
                                 service=service, charge_start=start, row_number=len(rows) + 1,
                                 period=datetime(day.year, day.month, 1, tzinfo=UTC)))
    return rows, planted


def score(report: AnomalyReport, planted: list[Planted]) -> dict[str, Any]:
    """Precision, recall and kind accuracy of ``report`` against ``planted``."""
    def matches(anomaly: Any, event: Planted) -> bool:
        dims = anomaly.dimensions
        return (dims.get("service") == event.service and dims.get("sub_account") == event.account
                and 0 <= (anomaly.day - event.day).days <= WINDOWS[event.kind])

    flags = report.anomalies
    true_flags = [a for a in flags if any(matches(a, e) for e in planted)]
    found = [e for e in planted if any(matches(a, e) for a in flags)]
    right_kind = [e for e in planted if any(matches(a, e) and a.kind == e.kind for a in flags)]
    return {"flags": len(flags), "events": len(planted), "true_flags": len(true_flags),
            "found": len(found), "right_kind": len(right_kind),
            "false": [(a.day, a.dimensions, a.kind) for a in flags if a not in true_flags],
            "missed": [e for e in planted if e not in found]}
