"""`costflow account-names`: sub-account display names for bills that carry ids only.

    costflow account-names --provider aws --from-organizations [--credentials secret://...]
    costflow account-names --provider aws --from-csv names.csv     # account_id,account_name
    costflow account-names --list [--provider aws] [--format json]

The legacy AWS CUR names no account; the names are stored in the warehouse's `account_names`
and the FOCUS views (and so `costflow export`) fill SubAccountName from them, a CSV mapping's
name first. Cost rows are not rewritten: names stored later apply to every earlier load.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow account-names``."""
    from costflow.providers import NAMES

    parser = sub.add_parser(
        "account-names", help="Store sub-account names (AWS Organizations or a CSV) for bills "
                              "that carry ids only; the FOCUS views show them.",
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-organizations", action="store_true",
                        help="Ask the provider's directory (AWS Organizations ListAccounts).")
    source.add_argument("--from-csv", metavar="FILE",
                        help="A CSV with the header account_id,account_name.")
    source.add_argument("--list", action="store_true", help="Show the stored names.")
    parser.add_argument("--provider", choices=list(NAMES),
                        help="Whose accounts (required to store names).")
    parser.add_argument("--credentials", help="secret://... credentials for the directory "
                                              "(default: the SDK's standard chain).")
    parser.add_argument("--secrets", help="Secret store URL for --credentials.")
    parser.add_argument("--warehouse")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def run(args: argparse.Namespace) -> int:
    """Store or list names; returns 0 (errors raise CostflowError)."""
    from costflow.errors import ConfigError
    from costflow.services import account_names as names
    from costflow.warehouse import connect, resolve_url

    warehouse = connect(resolve_url(args.warehouse))
    try:
        if args.list:
            rows = names.list_account_names(warehouse, args.provider)
            print(json.dumps(rows, default=str, indent=2) if args.format == "json"
                  else _table(rows))
            return 0
        if not args.provider:
            raise ConfigError("--provider is required to store account names.")
        if args.from_csv:
            found, source = names.read_mapping(args.from_csv), names.MAPPING
        else:
            from costflow.sources.credentials import parse_ref

            found = names.fetch_account_names(args.provider,
                                              parse_ref(args.credentials, args.secrets))
            source = names.directory_source(args.provider)
        stored = names.store_account_names(warehouse, args.provider, found, source)
        print(f"stored {stored} {args.provider} account name(s) from {source} in "
              f"{warehouse.url}; the FOCUS views show them where the bill has none.")
    finally:
        warehouse.close()
    return 0


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no account names stored."
    head = ("provider", "account_id", "account_name", "source")
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in head]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(str(r[h]).ljust(w) for h, w in zip(head, widths, strict=True))
              for r in rows]
    return "\n".join(lines)
