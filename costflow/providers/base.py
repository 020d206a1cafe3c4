"""What a provider declares, and the catalog the rest of costflow reads those declarations from.

A provider folder (`costflow/providers/<name>/`) ends in one frozen `Provider` value: its export
formats (normalizers), the URI schemes and containers it reads, the local layouts it recognises,
its recommendation fetcher, forecast fetcher and demo exports. `costflow.providers` lists the
providers once; `Catalog` turns that list into the lookups the shared layers need (format by
name or header, planner by scheme, reader by container, ...). Nothing registers itself at import
time, and nothing outside this package knows which providers exist.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from costflow.errors import ConfigError, SourceError
from costflow.sources import files
from costflow.sources.contract import (
    BeamReader,
    Container,
    FileType,
    HeaderReader,
    Plan,
    PlanFinisher,
    Planner,
    PlanRequest,
    Scheme,
    SourceCatalog,
    SourceFile,
    scheme,
)
from costflow.transforms.contract import Normalizer
from costflow.transforms.duplicates import line_item_key, mark_repeats
from costflow.transforms.formats import FormatRegistry

if TYPE_CHECKING:
    from costflow.recommendations import Fetcher
    from costflow.samples import DemoWriter
    from costflow.sources.credentials import CredentialsRef


@dataclass(frozen=True)
class Provider:
    """Everything costflow knows about one provider, declared once.

    Attributes:
        name: lower-case id, equal to the folder name and to ``x_SourceProvider``.
        formats: one normalizer per export format.
        schemes: URI schemes it reads (object stores, APIs, warehouse tables).
        containers: kinds of source it reads beyond CSV and Parquet (API answers, JSON lines).
        file_types: file suffixes planned as one of those containers.
        local_layouts: planners for a local directory laid out like the provider's own store
            (they return None for any other path; the plain file planner takes it then).
        plan_finishers: rewrite a run's merged plan (Azure pairs actual and amortized exports).
        recommender: fetches its cost recommendations (`costflow recommendations fetch`).
        forecast: the provider's own cost forecast API, when it has one.
        demo: writes realistic sample exports for `costflow demo`.
        tag_prefixes: prefixes of the tag keys the provider itself sets (FOCUS metadata
            ``ProviderTagPrefixes``), as opposed to the user's own tags.
        account_names: fetches {sub account id: display name} from the provider's own
            directory (AWS Organizations), for exports that carry ids only.
    """

    name: str
    formats: tuple[Normalizer, ...]
    schemes: tuple[Scheme, ...] = ()
    containers: tuple[Container, ...] = ()
    file_types: tuple[FileType, ...] = ()
    local_layouts: tuple[Planner, ...] = ()
    plan_finishers: tuple[PlanFinisher, ...] = ()
    recommender: Fetcher | None = None
    forecast: Callable[..., Any] | None = None
    demo: DemoWriter | None = None
    tag_prefixes: tuple[str, ...] = ()
    account_names: Callable[..., dict[str, str]] | None = None

    def __post_init__(self) -> None:
        strangers = [n.source_format for n in self.formats if n.provider != self.name]
        if strangers:
            raise ValueError(f"provider {self.name}: formats of another provider: {strangers}")


@dataclass(frozen=True)
class Catalog:
    """The lookups over a tuple of providers, plus the provider-neutral file sources.

    Frozen and picklable: Beam DoFns carry it to workers.
    """

    providers: tuple[Provider, ...]
    formats: FormatRegistry = field(init=False)
    _schemes: Mapping[str, Scheme] = field(init=False, repr=False)
    _containers: Mapping[str, Container] = field(init=False, repr=False)
    file_types: tuple[FileType, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"a provider is listed twice: {names}")
        set_ = object.__setattr__
        set_(self, "formats", FormatRegistry(n for p in self.providers for n in p.formats))
        set_(self, "_schemes", _unique("scheme", [(s.name, s) for s in files.SCHEMES] + [
            (s.name, s) for p in self.providers for s in p.schemes]))
        set_(self, "_containers", _unique("container", [(c.name, c) for c in files.CONTAINERS] + [
            (c.name, c) for p in self.providers for c in p.containers]))
        extra = tuple(t for p in self.providers for t in p.file_types)
        _unique("file suffix", [(t.suffix, t) for t in files.FILE_TYPES + extra])
        set_(self, "file_types", extra)

    # -- providers ------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers)

    def provider(self, name: str) -> Provider:
        for declared in self.providers:
            if declared.name == name:
                return declared
        raise ConfigError(f"Unknown provider {name!r}; known: {', '.join(self.names)}.")

    def with_recommender(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers if p.recommender is not None)

    def with_demo(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers if p.demo is not None)

    @property
    def tag_prefixes(self) -> tuple[str, ...]:
        return tuple(prefix for p in self.providers for prefix in p.tag_prefixes)

    # -- sources: the SourceCatalog protocol ----------------------------------------------

    @property
    def credentials(self) -> CredentialsRef | None:
        """None: the catalog itself opens with the environment's credentials (see `bound`)."""
        return None

    def bound(self, credentials: CredentialsRef | None) -> SourceCatalog:
        """This catalog, opening files with ``credentials`` (itself when None)."""
        return self if credentials is None else BoundCatalog(self, credentials)

    def open(self, uri: str, credentials: CredentialsRef | None = None) -> IO[bytes]:
        """Seekable bytes of a file, through its scheme's opener (s3://, az://, gs://)."""
        found = scheme(uri)
        declared = self._schemes.get(found) if found else None
        if declared is not None and declared.opener is not None:
            return declared.opener(uri, credentials)
        return files.open_filesystem(uri, credentials)

    def file_type(self, uri: str) -> FileType | None:
        lower = uri.lower()
        # Longest suffix first: ".csv.gz" before ".csv" would matter if both were to match.
        for candidate in sorted(files.FILE_TYPES + self.file_types, key=lambda t: -len(t.suffix)):
            if lower.endswith(candidate.suffix):
                return candidate
        return None

    def header_reader(self, container: str) -> HeaderReader | None:
        found = self._containers.get(container)
        return found.header_reader if found else None

    def local_layouts(self, provider: str | None) -> Sequence[Planner]:
        return [layout for p in self.providers if provider in (None, p.name)
                for layout in p.local_layouts]

    # -- planning and reading -------------------------------------------------------------

    @property
    def period_schemes(self) -> tuple[str, ...]:
        """Schemes of API sources, whose period comes from --start/--end."""
        return tuple(name for name, s in self._schemes.items() if s.period)

    def resolve_patterns(self, patterns: list[str], options: Mapping[str, Any],
                         ledger: Any) -> list[str]:
        """Patterns with their run options (e.g. --authorized_project) and ledger state."""
        out = []
        for pattern in patterns:
            declared = self._schemes.get(scheme(pattern) or "")
            out.append(declared.resolver(pattern, options, ledger)
                       if declared and declared.resolver else pattern)
        return out

    def plan(self, patterns: list[str], provider: str | None = None,
             source_format: str | None = None, billing_currency: str | None = None,
             credentials: CredentialsRef | None = None) -> Plan:
        """Plan every pattern with the planner of its scheme; files named twice are read once.

        ``billing_currency`` is the user's assertion for exports without a currency column;
        plan finishers (Azure) apply it to exactly those files. ``credentials`` (a reference)
        is what every planner's clients are built from, and every planned file carries it to
        the reader.
        """
        if provider is not None and provider not in self.names:
            raise ConfigError(f"Unknown provider {provider!r}; known: {', '.join(self.names)}.")
        catalog = self.bound(credentials)
        request = PlanRequest(provider, source_format, catalog, credentials)
        plan = Plan(assertions={"billing_currency": billing_currency} if billing_currency else {})
        for pattern in patterns:
            found = scheme(pattern)
            planned = (files.plan_files(pattern, request) if found is None
                       else self._plan_scheme(pattern, found, request))
            plan = plan.merge(planned)
        plan.files = _once(plan.files, plan.notes)
        if credentials is not None:
            plan.files = [dataclasses.replace(f, credentials=credentials) for f in plan.files]
        for finish in (f for p in self.providers for f in p.plan_finishers):
            plan = finish(plan, catalog)
        _refuse_same_content(plan.files)  # after the finishers: they give files their roles
        return plan

    def _plan_scheme(self, pattern: str, found: str, request: PlanRequest) -> Plan:
        declared = self._schemes.get(found)
        if declared is None:
            known = ", ".join(sorted(f"{s}://" for s in self._schemes)) or "none"
            raise ConfigError(f"--source {pattern!r}: no reader for {found}:// "
                              f"locations (known: local paths, {known}).")
        planned = declared.planner(pattern, request)
        if planned is None:
            raise ConfigError(f"--source {pattern!r}: the {found}:// planner found nothing.")
        return planned

    def read_batches(self, source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(first data-row number, batch) of one planned file, streaming.

        For formats with a line-item id, a row repeating an id seen earlier in the file is
        marked (`costflow.transforms.duplicates`), so its row is flagged, never dropped.
        """
        found = self._containers.get(source.container)
        if found is None or found.reader is None:
            raise ConfigError(f"{source.uri}: no reader for container {source.container!r}.")
        batches = found.reader(source, self.bound(source.credentials))
        if source.source_format not in self.formats.formats():
            return batches
        key = line_item_key(self.formats.get(source.source_format), source.columns)
        return mark_repeats(batches, key) if key else batches

    def beam_reader(self, container: str) -> BeamReader | None:
        found = self._containers.get(container)
        return found.beam_reader if found else None

    def normalizers(self) -> dict[str, Normalizer]:
        """Every normalizer by format (what the normalize step carries to workers)."""
        return {name: self.formats.get(name) for name in self.formats.formats()}


@dataclass(frozen=True)
class BoundCatalog:
    """A `Catalog` whose ``open`` uses one source's credentials (what planners and readers of
    that source are handed, so the shared file code needs no credentials parameter)."""

    catalog: Catalog
    credentials: CredentialsRef | None

    @property
    def formats(self) -> FormatRegistry:
        return self.catalog.formats

    @property
    def file_types(self) -> tuple[FileType, ...]:
        return self.catalog.file_types

    def open(self, uri: str) -> IO[bytes]:
        return self.catalog.open(uri, self.credentials)

    def file_type(self, uri: str) -> FileType | None:
        return self.catalog.file_type(uri)

    def header_reader(self, container: str) -> HeaderReader | None:
        return self.catalog.header_reader(container)

    def local_layouts(self, provider: str | None) -> Sequence[Planner]:
        return self.catalog.local_layouts(provider)

    def read_batches(self, source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
        return self.catalog.read_batches(source)


def _unique(what: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{what} {key!r} is declared twice")
        out[key] = value
    return out


def _once(sources: list[SourceFile], notes: list[str]) -> list[SourceFile]:
    """Each file once: named twice, or reached through two paths (a symbolic link to a file)."""
    unique: dict[str, SourceFile] = {}
    for source in sources:
        real = source.uri if "://" in source.uri else os.path.realpath(source.uri)
        first = unique.setdefault(real, source)
        if first is source or first.uri == source.uri:
            continue
        if source.uri == real:  # keep the file's own path, not the link's
            unique[real], first, source = source, source, first
        notes.append(f"{source.uri} is the same file as {first.uri} (a symbolic link): "
                     "read once")
    return list(unique.values())


def _refuse_same_content(sources: list[SourceFile]) -> None:
    """Two files of one provider and format with the same bytes would load the same line items
    twice and reconcile against themselves, so the run is refused before anything is read."""
    seen: dict[tuple[str, ...], SourceFile] = {}
    for source in sources:
        first = seen.setdefault(source.content_key(), source)
        if first is not source:
            raise SourceError(
                source.uri, f"has exactly the same content as {first.uri} (sha256 "
                f"{source.sha256[:16]}..., {source.size_bytes:,} bytes, both "
                f"{source.source_format}), so the run would load the same line items twice "
                "and reconcile them against themselves; nothing was read.",
                expected="each export file once: remove the copy, or point --source at only "
                "one of them")
