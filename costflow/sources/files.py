"""Billing export files: local paths, directories, globs and Beam filesystems (gs://).

Planning reads only what it must: each file's fingerprint (size, sha256) for the ledger and its
header, to detect the export format and fail early, naming the file, on an empty file, a file
that is not CSV or Parquet, duplicate header names or missing required columns. Reading streams
a file as record batches, never the whole file in memory; a truncated or corrupt file raises a
`SourceError` naming the file and the row.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from costflow.errors import SourceError
from costflow.sources.contract import (
    Container,
    FileType,
    Plan,
    PlanRequest,
    Scheme,
    SourceCatalog,
    SourceFile,
)
from costflow.sources.verify import VerifiedFile, open_verified
from costflow.transforms import parquet_batches

if TYPE_CHECKING:
    from costflow.sources.credentials import CredentialsRef
    from costflow.transforms.contract import Normalizer

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
# Arrow's streaming CSV reader keeps dozens of blocks in flight: 1 MiB blocks hold it near
# 40 MiB (8 MiB blocks: ~320 MiB) and parse fastest. The small batches it yields are then
# regrouped to BATCH_ROWS, large enough for vectorized normalization to pay off.
CSV_BLOCK_BYTES = 1 << 20
# A row larger than a block makes the reader restart with larger blocks, up to this size.
MAX_CSV_BLOCK_BYTES = 256 << 20
BATCH_ROWS = 16_384
# One normalizer piece (`costflow.pipelines.normalize.PIECE_ROWS`) per Parquet batch: with
# twice that, the batches read ahead of a nested GCP export kept the 5M-row ingest's peak near
# 1.54 GB (1.38 GB with this size) and were no faster (1M rows: 31.9 s against 30.1 s).
PARQUET_BATCH_ROWS = 32_768
HEADER_PEEK_BYTES = 64 << 10
UTF8_BOM = "\ufeff"
FILE_TYPES = (FileType(".csv.gz", "csv", "gzip"), FileType(".csv", "csv"),
              FileType(".parquet", "parquet"))


def _suffixes(catalog: SourceCatalog) -> tuple[str, ...]:
    return SUPPORTED_SUFFIXES + tuple(t.suffix for t in catalog.file_types)


def is_remote(path: str) -> bool:
    return "://" in path


def is_manifest(path: str) -> bool:
    """Export manifests (Azure ``manifest.json``, AWS ``<report>-Manifest.json``) describe a
    delivery; they are never billing rows, so directory scans and globs pass over them."""
    name = path.rsplit("/", 1)[-1].lower()
    return name == "manifest.json" or name.endswith("-manifest.json")


def expand_patterns(patterns: list[str], catalog: SourceCatalog,
                    notes: list[str] | None = None) -> list[str]:
    """Paths, directories (searched recursively) and globs (``**`` allowed) -> sorted file URIs.

    A file named explicitly is always taken; directories and globs skip export manifests.
    Local directories are walked without following symbolic links to folders: such a link can
    loop back into the tree (planning would hang or list the same file dozens of times) or reach
    files some other way too. Hidden folders and files (names starting with ``.``) are skipped
    unless the pattern names one. What was not followed or skipped is said in ``notes`` (the
    plan's notes, printed with the run report). A file reached through two paths (a symbolic
    link to a file) is planned once by `costflow.providers.base.Catalog.plan`.
    """
    found: set[str] = set()
    for pattern in patterns:
        if is_remote(pattern):
            matches = [m.path for r in _filesystem(pattern, catalog.credentials).match([pattern])
                       for m in r.metadata_list if not is_manifest(m.path)]
        elif os.path.isdir(pattern):
            walked = _walk(pattern, _suffix_filter(catalog), None, hidden_ok=False)
            matches = walked.files
            walked.describe(pattern, notes)
        elif glob.has_magic(pattern):
            matches = _glob(pattern, notes)
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            raise SourceError(pattern, "no such file or directory.")
        if not matches:
            raise SourceError(pattern, "matches no file.",
                              expected=f"files ending in {', '.join(_suffixes(catalog))}")
        found.update(matches if is_remote(pattern) else (os.path.abspath(m) for m in matches))
    return sorted(found)


@dataclass
class _Walked:
    """What a symlink-safe walk of one local folder found and passed over."""

    files: list[str] = field(default_factory=list)
    linked_dirs: list[str] = field(default_factory=list)  # symbolic links to folders
    hidden: list[str] = field(default_factory=list)       # hidden folders and export files

    def describe(self, pattern: str, notes: list[str] | None) -> None:
        if notes is None:
            return
        if self.linked_dirs:
            notes.append(
                f"{pattern}: {len(self.linked_dirs)} symbolic link(s) to folders not followed "
                f"({_shown(self.linked_dirs, pattern)}): a link can lead back into the tree or "
                "reach the same files twice; name such a folder in --source to read it")
        if self.hidden:
            notes.append(
                f"{pattern}: {len(self.hidden)} hidden folder(s) or file(s) skipped (names "
                f"starting with '.': {_shown(self.hidden, pattern)}); name one in --source to "
                "read it")


def _shown(paths: list[str], pattern: str, most: int = 5) -> str:
    base = pattern if os.path.isdir(pattern) else _glob_base(pattern)[0]
    names = [os.path.relpath(p, base) for p in paths[:most]]
    return ", ".join(names) + (f" and {len(paths) - most} more" if len(paths) > most else "")


def _suffix_filter(catalog: SourceCatalog) -> Callable[[str], bool]:
    suffixes = _suffixes(catalog)
    return lambda path: path.lower().endswith(suffixes) and not is_manifest(path)


def _walk(top: str, keep: Callable[[str], bool], max_depth: int | None,
          hidden_ok: bool) -> _Walked:
    """Files under ``top`` that ``keep`` accepts, never following symbolic links to folders.

    ``max_depth`` bounds the folder depth below ``top`` (a glob without ``**``).
    """
    walked = _Walked()

    def refuse(exc: OSError) -> None:
        raise SourceError(exc.filename or top, f"cannot be listed ({exc.strerror or exc}).",
                          expected="a folder the run may read") from None

    for folder, dirs, names in os.walk(top, onerror=refuse, followlinks=False):
        depth = 0 if folder == top else os.path.relpath(folder, top).count(os.sep) + 1
        followed = []
        for name in sorted(dirs):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                walked.linked_dirs.append(path)
            elif name.startswith(".") and not hidden_ok:
                walked.hidden.append(path)
            elif max_depth is None or depth < max_depth:
                followed.append(name)
        dirs[:] = followed
        for name in sorted(names):
            path = os.path.join(folder, name)
            if not keep(path):
                continue
            if name.startswith(".") and not hidden_ok:
                walked.hidden.append(path)
            else:
                walked.files.append(path)
    return walked


def _glob_base(pattern: str) -> tuple[str, list[str]]:
    """(the folder before the first component with a wildcard, the components from there)."""
    parts = pattern.replace(os.sep, "/").split("/")
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    rest = parts[len(fixed):]
    base = "/".join(fixed) if fixed else "."
    return (base or "/"), rest


def local_glob(pattern: str, notes: list[str] | None = None) -> list[str]:
    """The files a local glob (``**`` for any depth) names, walked without following links to
    folders (they can loop: `glob.glob` then never ends); what was skipped goes to ``notes``.
    Every planner that expands a user's local glob uses this one."""
    return _glob(pattern, notes)


def _glob(pattern: str, notes: list[str] | None) -> list[str]:
    """A local glob (``**`` for any depth) walked without following links to folders."""
    base, rest = _glob_base(pattern)
    if not os.path.isdir(base):
        return []
    regex = re.compile("".join(_component_regex(part, last=i == len(rest) - 1)
                               for i, part in enumerate(rest)) + r"\Z", re.DOTALL)
    hidden_ok = any(part.startswith(".") for part in rest)
    depth = None if "**" in rest else len(rest) - 1

    def keep(path: str) -> bool:
        relative = os.path.relpath(path, base).replace(os.sep, "/")
        return bool(regex.match(relative)) and not is_manifest(path)

    walked = _walk(base, keep, depth, hidden_ok)
    walked.describe(pattern, notes)
    return [p for p in walked.files if os.path.isfile(p)]


def _component_regex(part: str, last: bool) -> str:
    """The regex of one glob component: ``*`` and ``?`` never cross ``/``; ``**`` spans folders."""
    if part == "**":
        return ".*" if last else "(?:[^/]+/)*"
    out, i = [], 0
    while i < len(part):
        char = part[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := _class_end(part, i)) > 0:
            body = part[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + ("" if last else "/")


def _class_end(part: str, start: int) -> int:
    """Index of the ``]`` closing the character class opened at ``start`` (-1: none)."""
    i = start + 1
    if part[i:i + 1] == "!":
        i += 1
    if part[i:i + 1] == "]":
        i += 1
    return part.find("]", i)


def _filesystem(uri: str, credentials: CredentialsRef | None) -> Any:
    """Beam's filesystems; for ``gs://`` with credentials, a GCS filesystem using them."""
    if credentials is not None and uri.lower().startswith("gs://"):
        from costflow.sources import gcs

        return gcs.filesystem(credentials, uri)
    return FileSystems


def open_filesystem(uri: str, credentials: CredentialsRef | None = None) -> IO[bytes]:
    """Local paths, and Beam's filesystems (``gs://``) for remote ones."""
    if is_remote(uri):
        return _filesystem(uri, credentials).open(uri, compression_type="uncompressed")
    return open(uri, "rb")


def _container(uri: str, catalog: SourceCatalog) -> tuple[str, str | None]:
    found = catalog.file_type(uri)
    if found is None:
        raise SourceError(uri, "unsupported file type.",
                          expected=f"a file ending in {', '.join(_suffixes(catalog))}")
    return found.container, found.compression


def fingerprint(uri: str, catalog: SourceCatalog) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of the file as stored."""
    digest = hashlib.sha256()
    size = 0
    with catalog.open(uri) as f:
        while chunk := f.read(4 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def csv_text_stream(uri: str, compression: str | None,
                    catalog: SourceCatalog) -> pa.NativeFile:
    """The decompressed bytes of a file, unchecked (planning peeks, error location)."""
    raw = pa.PythonFile(catalog.open(uri), mode="r")
    return pa.CompressedInputStream(raw, compression) if compression else raw


def verified_text_stream(source: SourceFile,
                         catalog: SourceCatalog) -> tuple[VerifiedFile, pa.NativeFile]:
    """A planned file's decompressed bytes, and the handle whose ``verify()`` the reader calls
    once it has read everything (`costflow.sources.verify`)."""
    verified = open_verified(source, catalog)
    raw = pa.PythonFile(verified, mode="r")
    return verified, (pa.CompressedInputStream(raw, source.compression)
                      if source.compression else raw)


def read_csv_header(uri: str, compression: str | None,
                    catalog: SourceCatalog) -> tuple[list[str] | None, bool]:
    """(header names with the BOM stripped, whether any data row follows) of a CSV file.

    Reads only the first HEADER_PEEK_BYTES; the header is None when the file has no header line.
    """
    try:
        with csv_text_stream(uri, compression, catalog) as stream:
            head = stream.read(HEADER_PEEK_BYTES)
    except (OSError, pa.ArrowInvalid, EOFError) as exc:
        raise SourceError(uri, f"cannot be read: {_explain(exc, compression)}",
                          expected="a complete, well-formed file") from None
    if not head.strip():
        return None, False
    not_text = binary_kind(head, compression)
    if not_text:
        raise SourceError(uri, not_text[0], expected=not_text[1])
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the peek boundary
            raise SourceError(uri, f"is not UTF-8 text (invalid byte at offset {exc.start}).",
                              expected="a UTF-8 CSV export") from None
        text = head[: exc.start].decode("utf-8")
    text = text.removeprefix(UTF8_BOM)
    records = csv.reader(io.StringIO(text))
    first = next(records, None)
    if not first:
        return None, False
    full_peek = len(head) >= HEADER_PEEK_BYTES
    has_rows = full_peek or any(any(field.strip() for field in record) for record in records)
    return [name.strip() for name in first], has_rows


_UTF16_BOMS = {b"\xff\xfe": "UTF-16 little-endian", b"\xfe\xff": "UTF-16 big-endian"}
_MAGIC = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"PAR1": "Parquet",
          b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd", b"Obj\x01": "Avro"}


def binary_kind(head: bytes, compression: str | None) -> tuple[str, str] | None:
    """(what the file is, what to do) when the first bytes of a text file are not UTF-8 text.

    Recognises UTF-16 (a byte order mark, or a NUL in every other byte: Excel's "Unicode
    text") and compressed or binary containers by their magic bytes; None for text.
    """
    for bom, name in _UTF16_BOMS.items():
        if head.startswith(bom) and not head.startswith(b"\xff\xfe\x00\x00"):
            return (f"is {name} text (it starts with the byte order mark "
                    f"{bom.hex(' ').upper()}), not UTF-8.",
                    "a UTF-8 export: save it again as UTF-8 (Excel: \"CSV UTF-8\"), or convert "
                    "it, e.g. iconv -f UTF-16 -t UTF-8 in.csv > out.csv")
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            inside = " inside the gzip stream" if compression else ""
            fix = ("add .gz to its name (.csv.gz, .json.gz: gzip-compressed text) or "
                   "decompress it first" if name == "gzip" else
                   "give it its real suffix (.parquet, .avro) or extract the CSV first")
            return (f"is a {name} file{inside}, not text (it starts with the {name} "
                    f"signature {magic[:4].hex(' ').upper()}).",
                    f"a file whose name says what it holds: {fix}")
    if b"\x00" in head:
        sample = head[:4096]
        odd, even = sample[1::2], sample[0::2]
        if odd and odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            return ("looks like UTF-16 little-endian text without a byte order mark (every "
                    "second byte is NUL), not UTF-8.",
                    "a UTF-8 export: convert it, e.g. iconv -f UTF-16LE -t UTF-8 in.csv > out.csv")
        if even and even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            return ("looks like UTF-16 big-endian text without a byte order mark (every "
                    "second byte is NUL), not UTF-8.",
                    "a UTF-8 export: convert it, e.g. iconv -f UTF-16BE -t UTF-8 in.csv > out.csv")
        return ("is not a CSV text file (it contains binary NUL bytes).",
                "a comma-separated text export with a header row")
    return None


def _check_header(uri: str, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            raise SourceError(uri, f"header column {position} has no name.",
                              row=0, expected="a name for every column")
        if name in seen:
            raise SourceError(uri, f"the header names column {name!r} twice "
                              f"(columns {seen[name]} and {position}), so its values are "
                              "ambiguous.", row=0, column=name,
                              expected="unique column names")
        seen[name] = position


def inspect(uri: str, request: PlanRequest) -> SourceFile | None:
    """Header checks and format detection for one file; None when it has a header and no rows."""
    catalog, provider, source_format = request.catalog, request.provider, request.source_format
    container, compression = _container(uri, catalog)
    header_reader = catalog.header_reader(container)
    parquet_schema: pa.Schema | None = None
    if container == "parquet":
        try:
            with catalog.open(uri) as f:
                pf = pq.ParquetFile(f)
                parquet_schema = pf.schema_arrow
                header = list(pf.schema_arrow.names)
                nrows = pf.metadata.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(uri, f"is not a readable Parquet file ({exc}).") from None
        has_rows = nrows > 0
    elif header_reader is not None:
        header_read, has_rows = header_reader(uri, compression, catalog)
        if header_read is None:
            raise SourceError(uri, "is empty: it holds no record, so it is not an export "
                              "(a broken download?).", expected="at least one record")
        header = header_read
    else:
        parsed, has_rows = read_csv_header(uri, compression, catalog)
        if parsed is None:
            raise SourceError(uri, "is empty: it has no header row, so it is not an export "
                              "(a broken download?).", expected="a CSV header row")
        header = parsed
    _check_header(uri, header)
    normalizer = (catalog.formats.get(source_format, provider) if source_format
                  else catalog.formats.detect(header, provider, uri))
    if parquet_schema is not None:
        _check_value_shapes(uri, parquet_schema, normalizer)
    if provider and normalizer.provider != provider:
        raise SourceError(uri, f"is a {normalizer.provider} export ({normalizer.source_format}), "
                          f"but --provider {provider} was given.")
    missing = normalizer.missing_required(header)
    if missing:
        raise SourceError(uri, f"lacks the required column(s) {', '.join(missing)}.",
                          row=0, column=missing[0],
                          expected=f"a {normalizer.source_format} header with "
                          f"{', '.join(missing)}")
    size, sha = fingerprint(uri, catalog)
    source = SourceFile(uri=uri, size_bytes=size, sha256=sha, container=container,
                        compression=compression, columns=tuple(header),
                        source_format=normalizer.source_format, provider=normalizer.provider)
    return source if has_rows else None


def _nested(type_: pa.DataType) -> bool:
    """A list or a record per row (a MAP is a provider's own shape, e.g. CUR 2.0 tags)."""
    return (pa.types.is_list(type_) or pa.types.is_large_list(type_)
            or pa.types.is_fixed_size_list(type_) or pa.types.is_struct(type_))


def _maps_without_error(normalizer: Normalizer, schema: pa.Schema) -> bool:
    """True when the normalizer maps an empty batch of ``schema`` (Arrow picks its cast kernels
    by type, so a column it cannot read as text fails on zero rows as on a million)."""
    empty = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
    try:
        normalizer.map(empty)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError):
        return False
    except Exception:  # noqa: BLE001 - only the column types are probed here
        return True
    return True


def _check_value_shapes(uri: str, schema: pa.Schema, normalizer: Normalizer) -> None:
    """Refuse a Parquet file whose column holds a list or record where its format reads one
    value per row (a cost column written as ``list<double>``), naming the column, at planning.

    Formats that read nested columns by design (GCP's credits and labels) pass the probe.
    """
    nested = [f for f in schema if _nested(f.type)]
    if not nested or _maps_without_error(normalizer, schema):
        return
    culprits = [f for f in nested if not _maps_without_error(normalizer, pa.schema([
        g if g.name == f.name or not _nested(g.type) else g.with_type(pa.string())
        for g in schema]))] or nested
    field_ = culprits[0]
    kind = "a record (struct)" if pa.types.is_struct(field_.type) else "a list"
    raise SourceError(
        uri, f"holds {kind} per row ({field_.type}), but the "
        f"{normalizer.source_format} format reads it as one value per row (a number, text or "
        "timestamp), so it cannot be mapped; nothing was read.", row=0, column=field_.name,
        expected="the column as the provider writes it, one value per row: re-export the "
        "file, or flatten the column to its value before ingesting")


def plan_files(pattern: str, request: PlanRequest) -> Plan:
    """Every export file a path, directory or glob names.

    A local directory laid out the way a provider stores its deliveries (AWS manifests) is
    planned by that provider's layout planner instead (`SourceCatalog.local_layouts`).
    """
    if not is_remote(pattern):
        for layout in request.catalog.local_layouts(request.provider):
            planned = layout(pattern, request)
            if planned is not None:
                return planned
    plan = Plan()
    return add_inspected(plan, expand_patterns([pattern], request.catalog, plan.notes), request)


def add_inspected(plan: Plan, uris: list[str], request: PlanRequest) -> Plan:
    """``plan`` with each of ``uris`` inspected: a planned file, or an empty one."""
    for uri in uris:
        source = inspect(uri, request)
        if source is None:
            plan.empty_files.append(uri)
        else:
            plan.files.append(source)
    return plan


def read_parquet(source: SourceFile,
                 catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for a Parquet file, streaming row groups
    (`costflow.transforms.parquet_batches`: memory flat over the file)."""
    row = 1
    try:
        with open_verified(source, catalog, seekable=True) as f:
            try:
                parquet = pq.ParquetFile(f)
                for batch in parquet_batches.batches(parquet, batch_size=PARQUET_BATCH_ROWS):
                    yield row, batch
                    row += batch.num_rows
            except (pa.ArrowInvalid, OSError, EOFError):
                f.verify()  # bytes rewritten under the reader: say so, not "corrupt"
                raise
            f.verify()
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise SourceError(
            source.uri, f"reading stopped after row {row - 1}: {_explain(exc, None)}",
            row=row, expected="a complete, well-formed Parquet file; nothing from this run "
            "was committed") from None


def regroup(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Concatenate consecutive small batches into batches of at least ``rows`` rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _concat(pending)
            pending, count = [], 0
    if pending:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def read_csv(source: SourceFile,
             catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for a CSV file, streaming.

    Columns are all read as strings with empty fields as null: a normalizer decides types, so
    account IDs keep their leading zeros and costs are parsed exactly.

    Arrow's reader needs every row to fit in one block (CSV_BLOCK_BYTES). A row larger than that
    (a 10 MB description or tag field is valid CSV) makes it restart with blocks large enough,
    up to MAX_CSV_BLOCK_BYTES, passing over the rows already yielded; only a row larger than
    that limit stops the run, naming its row number and the limit.
    """
    yielded = 0
    block = CSV_BLOCK_BYTES
    while True:
        try:
            for first, batch in _read_csv_blocks(source, catalog, block, yielded):
                yield first, batch
                yielded = first - 1 + batch.num_rows
            return
        except _RowTooLarge:
            if block >= MAX_CSV_BLOCK_BYTES:
                bad_row, size = _locate_large_row(source, catalog, MAX_CSV_BLOCK_BYTES)
                raise SourceError(
                    source.uri, f"row {bad_row} is {_mib(size)} long, more than the "
                    f"{_mib(MAX_CSV_BLOCK_BYTES)} a CSV row may take here, so it cannot be "
                    "read.", row=bad_row, expected=f"rows of at most "
                    f"{_mib(MAX_CSV_BLOCK_BYTES)} (is a quote left open, so that the rest of "
                    "the file reads as one field?); nothing from this run was committed",
                ) from None
            block = min(block * 16, MAX_CSV_BLOCK_BYTES)


class _RowTooLarge(Exception):
    """A CSV row does not fit in the reader's block."""


def _read_csv_blocks(source: SourceFile, catalog: SourceCatalog, block: int,
                     skip: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """One pass of the Arrow CSV reader with ``block``-byte blocks, from data row skip + 1."""
    row = 1
    try:
        read_options = pacsv.ReadOptions(column_names=list(source.columns), skip_rows=1,
                                         block_size=block, encoding="utf8")
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in source.columns},
                                       strings_can_be_null=True, null_values=[""],
                                       quoted_strings_can_be_null=True)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        verified, text = verified_text_stream(source, catalog)
        with text as stream:
            reader = pacsv.open_csv(stream, read_options=read_options,
                                    parse_options=parse, convert_options=convert)
            for batch in regroup(reader, BATCH_ROWS):
                end = row + batch.num_rows
                if end - 1 > skip:  # rows up to ``skip`` were yielded by an earlier pass
                    start = max(row, skip + 1)
                    yield start, batch.slice(start - row)
                row = end
            verified.verify()
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        if "straddling object" in str(exc):
            raise _RowTooLarge() from None
        if "Expected" in str(exc) and "columns, got" in str(exc):
            bad_row, fields = _locate_malformed_row(source, catalog)
            raise SourceError(
                source.uri, f"row {bad_row} has {fields} fields but the header has "
                f"{len(source.columns)}, so its values cannot be matched to columns.",
                row=bad_row, expected="one field per header column (quote values that contain "
                "commas); nothing from this run was committed") from None
        raise SourceError(
            source.uri,
            f"reading stopped after row {row - 1}: {_explain(exc, source.compression)}",
            row=row, expected="a complete, well-formed file; nothing from this run was committed",
        ) from None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


@contextlib.contextmanager
def _python_csv(source: SourceFile, catalog: SourceCatalog) -> Iterator[Iterator[list[str]]]:
    """The file's data records through Python's csv module, fields of any size (slow)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        with csv_text_stream(source.uri, source.compression, catalog) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            next(reader, None)
            yield reader
    finally:
        csv.field_size_limit(limit)


def _locate_malformed_row(source: SourceFile,
                          catalog: SourceCatalog) -> tuple[int | None, int | None]:
    """(data-row number, field count) of the first row whose field count is off.

    Only called after the fast reader refused the file, so the slow exact pass costs nothing
    on good files.
    """
    with _python_csv(source, catalog) as reader:
        for number, record in enumerate(reader, start=1):
            if record and len(record) != len(source.columns):
                return number, len(record)
    return None, None


def _locate_large_row(source: SourceFile, catalog: SourceCatalog,
                      limit: int) -> tuple[int | None, int]:
    """(data-row number, size in characters) of the first row longer than ``limit``."""
    with _python_csv(source, catalog) as reader:
        for number, record in enumerate(reader, start=1):
            size = sum(len(f) for f in record) + len(record)
            if size > limit:
                return number, size
    return None, limit


def _explain(exc: Exception, compression: str | None) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if compression and any(w in text.lower() for w in ("gzip", "truncated", "compress",
                                                              "unexpected end", "eof")):
        return f"the gzip stream is truncated or corrupt ({text})."
    return f"{text}."


# What every provider's files share: CSV and Parquet, from local paths and Beam's filesystems.
CONTAINERS = (Container("csv", read_csv), Container("parquet", read_parquet))
SCHEMES = (Scheme("gs", plan_files, opener=open_filesystem),
           Scheme("file", plan_files, opener=open_filesystem))
