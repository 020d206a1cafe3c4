"""Render the table declarations into every form the system needs.

From the one declaration (`focus.py`, `operational.py`) this renders the pyarrow schemas used on
the data path, the BigQuery JSON schemas used by load jobs, the DDL for BigQuery and DuckDB, the
versioned FOCUS read views, and the docs table. The text renderings are committed; the test suite
fails when a committed file drifts from what this module renders.

    python -m costflow.schemas.render --write   # regenerate the committed files
    python -m costflow.schemas.render --check   # exit 1 if any committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa

from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE, LogicalType, TableSpec
from costflow.schemas.focus import COST_LINE_ITEMS, focus_columns
from costflow.schemas.operational import ACCOUNT_NAMES, COST_ALLOCATIONS, OPERATIONAL_TABLES

DATASET = "cost_analytics"
ALL_TABLES: tuple[TableSpec, ...] = (COST_LINE_ITEMS, *OPERATIONAL_TABLES)
# Versioned read views, as the finops-toolkit does (Costs_v1_2): a spec upgrade never breaks
# readers.
FOCUS_VIEWS = {"focus_v1_2": "1.2", "focus_v1_3": "1.3"}

# Type mapping per target, as data. JSON stays JSON text in Parquet/Arrow (pyarrow's json
# extension type would not survive every reader); the engines store it as their JSON type.
ARROW_TYPES: dict[LogicalType, pa.DataType] = {
    LogicalType.STRING: pa.string(),
    LogicalType.DECIMAL: pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
    LogicalType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    LogicalType.JSON: pa.string(),
    LogicalType.INTEGER: pa.int64(),
    LogicalType.BOOLEAN: pa.bool_(),
    LogicalType.DATE: pa.date32(),
}
BIGQUERY_TYPES: dict[LogicalType, str] = {
    LogicalType.STRING: "STRING",
    LogicalType.DECIMAL: "BIGNUMERIC",  # NUMERIC has scale 9: too coarse for CUR's 4.97e-9
    LogicalType.TIMESTAMP: "TIMESTAMP",
    LogicalType.JSON: "JSON",
    LogicalType.INTEGER: "INT64",
    LogicalType.BOOLEAN: "BOOL",
    LogicalType.DATE: "DATE",
}
DUCKDB_TYPES: dict[LogicalType, str] = {
    LogicalType.STRING: "VARCHAR",
    LogicalType.DECIMAL: f"DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE})",
    LogicalType.TIMESTAMP: "TIMESTAMPTZ",
    LogicalType.JSON: "JSON",
    LogicalType.INTEGER: "BIGINT",
    LogicalType.BOOLEAN: "BOOLEAN",
    LogicalType.DATE: "DATE",
}


def arrow_schema(table: TableSpec) -> pa.Schema:
    """The pyarrow schema of a declared table (field metadata carries the description)."""
    return pa.schema(
        [
            pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable,
                     metadata={"description": c.description})
            for c in table
        ]
    )


def bigquery_schema(table: TableSpec) -> list[dict[str, str]]:
    """The BigQuery JSON schema (as `bq mk --schema` and load jobs take it)."""
    return [
        {
            "name": c.name,
            "type": BIGQUERY_TYPES[c.type],
            "mode": "NULLABLE" if c.nullable else "REQUIRED",
            "description": c.description,
        }
        for c in table
    ]


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bigquery_ddl(dataset: str = DATASET) -> str:
    """CREATE statements for BigQuery: partitioned and clustered where declared."""
    out = [f"-- Rendered by costflow.schemas.render from the schema declaration. Do not edit.\n"
           f"CREATE SCHEMA IF NOT EXISTS {dataset};\n"]
    for t in ALL_TABLES:
        cols = ",\n".join(
            f"  {c.name} {BIGQUERY_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}"
            f" OPTIONS (description = {_sql_string(c.description)})"
            for c in t
        )
        layout = ""
        if t.partition_by_day:
            layout += f"\nPARTITION BY DATE({t.partition_by_day})"
        if t.cluster_by:
            layout += f"\nCLUSTER BY {', '.join(t.cluster_by)}"
        out.append(
            f"CREATE TABLE IF NOT EXISTS {dataset}.{t.name} (\n{cols}\n){layout}\n"
            f"OPTIONS (description = {_sql_string(t.description)});\n"
        )
    out.extend(_view_ddl(dataset, "CREATE OR REPLACE VIEW"))
    return "\n".join(out)


def duckdb_ddl(dataset: str = DATASET) -> str:
    """CREATE statements for DuckDB (no partitioning: DuckDB zone maps do that job)."""
    out = [f"-- Rendered by costflow.schemas.render from the schema declaration. Do not edit.\n"
           f"CREATE SCHEMA IF NOT EXISTS {dataset};\n"]
    for t in ALL_TABLES:
        cols = ",\n".join(
            f"  {c.name} {DUCKDB_TYPES[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in t
        )
        out.append(f"CREATE TABLE IF NOT EXISTS {dataset}.{t.name} (\n{cols}\n);\n")
    out.extend(_view_ddl(dataset, "CREATE OR REPLACE VIEW"))
    return "\n".join(out)


# focus_v1_3 shows split cost allocation (costflow.allocation): a cost_line_items row that a
# cost_allocations row names as its origin (by these lineage columns) is replaced by its split
# rows. Split rows whose origin is gone (the bill was re-ingested since) are not shown, so the
# view never counts a charge twice; focus_v1_2 always shows the unsplit bill.
ALLOCATION_VIEW = "focus_v1_3"
ORIGIN_KEY = ("x_RunId", "x_SourceUri", "x_SourceRowNumber")


def _view_ddl(dataset: str, verb: str) -> list[str]:
    """The versioned FOCUS views: their columns, SubAccountName completed from account_names.

    The join is on a subquery grouped by its own key, so it can never repeat a cost row; a
    name from the user's mapping wins over one from the provider's directory.
    """
    views = []
    names = (f"LEFT JOIN (\n  SELECT provider, account_id,\n"
             f"    COALESCE(MIN(CASE WHEN source = 'mapping' THEN account_name END), "
             f"MIN(account_name)) AS account_name\n"
             f"  FROM {dataset}.{ACCOUNT_NAMES.name}\n  GROUP BY provider, account_id\n"
             f") AS names\n  ON names.provider = c.x_SourceProvider "
             f"AND names.account_id = c.SubAccountId")
    for view, version in FOCUS_VIEWS.items():
        cols = ",\n".join(
            "  COALESCE(c.SubAccountName, names.account_name) AS SubAccountName"
            if c.name == "SubAccountName" else f"  c.{c.name}" for c in focus_columns(version))
        views.append(
            f"{verb} {dataset}.{view} AS\nSELECT\n{cols}\n"
            f"FROM {view_source(dataset, view, version)} AS c\n{names};\n"
        )
    return views


def view_source(dataset: str, view: str, version: str) -> str:
    """cost_line_items; for focus_v1_3, with split charges replaced by their allocated rows."""
    lines = f"{dataset}.{COST_LINE_ITEMS.name}"
    if view != ALLOCATION_VIEW:
        return lines
    split = f"{dataset}.{COST_ALLOCATIONS.name}"
    inner = ", ".join([c.name for c in focus_columns(version)] + ["x_SourceProvider"])
    same = " AND ".join(f"a.{k} = o.{k}" for k in ORIGIN_KEY)
    return (f"(\n  SELECT {inner}\n  FROM {lines} AS o\n"
            f"  WHERE NOT EXISTS (SELECT 1 FROM {split} AS a WHERE {same})\n  UNION ALL\n"
            f"  SELECT {inner}\n  FROM {split} AS a\n"
            f"  WHERE EXISTS (SELECT 1 FROM {lines} AS o WHERE {same})\n)")


def docs_markdown() -> str:
    """The schema reference page (costflow/schemas/generated/schema.md)."""
    lines = [
        "# cost_analytics schema",
        "",
        "Rendered by `python -m costflow.schemas.render --write` from `costflow/schemas/`. "
        "Do not edit by hand.",
        "",
        "Money and quantities are exact decimals: `DECIMAL(38, 18)` in DuckDB, `BIGNUMERIC` in "
        "BigQuery. Timestamps are UTC; periods are [start, end).",
        "",
    ]
    for t in ALL_TABLES:
        lines += [f"## {t.name}", "", t.description, ""]
        if t.partition_by_day or t.cluster_by:
            lines += [
                f"BigQuery layout: partitioned by `DATE({t.partition_by_day})`, clustered by "
                f"{', '.join(f'`{c}`' for c in t.cluster_by)}.",
                "",
            ]
        lines += [
            "| column | type | nulls | FOCUS | level | allowed values | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in t:
            intro = c.introduced or "x_"
            if c.deprecated_in:
                intro += f" (deprecated {c.deprecated_in})"
            allowed = ", ".join(c.allowed_values) if len(c.allowed_values) <= 8 else (
                f"{len(c.allowed_values)} values, see `costflow/schemas/focus.py`"
            )
            lines.append(
                f"| {c.name} | {c.type.value} | {'yes' if c.nullable else 'no'} | {intro} | "
                f"{c.feature_level} | {allowed} | {c.description} |"
            )
        lines.append("")
    lines += ["## Views", ""]
    for view, version in FOCUS_VIEWS.items():
        count = len(focus_columns(version))
        split = (" Charges split by `costflow allocate` appear as their allocated rows "
                 "(`cost_allocations`) instead of the unsplit charge."
                 if view == ALLOCATION_VIEW else "")
        lines.append(f"- `{view}`: exactly the {count} FOCUS {version} columns.{split}")
    return "\n".join(lines) + "\n"


ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parents[1]
# Every rendering lives here: DDL for both engines, BigQuery JSON schemas, the docs table.
GENERATED = PACKAGE / "schemas" / "generated"


def rendered_files() -> dict[Path, str]:
    """Every committed rendering, path -> expected text."""
    files: dict[Path, str] = {
        GENERATED / "bigquery_ddl.sql": bigquery_ddl(),
        GENERATED / "duckdb_ddl.sql": duckdb_ddl(),
        GENERATED / "schema.md": docs_markdown(),
    }
    for t in ALL_TABLES:
        files[GENERATED / f"{t.name}.bigquery.json"] = (
            json.dumps(bigquery_schema(t), indent=2) + "\n"
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in stale:
        print(f"{'wrote' if args.write else 'stale'}: {path.relative_to(ROOT)}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
