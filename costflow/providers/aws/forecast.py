"""AWS's own forecast (Cost Explorer ``GetCostForecast``), to hold costflow's forecast against.

Why this module exists: `costflow.services.forecast` forecasts from the warehouse's history; a
FinOps engineer wants to see it next to what AWS itself predicts. This module fetches AWS's
forecast, exact (every value in the answer is a string [PF §2.6]), in the same shape as
costflow's points (`ForecastPoint`: period, mean, prediction interval). It is not wired into
``costflow query forecast`` yet: the comparison is for the query side to add; nothing is stored.

[PF §2.6] = ../shared/reference/provider_formats.md §2.6 (GetCostForecast request/response).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from costflow.errors import ConfigError, SourceError
from costflow.models import ForecastPoint, TimePeriod

# costflow metric (a FOCUS cost column) -> GetCostForecast Metric (uppercase snake) [PF §2.6].
METRICS = {"BilledCost": "UNBLENDED_COST", "EffectiveCost": "AMORTIZED_COST"}


@dataclass(frozen=True)
class ProviderForecast:
    """AWS's forecast of [start, end): per-period points, the total and its currency."""

    provider: str
    metric: str                 # the costflow metric it forecasts (BilledCost, EffectiveCost)
    currency: str
    confidence: float           # PredictionIntervalLevel / 100
    total: Decimal
    points: list[ForecastPoint]


def fetch_cost_forecast(client: Any, start: date, end: date, granularity: str = "MONTHLY",
                        metric: str = "BilledCost", confidence: float = 0.8) -> ProviderForecast:
    """Call GetCostForecast (Start must be today or later, End exclusive) and parse it exactly.

    Args:
        client: a boto3 ``ce`` client.
        start, end: the forecast period [start, end).
        granularity: DAILY or MONTHLY.
        metric: BilledCost (UNBLENDED_COST) or EffectiveCost (AMORTIZED_COST).
        confidence: prediction interval level, 0.51 to 0.99.
    """
    if metric not in METRICS:
        raise ConfigError(f"AWS forecasts {', '.join(METRICS)}, not {metric!r}.")
    level = round(confidence * 100)
    if not 51 <= level <= 99:
        raise ConfigError(f"confidence {confidence} is outside 0.51..0.99 (GetCostForecast's "
                          "PredictionIntervalLevel is 51 to 99).")
    uri = f"aws-ce://forecast?start={start.isoformat()}&end={end.isoformat()}"
    try:
        answer = client.get_cost_forecast(
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Metric=METRICS[metric], Granularity=granularity, PredictionIntervalLevel=level)
    except Exception as exc:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            raise SourceError(uri, f"Cost Explorer refused the forecast: {err.get('Code')}: "
                                   f"{err.get('Message')}.",
                              expected="ce:GetCostForecast allowed, Start today or later") from exc
        raise
    points = []
    for item in answer.get("ForecastResultsByTime") or []:
        period = item["TimePeriod"]
        mean = Decimal(item["MeanValue"])
        points.append(ForecastPoint(
            period=TimePeriod(date.fromisoformat(period["Start"]),
                              date.fromisoformat(period["End"])),
            cost=mean,
            lower=Decimal(item.get("PredictionIntervalLowerBound") or mean),
            upper=Decimal(item.get("PredictionIntervalUpperBound") or mean)))
    total = answer.get("Total") or {}
    return ProviderForecast(provider="aws", metric=metric, currency=total.get("Unit", "USD"),
                            confidence=level / 100, total=Decimal(total.get("Amount", "0")),
                            points=points)
