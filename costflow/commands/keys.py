"""`costflow keys`: bearer keys for the MCP HTTP server (`costflow mcp --transport http`).

    costflow keys create --tenant acme --name finops-agent   # prints the key once
    costflow keys list [--format json]
    costflow keys revoke 3f9a0c1b2d4e

A key belongs to one tenant of costflow.yaml and sees only that tenant's accounts. The metadata
store keeps its SHA-256, never the key (`costflow.services.api_keys`).
"""

from __future__ import annotations

import argparse
import json

from costflow.commands.flags import add_config, metadata_store


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow keys`` with ``create``, ``list`` and ``revoke``."""
    parser = sub.add_parser("keys", help="Bearer keys of the MCP HTTP server: create, list, "
                                         "revoke.",
                            description=__doc__.split("\n\n")[0].replace("\n", " "))
    actions = parser.add_subparsers(dest="keys", required=True)
    create = actions.add_parser("create", help="Create a key for a tenant; prints it once.")
    create.add_argument("--tenant", required=True, help="A tenant id of costflow.yaml.")
    create.add_argument("--name", required=True, help="Who uses it, e.g. finops-agent.")
    listing = actions.add_parser("list", help="Keys: id, tenant, name, created, revoked.")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    revoke = actions.add_parser("revoke", help="Revoke a key (takes effect on the next "
                                               "request).")
    revoke.add_argument("key_id", help="The key id (`costflow keys list`).")
    for command in (create, listing, revoke):
        add_config(command, "metadata")


def run(args: argparse.Namespace) -> int:
    """Create, list or revoke; returns 0."""
    from costflow.services import api_keys
    from costflow.text import render_table

    config, store, _ = metadata_store(args)
    try:
        if args.keys == "create":
            tenant = config.tenant(args.tenant).id  # ConfigError lists the known tenants
            record, key = api_keys.create_key(store, tenant, args.name)
            print(f"{key}\n\nkey {record.key_id} ({record.name}) for tenant {tenant}: this is "
                  "the only time it is shown; only its SHA-256 is stored. Send it as "
                  "'Authorization: Bearer <key>'.")
        elif args.keys == "revoke":
            record = api_keys.revoke_key(store, args.key_id)
            print(f"key {record.key_id} ({record.name}, tenant {record.tenant}) revoked at "
                  f"{record.revoked_at:%Y-%m-%d %H:%M:%S} UTC.")
        else:
            rows = [{"key_id": k.key_id, "tenant": k.tenant, "name": k.name,
                     "created_at": k.created_at.isoformat(timespec="seconds"),
                     "revoked_at": k.revoked_at.isoformat(timespec="seconds")
                     if k.revoked_at else None} for k in api_keys.list_keys(store)]
            print(json.dumps(rows, indent=2) if args.format == "json" else render_table(
                rows, ["key_id", "tenant", "name", "created_at", "revoked_at"], "table"))
    finally:
        store.close()
    return 0
