"""`costflow report`: one self-contained HTML cost report, with charts, for a date range.

    costflow report --start 2026-08-01 --end 2026-11-01 --out cost-report.html
    costflow report --start 2026-08-01 --end 2026-11-01 --config costflow.yaml   # + budgets

The figures come from `costflow.services.report` (exact, from the warehouse), the page from
`costflow.services.report_html` (Plotly embedded: it opens without a network). Prints the path
written.
"""

from __future__ import annotations

import argparse
from datetime import date


def iso_date(text: str) -> date:
    """An argparse type: YYYY-MM-DD (as `costflow.cli` reads dates)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow report``."""
    parser = sub.add_parser("report", help="Write a self-contained HTML cost report.",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=iso_date, required=True, help="Inclusive, YYYY-MM-DD.")
    parser.add_argument("--end", type=iso_date, required=True, help="Exclusive, YYYY-MM-DD.")
    parser.add_argument("--out", default="cost-report.html",
                        help="The HTML file to write (default cost-report.html).")
    parser.add_argument("--config", help="costflow.yaml whose tenants' budgets get a "
                                         "burn-down chart (default: none).")
    parser.add_argument("--as-of", dest="as_of", type=iso_date,
                        help="Day the budgets are evaluated on (default: the last day with "
                             "charges in range).")
    parser.add_argument("--warehouse", help="Warehouse URL (default: the config's, else "
                                            "$COSTFLOW_WAREHOUSE, else the local file).")


def run(args: argparse.Namespace) -> int:
    """Gather, render, write; prints the path."""
    from costflow.services.report import gather
    from costflow.services.report_html import write
    from costflow.warehouse import SERVER_KEEP_OPEN_S, connect, resolve_url

    tenants = None
    url = args.warehouse
    if args.config:
        from costflow.config import load_config

        config = load_config(args.config)
        tenants = list(config.tenants)
        if not url and "warehouse" in config.model_fields_set:
            url = config.warehouse
    warehouse = connect(resolve_url(url), reader=True, keep_open=SERVER_KEEP_OPEN_S)
    try:
        data = gather(warehouse, args.start, args.end, tenants=tenants, as_of=args.as_of)
    finally:
        warehouse.close()
    path = write(data, args.out)
    print(f"wrote {path.resolve()}")
    return 0
