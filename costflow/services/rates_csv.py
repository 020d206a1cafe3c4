"""Read exchange rates from a plain CSV: ``date,from,to,rate``, one rate per line.

For rates a company sets itself (a treasury or month-end rate) or gets from elsewhere. The
header is required (``date,from,to,rate``, in that order; ``from_currency``/``to_currency``
are accepted too); dates are ISO (``2026-11-03``), rates decimal text, read exactly:
``1 from = rate to``. A month-end rate used for a whole month is written once per day (or
relies on the lookback: a rate serves up to ``--max-rate-age`` days after its date).

    rates = parse_rates_csv(Path("rates.csv"))
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from costflow.errors import ConfigError
from costflow.services.rates import Rate, check_currency, check_rate

SOURCE = "csv"
_HEADERS = (("date", "from", "to", "rate"), ("date", "from_currency", "to_currency", "rate"))


def parse_rates_csv(path: Path) -> list[Rate]:
    """Every rate of the file.

    Raises:
        ConfigError: a missing or different header, a bad date, currency or rate (naming the
            file, line and column).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read rates file {path}: {err}.") from err
    return parse_rates_csv_text(text, str(path))


def parse_rates_csv_text(text: str, name: str) -> list[Rate]:
    """`parse_rates_csv` over the file's text; ``name`` is used in errors."""
    rows = csv.reader(io.StringIO(text))
    header = tuple(h.strip().lower() for h in next(rows, []))
    if header not in _HEADERS:
        raise ConfigError(f"{name}: line 1 must be the header date,from,to,rate, got "
                          f"{','.join(header)[:80]!r}.")
    out: list[Rate] = []
    for line, row in enumerate(rows, start=2):
        values = [v.strip() for v in row]
        if not any(values):
            continue
        if len(values) != 4:
            raise ConfigError(f"{name}: line {line} has {len(values)} values; expected 4 "
                              "(date,from,to,rate).")
        day_text, src, dst, rate_text = values
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ConfigError(f"{name}: line {line}, column date: {day_text!r} is not a date "
                              "like 2026-11-03.") from None
        src = check_currency(src, f"{name}: line {line}, column from")
        dst = check_currency(dst, f"{name}: line {line}, column to")
        if src == dst:
            raise ConfigError(f"{name}: line {line}: a rate from {src} to itself is always 1; "
                              "remove the line.")
        try:
            rate = Decimal(rate_text)
        except InvalidOperation:
            raise ConfigError(f"{name}: line {line}, column rate: {rate_text!r} is not a "
                              "number.") from None
        out.append(Rate(day, src, dst, check_rate(rate, f"{name}: line {line}, column rate")))
    if not out:
        raise ConfigError(f"{name}: no rates below the header.")
    return out
