"""ECB reference-rate files as the ECB writes them, and the rates they state, for the rate tests.

The daily file (eurofxref.csv) has one row dated ``02 November 2026`` with a space after each
comma; the historical file (eurofxref-hist.csv) is newest first, ISO dates, ``N/A`` where a
currency had no rate (CYP: the Cyprus pound, gone since 2008). Both end every line with a comma.
Values are realistic but invented.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

ECB_DAILY = (
    "Date, USD, JPY, BGN, CZK, DKK, GBP, HUF, PLN, RON, SEK, CHF, ISK, NOK, TRY, AUD, BRL, CAD, "
    "CNY, HKD, IDR, ILS, INR, KRW, MXN, MYR, NZD, PHP, SGD, THB, ZAR, \n"
    "06 November 2026, 1.1536, 177.42, 1.9558, 24.338, 7.4621, 0.87915, 385.10, 4.2480, "
    "5.0871, 10.9830, 0.9347, 146.20, 11.6435, 48.6012, 1.7702, 6.2110, 1.6152, 8.2175, "
    "8.9690, 19208.55, 3.7650, 102.3450, 1669.82, 21.3954, 4.8431, 2.0287, 67.842, 1.5016, "
    "37.402, 20.0935, \n")

ECB_HIST = (
    "Date,USD,JPY,BGN,CYP,GBP,\n"
    "2026-11-06,1.1536,177.42,1.9558,N/A,0.87915,\n"
    "2026-11-05,1.1497,176.91,1.9558,N/A,0.87760,\n"
    "2026-11-04,1.1495,176.50,1.9558,N/A,N/A,\n"
    "2026-11-03,1.1530,177.05,1.9558,N/A,0.87604,\n"
    "2026-11-02,1.1561,177.88,1.9558,N/A,0.87590,\n")

# EUR -> USD as ECB_HIST states it.
EUR_USD = {date(2026, 11, d): Decimal(v) for d, v in
           ((2, "1.1561"), (3, "1.1530"), (4, "1.1495"), (5, "1.1497"), (6, "1.1536"))}
