"""Billing export files: local paths, directories, globs and Beam filesystems (gs://).

Planning reads only what it must: each file's fingerprint (size, sha256) for the ledger and its
header, to detect the export format and fail early, naming the file, on an empty file, a file
that is not CSV or Parquet, duplicate header names or missing required columns. Reading streams
a file as record batches, never the whole file in memory; a truncated or corrupt file raises a
`SourceError` naming the file and the row.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
from collections.abc import Iterator
from typing import IO

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

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
# Arrow's streaming CSV reader keeps dozens of blocks in flight: 1 MiB blocks hold it near
# 40 MiB (8 MiB blocks: ~320 MiB) and parse fastest. The small batches it yields are then
# regrouped to BATCH_ROWS, large enough for vectorized normalization to pay off.
CSV_BLOCK_BYTES = 1 << 20
BATCH_ROWS = 16_384
PARQUET_BATCH_ROWS = 65_536
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


def expand_patterns(patterns: list[str], catalog: SourceCatalog) -> list[str]:
    """Paths, directories (searched recursively) and globs (``**`` allowed) -> sorted file URIs.

    A file named explicitly is always taken; directories and globs skip export manifests.
    """
    found: set[str] = set()
    for pattern in patterns:
        if is_remote(pattern):
            matches = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list
                       if not is_manifest(m.path)]
        elif os.path.isdir(pattern):
            matches = [p for p in glob.glob(os.path.join(pattern, "**", "*"), recursive=True)
                       if p.lower().endswith(_suffixes(catalog)) and not is_manifest(p)]
        elif glob.has_magic(pattern):
            matches = [p for p in glob.glob(pattern, recursive=True)
                       if os.path.isfile(p) and not is_manifest(p)]
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            raise SourceError(pattern, "no such file or directory.")
        if not matches:
            raise SourceError(pattern, "matches no file.",
                              expected=f"files ending in {', '.join(_suffixes(catalog))}")
        found.update(matches if is_remote(pattern) else (os.path.abspath(m) for m in matches))
    return sorted(found)


def open_filesystem(uri: str) -> IO[bytes]:
    """Local paths, and Beam's filesystems (``gs://``) for remote ones."""
    if is_remote(uri):
        return FileSystems.open(uri, compression_type="uncompressed")
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
    raw = pa.PythonFile(catalog.open(uri), mode="r")
    return pa.CompressedInputStream(raw, compression) if compression else raw


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
    if b"\x00" in head:
        raise SourceError(uri, "is not a CSV text file (it contains binary NUL bytes).",
                          expected="a comma-separated text export with a header row")
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
    if container == "parquet":
        try:
            with catalog.open(uri) as f:
                pf = pq.ParquetFile(f)
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
    for uri in expand_patterns([pattern], request.catalog):
        source = inspect(uri, request)
        if source is None:
            plan.empty_files.append(uri)
        else:
            plan.files.append(source)
    return plan


def read_parquet(source: SourceFile,
                 catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for a Parquet file, streaming row groups."""
    row = 1
    try:
        with catalog.open(source.uri) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=PARQUET_BATCH_ROWS):
                yield row, batch
                row += batch.num_rows
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
    """
    row = 1
    try:
        read_options = pacsv.ReadOptions(column_names=list(source.columns), skip_rows=1,
                                         block_size=CSV_BLOCK_BYTES, encoding="utf8")
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in source.columns},
                                       strings_can_be_null=True, null_values=[""],
                                       quoted_strings_can_be_null=True)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        with csv_text_stream(source.uri, source.compression, catalog) as stream:
            reader = pacsv.open_csv(stream, read_options=read_options,
                                    parse_options=parse, convert_options=convert)
            for batch in regroup(reader, BATCH_ROWS):
                yield row, batch
                row += batch.num_rows
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
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


def _locate_malformed_row(source: SourceFile,
                          catalog: SourceCatalog) -> tuple[int | None, int | None]:
    """(data-row number, field count) of the first row whose field count is off.

    Only called after the fast reader refused the file, so the slow exact pass costs nothing
    on good files.
    """
    with csv_text_stream(source.uri, source.compression, catalog) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        next(reader, None)
        for number, record in enumerate(reader, start=1):
            if record and len(record) != len(source.columns):
                return number, len(record)
    return None, None


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
