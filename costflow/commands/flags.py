"""The flags every config-driven command shares, declared once.

``--config`` names costflow.yaml; ``--warehouse``, ``--metadata`` and ``--secrets`` override the
stores the config names (`costflow.sync.runner.resolve_urls` resolves them the same way for
every command). `metadata_store` opens the metadata store of a command that needs only it.
"""

from __future__ import annotations

import argparse
from typing import Any

CONFIG_HELP = "costflow.yaml (default: $COSTFLOW_CONFIG, else ./costflow.yaml)."
STORES = {
    "warehouse": "Warehouse URL (default: the config's).",
    "metadata": "Metadata store URL (default: the config's).",
    "secrets": "Secret store URL (default: the config's).",
}


def add_config(parser: argparse.ArgumentParser, *stores: str) -> None:
    """``--config`` and the named store overrides (``warehouse``, ``metadata``, ``secrets``)."""
    parser.add_argument("--config", help=CONFIG_HELP)
    for store in stores:
        parser.add_argument(f"--{store}", help=STORES[store])


def metadata_store(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(config, an open metadata store, its URL) for ``args.config`` / ``args.metadata``."""
    from costflow.config import load_config
    from costflow.metadata import connect
    from costflow.sync.runner import SyncRequest, resolve_urls

    config = load_config(args.config)
    _, metadata, _ = resolve_urls(config, SyncRequest(metadata=args.metadata))
    return config, connect(metadata), metadata
