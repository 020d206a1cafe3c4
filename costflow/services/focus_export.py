"""`costflow export`: the FOCUS view as one Parquet file, or as a FOCUS dataset with metadata.

Why: FOCUS 1.1+ asks a data generator to publish metadata beside the data (spec section
"Metadata": DataGenerator, Schema with SchemaId, FocusVersion, CreationDate and its
ColumnDefinition list), so a consumer knows which version and types it reads. The data comes
from the versioned view (`focus_v1_2`) as typed Parquet (decimal128(38, 18), UTC timestamps);
the column definitions are rendered from the schema declaration, never retyped.

    DIR/cost_and_usage.parquet   the FOCUS rows
    DIR/metadata.json            {"DataGenerator": {...}, "Schema": {...}}
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyarrow.parquet as pq
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE, LogicalType
from costflow.schemas.focus import focus_columns
from costflow.schemas.render import DATASET, FOCUS_VIEWS
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

DATA_FILE = "cost_and_usage.parquet"
METADATA_FILE = "metadata.json"
GENERATOR = "costflow"
# FOCUS metadata DataType names per logical type (spec: "Column Definition" DataType values).
FOCUS_DATA_TYPES: dict[LogicalType, str] = {
    LogicalType.STRING: "STRING",
    LogicalType.DECIMAL: "DECIMAL",
    LogicalType.TIMESTAMP: "DATETIME",
    LogicalType.JSON: "JSON",
    LogicalType.INTEGER: "DECIMAL",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATETIME",
}


@runtime_checkable
class ParquetExporter(Protocol):
    """An engine that can write a query's result to Parquet without going through Python."""

    def export_parquet(self, sql: str, out_path: str | os.PathLike[str]) -> int: ...


def export_focus(warehouse: Warehouse, out_path: str | os.PathLike[str],
                 version: str = "1.2") -> int:
    """Write the versioned FOCUS view (`focus_v1_2` or `focus_v1_3`) to one Parquet file.

    DuckDB streams it with COPY; other engines go through an Arrow table.

    Returns:
        The number of rows written.
    """
    views = {v: name for name, v in FOCUS_VIEWS.items()}
    if version not in views:
        raise ConfigError(f"unknown FOCUS version {version!r}; allowed: {', '.join(views)}.")
    select = exp.Select(expressions=_columns(version)).from_(
        sqlfiles.table(views[version], DATASET), copy=False)
    sql = select.sql(dialect="bigquery")
    if isinstance(warehouse, ParquetExporter):
        return warehouse.export_parquet(sql, out_path)
    table = warehouse.query(sql)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out_path)
    return table.num_rows


def _columns(version: str) -> list[exp.Expression]:
    """The view's columns in declaration order, JSON ones as their UTF-8 JSON text.

    Why text: the warehouse's JSON type reaches Parquet as DuckDB's JSON logical type, which
    pyarrow reads as its ``arrow.json`` extension type and the FOCUS validator's reader does
    not see as JSON text (``Tags-C-001-M`` "Tags MUST conform to KeyValueFormat" failed on
    every non-null value). FOCUS Parquet for interchange carries a JSON column as a plain UTF-8
    string holding the serialized object (spec "Key-Value Format": a JSON object serialized per
    ECMA-404), which every reader (pyarrow < 21 too, DuckDB's ``json_valid``, a BigQuery load
    into a STRING or JSON column) takes as is. ``TO_JSON_STRING`` is BigQuery's serializer;
    sqlglot renders it as ``CAST(TO_JSON(x) AS TEXT)`` on DuckDB.
    """
    out: list[exp.Expression] = []
    for col in focus_columns(version):
        ident = exp.to_identifier(col.name, quoted=True)
        if col.type is LogicalType.JSON:
            serialized = exp.Anonymous(this="TO_JSON_STRING", expressions=[exp.column(ident)])
            out.append(exp.Alias(this=serialized, alias=ident))
        else:
            out.append(exp.column(ident))
    return out


def metadata(version: str, created: datetime, schema_id: str) -> dict[str, Any]:
    """The FOCUS metadata document for a ``version`` dataset."""
    definitions = []
    for col in focus_columns(version):
        entry: dict[str, Any] = {"ColumnName": col.name,
                                 "DataType": FOCUS_DATA_TYPES[col.type]}
        if col.type is LogicalType.DECIMAL:
            entry.update(NumberScale=DECIMAL_SCALE, NumberPrecision=DECIMAL_PRECISION)
        if col.type in (LogicalType.STRING, LogicalType.JSON):
            entry["StringEncoding"] = "UTF-8"
        if col.name == "Tags":
            # FOCUS Tags: provider-defined tag keys carry a prefix the provider declares.
            entry["ProviderTagPrefixes"] = list(_tag_prefixes())
        definitions.append(entry)
    return {
        "DataGenerator": {"DataGenerator": GENERATOR},
        "Schema": {
            "SchemaId": schema_id,
            "FocusVersion": version,
            "CreationDate": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ColumnDefinition": definitions,
        },
    }


def export_dataset(warehouse: Warehouse, out_dir: str | os.PathLike[str],
                   version: str = "1.2") -> dict[str, Any]:
    """Write ``DIR/cost_and_usage.parquet`` and ``DIR/metadata.json``.

    Returns:
        ``{"rows": n, "data": path, "metadata": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / DATA_FILE
    rows = export_focus(warehouse, data, version=version)
    created = datetime.now(UTC)
    schema_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"costflow:focus:{version}:"
                               + ",".join(c.name for c in focus_columns(version))))
    meta = out / METADATA_FILE
    meta.write_text(json.dumps(metadata(version, created, schema_id), indent=2) + "\n",
                    encoding="utf-8")
    return {"rows": rows, "data": str(data), "metadata": str(meta)}


def _tag_prefixes() -> tuple[str, ...]:
    """What every provider declares (loaded here, not at import: the query side stays light)."""
    from costflow.providers import CATALOG

    return CATALOG.tag_prefixes
