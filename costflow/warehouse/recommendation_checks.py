"""Checks shared by both engines before a recommendations fetch replaces the previous one.

Fetchers (GCP Recommender, AWS Compute Optimizer, Azure Advisor) hand over an Arrow table in the
declared `recommendations` schema. Whatever the engine, the same rules apply first: exactly the
declared columns, allowed categories and states, no nulls where the declaration forbids them,
one provider and one run per fetch. Then the engine stages the rows as Parquet and replaces
the provider's rows of those sources in one transaction (`sql/load/replace_recommendations.sql`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from costflow.errors import ConfigError
from costflow.schemas.operational import RECOMMENDATIONS
from costflow.schemas.render import arrow_schema

SCHEMA = arrow_schema(RECOMMENDATIONS)
STAGING_NAME = "_staged_recommendations"


def conform(rows: pa.Table, provider: str) -> tuple[pa.Table, str, list[str]]:
    """(rows cast to the declared schema, run id, sources) or ConfigError naming the problem."""
    missing = [n for n in SCHEMA.names if n not in rows.column_names]
    extra = [n for n in rows.column_names if n not in SCHEMA.names]
    if missing or extra:
        raise ConfigError(f"recommendations rows do not have the declared columns: missing "
                          f"{missing}, unexpected {extra}.")
    rows = rows.select(SCHEMA.names)
    nullable = pa.schema([f.with_nullable(True) for f in SCHEMA])
    rows = rows.cast(nullable)
    for column in RECOMMENDATIONS:
        values = rows.column(column.name)
        if not column.nullable and values.null_count:
            raise ConfigError(f"recommendations column {column.name} has "
                              f"{values.null_count} empty value(s); it may not be null.")
        if column.allowed_values:
            bad = pc.filter(values, pc.invert(pc.is_in(values, value_set=pa.array(
                column.allowed_values))))
            if len(bad):
                raise ConfigError(f"recommendations column {column.name} has "
                                  f"{sorted(set(bad.to_pylist()))}; allowed: "
                                  f"{', '.join(column.allowed_values)}.")
    providers = set(rows.column("x_SourceProvider").to_pylist())
    if providers - {provider}:
        raise ConfigError(f"recommendations of {sorted(providers)} handed over as {provider!r}.")
    runs = set(rows.column("x_RunId").to_pylist())
    if len(runs) > 1:
        raise ConfigError(f"one fetch must carry one run id, got {sorted(runs)}.")
    table = pa.Table.from_arrays(rows.columns, schema=SCHEMA)
    return table, (runs.pop() if runs else ""), sorted(set(rows.column("source").to_pylist()))


def replace_params(rows: pa.Table, provider: str,
                   sources: list[str] | None) -> tuple[pa.Table, dict[str, Any]]:
    """(conformed rows, parameters of `load/replace_recommendations.sql`).

    ``sources`` defaults to those present in the rows; an empty source list means there is
    nothing to replace (the engines then write nothing).
    """
    table, run_id, found = conform(rows, provider)
    return table, {"provider": provider, "sources": sorted(set(sources or found)),
                   "run_id": run_id}
