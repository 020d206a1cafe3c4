"""`costflow recommendations fetch`: run a provider's fetcher and replace its recommendations.

The fetcher is the one the provider declares (`Provider.recommender`); the rows replace that
provider's rows of the sources it covered atomically, so a recommendation the provider no longer
lists disappears.

    costflow recommendations fetch --provider aws --scope region=us-east-1
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from costflow.errors import ConfigError
from costflow.recommendations import FetchRequest
from costflow.warehouse import connect

if TYPE_CHECKING:
    from costflow.providers.base import Catalog


def fetch_and_store(provider: str, warehouse_url: str,
                    scope: Mapping[str, list[str]] | None = None,
                    catalog: Catalog | None = None) -> dict[str, Any]:
    """Fetch ``provider``'s recommendations and replace them in the warehouse."""
    if catalog is None:
        from costflow.providers import CATALOG

        catalog = CATALOG
    known = catalog.with_recommender()
    if provider not in known:
        raise ConfigError(f"No recommendations fetcher for {provider!r}; available: "
                          f"{', '.join(known) or 'none'}.")
    fetcher = catalog.provider(provider).recommender
    assert fetcher is not None  # with_recommender() lists only providers that declare one
    request = FetchRequest(provider=provider,
                           run_id=f"recs-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                           fetched_at=datetime.now(UTC), scope=dict(scope or {}))
    result = fetcher(request)
    warehouse = connect(warehouse_url)
    try:
        warehouse.ensure_schema()
        written = warehouse.replace_recommendations(result.rows, provider, result.sources)
    finally:
        warehouse.close()
    return {"provider": provider, "run_id": request.run_id, "sources": result.sources,
            "recommendations": written}
