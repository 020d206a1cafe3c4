"""Post-load assertions: the SQL files under `costflow/sql/tests/assert_*.sql`.

Why: reconciliation before the commit proves what was staged; these prove what the warehouse
holds after it, on whichever engine (BigQuery SQL, transpiled for DuckDB by `Warehouse.query`).
Each file is one query; zero rows means it passes. New assertions join by adding a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from costflow.warehouse import sqlfiles
from costflow.warehouse.base import Warehouse

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class AssertionResult:
    name: str
    failing_rows: int
    samples: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.failing_rows == 0

    def to_dict(self) -> dict[str, Any]:
        return {"assertion": self.name, "failing_rows": self.failing_rows, "ok": self.ok,
                "samples": self.samples}


def assertion_files() -> list[str]:
    """``tests/assert_*.sql`` paths relative to `costflow/sql`, sorted."""
    folder = resources.files("costflow").joinpath("sql", "tests")
    return sorted(f"tests/{p.name}" for p in folder.iterdir()
                  if p.name.startswith("assert_") and p.name.endswith(".sql"))


def run_assertions(warehouse: Warehouse, run_id: str) -> list[AssertionResult]:
    """Run every assertion for the slices of ``run_id``."""
    results = []
    for relative in assertion_files():
        (statement,) = sqlfiles.load(relative)
        params = {"run_id": run_id} if "run_id" in statement.parameters else {}
        table = warehouse.query(sqlfiles.read_text(relative), params)
        rows = table.slice(0, SAMPLE_ROWS).to_pylist() if table.num_rows else []
        name = relative.rsplit("/", 1)[-1].removesuffix(".sql")
        results.append(AssertionResult(name, table.num_rows,
                                       [{k: _text(v) for k, v in r.items()} for r in rows]))
    return results


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, str)) else str(value)
