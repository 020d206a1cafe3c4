"""`costflow accounts`: the config's tenants and accounts in the metadata store, and how fresh
each account's data is.

    costflow accounts import            # tenants, settings, policies, accounts -> metadata store
    costflow accounts list              # per source: last status, last success, stale?, failures
    costflow accounts list --format json

Import is idempotent; an account removed from the config is marked ``removed``, not deleted.
"""

from __future__ import annotations

import argparse

from costflow.commands.flags import add_config, metadata_store


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow accounts`` with its ``import`` and ``list`` subcommands."""
    parser = sub.add_parser("accounts", help="Tenants and accounts: import the config into the "
                                             "metadata store, list their freshness.",
                            description=__doc__.split("\n\n")[0].replace("\n", " "))
    actions = parser.add_subparsers(dest="accounts", required=True)
    imp = actions.add_parser("import", help="Load tenants, settings, policies and accounts "
                                            "from the config into the metadata store.")
    listing = actions.add_parser("list", help="Tenants, accounts, sources: last successful "
                                              "load, staleness, consecutive failures.")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    for command in (imp, listing):
        add_config(command, "metadata")


def run(args: argparse.Namespace) -> int:
    """Import or list; returns 0."""
    from costflow.sync.accounts import import_config, list_accounts, render_accounts

    config, store, metadata = metadata_store(args)
    try:
        if args.accounts == "import":
            done = import_config(config, store)
            removed = ", ".join(f"{done[f'removed_{k}']} {k}" for k in
                                ("tenants", "accounts", "sources") if done[f"removed_{k}"])
            print(f"imported {done['tenants']} tenant(s), {done['accounts']} account(s) and "
                  f"{done['sources']} source(s) from {config.source_path} into {metadata}"
                  + (f"; marked removed (no longer in the config): {removed}" if removed
                     else "") + ".")
        else:
            print(render_accounts(list_accounts(config, store), args.format))
    finally:
        store.close()
    return 0
