"""Two-column mapping tables (provider value -> FOCUS value) kept as CSV beside each provider.

Why: sqlglot's habit, differences as data. A provider's region names or unit spellings live in
``costflow/providers/<name>/mappings/*.csv`` where a reviewer can check them against the
provider's documentation; the normalizer reads them once at import and maps a whole column with
one dictionary lookup (`costflow.transforms.arrow_ops.map_values`), never per row.
"""

from __future__ import annotations

import csv
from pathlib import Path


def read_lookup(path: Path, key: str, value: str) -> dict[str, str]:
    """``{row[key]: row[value]}`` of a CSV table, refusing duplicate keys and empty values.

    >>> import tempfile, os
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("id,name\\nus-east-1,US East (N. Virginia)\\n", encoding="utf-8")
    >>> read_lookup(p, "id", "name")
    {'us-east-1': 'US East (N. Virginia)'}
    """
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    table = {r[key]: r[value] for r in rows}
    if len(table) != len(rows):
        raise ValueError(f"{path.name}: duplicate {key} rows")
    if not all(k and v for k, v in table.items()):
        raise ValueError(f"{path.name}: empty {key} or {value}")
    return table
