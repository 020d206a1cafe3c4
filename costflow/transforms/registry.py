"""The registry of normalizers: provider/format -> normalizer, and format detection by header.

Pipelines never branch on provider; they look the normalizer up here. A provider module
registers itself by being listed in `_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from costflow.errors import ConfigError
from costflow.transforms.contract import Normalizer

# Modules that define and register normalizers (imported lazily on first use).
_MODULES = ("costflow.transforms.aws_cur", "costflow.transforms.azure_cost",
            "costflow.transforms.aws_focus", "costflow.transforms.gcp_billing",
            "costflow.transforms.aws_ce", "costflow.transforms.azure_focus")
_REGISTRY: dict[str, Normalizer] = {}


def register(normalizer: Normalizer) -> Normalizer:
    if normalizer.source_format in _REGISTRY:
        raise ValueError(f"normalizer {normalizer.source_format} registered twice")
    _REGISTRY[normalizer.source_format] = normalizer
    return normalizer


def _load() -> dict[str, Normalizer]:
    for module in _MODULES:
        importlib.import_module(module)
    return _REGISTRY


def get(source_format: str, provider: str | None = None) -> Normalizer:
    registry = _load()
    # A short name ("focus") stands for the one format spelled <provider>_<name> ("aws_focus"),
    # within --provider when one is given ("focus" with azure is "azure_focus").
    short = [f for f, n in registry.items() if f.endswith(f"_{source_format}")
             and provider in (None, n.provider)]
    if source_format not in registry and len(short) == 1:
        source_format = short[0]
    elif source_format not in registry and short:
        raise ConfigError(f"Source format {source_format!r} stands for several formats: "
                          f"{', '.join(sorted(short))}. Name one, or give --provider.")
    try:
        return registry[source_format]
    except KeyError:
        raise ConfigError(
            f"Unknown source format {source_format!r}. Known formats: "
            f"{', '.join(sorted(registry))}."
        ) from None


def formats(provider: str | None = None) -> list[str]:
    return sorted(f for f, n in _load().items() if provider in (None, n.provider))


def detect(columns: Sequence[str], provider: str | None, uri: str) -> Normalizer:
    """The normalizer whose format matches a file's header, optionally within one provider."""
    from costflow.errors import SourceError

    matches = [n for n in _load().values()
               if provider in (None, n.provider) and n.detect(columns)]
    if not matches and provider:
        # A provider-neutral header (a plain FOCUS file) is that provider's only when the user
        # names the provider (focus_export.FocusExportNormalizer.detect_unmarked).
        matches = [n for n in _load().values() if n.provider == provider
                   and getattr(n, "detect_unmarked", lambda _c: False)(columns)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(list(columns)[:6]) + (", ..." if len(columns) > 6 else "")
    if not matches:
        known = ", ".join(formats(provider)) or "none"
        which = f"known {provider} export format" if provider else "known export format"
        raise SourceError(uri, f"the header ({shown}) matches no {which}.",
                          expected=f"one of: {known} (or force one with --format)")
    raise SourceError(uri, f"the header matches several formats: "
                      f"{', '.join(n.source_format for n in matches)}.",
                      expected="a single format; force one with --format")
