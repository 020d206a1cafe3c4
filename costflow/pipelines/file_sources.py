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
from collections.abc import Callable, Iterator
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from costflow.errors import SourceError
from costflow.pipelines.sources import (
    Plan,
    SourceFile,
    opener,
    register_planner,
    register_reader,
)
from costflow.transforms import registry

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
# Containers other modules add (e.g. costflow.pipelines.nested_files: JSON lines, Avro):
# file suffix -> (container, compression), and how to read a file's header names.
HeaderReader = Callable[[str, "str | None"], "tuple[list[str] | None, bool]"]
EXTRA_CONTAINERS: dict[str, tuple[str, str | None]] = {}
HEADER_READERS: dict[str, HeaderReader] = {}


def register_container(suffix: str, container: str, compression: str | None,
                       header_reader: HeaderReader) -> None:
    """Plan files ending in ``suffix`` as ``container`` (read by its registered reader)."""
    EXTRA_CONTAINERS[suffix.lower()] = (container, compression)
    HEADER_READERS[container] = header_reader


def _suffixes() -> tuple[str, ...]:
    return SUPPORTED_SUFFIXES + tuple(EXTRA_CONTAINERS)


def is_remote(path: str) -> bool:
    return "://" in path


def is_manifest(path: str) -> bool:
    """Export manifests (Azure ``manifest.json``, AWS ``<report>-Manifest.json``) describe a
    delivery; they are never billing rows, so directory scans and globs pass over them."""
    name = path.rsplit("/", 1)[-1].lower()
    return name == "manifest.json" or name.endswith("-manifest.json")


def expand_patterns(patterns: list[str]) -> list[str]:
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
                       if p.lower().endswith(_suffixes()) and not is_manifest(p)]
        elif glob.has_magic(pattern):
            matches = [p for p in glob.glob(pattern, recursive=True)
                       if os.path.isfile(p) and not is_manifest(p)]
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            raise SourceError(pattern, "no such file or directory.")
        if not matches:
            raise SourceError(pattern, "matches no file.",
                              expected=f"files ending in {', '.join(_suffixes())}")
        found.update(matches if is_remote(pattern) else (os.path.abspath(m) for m in matches))
    return sorted(found)


def open_binary(uri: str) -> IO[bytes]:
    registered = opener(uri)  # e.g. s3:// through boto3 (costflow.pipelines.s3_sources)
    if registered is not None:
        return registered(uri)
    if is_remote(uri):
        return FileSystems.open(uri, compression_type="uncompressed")
    return open(uri, "rb")


def _container(uri: str) -> tuple[str, str | None]:
    lower = uri.lower()
    if lower.endswith(".csv.gz"):
        return "csv", "gzip"
    if lower.endswith(".csv"):
        return "csv", None
    if lower.endswith(".parquet"):
        return "parquet", None
    for suffix in sorted(EXTRA_CONTAINERS, key=len, reverse=True):
        if lower.endswith(suffix):
            return EXTRA_CONTAINERS[suffix]
    raise SourceError(uri, "unsupported file type.",
                      expected=f"a file ending in {', '.join(_suffixes())}")


def fingerprint(uri: str) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of the file as stored."""
    digest = hashlib.sha256()
    size = 0
    with open_binary(uri) as f:
        while chunk := f.read(4 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _csv_text_stream(uri: str, compression: str | None) -> pa.NativeFile:
    raw = pa.PythonFile(open_binary(uri), mode="r")
    return pa.CompressedInputStream(raw, compression) if compression else raw


def read_csv_header(uri: str, compression: str | None) -> tuple[list[str] | None, bool]:
    """(header names with the BOM stripped, whether any data row follows) of a CSV file.

    Reads only the first HEADER_PEEK_BYTES; the header is None when the file has no header line.
    """
    try:
        with _csv_text_stream(uri, compression) as stream:
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


def inspect(uri: str, provider: str | None, source_format: str | None) -> SourceFile | None:
    """Header checks and format detection for one file; None when it has a header and no rows."""
    container, compression = _container(uri)
    if container == "parquet":
        try:
            with open_binary(uri) as f:
                pf = pq.ParquetFile(f)
                header = list(pf.schema_arrow.names)
                nrows = pf.metadata.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(uri, f"is not a readable Parquet file ({exc}).") from None
        has_rows = nrows > 0
    elif container in HEADER_READERS:
        header_read, has_rows = HEADER_READERS[container](uri, compression)
        if header_read is None:
            raise SourceError(uri, "is empty: it holds no record, so it is not an export "
                              "(a broken download?).", expected="at least one record")
        header = header_read
    else:
        parsed, has_rows = read_csv_header(uri, compression)
        if parsed is None:
            raise SourceError(uri, "is empty: it has no header row, so it is not an export "
                              "(a broken download?).", expected="a CSV header row")
        header = parsed
    _check_header(uri, header)
    normalizer = (registry.get(source_format, provider) if source_format
                  else registry.detect(header, provider, uri))
    if provider and normalizer.provider != provider:
        raise SourceError(uri, f"is a {normalizer.provider} export ({normalizer.source_format}), "
                          f"but --provider {provider} was given.")
    missing = normalizer.missing_required(header)
    if missing:
        raise SourceError(uri, f"lacks the required column(s) {', '.join(missing)}.",
                          row=0, column=missing[0],
                          expected=f"a {normalizer.source_format} header with "
                          f"{', '.join(missing)}")
    size, sha = fingerprint(uri)
    source = SourceFile(uri=uri, size_bytes=size, sha256=sha, container=container,
                        compression=compression, columns=tuple(header),
                        source_format=normalizer.source_format, provider=normalizer.provider)
    return source if has_rows else None


def plan_files(pattern: str, provider: str | None, source_format: str | None) -> Plan:
    """The default planner: every export file a path, directory or glob names."""
    plan = Plan()
    for uri in expand_patterns([pattern]):
        source = inspect(uri, provider, source_format)
        if source is None:
            plan.empty_files.append(uri)
        else:
            plan.files.append(source)
    return plan


def read_parquet(source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first data-row number, batch) for a Parquet file, streaming row groups."""
    row = 1
    try:
        with open_binary(source.uri) as f:
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


def read_csv(source: SourceFile) -> Iterator[tuple[int, pa.RecordBatch]]:
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
        with _csv_text_stream(source.uri, source.compression) as stream:
            reader = pacsv.open_csv(stream, read_options=read_options,
                                    parse_options=parse, convert_options=convert)
            for batch in regroup(reader, BATCH_ROWS):
                yield row, batch
                row += batch.num_rows
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        if "Expected" in str(exc) and "columns, got" in str(exc):
            bad_row, fields = _locate_malformed_row(source)
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


def _locate_malformed_row(source: SourceFile) -> tuple[int | None, int | None]:
    """(data-row number, field count) of the first row whose field count is off.

    Only called after the fast reader refused the file, so the slow exact pass costs nothing
    on good files.
    """
    with _csv_text_stream(source.uri, source.compression) as stream:
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


register_reader("csv", read_csv)
register_reader("parquet", read_parquet)
register_planner(None, plan_files)
for _scheme in ("gs", "file"):
    register_planner(_scheme, plan_files)
