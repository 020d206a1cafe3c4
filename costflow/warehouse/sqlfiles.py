"""SQL written once, in BigQuery dialect, run by either engine.

Every statement the warehouse runs lives in a file under `costflow/sql/` (a package resource).
This module loads those files, splits scripts into named statements, rewrites table references
for the engine (BigQuery project/dataset, per-run staging tables) and transpiles BigQuery SQL to
DuckDB with sqlglot. The DuckDB traps measured on this project are fixed here, as data:

- ``DATE_TRUNC`` / ``DATE_ADD`` / ``DATE_SUB`` on a DATE return TIMESTAMP in DuckDB: cast back;
- ``BIGNUMERIC`` would become ``DECIMAL(38, 5)``: use the warehouse's own exact decimal;
- an ``UNNEST`` in a FROM clause without an alias exposes struct fields in BigQuery but not in
  DuckDB: refuse it, so the SQL says which alias it means;
- ``@name`` parameters become ``$name`` (sqlglot does that), and each statement gets exactly the
  parameters it uses (DuckDB rejects extra ones).

Statements in a script are named by a ``-- name: <name>`` comment in front of them, so logs,
job labels and the failure-injection hook can refer to them.

>>> [s.name for s in load("load/fail_run.sql")]
['fail_run']
>>> to_duckdb("SELECT DATE_TRUNC(DATE(ts), MONTH) FROM t WHERE a = @a")[0].sql
"SELECT CAST(DATE_TRUNC('MONTH', CAST(ts AS DATE)) AS DATE) FROM t WHERE a = $a"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import sqlglot
from sqlglot import exp

from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE
from costflow.schemas.render import DATASET

# Functions that return DATE in BigQuery but TIMESTAMP in DuckDB: wrapped in CAST(... AS DATE).
DATE_RETURNING: tuple[type[exp.Expression], ...] = (exp.DateTrunc, exp.DateAdd, exp.DateSub)
# BigQuery types DuckDB would map to something less exact, and what to use instead.
EXACT_TYPES: dict[Any, exp.DataType] = {
    exp.DataType.Type.BIGDECIMAL: exp.DataType.build(
        f"DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE})", dialect="duckdb"),
}
_NAME = re.compile(r"^\s*name:\s*([a-z][a-z0-9_]*)\s*$")


@dataclass(frozen=True)
class Statement:
    """One BigQuery-dialect statement of a SQL file.

    Attributes:
        name: from its ``-- name:`` comment, else ``<file>#<index>``.
        expression: the parsed statement (treat as read-only; copy before changing it).
        parameters: names of the ``@params`` it uses.
    """

    name: str
    expression: exp.Expr
    parameters: frozenset[str]

    def bigquery(self, tables: Mapping[str, exp.Table] | None = None) -> str:
        """BigQuery SQL text, with `cost_analytics.<table>` references retargeted."""
        expression = retarget(self.expression, tables) if tables else self.expression
        return expression.sql(dialect="bigquery", comments=False)

    @cached_property
    def duckdb(self) -> DuckStatement:
        """The statement transpiled for DuckDB (computed once)."""
        return duckdb_statement(self.expression)


@dataclass(frozen=True)
class DuckStatement:
    """One statement transpiled for DuckDB: SQL text and the ``$params`` it binds."""

    sql: str
    parameters: frozenset[str]

    def bind(self, params: Mapping[str, object]) -> dict[str, object]:
        """The subset of ``params`` this statement uses; raises KeyError naming a missing one."""
        missing = self.parameters - params.keys()
        if missing:
            raise KeyError(f"SQL parameter(s) not supplied: {', '.join(sorted(missing))}")
        return {name: params[name] for name in self.parameters}


def read_text(relative: str) -> str:
    """Text of ``costflow/sql/<relative>`` as shipped in the package."""
    return resources.files("costflow").joinpath("sql", relative).read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def load(relative: str) -> tuple[Statement, ...]:
    """Parse ``costflow/sql/<relative>`` into its statements (cached)."""
    return split(read_text(relative), source=relative)


def transaction_script(relative: str,
                       tables: Mapping[str, exp.Table] | None = None) -> str:
    """The statements of ``costflow/sql/<relative>`` as one BigQuery-dialect script inside
    ``BEGIN TRANSACTION; ... COMMIT TRANSACTION;`` (BigQuery rolls the whole script back when a
    statement fails; DuckDB runs it the same way through `Warehouse.query`)."""
    return "\n".join(["BEGIN TRANSACTION;", *(f"{s.bigquery(tables)};" for s in load(relative)),
                      "COMMIT TRANSACTION;"])


@lru_cache(maxsize=16)
def load_file(path: str) -> tuple[Statement, ...]:
    """Parse a SQL file shipped elsewhere in the package (a provider's own SQL; cached)."""
    with open(path, encoding="utf-8") as f:
        return split(f.read(), source=os.path.basename(path))


def split(sql: str, source: str = "<sql>") -> tuple[Statement, ...]:
    """Split a BigQuery script into named statements.

    Raises:
        ValueError: if a statement is not understood (sqlglot fell back to an opaque command)
            or two statements share a name.
    """
    statements: list[Statement] = []
    for index, expression in enumerate(e for e in sqlglot.parse(sql, read="bigquery") if e):
        if any(isinstance(node, exp.Command) for node in expression.walk()):
            raise ValueError(f"{source}: statement {index} is not parsed by sqlglot as SQL")
        names = [m.group(1) for c in expression.comments or [] if (m := _NAME.match(c))]
        name = names[-1] if names else f"{source}#{index}"
        statements.append(Statement(name, expression, parameters(expression)))
    seen = [s.name for s in statements]
    if len(seen) != len(set(seen)):
        raise ValueError(f"{source}: statement names are not unique: {seen}")
    return tuple(statements)


def parameters(expression: exp.Expr) -> frozenset[str]:
    """Names of the ``@params`` an expression uses."""
    return frozenset(p.name for p in expression.find_all(exp.Parameter))


def table(name: str, dataset: str, project: str | None = None) -> exp.Table:
    """A quoted table reference built from trusted parts (never parsed from text)."""
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(dataset, quoted=True),
        catalog=exp.to_identifier(project, quoted=True) if project else None,
    )


def retarget(expression: exp.Expr, tables: Mapping[str, exp.Table]) -> exp.Expr:
    """Copy of ``expression`` with ``cost_analytics.<name>`` replaced by ``tables[name]``.

    References to tables outside `cost_analytics`, and names not in ``tables``, stay as written.
    """

    def swap(node: exp.Expr) -> exp.Expr:
        if (isinstance(node, exp.Table) and node.db == DATASET and not node.catalog
                and node.name in tables):
            target = tables[node.name].copy()
            if node.alias:
                target.set("alias", node.args["alias"].copy())
            return target
        return node

    return expression.copy().transform(swap, copy=False)


def _fix_duckdb_traps(node: exp.Expr) -> exp.Expr:
    if isinstance(node, DATE_RETURNING) and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    if isinstance(node, exp.DataType) and node.this in EXACT_TYPES:
        return EXACT_TYPES[node.this].copy()
    if isinstance(node, exp.Unnest) and not node.args.get("alias") and isinstance(
            node.parent, exp.From | exp.Join):
        raise ValueError(
            f"alias every UNNEST in a FROM clause ({node.sql('bigquery')}): DuckDB does not "
            "expose struct fields of an unaliased UNNEST the way BigQuery does")
    return node


@lru_cache(maxsize=512)
def to_duckdb(sql: str) -> tuple[DuckStatement, ...]:
    """Transpile BigQuery SQL (one or more statements) to DuckDB (cached by text)."""
    return tuple(duckdb_statement(s.expression) for s in split(sql))


def duckdb_statement(expression: exp.Expr) -> DuckStatement:
    """Transpile one parsed BigQuery statement to DuckDB."""
    fixed = expression.copy().transform(_fix_duckdb_traps, copy=False)
    return DuckStatement(fixed.sql(dialect="duckdb", comments=False), parameters(expression))

