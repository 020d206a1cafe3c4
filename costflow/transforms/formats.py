"""The export formats: name -> normalizer, and format detection by header.

Built from the normalizers the providers declare (`costflow.providers.base.Catalog.formats`);
nothing registers itself. Pipelines never branch on provider; they look the normalizer up here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from costflow.errors import ConfigError, SourceError
from costflow.transforms.contract import Normalizer


class FormatRegistry:
    """Normalizers by their unique ``source_format``.

    >>> FormatRegistry([]).formats()
    []
    """

    def __init__(self, normalizers: Iterable[Normalizer]) -> None:
        self._by_name: dict[str, Normalizer] = {}
        for normalizer in normalizers:
            if normalizer.source_format in self._by_name:
                raise ValueError(f"export format {normalizer.source_format} declared twice")
            self._by_name[normalizer.source_format] = normalizer

    def get(self, source_format: str, provider: str | None = None) -> Normalizer:
        """The normalizer of a format, by its full name or a short one (``focus``)."""
        registry = self._by_name
        # A short name ("focus") stands for the one format spelled <provider>_<name>
        # ("aws_focus"), within --provider when one is given ("focus" with azure is azure_focus).
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

    def formats(self, provider: str | None = None) -> list[str]:
        return sorted(f for f, n in self._by_name.items() if provider in (None, n.provider))

    def detect(self, columns: Sequence[str], provider: str | None, uri: str) -> Normalizer:
        """The normalizer whose format matches a file's header, optionally within one provider."""
        candidates = [n for n in self._by_name.values() if provider in (None, n.provider)]
        matches = [n for n in candidates if n.detect(columns)]
        if len(matches) > 1:
            # A reader of any provider's file (``reads_any_provider``: a FOCUS export) yields to
            # the provider's own format when that one matches too (AWS's FOCUS export).
            own = [n for n in matches if not getattr(n, "reads_any_provider", False)]
            matches = own or matches
        if not matches and provider:
            # A provider-neutral header (a plain FOCUS file) is that provider's only when the
            # user names the provider (from_focus.FocusExportNormalizer.detect_unmarked).
            matches = [n for n in candidates if n.detect_unmarked(columns)]
        if len(matches) == 1:
            return matches[0]
        shown = ", ".join(list(columns)[:6]) + (", ..." if len(columns) > 6 else "")
        if not matches:
            known = ", ".join(self.formats(provider)) or "none"
            which = f"known {provider} export format" if provider else "known export format"
            raise SourceError(uri, f"the header ({shown}) matches no {which}.",
                              expected=f"one of: {known} (or force one with --format)")
        raise SourceError(uri, f"the header matches several formats: "
                          f"{', '.join(n.source_format for n in matches)}.",
                          expected="a single format; force one with --format")
