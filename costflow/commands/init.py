"""`costflow init`: a working costflow.yaml and the demo exports it points at, in one command.

It writes each provider's demo exports (the sample generators every provider declares as its
``demo``) under ``--demo-dir`` and a commented costflow.yaml with one tenant, ``demo``, and one
account per provider whose source is that provider's exports, with a local warehouse, secret
store and metadata store, so ``costflow init && costflow sync`` loads three clouds from a fresh
clone. An existing config is never overwritten without ``--force``; the written file is read
back with `load_config` before the command reports success.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from costflow.config import load_config, resolve_path
from costflow.config.template import DEMO_ACCOUNTS, render
from costflow.errors import ConfigError

DEFAULT_DEMO_DIR = ".costflow/demo"
DEFAULT_ROWS = 5_000
MIN_ROWS = 200  # the AWS generator needs ~84 month-end rows a month; GCP writes 200 at least
MARKER = ".costflow-demo"  # marks a demo dir as init's own output, safe to regenerate


def add_parser(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser(
        "init", help="Write a commented costflow.yaml and demo exports for three clouds.",
        description="Write demo exports of every provider under --demo-dir and a commented "
                    "costflow.yaml that loads them (`costflow sync`).")
    init.add_argument("--path", help="The config file to write (default: $COSTFLOW_CONFIG, "
                                     "else costflow.yaml).")
    init.add_argument("--force", action="store_true",
                      help="Replace an existing config file and demo exports.")
    init.add_argument("--demo-dir", dest="demo_dir", default=DEFAULT_DEMO_DIR,
                      help=f"Where the demo exports go (default {DEFAULT_DEMO_DIR}).")
    init.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                      help=f"Demo rows per month and provider (default {DEFAULT_ROWS:,}, at "
                           f"least {MIN_ROWS}).")


def run(args: argparse.Namespace) -> int:
    path = resolve_path(args.path)
    demo_dir = Path(args.demo_dir)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; pass --path FILE.yaml.")
    if path.exists() and not args.force:
        raise ConfigError(f"{path} already exists; nothing was written. Edit it, or pass "
                          "--force to replace it with the demo config.")
    if args.rows < MIN_ROWS:
        raise ConfigError(f"--rows must be at least {MIN_ROWS} (rows per month and provider).")
    _prepare(demo_dir)

    from costflow.providers import CATALOG  # loads every provider (Beam): only now

    sources: dict[str, str] = {}
    lines = []
    for provider in (p for p in CATALOG.with_demo() if p in DEMO_ACCOUNTS):
        writer = CATALOG.provider(provider).demo
        assert writer is not None  # with_demo() lists only providers that have one
        exports = writer(demo_dir / provider, args.rows)
        sources[provider] = exports.source
        lines.append(f"  {provider}: {exports.rows:,} rows in {exports.files} files, "
                     f"{exports.start} to {exports.end} -> {exports.source}")
    if not sources:
        raise ConfigError("no provider declares demo exports; nothing was written.")

    text = render(sources, demo_dir.as_posix())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    config = load_config(path)  # what we wrote must be what `sync` can read
    print(f"wrote {path}: tenant demo, {len(config.accounts)} accounts "
          f"({', '.join(a.provider for a in config.accounts)}), demo exports under "
          f"{demo_dir}/:")
    print("\n".join(lines))
    print(f"Next: costflow sync{'' if str(path) == 'costflow.yaml' else f' --config {path}'}"
          "   (then `costflow accounts list`)")
    return 0


def _prepare(demo_dir: Path) -> None:
    """Make ``demo_dir`` ready for fresh exports, deleting only what init wrote before (the
    generators are seeded, so the same exports come back)."""
    if demo_dir.exists() and not demo_dir.is_dir():
        raise ConfigError(f"--demo-dir {demo_dir} is a file; name a directory.")
    ours = (demo_dir / MARKER).exists()
    taken = [demo_dir / p for p in DEMO_ACCOUNTS if (demo_dir / p).exists()]
    if taken and not ours:
        raise ConfigError(f"{taken[0]} exists and was not written by `costflow init`; nothing "
                          "was written. Choose another --demo-dir.")
    for folder in taken:
        shutil.rmtree(folder)
    demo_dir.mkdir(parents=True, exist_ok=True)
    (demo_dir / MARKER).write_text("Demo exports written by `costflow init`; safe to delete.\n",
                                   encoding="utf-8")
