"""What a source is, and how the pipeline finds and reads one, whatever the location.

A *planner* turns one `--source` pattern into the files to read: local paths and globs, and
(registered by their own modules) object stores with provider manifests that pick the current
delivery of each billing period. A *reader* streams one planned file of a given container
(csv, parquet, ...) as Arrow record batches. Both are looked up here by URI scheme and by
container, so the pipeline never branches on where data lives.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from costflow.errors import ConfigError


@dataclass(frozen=True)
class SourceFile:
    """One source file of a run, as the ledger records it."""

    uri: str
    size_bytes: int
    sha256: str
    container: str            # "csv", "parquet", ... (a registered reader)
    compression: str | None   # "gzip" or None
    columns: tuple[str, ...]  # header as the pipeline names the columns (BOM stripped)
    source_format: str
    provider: str
    delivery_id: str | None = None  # manifest assembly / execution / run id, when there is one

    def ledger_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {"uri": self.uri, "size_bytes": self.size_bytes,
                                    "sha256": self.sha256, "format": self.source_format}
        if self.delivery_id:
            entry["delivery_id"] = self.delivery_id
        return entry


@dataclass
class Plan:
    files: list[SourceFile] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)  # header only: nothing to load
    notes: list[str] = field(default_factory=list)        # e.g. older deliveries passed over

    def merge(self, other: Plan) -> Plan:
        return Plan(self.files + other.files, self.empty_files + other.empty_files,
                    self.notes + other.notes)


Planner = Callable[[str, "str | None", "str | None"], Plan]
Reader = Callable[[SourceFile], Iterator[tuple[int, pa.RecordBatch]]]

# Modules that register planners and readers when imported.
_MODULES = ("costflow.pipelines.file_sources",)
_PLANNERS: dict[str | None, Planner] = {}
_READERS: dict[str, Reader] = {}


def register_planner(scheme: str | None, planner: Planner) -> None:
    """Plan patterns with this URI scheme (None: plain local paths)."""
    _PLANNERS[scheme] = planner


def register_reader(container: str, reader: Reader) -> None:
    _READERS[container] = reader


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def scheme(pattern: str) -> str | None:
    return pattern.split("://", 1)[0].lower() if "://" in pattern else None


def plan_sources(patterns: list[str], provider: str | None = None,
                 source_format: str | None = None) -> Plan:
    """Plan every pattern with the planner of its scheme; files named twice are read once."""
    _load()
    plan = Plan()
    for pattern in patterns:
        planner = _PLANNERS.get(scheme(pattern))
        if planner is None:
            known = ", ".join(sorted(f"{s}://" for s in _PLANNERS if s)) or "none"
            raise ConfigError(f"--source {pattern!r}: no reader for {scheme(pattern)}:// "
                              f"locations (known: local paths, {known}).")
        plan = plan.merge(planner(pattern, provider, source_format))
    unique: dict[str, SourceFile] = {}
    for source in plan.files:
        unique.setdefault(source.uri, source)
    plan.files = list(unique.values())
    return plan


def read_batches(source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for one planned file, streaming."""
    _load()
    return _READERS[source.container](source)
