"""`costflow budgets check`: every budget of the config's tenants against the warehouse.

    costflow budgets check                       # table; alerts go out once per threshold
    costflow budgets check --tenant acme --json
    costflow budgets check --as-of 2026-11-15 --no-notify

Budgets are declared under ``policies.budgets`` of a tenant (`costflow.config.budgets`); the
evaluation is `costflow.services.budgets`, the once-only delivery `costflow.services.alerts`.
The same check runs after every `costflow sync`. Exit status 0 when no threshold is crossed,
1 when one is, 3 when an alert could not be delivered to its webhook (it is retried by the next
check), 2 for a configuration problem.
"""

from __future__ import annotations

import argparse

from costflow.commands.flags import CONFIG_HELP, STORES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow budgets``."""
    from costflow.commands.report import iso_date

    parser = sub.add_parser("budgets", help="Budgets from the config: check and alert.")
    bsub = parser.add_subparsers(dest="budgets", required=True)
    check = bsub.add_parser(
        "check", help="Actual + forecast of each budget's period; alert crossed thresholds once.",
        description=__doc__.split("\n\n")[0])
    check.add_argument("--config", help=CONFIG_HELP)
    check.add_argument("--tenant", action="append", default=[],
                       help="Only this tenant's budgets; repeat for more.")
    check.add_argument("--as-of", dest="as_of", type=iso_date,
                       help="The day whose period is checked (default: today, UTC).")
    check.add_argument("--no-notify", dest="notify", action="store_false",
                       help="Evaluate and print only: send and record no alert.")
    check.add_argument("--json", action="store_true", help="Print the result as JSON.")
    for store in STORES:
        check.add_argument(f"--{store}", help=STORES[store])


def run(args: argparse.Namespace) -> int:
    """Check, print; the exit status of `BudgetCheck`."""
    from costflow.config import load_config
    from costflow.metadata import connect as connect_metadata
    from costflow.services.budgets import check_budgets, render_check
    from costflow.sync.runner import SyncRequest, resolve_urls
    from costflow.warehouse import connect

    config = load_config(args.config)
    tenants = [config.tenant(t) for t in args.tenant] if args.tenant else list(config.tenants)
    warehouse_url, metadata_url, secrets_url = resolve_urls(config, SyncRequest(
        warehouse=args.warehouse, metadata=args.metadata, secrets=args.secrets))
    warehouse = connect(warehouse_url, reader=True)
    store = connect_metadata(metadata_url) if args.notify else None
    try:
        check = check_budgets(warehouse, tenants, args.as_of, store=store,
                              secrets_url=secrets_url, notify=args.notify)
    finally:
        warehouse.close()
        if store is not None:
            store.close()
    print(render_check(check, "json" if args.json else "table"))
    return check.exit_status
