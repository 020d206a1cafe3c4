"""`costflow rates load`: exchange rates for the reporting currency (`query costs --currency`).

    costflow rates load ecb ./eurofxref-hist.csv     # or eurofxref.csv, or the ECB's .zip
    costflow rates load csv ./rates.csv              # date,from,to,rate
    costflow rates load bills                        # the rates GCP and Azure bills carry

A load replaces the rows of the same (date, from, to, source) keys in one transaction, so
loading a file again changes nothing and a corrected file replaces what it restates. The
conversion policy is in `costflow.services.rates`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow rates``."""
    from costflow.providers import NAMES

    parser = sub.add_parser("rates", help="Exchange rates for converting costs at query time.")
    rsub = parser.add_subparsers(dest="rates", required=True)
    load = rsub.add_parser("load", help="Load exchange rates into the warehouse.",
                           description=__doc__.split("\n\n")[0])
    kinds = load.add_subparsers(dest="kind", required=True)
    ecb = kinds.add_parser("ecb", help="ECB reference rates (eurofxref.csv, "
                                       "eurofxref-hist.csv or .zip): rates per 1 EUR.")
    ecb.add_argument("file", type=Path)
    plain = kinds.add_parser("csv", help="A CSV with the header date,from,to,rate "
                                         "(1 from = rate to).")
    plain.add_argument("file", type=Path)
    bills = kinds.add_parser("bills", help="The rates GCP (currency_conversion_rate) and Azure "
                                           "(ExchangeRatePricingToBilling) bills carry.")
    bills.add_argument("--provider", default="all", choices=["all", *NAMES])
    for command in (ecb, plain, bills):
        command.add_argument("--warehouse")


def run(args: argparse.Namespace) -> int:
    """Load, print what was loaded."""
    from costflow.warehouse import connect, resolve_url

    warehouse = connect(resolve_url(args.warehouse))
    try:
        if args.kind == "bills":
            from costflow.services.rates_bills import load_bill_rates

            loaded, conflicts = load_bill_rates(warehouse, args.provider)
            for source, count in loaded.items():
                print(f"loaded {count} rate(s) from {source}")
            if not loaded:
                print("the bills in the warehouse carry no exchange rates (AWS bills never do; "
                      "GCP and Azure rows only where the billing currency differs)")
            for c in conflicts:
                print(f"not loaded: {c.provider} rows of {c.day} state {c.rates} different "
                      f"{c.from_currency}->{c.to_currency} rates")
            return 0
        from costflow.services import rates_csv, rates_ecb
        from costflow.services.rates import store_rates

        if args.kind == "ecb":
            rates, source = rates_ecb.parse_ecb(args.file), rates_ecb.SOURCE
        else:
            rates, source = rates_csv.parse_rates_csv(args.file), rates_csv.SOURCE
        count = store_rates(warehouse, rates, source)
    finally:
        warehouse.close()
    days = sorted({r.day for r in rates})
    pairs = len({(r.from_currency, r.to_currency) for r in rates})
    print(f"loaded {count} {source} rate(s) from {args.file}: {pairs} currency pair(s), "
          f"{len(days)} day(s) from {days[0]} to {days[-1]}")
    return 0
