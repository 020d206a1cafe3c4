"""AWS's GetCostForecast, parsed exactly (moto lacks it: botocore Stubber [PF §2.8])."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from costflow.errors import ConfigError, SourceError
from costflow.models import TimePeriod
from costflow.providers.aws.forecast import fetch_cost_forecast

# Shaped like a real answer: every value a string, Total in the billing currency [PF §2.6].
ANSWER = {
    "Total": {"Amount": "2763.4012850927", "Unit": "USD"},
    "ForecastResultsByTime": [
        {"TimePeriod": {"Start": "2026-11-26", "End": "2026-12-01"},
         "MeanValue": "412.8812850927", "PredictionIntervalLowerBound": "380.1200000001",
         "PredictionIntervalUpperBound": "445.6425701853"},
        {"TimePeriod": {"Start": "2026-12-01", "End": "2027-01-01"},
         "MeanValue": "2350.52", "PredictionIntervalLowerBound": "2101.004",
         "PredictionIntervalUpperBound": "2600.035999"},
    ],
}


@pytest.fixture
def client():
    return boto3.client("ce", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_forecast_points_and_total_are_exact(client):
    with Stubber(client) as stub:
        stub.add_response("get_cost_forecast", ANSWER, {
            "TimePeriod": {"Start": "2026-11-26", "End": "2027-01-01"},
            "Metric": "AMORTIZED_COST", "Granularity": "MONTHLY",
            "PredictionIntervalLevel": 90})
        got = fetch_cost_forecast(client, date(2026, 11, 26), date(2027, 1, 1),
                                  metric="EffectiveCost", confidence=0.9)
        stub.assert_no_pending_responses()
    assert (got.total, got.currency, got.confidence, got.metric) == (
        Decimal("2763.4012850927"), "USD", 0.9, "EffectiveCost")
    assert [(p.period, p.cost, p.lower, p.upper) for p in got.points] == [
        (TimePeriod(date(2026, 11, 26), date(2026, 12, 1)), Decimal("412.8812850927"),
         Decimal("380.1200000001"), Decimal("445.6425701853")),
        (TimePeriod(date(2026, 12, 1), date(2027, 1, 1)), Decimal("2350.52"),
         Decimal("2101.004"), Decimal("2600.035999"))]


def test_a_refused_forecast_is_a_source_error(client):
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_forecast", "DataUnavailableException",
                              "Insufficient amount of historical data to generate forecast.")
        with pytest.raises(SourceError, match="DataUnavailableException: Insufficient"):
            fetch_cost_forecast(client, date(2026, 11, 26), date(2026, 12, 1))


@pytest.mark.parametrize("kwargs, message", [({"metric": "ListCost"}, "not 'ListCost'"),
                                             ({"confidence": 0.5}, "outside 0.51..0.99")])
def test_bad_arguments_are_config_errors(client, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        fetch_cost_forecast(client, date(2026, 11, 26), date(2026, 12, 1), **kwargs)
