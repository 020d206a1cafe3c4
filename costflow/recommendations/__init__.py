"""What a recommendation fetcher is: the contract between providers and the recommendations table.

A provider (GCP Recommender, AWS Compute Optimizer, Azure Advisor) declares one *fetcher*
(`Provider.recommender`): given a `FetchRequest` it calls the provider's API with the official
client and returns the recommendations as rows of the declared `recommendations` schema, plus
the sources it covered. `costflow.services.recommendation_fetch.fetch_and_store` runs one and
replaces that provider's rows of those sources atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from costflow.warehouse.recommendation_checks import SCHEMA


@dataclass(frozen=True)
class FetchRequest:
    provider: str
    run_id: str
    fetched_at: datetime
    scope: Mapping[str, list[str]] = field(default_factory=dict)  # e.g. {"region": [...]}


@dataclass(frozen=True)
class FetchResult:
    rows: pa.Table            # the declared recommendations schema
    sources: list[str]        # sources queried, even those that returned nothing


Fetcher = Callable[[FetchRequest], FetchResult]

def rows_from_records(records: Sequence[Mapping[str, Any]], request: FetchRequest) -> pa.Table:
    """Rows of the declared schema from per-recommendation dicts (recommendations are few).

    Missing keys are null; ``details`` may be a dict (stored as JSON text); lineage
    (x_SourceProvider, x_RunId, x_IngestedAt) is stamped from the request.
    """
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for record in records:
        unknown = set(record) - set(SCHEMA.names)
        if unknown:
            raise ValueError(f"recommendation fields not in the schema: {sorted(unknown)}")
        for name in SCHEMA.names:
            value = record.get(name)
            if name == "details" and value is not None and not isinstance(value, str):
                value = json.dumps(value, sort_keys=True, default=str)
            columns[name].append(value)
        columns["x_SourceProvider"][-1] = request.provider
        columns["x_RunId"][-1] = request.run_id
        columns["x_IngestedAt"][-1] = request.fetched_at
    nullable = pa.schema([f.with_nullable(True) for f in SCHEMA])
    return pa.Table.from_pydict(columns, schema=nullable)
