"""Deterministic generators of realistic billing exports, for the demo, tests and benchmark.

The generators of each provider live in its folder (`costflow/providers/<name>/samples/`);
what they share is here: the CSV/JSON text helpers and what a demo writer hands back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True)
class DemoExports:
    """What a demo writer produced: where to ingest from and what the source says."""

    source: str
    rows: int
    files: int
    source_totals: dict[str, Decimal]  # slice label -> exact source total
    start: date
    end: date


# (output folder, rows per month) -> the exports written; a provider declares one as ``demo``.
DemoWriter = Callable[[Path, int], DemoExports]
