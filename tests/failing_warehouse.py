"""A DuckDB warehouse that crashes mid-commit, for the tests that prove nothing half-commits.

Failure injection is test code, so it lives here rather than as a flag on the production
engine: `FailingDuckDBWarehouse` overrides `DuckDBWarehouse._execute`, the method that runs one
named statement, and raises `InjectedFailure` right after the statement it is told to fail
after has run inside the commit transaction. The names are the ``-- name:`` comments of
`costflow/sql/load/replace_slices.sql` (e.g. ``delete_slice_rows``), plus ``stage_rows``,
``stage_dead_letters`` and ``reconcile_slices``.

    crashing = FailingDuckDBWarehouse(path, fail_after="delete_slice_rows")

Code that builds its own engine (an end-to-end ingest, through `costflow.warehouse.connect`,
which looks up ``costflow.warehouse.duckdb_engine.DuckDBWarehouse`` when called) gets one by
patching that name with `failing_after(statement)`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import duckdb

from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from costflow.warehouse.sqlfiles import DuckStatement


class InjectedFailure(RuntimeError):
    """The simulated crash: raised right after the named statement ran."""


class FailingDuckDBWarehouse(DuckDBWarehouse):
    """`DuckDBWarehouse` that raises `InjectedFailure` after the statement ``fail_after``."""

    fail_after: str | None = None

    def __init__(self, path: str | os.PathLike[str], *, fail_after: str | None = None) -> None:
        super().__init__(path)
        if fail_after is not None:
            self.fail_after = fail_after

    def _execute(self, con: duckdb.DuckDBPyConnection, name: str, statement: DuckStatement,
                 params: Mapping[str, Any]) -> duckdb.DuckDBPyConnection:
        result = super()._execute(con, name, statement, params)
        if name == self.fail_after:
            raise InjectedFailure(f"injected failure after statement {name!r}")
        return result


def failing_after(statement: str) -> type[FailingDuckDBWarehouse]:
    """A `FailingDuckDBWarehouse` class whose every instance fails after ``statement``.

    For engines the code under test constructs itself, as ``DuckDBWarehouse(path)``.
    """
    return type(f"FailingAfter_{statement}", (FailingDuckDBWarehouse,),
                {"fail_after": statement, "__module__": __name__})
