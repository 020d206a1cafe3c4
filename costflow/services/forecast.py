"""Forecast daily cost with a seasonal state-space model, and say how good it was last week.

Cloud spend has a weekly rhythm (weekday batch jobs, quiet weekends) and a drift. The model is
statsmodels' ETS (error, trend, seasonality) with additive error, a damped additive trend and an
additive weekly season, fitted by maximum likelihood. Prediction intervals come from simulating
the fitted model (1,000 paths, fixed seed so the same history gives the same answer); intervals
of months and of the whole period are quantiles of the simulated *sums*, which is what an
interval of a total means (adding daily bounds would overstate it).

Before forecasting, the model is fitted again without the last `BACKTEST_DAYS` days and scored
on them: mean absolute error per day and WAPE (sum of absolute errors / sum of actuals). A
forecast is an estimate: amounts are rounded to cents, and the history is converted to float
for fitting (the ledger stays exact in the warehouse).
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

from costflow.errors import ConfigError
from costflow.models import ForecastPoint, TimePeriod

SEASON = 7
BACKTEST_DAYS = 14
# Two full weeks to fit the season in the backtest, plus the held-out fortnight.
MIN_HISTORY_DAYS = 2 * SEASON + BACKTEST_DAYS
MAX_HORIZON_DAYS = 366
SIMULATIONS = 1000
SEED = 20260210
MODEL = "ETS(A,Ad,A) weekly season (statsmodels ETSModel), simulated intervals"
CENT = Decimal("0.01")


def daily_series(history: dict[date, Decimal], last_day: date) -> pd.Series:
    """History as a float series from its first day to ``last_day``; missing days are 0.

    Indexed by position (day 0 is the first day), not by timestamp: pandas timestamps end in
    2262 and begin in 1677, billing dates may be anything from year 1 to 9999, and the model
    needs only the order of the days and the weekly period.
    """
    first = min(history)
    days = (last_day - first).days + 1
    values = [float(history.get(first + timedelta(days=i), Decimal(0))) for i in range(days)]
    return pd.Series(values, dtype="float64")


def next_month(day: date) -> date | None:
    """The first day of the month after ``day``'s; None after December 9999."""
    if day.month < 12:
        return date(day.year, day.month + 1, 1)
    return date(day.year + 1, 1, 1) if day.year < date.max.year else None


def _fit(series: pd.Series):  # noqa: ANN202 - statsmodels results type
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(series, error="add", trend="add", damped_trend=True, seasonal="add",
                     seasonal_periods=SEASON)
    with warnings.catch_warnings():
        # Convergence chatter on short or flat series; the backtest reports the real quality.
        warnings.simplefilter("ignore")
        return model.fit(disp=False, maxiter=500)


def backtest(series: pd.Series) -> tuple[Decimal, Decimal | None]:
    """Fit without the last `BACKTEST_DAYS` days, forecast them: (MAE per day, WAPE)."""
    train, held = series.iloc[:-BACKTEST_DAYS], series.iloc[-BACKTEST_DAYS:]
    predicted = np.asarray(_fit(train).forecast(BACKTEST_DAYS))
    errors = np.abs(held.to_numpy() - predicted)
    actual = float(np.abs(held.to_numpy()).sum())
    mae = _money(errors.mean())
    wape = Decimal(str(round(errors.sum() / actual, 4))) if actual else None
    return mae, wape


def forecast(history: dict[date, Decimal], last_day: date, start: date, end: date,
             granularity: str, confidence: float = 0.95,
             ) -> tuple[list[ForecastPoint], tuple[Decimal, Decimal, Decimal], TimePeriod,
                        tuple[Decimal, Decimal | None]]:
    """Forecast [start, end) from daily ``history`` ending on ``last_day``.

    Args:
        history: day -> cost (one currency); days without charges may be absent.
        last_day: the last day of history (inclusive); the forecast starts the day after and
            covers any gap up to ``start`` without reporting it.
        start: first forecast day reported; after ``last_day``.
        end: first day not reported.
        granularity: DAILY or MONTHLY.
        confidence: of the prediction intervals, in (0, 1).

    Returns:
        (points, (total, lower, upper), history period, (backtest MAE, backtest WAPE)).

    Raises:
        ConfigError: too little history, a bad range or granularity.
    """
    if granularity not in ("DAILY", "MONTHLY"):
        raise ConfigError(f"forecast granularity {granularity!r}; allowed: DAILY, MONTHLY.")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence!r} must be between 0 and 1, e.g. 0.95.")
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")
    if start <= last_day:
        raise ConfigError(f"the forecast must start after the history: start {start} is not "
                          f"after the last day of history {last_day}.")
    days = (last_day - min(history)).days + 1 if history else 0
    if days < MIN_HISTORY_DAYS:
        raise ConfigError(
            f"not enough history to forecast: {days} day(s) of daily costs before {start}, "
            f"{MIN_HISTORY_DAYS} needed (two weeks to learn the weekly season and two more to "
            "check the model). Load more billing history or forecast later.")
    horizon = (end - last_day).days - 1
    if horizon > MAX_HORIZON_DAYS:
        raise ConfigError(f"forecast ends {horizon} days after the history; at most "
                          f"{MAX_HORIZON_DAYS} are supported.")
    series = daily_series(history, last_day)
    mae_wape = backtest(series)
    fitted = _fit(series)
    paths = np.asarray(fitted.simulate(horizon, repetitions=SIMULATIONS, anchor="end",
                                       rng=np.random.default_rng(SEED)))
    paths = paths.reshape(horizon, SIMULATIONS)
    mean = np.asarray(fitted.forecast(horizon))
    first = last_day + timedelta(days=1)
    offset = (start - first).days
    mean, paths = mean[offset:], paths[offset:]
    tail = (1 - confidence) / 2
    reported = [start + timedelta(days=i) for i in range(len(mean))]
    points = [_point(period, mean[rows], paths[rows], tail)
              for period, rows in _buckets(reported, granularity, end)]
    total = _point(TimePeriod(start, end), mean, paths, tail)
    return (points, (total.cost, total.lower, total.upper),
            TimePeriod(min(history), last_day + timedelta(days=1)), mae_wape)


def _buckets(days: list[date], granularity: str,
             end: date) -> list[tuple[TimePeriod, slice]]:
    if granularity == "DAILY":
        return [(TimePeriod(d, d + timedelta(days=1)), slice(i, i + 1))
                for i, d in enumerate(days)]
    out: list[tuple[TimePeriod, slice]] = []
    begin = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i].month != days[begin].month:
            month_end = min(end, next_month(days[begin]) or end)
            out.append((TimePeriod(days[begin], month_end), slice(begin, i)))
            begin = i
    return out


def _point(period: TimePeriod, mean: np.ndarray, paths: np.ndarray,
           tail: float) -> ForecastPoint:
    sums = paths.sum(axis=0)
    return ForecastPoint(period, _money(mean.sum()), _money(np.quantile(sums, tail)),
                         _money(np.quantile(sums, 1 - tail)))


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_EVEN)
