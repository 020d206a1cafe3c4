"""Read costs out of the warehouse: totals by dimension, and the FOCUS export.

Users name dimensions and filters with words (``service``, ``region``); those words only ever
select an entry of the allow-list below. The SQL is the trusted template
`sql/queries/costs_by_dimension.sql`, parsed once; the chosen expressions are injected into its
syntax tree under quoted aliases, and every value travels as a bound parameter. No user text is
formatted into SQL or handed to a sqlglot builder that would parse it.

    costs_by_dimension(wh, date(2023, 11, 1), date(2023, 12, 1), ["service"],
                       filters={"region": ["us-east-1"]})
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.schemas.columns import LogicalType
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.render import DATASET, FOCUS_VIEWS
from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

TEMPLATE = "queries/costs_by_dimension.sql"
# Dimension name -> BigQuery expression over cost_line_items. The one allow-list: the CLI help,
# validation and the query builder all read it.
DIMENSIONS: dict[str, str] = {
    "service": "ServiceName",
    "service_category": "ServiceCategory",
    "sub_account": "SubAccountId",
    "account": "SubAccountId",
    "project": "SubAccountId",
    "billing_account": "BillingAccountId",
    "region": "RegionId",
    "provider": "ProviderName",
    "charge_category": "ChargeCategory",
    "resource": "ResourceId",
    "day": "DATE(ChargePeriodStart)",
    "month": "DATE_TRUNC(DATE(ChargePeriodStart), MONTH)",
}
# Metrics: the FOCUS cost columns a user may sum.
METRICS: tuple[str, ...] = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
assert all(COST_LINE_ITEMS.column(m).type is LogicalType.DECIMAL for m in METRICS)


@runtime_checkable
class ParquetExporter(Protocol):
    """An engine that can write a query's result to Parquet without going through Python."""

    def export_parquet(self, sql: str, out_path: str | os.PathLike[str]) -> int: ...


def costs_by_dimension(warehouse: Warehouse, start: date, end: date, group_by: list[str],
                       filters: dict[str, list[str]] | None = None,
                       metric: str = "BilledCost") -> pa.Table:
    """Sum ``metric`` over charges with ChargePeriodStart in [start, end), per dimension.

    Args:
        warehouse: where to read.
        start: first day included (UTC midnight).
        end: first day excluded.
        group_by: dimension names from `DIMENSIONS`; output columns are named as asked.
        filters: dimension name -> values to keep (matched literally, never as SQL).
        metric: one of `METRICS`.

    Returns:
        Columns: the requested dimensions, ``BillingCurrency`` (always a key: currencies are
        never added together), ``cost`` (exact decimal) and ``rows``.

    Raises:
        ConfigError: unknown dimension or metric, a bad date range or bad filter values.
    """
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}.")
    if end <= start:
        raise ConfigError(f"end {end} is not after start {start} (the range is [start, end)).")
    sql, params = build_query(group_by, filters or {}, metric)
    return warehouse.query(sql, {"start": start, "end": end, **params})


def build_query(group_by: list[str], filters: dict[str, list[str]],
                metric: str) -> tuple[str, dict[str, list[str]]]:
    """The BigQuery SQL and the filter parameters for one request (validated)."""
    _check_names("dimension", group_by, DIMENSIONS)
    _check_names("filter dimension", list(filters), DIMENSIONS)
    if len(set(group_by)) != len(group_by):
        raise ConfigError(f"group by lists a dimension twice: {', '.join(group_by)}.")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}.")

    (template,) = sqlfiles.load(TEMPLATE)
    query = template.expression.copy()
    ctes = {cte.alias: cte.this for cte in query.find_all(exp.CTE)}
    dimensioned, final = ctes["dimensioned"], ctes["final"]

    cost = next(e for e in dimensioned.expressions if e.alias == "cost")
    cost.set("this", exp.column(exp.to_identifier(metric, quoted=True)))
    aliases = [exp.to_identifier(name, quoted=True) for name in group_by]
    dimensioned.set("expressions", [exp.alias_(_dimension(name), alias)
                                    for name, alias in zip(group_by, aliases, strict=True)]
                    + dimensioned.expressions)
    final.set("expressions", [exp.column(a.copy()) for a in aliases] + final.expressions)
    final.set("group", exp.Group(expressions=[exp.column(a.copy()) for a in aliases]
                                 + final.args["group"].expressions))
    ordered = [exp.Ordered(this=exp.column(a.copy()), nulls_first=True) for a in aliases]
    query.set("order", exp.Order(expressions=ordered + query.args["order"].expressions))

    params: dict[str, list[str]] = {}
    for index, (name, values) in enumerate(sorted(filters.items())):
        if name in ("day", "month"):
            raise ConfigError(f"filter on {name!r} is not supported: narrow the date range with "
                              "start and end instead.")
        if not values or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"filter {name!r} needs one or more text values, got {values!r}.")
        param = f"filter_{index}"
        params[param] = list(values)
        dimensioned.where(exp.In(this=_dimension(name), unnest=exp.Unnest(
            expressions=[exp.Parameter(this=exp.var(param))])), append=True, copy=False)
    return query.sql(dialect="bigquery", comments=False), params


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
    select = exp.Select(expressions=[exp.Star()]).from_(
        sqlfiles.table(views[version], DATASET), copy=False)
    sql = select.sql(dialect="bigquery")
    if isinstance(warehouse, ParquetExporter):
        return warehouse.export_parquet(sql, out_path)
    table = warehouse.query(sql)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out_path)
    return table.num_rows


def _dimension(name: str) -> exp.Expr:
    # Parses a trusted allow-list entry, never user text (``name`` was checked by the caller).
    return sqlglot.parse_one(DIMENSIONS[name], read="bigquery")


def _check_names(kind: str, names: list[str], allowed: dict[str, str]) -> None:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"unknown {kind} {unknown[0]!r}; allowed: {', '.join(allowed)}.")
