"""Fetch cost recommendations from each provider into the provider-neutral table.

A provider module (GCP Recommender, AWS Compute Optimizer, Azure Advisor) registers one
*fetcher*: given a `FetchRequest` it calls the provider's API with the official client and
returns the recommendations as rows of the declared `recommendations` schema, plus the sources
it covered. `fetch_and_store` runs a fetcher and replaces that provider's rows of those sources
atomically, so a recommendation the provider no longer lists disappears.

    costflow recommendations fetch --provider aws --scope region=us-east-1
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from costflow.errors import ConfigError
from costflow.warehouse import connect
from costflow.warehouse.recommendations import SCHEMA


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

# Modules that register a fetcher when imported.
_MODULES: tuple[str, ...] = ("costflow.recommendations.azure_advisor",
                             "costflow.recommendations.aws_compute_optimizer",
                             "costflow.recommendations.gcp_recommender")
_FETCHERS: dict[str, Fetcher] = {}


def register(provider: str, fetcher: Fetcher) -> None:
    _FETCHERS[provider] = fetcher


def providers() -> list[str]:
    for module in _MODULES:
        importlib.import_module(module)
    return sorted(_FETCHERS)


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


def fetch_and_store(provider: str, warehouse_url: str,
                    scope: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """Fetch ``provider``'s recommendations and replace them in the warehouse."""
    known = providers()
    if provider not in known:
        raise ConfigError(f"No recommendations fetcher for {provider!r}; available: "
                          f"{', '.join(known) or 'none'}.")
    request = FetchRequest(provider=provider,
                           run_id=f"recs-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                           fetched_at=datetime.now(UTC), scope=dict(scope or {}))
    result = _FETCHERS[provider](request)
    warehouse = connect(warehouse_url)
    try:
        warehouse.ensure_schema()
        written = warehouse.replace_recommendations(result.rows, provider, result.sources)
    finally:
        warehouse.close()
    return {"provider": provider, "run_id": request.run_id, "sources": result.sources,
            "recommendations": written}
