"""The benchmarks' floor: each bar's statement, loading a DuckDB file instead of writing
Parquet, does the same conversion (`bench/common.py` `as_table_load`)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import duckdb
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _common() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_floor_loads_the_rows_the_bar_writes(tmp_path):
    common = _common()
    out = tmp_path / "bar.parquet"
    bar = (f"-- a bar\nCOPY (\n    SELECT i AS n, CAST(i AS VARCHAR) || ') TO x' AS t\n"
           f"    FROM range(5) AS r(i)\n) TO {common.sql_literal(str(out))} (FORMAT parquet)")
    with duckdb.connect() as con:
        con.execute(bar)
        written = con.execute(f"FROM read_parquet({common.sql_literal(str(out))})").fetchall()
    database = tmp_path / "floor.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(common.as_table_load(bar))
    path, relation = common.bar_relation(database, True)
    with duckdb.connect(path, read_only=True) as con:
        loaded = con.execute(f"FROM {relation} ORDER BY n").fetchall()
    assert loaded == written and len(loaded) == 5


@pytest.mark.parametrize("template", ["cur_to_focus_duckdb.sql", "gcp_to_focus_duckdb.sql",
                                      "azure_to_focus_duckdb.sql"])
def test_each_bar_statement_has_a_floor(template):
    """Each bar keeps the shape the floor needs; a bar reshaped otherwise fails here, not in a
    benchmark run."""
    text = (BENCH / template).read_text()
    floor = _common().as_table_load(text)
    assert floor.startswith("CREATE TABLE focus AS ")
    assert "${out}" not in floor and "COPY (" not in floor
    assert floor.rstrip().endswith(text[text.index("COPY (") + 6:text.rindex(") TO ")].rstrip())


def test_a_statement_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="COPY"):
        _common().as_table_load("SELECT 1")
