"""Read the ECB euro foreign exchange reference rates (the CSV files the ECB publishes).

Both files have a header ``Date, USD, JPY, ...`` and one row per reference day, each value the
units of that currency per 1 EUR; every line ends with a trailing comma (an empty last field):

- the daily file ``eurofxref.csv``: one row, the date written ``03 December 2026``;
- the historical file ``eurofxref-hist.csv``: every day since 1999, dates ``2026-12-03``,
  ``N/A`` where a currency had no rate that day (it did not exist yet, or was suspended).

Each value becomes one rate EUR -> currency, exact as written (the file's text is parsed as a
decimal, never as a float); ``N/A`` and empty values are skipped. A ``.zip`` as the ECB serves
it (``eurofxref-hist.zip``) is read too. Anything else is refused naming the line and column.

    rates = parse_ecb(Path("eurofxref-hist.csv"))   # list[Rate], all from EUR
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from costflow.errors import ConfigError
from costflow.services.rates import PIVOT, Rate, check_currency, check_rate

SOURCE = "ecb"
_MISSING = frozenset({"", "N/A"})
_DATE_FORMATS = ("%Y-%m-%d", "%d %B %Y")


def read_text(path: Path) -> str:
    """The CSV text of ``path`` (a .csv, or the ECB's .zip holding one)."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
                if len(names) != 1:
                    raise ConfigError(f"{path}: expected one .csv inside the zip, found "
                                      f"{names or 'none'}.")
                return archive.read(names[0]).decode("utf-8-sig")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read ECB rates file {path}: {err}.") from err


def parse_ecb(path: Path) -> list[Rate]:
    """Every EUR -> currency rate in an ECB daily or historical reference-rate file.

    Raises:
        ConfigError: not an ECB file (no ``Date`` header), a bad date, currency or value;
            names the file, line and column.
    """
    return parse_ecb_text(read_text(path), str(path))


def parse_ecb_text(text: str, name: str) -> list[Rate]:
    """`parse_ecb` over the file's text; ``name`` is used in errors."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = [h.strip() for h in next(rows, [])]
    while header and header[-1] == "":
        header.pop()  # the trailing comma
    if not header or header[0] != "Date" or len(header) < 2:
        raise ConfigError(f"{name}: line 1 is not an ECB reference-rate header "
                          f"('Date, USD, JPY, ...'), got {','.join(header)[:80]!r}.")
    currencies = [check_currency(code, f"{name}: line 1, column {i + 2}")
                  for i, code in enumerate(header[1:])]
    out: list[Rate] = []
    for line, row in enumerate(rows, start=2):
        values = [v.strip() for v in row]
        if not any(values):
            continue
        while len(values) > len(header) and values[-1] == "":
            values.pop()
        if len(values) != len(header):
            raise ConfigError(f"{name}: line {line} has {len(values)} values, the header "
                              f"{len(header)} (Date and {len(currencies)} currencies).")
        day = _day(values[0], f"{name}: line {line}, column Date")
        for code, value in zip(currencies, values[1:], strict=True):
            if value in _MISSING:
                continue
            where = f"{name}: line {line}, column {code}"
            try:
                rate = Decimal(value)
            except InvalidOperation:
                raise ConfigError(f"{where}: {value!r} is not a number (or N/A).") from None
            out.append(Rate(day, PIVOT, code, check_rate(rate, where)))
    if not out:
        raise ConfigError(f"{name}: no rates found below the header.")
    return out


def _day(text: str, where: str) -> date:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ConfigError(f"{where}: {text!r} is not a date like 2026-12-03 or 03 December 2026.")
