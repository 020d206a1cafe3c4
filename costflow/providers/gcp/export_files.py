"""Nested export files: newline-delimited JSON (plain or gzip) and Avro, as BigQuery extracts them.

Why this module exists: billing exports that live in BigQuery (GCP's above all) reach files as
BigQuery's extract formats, which nest records and repeat fields. CSV cannot carry that, and
Parquet is read by `file_sources` already; this module adds the other two containers:

* ``jsonl`` (``.json``, ``.jsonl``, ``.ndjson``, each optionally ``.gz``): streamed by Arrow's
  JSON reader with the export's explicit schema, so JSON numbers become exact decimals from their
  own text (never a float) and fields an older export lacks are nulls. A malformed line or a
  record where a list belongs stops the run with a `SourceError` naming the file, line and field
  (found by a slow exact pass only after the fast reader refused the file).
* ``avro``: read with fastavro (as Beam's own Avro IO does), records converted to Arrow record
  batches in blocks; the Arrow types follow the file's own Avro schema (timestamp-micros ->
  timestamp, decimal -> decimal128, double -> float64).

Both are declared (`CONTAINERS`, `FILE_TYPES`, read by the GCP provider declaration) as
containers the shared file planner plans, so local paths, directories, globs and ``gs://`` all
work the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import IO, Any, cast

import pyarrow as pa
import pyarrow.json as pajson

from costflow.errors import SourceError
from costflow.providers.gcp.export_schema import READER_SCHEMA, NestingError
from costflow.sources import files as file_sources
from costflow.sources.contract import Container, FileType, SourceCatalog, SourceFile
from costflow.sources.files import BATCH_ROWS, csv_text_stream
from costflow.sources.verify import open_verified

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_BLOCK_BYTES = 8 << 20  # larger than any export line; Arrow needs whole lines per block
# Explicit JSON schemas by source format: the export's nesting with exact numbers.
JSON_SCHEMAS: dict[str, pa.Schema] = {
    "gcp_billing_export_v1": READER_SCHEMA,
    "gcp_billing_export_resource_v1": READER_SCHEMA,
}


def _lines(uri: str, compression: str | None,
           catalog: SourceCatalog) -> Iterator[tuple[int, str]]:
    with csv_text_stream(uri, compression, catalog) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        for number, line in enumerate(text, start=1):
            if line.strip():
                yield number, line


def read_json_header(uri: str, compression: str | None,
                     catalog: SourceCatalog) -> tuple[list[str] | None, bool]:
    """Top-level field names of the first record, and whether there is one."""
    try:
        with csv_text_stream(uri, compression, catalog) as stream:
            not_text = file_sources.binary_kind(stream.read(4096), compression)
        if not_text:
            raise SourceError(uri, not_text[0], expected=not_text[1])
        for number, line in _lines(uri, compression, catalog):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(uri, f"line {number} is not JSON ({exc.msg}).", row=number,
                                  expected="one JSON object per line (newline-delimited "
                                  "JSON as BigQuery extracts it)") from None
            if not isinstance(record, dict):
                raise SourceError(uri, f"line {number} is a JSON {type(record).__name__}, "
                                  "not an object.", row=number,
                                  expected="one JSON object per line")
            return list(record), True
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SourceError(uri, f"cannot be read: {exc}.",
                          expected="a complete UTF-8 (optionally gzip) JSON-lines file") from None
    return None, False


def _shape_problem(value: Any, type_: pa.DataType, path: str) -> str | None:
    """Why ``value`` (parsed JSON) does not fit ``type_``; None when it does."""
    if value is None:
        return None
    if pa.types.is_struct(type_):
        if not isinstance(value, dict):
            return f"{path} is a JSON {type(value).__name__}, expected an object (a record)"
        for field in type_:
            problem = _shape_problem(value.get(field.name), field.type, f"{path}.{field.name}")
            if problem:
                return problem
        return None
    if pa.types.is_list(type_):
        if not isinstance(value, list):
            return f"{path} is a JSON {type(value).__name__}, expected an array (REPEATED)"
        for item in value:
            problem = _shape_problem(item, type_.value_type, path)
            if problem:
                return problem
        return None
    if pa.types.is_decimal(type_):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok and isinstance(value, str):
            try:
                float(value)
                ok = True
            except ValueError:
                ok = False
        return None if ok else f"{path} is {json.dumps(value)[:40]}, expected a number"
    if pa.types.is_boolean(type_):
        return None if isinstance(value, bool) else f"{path} is not true/false"
    if isinstance(value, dict | list):
        return f"{path} is a JSON {type(value).__name__}, expected a single value"
    return None


class _NotJsonNumber(ValueError):
    """NaN, Infinity: Python's json module reads them, JSON (RFC 8259) and BigQuery do not."""


def _refuse_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def _locate_bad_line(source: SourceFile, schema: pa.Schema | None, catalog: SourceCatalog,
                     ) -> tuple[int, str | None, str] | None:
    """(line, field, problem) of the first line the fast reader could not take."""
    for number, line in _lines(source.uri, source.compression, catalog):
        try:
            record = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            return number, None, f"is not valid JSON ({exc.msg} at column {exc.colno})"
        except _NotJsonNumber as exc:
            return number, None, f"is not valid JSON ({exc} is not a JSON number)"
        if not isinstance(record, dict):
            return number, None, f"is a JSON {type(record).__name__}, not an object"
        if schema is not None:
            for field in schema:
                problem = _shape_problem(record.get(field.name), field.type, field.name)
                if problem:
                    return number, field.name, f"does not have the export's shape: {problem}"
    return None


def read_jsonl(source: SourceFile,
               catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first line-record number, batch) for a JSON-lines file, streaming."""
    schema = JSON_SCHEMAS.get(source.source_format)
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                newlines_in_values=False) if schema else pajson.ParseOptions()
    row = 1
    try:
        verified, text = file_sources.verified_text_stream(source, catalog)
        with text as stream:
            reader = pajson.open_json(stream, read_options=pajson.ReadOptions(
                block_size=JSON_BLOCK_BYTES), parse_options=parse)
            for batch in file_sources.regroup(iter(reader), BATCH_ROWS):
                yield row, batch
                row += batch.num_rows
            verified.verify()
    except (pa.ArrowInvalid, OSError, EOFError, NestingError) as exc:
        found = None
        with contextlib.suppress(OSError, EOFError, UnicodeDecodeError):
            found = _locate_bad_line(source, schema, catalog)
        if found:
            line, column, problem = found
            raise SourceError(source.uri, f"line {line} {problem}, so the file cannot be read.",
                              row=line, column=column,
                              expected="one JSON object per line with the export's nesting "
                              "(records as objects, REPEATED fields as arrays, costs as "
                              "numbers); nothing from this run was committed") from None
        raise SourceError(source.uri, f"reading stopped at a record after the first {row - 1:,} "
                          "(the reader takes records in blocks, and no single line could be "
                          "blamed): "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.",
                          expected="a complete, well-formed JSON-lines file; nothing "
                          "from this run was committed") from None


def arrow_type_of_avro(schema: Any) -> pa.DataType:
    """The Arrow type for an Avro (fastavro-parsed) schema node."""
    if isinstance(schema, list):  # union: BigQuery writes ["null", T]
        others = [s for s in schema if s != "null"]
        if len(others) != 1:
            raise ValueError(f"unsupported Avro union {schema}")
        return arrow_type_of_avro(others[0])
    if isinstance(schema, str):
        return {"string": pa.string(), "double": pa.float64(), "float": pa.float32(),
                "long": pa.int64(), "int": pa.int32(), "boolean": pa.bool_(),
                "bytes": pa.binary(), "null": pa.null()}[schema]
    logical, kind = schema.get("logicalType"), schema["type"]
    if logical == "timestamp-micros":
        return pa.timestamp("us", tz="UTC")
    if logical == "timestamp-millis":
        return pa.timestamp("ms", tz="UTC")
    if logical == "decimal":
        precision, scale = schema["precision"], schema.get("scale", 0)
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(
            precision, scale)
    if kind == "record":
        return pa.struct([pa.field(f["name"], arrow_type_of_avro(f["type"]))
                          for f in schema["fields"]])
    if kind == "array":
        return pa.list_(arrow_type_of_avro(schema["items"]))
    if isinstance(kind, dict | list):
        return arrow_type_of_avro(kind)
    return arrow_type_of_avro(kind)


def _fields(reader: Any) -> list[dict[str, Any]]:
    """The top-level fields of an Avro file's record schema (fastavro types it loosely)."""
    return cast(list[dict[str, Any]], cast(dict[str, Any], reader.writer_schema)["fields"])


def read_avro_header(uri: str, compression: str | None,
                     catalog: SourceCatalog) -> tuple[list[str] | None, bool]:
    import fastavro

    try:
        with catalog.open(uri) as f:
            reader = fastavro.reader(f)
            names = [field["name"] for field in _fields(reader)]
            has_rows = next(iter(reader), None) is not None
    except (ValueError, OSError, EOFError, StopIteration) as exc:
        raise SourceError(uri, f"is not a readable Avro file ({exc}).",
                          expected="an Avro object container file") from None
    return names, has_rows


def read_avro(source: SourceFile,
              catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield (first record number, batch) for an Avro file, streaming in blocks of records."""
    import fastavro

    row = 1
    try:
        with open_verified(source, catalog) as f:
            reader = fastavro.reader(cast(IO[bytes], f))
            schema = pa.schema([pa.field(fl["name"], arrow_type_of_avro(fl["type"]))
                                for fl in _fields(reader)])
            block: list[dict[str, Any]] = []
            for record in reader:
                block.append(cast(dict[str, Any], record))  # records of a record schema
                if len(block) >= BATCH_ROWS:
                    yield row, pa.RecordBatch.from_pylist(block, schema=schema)
                    row += len(block)
                    block = []
            if block:
                yield row, pa.RecordBatch.from_pylist(block, schema=schema)
            f.verify()
    except (ValueError, OSError, EOFError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SourceError(source.uri, f"reading stopped after record {row - 1}: {exc}.",
                          row=row, expected="a complete, well-formed Avro file; nothing from "
                          "this run was committed") from None


# BigQuery's extract formats besides Parquet: JSON lines (plain or gzip) and Avro.
CONTAINERS = (Container("jsonl", read_jsonl, header_reader=read_json_header),
              Container("avro", read_avro, header_reader=read_avro_header))
FILE_TYPES = (*(t for s in JSON_SUFFIXES
                for t in (FileType(s, "jsonl"), FileType(s + ".gz", "jsonl", "gzip"))),
              FileType(".avro", "avro"))
