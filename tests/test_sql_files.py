"""The SQL files are valid BigQuery, transpile to DuckDB, and agree with the schema declaration."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from costflow.schemas.focus import COST_LINE_ITEMS, focus_columns
from costflow.schemas.operational import DEAD_LETTERS, LOAD_RUNS, LOAD_SLICES
from costflow.schemas.render import ALL_TABLES, GENERATED
from costflow.warehouse import commit_params as slices
from costflow.warehouse import sqlfiles

PACKAGE = Path(sqlfiles.__file__).resolve().parents[1]
SQL_ROOT = PACKAGE / "sql"
ALL_FILES = sorted(p.relative_to(SQL_ROOT).as_posix() for p in SQL_ROOT.rglob("*.sql"))
# SQL a provider ships in its own folder (e.g. the GCP billing export query).
PROVIDER_FILES = sorted(str(p) for p in (PACKAGE / "providers").glob("*/sql/*.sql"))
DDL_FILE = str(GENERATED / "bigquery_ddl.sql")
NON_DDL = ALL_FILES + PROVIDER_FILES


def _text(name: str) -> str:
    return Path(name).read_text() if os.path.isabs(name) else sqlfiles.read_text(name)


def _load(name: str) -> tuple[sqlfiles.Statement, ...]:
    return sqlfiles.load_file(name) if os.path.isabs(name) else sqlfiles.load(name)
SPECS = {t.name: t for t in ALL_TABLES}


def test_the_sql_tree_holds_the_files_the_engines_run() -> None:
    assert {"load/begin_run.sql",
            "load/fail_run.sql", "load/reconcile_slices.sql", "load/replace_slices.sql",
            "queries/costs_by_dimension.sql"} <= set(ALL_FILES)


@pytest.mark.parametrize("relative", [*ALL_FILES, *PROVIDER_FILES, DDL_FILE])
def test_every_file_parses_as_bigquery(relative: str) -> None:
    statements = sqlglot.parse(_text(relative), read="bigquery")
    assert statements and all(statements)
    opaque = [n for s in statements for n in s.walk() if isinstance(n, exp.Command)]
    assert opaque == []


@pytest.mark.parametrize("relative", NON_DDL)
def test_every_non_ddl_file_transpiles_to_duckdb_sql_duckdb_parses(relative: str) -> None:
    con = duckdb.connect()
    for statement in _load(relative):
        sql = statement.duckdb.sql
        assert "@" not in sql
        assert len(con.extract_statements(sql)) == 1
        assert statement.duckdb.parameters == statement.parameters


def test_ddl_declares_every_table_and_both_focus_views() -> None:
    creates = [s.expression for s in sqlfiles.load_file(str(GENERATED / "bigquery_ddl.sql"))]
    kinds = {(c.kind, c.this.name if c.kind == "VIEW" else c.this.this.name) for c in creates
             if c.kind in ("TABLE", "VIEW")}
    assert kinds == {("TABLE", t.name) for t in ALL_TABLES} | {
        ("VIEW", "focus_v1_2"), ("VIEW", "focus_v1_3")}
    views = {c.this.name: [e.alias_or_name for e in c.expression.expressions]
             for c in creates if c.kind == "VIEW"}
    assert views["focus_v1_2"] == [c.name for c in focus_columns("1.2")]
    assert len(views["focus_v1_2"]) == 57


@pytest.mark.parametrize("relative", NON_DDL)
def test_insert_column_lists_name_declared_columns_and_every_required_one(relative: str) -> None:
    for statement in _load(relative):
        insert = statement.expression
        if not isinstance(insert, exp.Insert) or not isinstance(insert.this, exp.Schema):
            continue
        spec = SPECS[insert.this.this.name]
        named = [c.name for c in insert.this.expressions]
        assert set(named) <= set(spec.names), statement.name
        required = {c.name for c in spec if not c.nullable}
        assert required <= set(named), statement.name


def test_slices_parameter_fields_are_exactly_the_ones_the_engines_bind() -> None:
    (write,) = [s for s in sqlfiles.load("load/replace_slices.sql")
                if s.name == "write_load_slices"]
    used = {c.name for c in write.expression.find_all(exp.Column) if c.table == "s"}
    assert used == set(slices.SLICE_FIELDS)
    assert set(slices.SLICE_FIELDS) <= set(LOAD_SLICES.names)


def test_replace_script_runs_the_documented_steps_in_order() -> None:
    names = [s.name for s in sqlfiles.load("load/replace_slices.sql")]
    assert names == ["clear_load_slices", "write_load_slices", "delete_slice_rows", "insert_rows",
                     "delete_dead_letters", "insert_dead_letters", "clean_staged_rows",
                     "clean_staged_dead_letters", "mark_run_succeeded"]


def test_every_column_the_load_sql_names_exists_in_some_declared_table() -> None:
    declared = {n for t in (COST_LINE_ITEMS, DEAD_LETTERS, LOAD_RUNS, LOAD_SLICES)
                for n in t.names}
    aliases = {"rows_loaded", "billed_cost", "rows_dead_lettered", "dead_lettered_cost"}
    for relative in ("load/reconcile_slices.sql", "load/replace_slices.sql",
                     "load/begin_run.sql", "load/fail_run.sql"):
        for statement in sqlfiles.load(relative):
            names = {c.name for c in statement.expression.find_all(exp.Column)}
            assert names - {"*"} <= declared | aliases, (relative, names - declared - aliases)


@pytest.mark.parametrize(("bigquery", "duckdb_sql"), [
    ("SELECT DATE_TRUNC(DATE(ts), MONTH) FROM t",
     "SELECT CAST(DATE_TRUNC('MONTH', CAST(ts AS DATE)) AS DATE) FROM t"),
    ("SELECT DATE_ADD(DATE(ts), INTERVAL 1 DAY) FROM t",
     "SELECT CAST(CAST(ts AS DATE) + INTERVAL '1' DAY AS DATE) FROM t"),
    ("SELECT CAST(@x AS BIGNUMERIC) AS x", "SELECT CAST($x AS DECIMAL(38, 18)) AS x"),
    ("SELECT s.a FROM UNNEST(@rows) AS s", "SELECT s.a FROM UNNEST($rows) AS _t0(s)"),
])
def test_duckdb_traps_are_fixed(bigquery: str, duckdb_sql: str) -> None:
    (statement,) = sqlfiles.to_duckdb(bigquery)
    assert statement.sql == duckdb_sql


def test_date_functions_really_return_dates_in_duckdb() -> None:
    (statement,) = sqlfiles.to_duckdb(
        "SELECT DATE_TRUNC(DATE(TIMESTAMP '2023-11-05 10:00:00+00'), MONTH) AS m")
    con = duckdb.connect()
    assert con.execute(f"SELECT typeof(m) FROM ({statement.sql})").fetchone() == ("DATE",)


def test_unaliased_unnest_in_from_is_refused() -> None:
    with pytest.raises(ValueError, match="alias every UNNEST"):
        sqlfiles.to_duckdb("SELECT a FROM UNNEST(@rows)")


def test_transpiling_is_cached_by_text() -> None:
    sql = "SELECT 1 AS one WHERE @flag"
    assert sqlfiles.to_duckdb(sql) is sqlfiles.to_duckdb(sql)


def test_bind_passes_exactly_the_parameters_a_statement_uses() -> None:
    (statement,) = sqlfiles.to_duckdb("SELECT @a AS a, @b AS b")
    assert statement.bind({"a": 1, "b": 2, "c": 3}) == {"a": 1, "b": 2}
    with pytest.raises(KeyError, match="b"):
        statement.bind({"a": 1})


def test_retarget_qualifies_only_dataset_tables_and_keeps_aliases() -> None:
    (statement,) = sqlfiles.split(
        "SELECT * FROM cost_analytics.cost_line_items AS c JOIN other.t AS o ON c.a = o.a")
    sql = statement.bigquery({"cost_line_items": sqlfiles.table("cost_line_items", "ds",
                                                                "my-project")})
    assert sql == ("SELECT * FROM `my-project`.`ds`.`cost_line_items` AS c "
                   "JOIN other.t AS o ON c.a = o.a")


def test_statement_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="not unique"):
        sqlfiles.split("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
