"""What a source is, and how the pipeline finds and reads one, whatever the location.

A *planner* turns one `--source` pattern into the files to read: local paths and globs, and
(registered by their own modules) object stores with provider manifests that pick the current
delivery of each billing period. A *reader* streams one planned file of a given container
(csv, parquet, ...) as Arrow record batches. Both are looked up here by URI scheme and by
container, so the pipeline never branches on where data lives.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

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
    delivery: str | None = None     # what the delivery replaces, e.g. the billing period's manifest

    def ledger_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {"uri": self.uri, "size_bytes": self.size_bytes,
                                    "sha256": self.sha256, "format": self.source_format}
        if self.delivery_id:
            entry["delivery_id"] = self.delivery_id
        if self.delivery:
            entry["delivery"] = self.delivery
        return entry


@dataclass
class Plan:
    files: list[SourceFile] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)  # header only: nothing to load
    notes: list[str] = field(default_factory=list)        # e.g. older deliveries passed over
    # What the user asserted about the sources (e.g. billing_currency), for plan finishers.
    assertions: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Plan) -> Plan:
        return Plan(self.files + other.files, self.empty_files + other.empty_files,
                    self.notes + other.notes, {**other.assertions, **self.assertions})


Planner = Callable[[str, "str | None", "str | None"], Plan]
Reader = Callable[[SourceFile], Iterator[tuple[int, pa.RecordBatch]]]
Opener = Callable[[str], IO[bytes]]

# Modules that register planners and readers when imported.
_MODULES = ("costflow.pipelines.file_sources", "costflow.pipelines.s3_sources",
            "costflow.pipelines.nested_files", "costflow.pipelines.azure_exports",
            "costflow.pipelines.azure_blob",
            "costflow.pipelines.azure_query", "costflow.pipelines.aws_ce",
            "costflow.pipelines.bigquery_source")
_PLANNERS: dict[str | None, Planner] = {}
_READERS: dict[str, Reader] = {}
_OPENERS: dict[str, Opener] = {}


def register_planner(scheme: str | None, planner: Planner) -> None:
    """Plan patterns with this URI scheme (None: plain local paths)."""
    _PLANNERS[scheme] = planner


def register_reader(container: str, reader: Reader) -> None:
    _READERS[container] = reader


# Sources read by a Beam IO transform rather than a reader function (BigQuery tables): by
# container, fn(source) -> a PTransform from the pipeline root to SourceBatch elements.
_BEAM_READERS: dict[str, Callable[[SourceFile], Any]] = {}
# Patterns completed from run options and the load ledger before planning (incremental sources):
# by scheme, fn(pattern, options, ledger warehouse or None) -> pattern.
_RESOLVERS: dict[str, Callable[[str, Mapping[str, Any], Any], str]] = {}


def register_beam_reader(container: str, transform: Callable[[SourceFile], Any]) -> None:
    _BEAM_READERS[container] = transform


def beam_reader(container: str) -> Callable[[SourceFile], Any] | None:
    _load()
    return _BEAM_READERS.get(container)


def register_pattern_resolver(scheme: str,
                              resolver: Callable[[str, Mapping[str, Any], Any], str]) -> None:
    _RESOLVERS[scheme] = resolver


def resolve_patterns(patterns: list[str], options: Mapping[str, Any], ledger: Any) -> list[str]:
    """Patterns with their run options (e.g. --authorized_project) and ledger state applied."""
    _load()
    out = []
    for pattern in patterns:
        resolver = _RESOLVERS.get(scheme(pattern) or "")
        out.append(resolver(pattern, options, ledger) if resolver else pattern)
    return out


def register_opener(scheme: str, opener: Opener) -> None:
    """Open ``scheme://`` URIs as seekable binary files (used by the csv/parquet readers)."""
    _OPENERS[scheme] = opener


def opener(uri: str) -> Opener | None:
    """The registered opener of the URI's scheme, if any."""
    _load()
    found = scheme(uri)
    return _OPENERS.get(found) if found else None


# Called on the merged plan of every --source pattern: a provider that must see all files of a
# run at once (Azure pairs actual- and amortized-cost exports) rewrites its files here.
_FINISHERS: list[Callable[[Plan], Plan]] = []


def register_plan_finisher(finisher: Callable[[Plan], Plan]) -> None:
    if finisher not in _FINISHERS:
        _FINISHERS.append(finisher)


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def scheme(pattern: str) -> str | None:
    return pattern.split("://", 1)[0].lower() if "://" in pattern else None


# API sources (no files, a query for a period): the CLI's --start/--end become ?start=&end=.
PERIOD_SCHEMES = ("azure-query", "aws-ce", "bq", "bq+duckdb")


def with_period(uri: str, start: date | None, end: date | None) -> str:
    """``uri`` with ``start``/``end`` appended when it is an API source (what --start/--end do)."""
    if scheme(uri) not in PERIOD_SCHEMES or start is None or end is None:
        return uri
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}start={start.isoformat()}&end={end.isoformat()}"


def period_of(uri: str) -> tuple[date, date]:
    """The [start, end) period that `with_period` put on an API source URI."""
    query = parse_qs(urlparse(uri).query)
    try:
        start = date.fromisoformat(query["start"][0])
        end = date.fromisoformat(query["end"][0])
    except (KeyError, ValueError):
        raise ConfigError(f"--source {uri!r}: give the period with --start and --end "
                          "(YYYY-MM-DD, end exclusive).") from None
    if end <= start:
        raise ConfigError(f"--source {uri!r}: --end must be after --start.")
    return start, end


def whole_months(uri: str, today: date | None = None) -> tuple[date, date, bool]:
    """The period of an API source as whole months: (start, end, changed).

    A load replaces whole billing periods, so a query for part of a month would replace the
    month with that part. The start moves to the 1st and the end to the next 1st, but never
    past tomorrow (UTC): there is no cost after today.
    """
    start, end = period_of(uri)
    tomorrow = (today or datetime.now(UTC).date()) + timedelta(days=1)
    whole_start = start.replace(day=1)
    next_first = (end.replace(day=1) + timedelta(days=32)).replace(day=1)
    whole_end = min(end if end.day == 1 else next_first, tomorrow)
    if whole_end <= whole_start:
        raise ConfigError(f"--source {uri!r}: the period starts after today; there is no "
                          "cost for it yet.")
    return whole_start, whole_end, (whole_start, whole_end) != (start, end)


def plan_sources(patterns: list[str], provider: str | None = None,
                 source_format: str | None = None, billing_currency: str | None = None) -> Plan:
    """Plan every pattern with the planner of its scheme; files named twice are read once.

    ``billing_currency`` is the user's assertion for exports without a currency column; plan
    finishers (Azure) apply it to exactly those files.
    """
    _load()
    plan = Plan(assertions={"billing_currency": billing_currency} if billing_currency else {})
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
    for finish in _FINISHERS:
        plan = finish(plan)
    return plan


def read_batches(source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for one planned file, streaming."""
    _load()
    return _READERS[source.container](source)
