"""Exchange rates: storing them, and the one policy that picks the rate a cost converts with.

Costs stay in the currency they were billed in; a reporting currency is applied at query time
(`costflow.services.rates_convert`) with rates from the ``exchange_rates`` table, loaded from the
ECB reference rates (`rates_ecb`), a plain CSV (`rates_csv`) or the rates the bills carry
(`rates_bills`). This module holds what they share:

- `store_rates` replaces the (date, from_currency, to_currency) keys of one source, deleting
  and inserting in one transaction per `CHUNK` keys (``sql/load/replace_exchange_rates.sql``):
  a key is never doubled or lost, a rerun never duplicates, and a load cut short is completed
  by running it again.
- `RateBook.lookup` is the conversion policy. For a charge on day D, from currency F to T:
  1. F == T: rate 1.
  2. The rate of day D, else of the latest earlier day within ``max_age_days`` (default 7):
     on each day tried, newest first, a stated rate F->T wins; else the inverse of a stated
     T->F; else the cross rate through EUR, r(EUR->T) / r(EUR->F), when both legs are stated
     for that same day (the ECB publishes rates per 1 EUR). Several sources stating the
     same pair for the same day: `SOURCE_PREFERENCE` decides (the user's own CSV first).
  3. Otherwise no rate: the caller reports the amount as unconvertible, never drops or
     guesses it.
- Rounding. Stated rates are used exactly as stored. A derived rate is a quotient, which a
  decimal cannot always hold: inverse and cross rates are rounded half-even to 18 decimal
  places (`DERIVED_PLACES`, the scale of the warehouse's exact decimals). Multiplying an
  amount by a rate and adding the products is exact (`EXACT`: enough digits that no product
  or sum of the warehouse's numbers is ever rounded); only display rounds.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from costflow.errors import ConfigError
from costflow.schemas.columns import DECIMAL_SCALE
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

DEFAULT_MAX_AGE_DAYS = 7
PIVOT = "EUR"  # the ECB states every rate per 1 EUR: cross rates go through it
DERIVED_PLACES = Decimal(1).scaleb(-DECIMAL_SCALE)  # 1e-18
# 38-digit decimals times 38-digit rates, summed over many days, never need more than this.
EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)
# Which source's rate wins when several state the same pair for the same day.
SOURCE_PREFERENCE = ("csv", "ecb", "bill:gcp", "bill:azure")
# Keys per transaction: BigQuery caps a request (query text and parameters) at 10 MB, and the
# ECB history since 1999 holds ~200,000 rates. Each key is still replaced atomically.
CHUNK = 40_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SOURCE = re.compile(r"^[a-z][a-z0-9_:.-]{0,63}$")


@dataclass(frozen=True)
class Rate:
    """One stated rate: 1 ``from_currency`` = ``rate`` ``to_currency`` on ``day``."""

    day: date
    from_currency: str
    to_currency: str
    rate: Decimal


@dataclass(frozen=True)
class AppliedRate:
    """The rate a conversion used, and where it came from.

    Attributes:
        from_currency, to_currency: the pair converted.
        rate: units of ``to_currency`` per unit of ``from_currency`` (derived ones rounded).
        rate_date: the day the rate is of (the charge day, or up to max_age_days earlier).
        source: the source(s) of the stated rate(s) it comes from, e.g. ``ecb``.
        how: ``identity``, ``stated``, ``inverse`` or ``cross via EUR``.
    """

    from_currency: str
    to_currency: str
    rate: Decimal
    rate_date: date | None
    source: str
    how: str


def check_currency(code: Any, where: str) -> str:
    """``code`` if it is an ISO 4217-shaped code (three capital letters), else ConfigError."""
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise ConfigError(f"{where}: currency {code!r} is not a three-letter ISO 4217 code "
                          "in capitals (e.g. EUR).")
    return code


def check_rate(value: Decimal, where: str) -> Decimal:
    """A positive rate with at most 18 decimal places (the warehouse's scale), else ConfigError."""
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{where}: rate {value} is not a positive number.")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > DECIMAL_SCALE:
        raise ConfigError(f"{where}: rate {value} has more than {DECIMAL_SCALE} decimal places; "
                          "it would be rounded in the warehouse, so it is refused.")
    if value.adjusted() >= 38 - DECIMAL_SCALE:
        raise ConfigError(f"{where}: rate {value} is too large for the warehouse's decimals.")
    return value


def store_rates(warehouse: Warehouse, rates: list[Rate], source: str) -> int:
    """Replace ``source``'s rates of the keys in ``rates`` with them, in one transaction.

    Returns:
        Rows written.

    Raises:
        ConfigError: a bad source name, currency or rate, or one key given twice with
            different rates.
    """
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ConfigError(f"rate source {source!r} must be lowercase letters, digits and "
                          "_:.- (e.g. ecb, csv).")
    seen: dict[tuple[date, str, str], Decimal] = {}
    for rate in rates:
        where = f"{source} rate {rate.from_currency}->{rate.to_currency} on {rate.day}"
        check_currency(rate.from_currency, where)
        check_currency(rate.to_currency, where)
        check_rate(rate.rate, where)
        key = (rate.day, rate.from_currency, rate.to_currency)
        if key in seen and seen[key] != rate.rate:
            raise ConfigError(f"{where} is given twice with different rates ({seen[key]} and "
                              f"{rate.rate}); which one applies is not guessed.")
        seen[key] = rate.rate
    if not seen:
        return 0
    warehouse.ensure_schema()
    script = sqlfiles.transaction_script("load/replace_exchange_rates.sql")
    keys = sorted(seen)
    for first in range(0, len(keys), CHUNK):
        chunk = keys[first:first + CHUNK]
        warehouse.query(script, {
            "source": source,
            "rate_days": [d.isoformat() for d, _, _ in chunk],
            "rate_froms": [f for _, f, _ in chunk],
            "rate_tos": [t for _, _, t in chunk],
            "rate_values": [format(seen[k], "f") for k in chunk],
        })
    return len(keys)


class RateBook:
    """Rates read for one conversion, answering `lookup` under the module's policy."""

    def __init__(self, rows: list[dict[str, Any]], max_age_days: int = DEFAULT_MAX_AGE_DAYS,
                 ) -> None:
        if isinstance(max_age_days, bool) or not isinstance(max_age_days, int) \
                or not 0 <= max_age_days <= 366:
            raise ConfigError(f"max rate age {max_age_days!r} must be a whole number of days "
                              "from 0 to 366.")
        self.max_age = timedelta(days=max_age_days)
        rank = {s: i for i, s in enumerate(SOURCE_PREFERENCE)}
        best: dict[tuple[date, str, str], tuple[tuple[int, str], Decimal, str]] = {}
        for row in rows:
            key = (row["date"], row["from_currency"], row["to_currency"])
            order = (rank.get(row["source"], len(rank)), row["source"])
            if key not in best or order < best[key][0]:
                best[key] = (order, row["rate"], row["source"])
        self._stated = {k: (v[1], v[2]) for k, v in best.items()}
        by_pair: dict[tuple[str, str], set[date]] = defaultdict(set)
        for day, src, dst in self._stated:
            by_pair[(src, dst)].add(day)
        self._days = {pair: sorted(days) for pair, days in by_pair.items()}

    def lookup(self, from_currency: str, to_currency: str, day: date) -> AppliedRate | None:
        """The rate for a charge on ``day`` (see the module docstring), or None."""
        if from_currency == to_currency:
            return AppliedRate(from_currency, to_currency, Decimal(1), None, "", "identity")
        earliest = day - self.max_age if day.toordinal() > self.max_age.days else date.min
        for candidate in self._candidate_days(from_currency, to_currency, day, earliest):
            found = self._on(from_currency, to_currency, candidate)
            if found is not None:
                return found
        return None

    def _candidate_days(self, src: str, dst: str, day: date, earliest: date) -> list[date]:
        """Days in [earliest, day] with any rate that could serve the pair, newest first."""
        days: set[date] = set()
        for pair in ((src, dst), (dst, src), (PIVOT, src), (PIVOT, dst)):
            known = self._days.get(pair, [])
            days.update(known[bisect_left(known, earliest):bisect_right(known, day)])
        return sorted(days, reverse=True)

    def _on(self, src: str, dst: str, day: date) -> AppliedRate | None:
        stated = self._stated.get((day, src, dst))
        if stated is not None:
            return AppliedRate(src, dst, stated[0], day, stated[1], "stated")
        inverse = self._stated.get((day, dst, src))
        if inverse is not None:
            rate = EXACT.divide(Decimal(1), inverse[0]).quantize(DERIVED_PLACES, context=EXACT)
            return AppliedRate(src, dst, rate, day, inverse[1], "inverse")
        if PIVOT in (src, dst):  # a leg through EUR is the stated or inverse rate above
            return None
        leg_src, leg_dst = self._stated.get((day, PIVOT, src)), self._stated.get((day, PIVOT, dst))
        if leg_src is None or leg_dst is None:
            return None
        to_src, to_dst = leg_src[0], leg_dst[0]
        sources = [leg_src[1], leg_dst[1]]
        rate = EXACT.divide(to_dst, to_src).quantize(DERIVED_PLACES, context=EXACT)
        return AppliedRate(src, dst, rate, day, "+".join(sorted(set(sources))),
                           f"cross via {PIVOT}")


def read_rate_book(warehouse: Warehouse, currencies: set[str], first_day: date, last_day: date,
                   max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> RateBook:
    """The rates that can serve charges on [first_day, last_day] between ``currencies``.

    Raises:
        ConfigError: the warehouse has no exchange_rates table yet (nothing was loaded).
    """
    book = RateBook([], max_age_days)  # validates max_age_days before touching the warehouse
    reach = book.max_age.days
    since = first_day - timedelta(days=reach) if first_day.toordinal() > reach else date.min
    sql = sqlfiles.load("queries/exchange_rates.sql")[0].bigquery()
    try:
        table = warehouse.query(sql, {"first_day": since, "last_day": last_day,
                                      "currencies": sorted(currencies | {PIVOT})})
    except Exception as err:  # noqa: BLE001 - engine-specific "no such table" errors
        if "exchange_rates" in str(err):
            raise ConfigError(
                f"the warehouse {warehouse.url} has no exchange rates yet: load some with "
                "`costflow rates load ecb FILE` (or `rates load csv FILE`, `rates load "
                "bills`).") from err
        raise
    return RateBook(table.to_pylist(), max_age_days)
