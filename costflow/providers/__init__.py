"""The providers costflow reads, listed once.

Each is a folder (`costflow/providers/<name>/`) ending in one `Provider` declaration. The CLI's
choices, the pipeline options, tenancy, the MCP enumerations, the export formats and the
recommendation fetchers all read this list. To add a provider, add a folder and name it here
(README, "Adding a provider").
"""

from __future__ import annotations

from costflow.providers import aws, azure, gcp
from costflow.providers.base import Catalog, Provider

PROVIDERS: tuple[Provider, ...] = (aws.PROVIDER, gcp.PROVIDER, azure.PROVIDER)
NAMES: tuple[str, ...] = tuple(p.name for p in PROVIDERS)
CATALOG = Catalog(PROVIDERS)

__all__ = ["CATALOG", "NAMES", "PROVIDERS", "Catalog", "Provider"]
