"""The service -> FOCUS ServiceCategory/ServiceSubcategory tables the providers ship.

Each provider ships its own table in its folder's ``mappings/`` (AWS product codes, GCP service
ids, Azure consumed service and resource type), but every table obeys the same rules, checked once
here when it is read:
no key listed twice, and every subcategory one that FOCUS 1.2 allows for its category.
"""

from __future__ import annotations

import csv
from pathlib import Path

from costflow.schemas.focus import SERVICE_SUBCATEGORIES


def read_service_table(path: Path, key: str | None) -> list[dict[str, str]]:
    """Rows of one table; ValueError naming the row when a rule is broken.

    Args:
        path: the CSV file, with columns ``service_category`` and ``service_subcategory``.
        key: the column that must be unique, or None when rows may share a key.
    """
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if key is not None:
        keys = [r[key] for r in rows]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{path}: {key} listed twice: {', '.join(repeated)}")
    for number, r in enumerate(rows, start=2):
        if r["service_subcategory"] not in SERVICE_SUBCATEGORIES.get(r["service_category"], ()):
            raise ValueError(f"{path}, line {number}: {r['service_subcategory']!r} is not a "
                             f"subcategory of {r['service_category']!r}")
    return rows
