"""The providers costflow reads, listed once.

Each name is a folder, `costflow/providers/<name>/`, whose ``__init__`` ends in one `Provider`
declaration. The CLI's choices, the pipeline options, tenancy, the MCP enumerations, the export
formats and the recommendation fetchers all read this list. To add a provider, add a folder and
name it here (README, "Adding a provider").

The declarations are loaded on first use of `PROVIDERS` or `CATALOG`: the query side (MCP
server, ``costflow query``) needs only the names, not every provider's readers and SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costflow.providers.base import Catalog, Provider

    PROVIDERS: tuple[Provider, ...]
    CATALOG: Catalog

NAMES: tuple[str, ...] = ("aws", "gcp", "azure", "opencost", "focus")

_LOADED: dict[str, Any] = {}


def _load() -> dict[str, Any]:
    if not _LOADED:
        base = importlib.import_module(f"{__name__}.base")
        declared = []
        for name in NAMES:
            provider = importlib.import_module(f"{__name__}.{name}").PROVIDER
            if provider.name != name:
                raise ValueError(f"costflow/providers/{name}/ declares provider {provider.name!r}")
            declared.append(provider)
        _LOADED.update(PROVIDERS=tuple(declared), CATALOG=base.Catalog(tuple(declared)),
                       Catalog=base.Catalog, Provider=base.Provider)
    return _LOADED


def __getattr__(name: str) -> Any:
    if name in ("PROVIDERS", "CATALOG", "Catalog", "Provider"):
        return _load()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CATALOG", "NAMES", "PROVIDERS", "Catalog", "Provider"]
