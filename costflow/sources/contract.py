"""What a source is, and the contract between the providers' sources and the pipeline.

A *planner* turns one `--source` pattern into the files to read: local paths and globs
(`costflow.sources.files`), and the object stores and APIs a provider declares (`Scheme`), with
manifests that pick the current delivery of each billing period. A *reader* streams one planned
file of a given `Container` (csv, parquet, jsonl, ...) as Arrow record batches. The catalog of
every provider's schemes and containers (`costflow.providers.base.Catalog`) is handed to them as
a `SourceCatalog`, so nothing here knows which providers exist and the pipeline never branches
on where data lives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlparse

import pyarrow as pa

from costflow.errors import ConfigError

if TYPE_CHECKING:
    from costflow.sources.credentials import CredentialsRef
    from costflow.transforms.contract import Normalizer


@dataclass(frozen=True)
class SourceFile:
    """One source file of a run, as the ledger records it."""

    uri: str
    size_bytes: int
    sha256: str
    container: str            # "csv", "parquet", ... (a declared Container)
    compression: str | None   # "gzip" or None
    columns: tuple[str, ...]  # header as the pipeline names the columns (BOM stripped)
    source_format: str
    provider: str
    delivery_id: str | None = None  # manifest assembly / execution / run id, when there is one
    delivery: str | None = None     # what the delivery replaces, e.g. the billing period's manifest
    # Which secret the reader's client is built from (a reference, never the value; resolved
    # where the file is read: `costflow.sources.credentials`). None: the environment's chain.
    credentials: CredentialsRef | None = None

    def content_key(self) -> tuple[str, ...]:
        """Two planned files with the same key would load the same line items twice: the run
        is refused (`costflow.providers.base.Catalog.plan`). A provider whose files are read
        in different roles adds the role (Azure: an actual and an amortized export of a month
        without commitments can hold the same bytes, and are joined, never added)."""
        return (self.provider, self.source_format, self.sha256)

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


class SourceCatalog(Protocol):
    """What planners and readers may ask of the providers' catalog
    (`costflow.providers.base.Catalog` implements it)."""

    @property
    def formats(self) -> FormatLookup: ...

    @property
    def file_types(self) -> tuple[FileType, ...]:
        """Every file suffix a provider plans (beyond csv, parquet)."""
        ...

    @property
    def credentials(self) -> CredentialsRef | None:
        """The credentials `open` (and a planner's own clients) use; None: the environment's."""
        ...

    def open(self, uri: str) -> IO[bytes]: ...

    def file_type(self, uri: str) -> FileType | None: ...

    def header_reader(self, container: str) -> HeaderReader | None: ...

    def local_layouts(self, provider: str | None) -> Sequence[Planner]: ...

    def read_batches(self, source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]: ...


class FormatLookup(Protocol):
    """The export formats by name and by header (`costflow.transforms.formats.FormatRegistry`)."""

    def get(self, source_format: str, provider: str | None = None) -> Normalizer: ...

    def detect(self, columns: Sequence[str], provider: str | None, uri: str) -> Normalizer: ...


@dataclass(frozen=True)
class PlanRequest:
    """What one planner call is asked: the user's restrictions and the catalog to consult.

    ``credentials`` names the secret the planner's clients are built from (None: the
    environment's default chain); ``catalog.open`` already uses it.
    """

    provider: str | None
    source_format: str | None
    catalog: SourceCatalog
    credentials: CredentialsRef | None = None


# A planner turns one pattern into a plan (a local-layout planner returns None for a path that
# is not laid out its way); a reader streams one planned file as (first row number, batch).
Planner = Callable[[str, PlanRequest], "Plan | None"]
Reader = Callable[[SourceFile, SourceCatalog], Iterator[tuple[int, pa.RecordBatch]]]
# (uri, credentials or None) -> seekable bytes
Opener = Callable[[str, "CredentialsRef | None"], IO[bytes]]
# (uri, compression, catalog) -> (header names or None when empty, whether rows follow)
HeaderReader = Callable[[str, "str | None", SourceCatalog], "tuple[list[str] | None, bool]"]
# Completes a pattern from run options and the load ledger (incremental sources).
Resolver = Callable[[str, Mapping[str, Any], Any], str]
# Rewrites the merged plan of a run (Azure pairs actual- and amortized-cost exports).
PlanFinisher = Callable[["Plan", SourceCatalog], "Plan"]
# A Beam IO transform from the pipeline root to SourceBatch elements (BigQuery tables).
BeamReader = Callable[[SourceFile], Any]


@dataclass(frozen=True)
class Scheme:
    """A URI scheme a provider reads (``s3``, ``az``, ``aws-ce``, ``bq``).

    Attributes:
        name: the scheme, lower case, without ``://``.
        planner: plans a pattern of this scheme.
        opener: seekable byte access, for the shared CSV and Parquet readers, with the
            source's credentials (None: the environment's).
        resolver: completes the pattern from run options and the ledger before planning.
        period: an API source: the CLI's --start/--end become ``?start=&end=``.
    """

    name: str
    planner: Planner
    opener: Opener | None = None
    resolver: Resolver | None = None
    period: bool = False


@dataclass(frozen=True)
class Container:
    """A kind of planned source and how it is read: per file (``reader``) or by a Beam IO
    transform (``beam_reader``); ``header_reader`` reads a file's column names at planning."""

    name: str
    reader: Reader | None = None
    beam_reader: BeamReader | None = None
    header_reader: HeaderReader | None = None


@dataclass(frozen=True)
class FileType:
    """Files ending in ``suffix`` are planned as ``container`` with ``compression``."""

    suffix: str
    container: str
    compression: str | None = None


@dataclass
class SourceBatch:
    """A batch of one source file, as read (all string columns for CSV)."""

    source: SourceFile
    first_row: int
    batch: pa.RecordBatch

    def nbytes(self) -> int:
        return self.batch.nbytes


def scheme(pattern: str) -> str | None:
    return pattern.split("://", 1)[0].lower() if "://" in pattern else None


def with_period(uri: str, start: date | None, end: date | None,
                period_schemes: Sequence[str]) -> str:
    """``uri`` with ``start``/``end`` appended when it is an API source (what --start/--end do).

    ``period_schemes`` are the schemes declared with ``period=True`` (`Catalog.period_schemes`).
    """
    if scheme(uri) not in period_schemes or start is None or end is None:
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
