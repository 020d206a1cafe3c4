"""``costflow secrets``: put credentials into the secret store, rotate them, retire old versions.

    costflow secrets set cloud-creds/acme/aws --from-file key.json  # create; rotate if it exists
    costflow secrets set llm/openai --from-file -                   # the value from stdin
    costflow secrets rotate cloud-creds/acme/aws --from-file new.json
    costflow secrets list-versions cloud-creds/acme/aws
    costflow secrets disable cloud-creds/acme/aws 1                 # an old version, once rotated

Why it exists: sources name their credentials by reference (``secret://cloud-creds/acme/aws``,
`costflow.sources.credentials`); this is how the value gets behind the reference. A value is
never taken from the command line (shell history, ``ps``): only from a file or stdin, and it
is never printed; every subcommand prints versions (id, state, time), never values. A
``cloud-creds/{tenant}/{aws|gcp|azure}`` value is checked against the shape the sources read
before it is stored, naming a missing field. ``--secrets URL`` (else ``$COSTFLOW_SECRETS``,
else ``local:///.costflow/secrets``) chooses the store (`costflow.secrets.connect`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

MAX_INPUT_BYTES = 25_000  # the limit every backend accepts (costflow.secrets.base)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow secrets`` and its subcommands."""
    parser = sub.add_parser(
        "secrets", help="Store, rotate and list the secrets sources read credentials from.",
        description="Put credentials into the secret store (from a file or stdin, never from "
                    "the command line), rotate them, list and disable versions. Values are "
                    "never printed.")
    parser.add_argument("--secrets", dest="secrets_url",
                        help="Secret store URL (default: $COSTFLOW_SECRETS, else "
                             "local:///.costflow/secrets).")
    actions = parser.add_subparsers(dest="secrets_command", required=True)
    put = actions.add_parser("set", help="Create a secret, or rotate it when it exists.")
    put.add_argument("name", help="e.g. cloud-creds/acme/aws")
    put.add_argument("--from-file", dest="from_file", required=True, metavar="PATH",
                     help="File holding the value ('-': stdin). Never pass a value as text.")
    put.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                     help="Label of a new secret (repeat).")
    rotate = actions.add_parser("rotate", help="Give an existing secret a new version.")
    rotate.add_argument("name")
    rotate.add_argument("--from-file", dest="from_file", required=True, metavar="PATH",
                        help="File holding the new value ('-': stdin).")
    versions = actions.add_parser("list-versions", help="Versions of a secret (no values).")
    versions.add_argument("name")
    disable = actions.add_parser("disable", help="Disable an old version of a secret.")
    disable.add_argument("name")
    disable.add_argument("version")
    for action in (put, rotate, versions, disable):
        action.add_argument("--secrets", dest="secrets_url", default=argparse.SUPPRESS,
                            help="Secret store URL (as above).")


def run(args: argparse.Namespace) -> int:
    """Run one ``costflow secrets`` subcommand; errors are `CostflowError` (one paragraph)."""
    from costflow.secrets import SecretExists, connect, resolve_url
    from costflow.secrets.names import validate_name
    from costflow.sources.credentials import check_value

    name = validate_name(args.name)
    manager = connect(resolve_url(getattr(args, "secrets_url", None)))
    try:
        command = args.secrets_command
        if command in ("set", "rotate"):
            value = _read_value(args.from_file, name)
            check_value(name, value)
            if command == "rotate":
                _print(asyncio.run(manager.rotate_secret(name, value)), "rotated")
                return 0
            try:
                version = asyncio.run(manager.create_secret(name, value, _labels(args.label)))
                _print(version, "created")
            except SecretExists:
                _print(asyncio.run(manager.rotate_secret(name, value)), "rotated")
            return 0
        if command == "list-versions":
            for version in asyncio.run(manager.list_versions(name)):
                _print(version)
            return 0
        _print(asyncio.run(manager.disable_version(name, args.version)), "disabled")
        return 0
    finally:
        manager.close()


def _read_value(path: str, name: str) -> str:
    """The value from a file or stdin, without the trailing newline an editor or echo adds."""
    from costflow.errors import ConfigError

    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"secret {name!r}: cannot read --from-file {path}: "
                          f"{exc.strerror or type(exc).__name__}.") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise ConfigError(f"secret {name!r}: --from-file {path} holds more than "
                          f"{MAX_INPUT_BYTES} bytes, the most every secret store accepts.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"secret {name!r}: --from-file {path} is not UTF-8 text.") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise ConfigError(f"secret {name!r}: --from-file {path} is empty.")
    return text


def _labels(items: list[str]) -> dict[str, str]:
    from costflow.errors import ConfigError

    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--label {item[:70]!r}: expected KEY=VALUE.")
        labels[key] = value
    return labels


def _print(version: Any, did: str = "") -> None:
    created = version.created.isoformat(timespec="seconds")
    print(f"{version.name} version {version.version}: {version.state}, created {created}"
          + (f" ({did})" if did else ""))
