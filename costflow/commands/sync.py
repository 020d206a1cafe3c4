"""`costflow sync`: load every configured source (or the ones named), one summary at the end.

    costflow sync                                     # every source of every account
    costflow sync --tenant acme --account 123456789012 --dry-run
    costflow sync --due-only                          # what a schedule runs (hourly is fine)

Each source runs as its own `costflow ingest` (unchanged deliveries are skipped and reported
``unchanged``), at most ``--parallel`` at a time; one failing source never stops the others.
Exit status 0 when every source committed, was unchanged or not due; 3 when any failed (the
summary names each with its error); 4 when another sync holds this warehouse's lock. The flags
are mirrored by the sync Flex Template (`dataflow_templates/sync/metadata.json`).
"""

from __future__ import annotations

import argparse
import sys

from costflow.commands.flags import CONFIG_HELP, STORES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow sync``."""
    parser = sub.add_parser(
        "sync", help="Load every configured source incrementally; one summary.",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--tenant", action="append", default=[],
                        help="Only this tenant's accounts; repeat for more.")
    parser.add_argument("--account", action="append", default=[],
                        help="Only this account id; repeat for more.")
    parser.add_argument("--source", action="append", default=[],
                        help="Only the source with this id (of the selected accounts); repeat.")
    parser.add_argument("--parallel", type=int,
                        help="Sources at a time (default: sync.parallel of the config, 2).")
    parser.add_argument("--due-only", dest="due_only", action="store_true",
                        help="Only sources whose schedule ticked since their last success, "
                             "whose last attempt failed, or that never ran.")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true",
                        help="Say what would run; ingest, lock and record nothing.")
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    for store in STORES:
        parser.add_argument(f"--{store}", help=STORES[store])


def run(args: argparse.Namespace) -> int:
    """Run the sync, print the summary; returns 0, 3 (a source failed), 4 (lock) or 130."""
    from costflow.config import load_config
    from costflow.sync import SyncRequest, render_summary, run_sync

    config = load_config(args.config)
    result = run_sync(config, SyncRequest(
        tenants=tuple(args.tenant), accounts=tuple(args.account), sources=tuple(args.source),
        parallel=args.parallel, due_only=args.due_only, dry_run=args.dry_run,
        warehouse=args.warehouse, metadata=args.metadata, secrets=args.secrets))
    print(render_summary(result, "json" if args.json else "table"))
    if result.lock_lost:
        print(f"costflow: error: {result.lock_lost}", file=sys.stderr)
    return result.exit_status
