"""A FOCUS dataset directory: the data files plus the FOCUS metadata written beside them.

Why this module exists: FOCUS 1.1+ asks a data generator to publish metadata next to the data
(spec section "Metadata": DataGenerator, Schema with FocusVersion and its ColumnDefinition
list); `costflow export --out DIR` writes ``DIR/cost_and_usage.parquet`` and
``DIR/metadata.json``. Given such a directory, the shared file planner would plan
``metadata.json`` as a cost file too (``.json`` is newline-delimited JSON rows) and fail on it.
This layout planner recognises the directory by its metadata, plans every other file in it as
the shared planner does (detection by header, mandatory columns), and says in the plan's notes
which FOCUS version the metadata declares; the metadata itself is never a cost row.
"""

from __future__ import annotations

import json
import os

from costflow.errors import SourceError
from costflow.sources.contract import Plan, PlanRequest
from costflow.sources.files import add_inspected, expand_patterns

PROVIDER = "focus"
METADATA = "metadata.json"  # the name the FOCUS metadata has beside the data
_MOST_BYTES = 4 << 20  # a metadata document is small; a larger file is data, not metadata


def focus_version(path: str) -> str | None:
    """The FocusVersion a FOCUS metadata document declares; None when ``path`` is not one."""
    try:
        if os.path.getsize(path) > _MOST_BYTES:
            return None
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    schema = document.get("Schema") if isinstance(document, dict) else None
    version = schema.get("FocusVersion") if isinstance(schema, dict) else None
    return version if isinstance(version, str) else None


def plan_dataset(pattern: str, request: PlanRequest) -> Plan | None:
    """The data files of a FOCUS dataset directory; None for any other path (the shared file
    planner takes it then)."""
    if request.provider not in (None, PROVIDER) or not os.path.isdir(pattern):
        return None
    metadata = os.path.join(pattern, METADATA)
    version = focus_version(metadata) if os.path.isfile(metadata) else None
    if version is None:
        return None
    plan = Plan(notes=[f"{pattern}: read as a FOCUS {version} dataset ({METADATA} is its "
                       "FOCUS metadata, not cost rows)"])
    skip = os.path.abspath(metadata)
    data = [uri for uri in expand_patterns([pattern], request.catalog, plan.notes)
            if uri != skip]
    if not data:
        raise SourceError(pattern, f"holds FOCUS metadata ({METADATA}) but no data file.",
                          expected="the dataset's CSV, CSV.gz or Parquet files beside it")
    return add_inspected(plan, data, request)
