"""Any provider's FOCUS export, several providers per file: each row's provider is its slice's.

Why this module exists: Oracle, SaaS vendors and `costflow export` publish FOCUS directly, and
one file may hold several providers' rows (the FOCUS 1.0 sample data: AWS, Microsoft and Oracle).
The reading is the shared FOCUS reader (`costflow.transforms.from_focus`); what this format adds:

* detection by header: the FOCUS 1.0 mandatory columns (``MANDATORY``, from the schema), most of
  them present. A file missing a few is still a FOCUS file, so planning refuses it naming the
  missing columns instead of calling it unknown; with ``--provider focus`` any header with
  BilledCost and ChargeCategory is read as FOCUS and refused the same way. A provider's own
  FOCUS export (AWS's ``x_ServiceCode``...) is read by that provider's format, which this one
  yields to (``reads_any_provider``);
* no row is refused as "another provider's": each row's ProviderName (1.3: ServiceProviderName)
  decides its slice (`Mapped.providers`). A provider costflow reads natively keeps its name
  (``mappings/provider_names.csv``: "AWS" -> aws), so its slices are the ones that provider's
  own exports replace; any other provider's rows (Oracle) are provider ``focus``, sliced by their
  own billing account and period.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from costflow.transforms.arrow_ops import map_values
from costflow.transforms.from_focus import MANDATORY, FocusExportNormalizer, missing_columns
from costflow.transforms.lookup_tables import read_lookup

PROVIDER = "focus"
# ProviderName -> costflow provider (see mappings/README.md for where each spelling comes from).
SOURCE_PROVIDERS = read_lookup(Path(__file__).parent / "mappings" / "provider_names.csv",
                               "provider_name", "source_provider")
# A header still counts as FOCUS with this many mandatory columns missing (then refused for them).
_MISSING_TOLERATED = len(MANDATORY) // 4
_CORE = frozenset({"BilledCost", "ChargeCategory"})


class FocusNormalizer(FocusExportNormalizer):
    """FOCUS 1.0 / 1.1 / 1.2 / 1.3 export of any provider (CSV, CSV.gz, Parquet)."""

    provider: ClassVar[str] = PROVIDER
    source_format: ClassVar[str] = "focus_export"
    basis_column: ClassVar[str] = "BilledCost"
    markers: ClassVar[tuple[str, ...]] = ()
    reads_any_provider: ClassVar[bool] = True

    def detect(self, columns: Sequence[str]) -> bool:
        """BilledCost, ChargeCategory and most FOCUS 1.0 mandatory columns."""
        return set(columns) >= _CORE and (
            len(missing_columns(columns, MANDATORY)) <= _MISSING_TOLERATED)

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        """With ``--provider focus``: any header with BilledCost and ChargeCategory."""
        return set(columns) >= _CORE

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        """The FOCUS mandatory columns the header lacks (a 1.3 successor stands for its
        deprecated column: ServiceProviderName for ProviderName)."""
        return missing_columns(columns, MANDATORY)

    def row_providers(self, out: dict[str, pa.Array]) -> pa.Array:
        """Each row's costflow provider from its ProviderName; ``focus`` for the others."""
        return map_values(out["ProviderName"], SOURCE_PROVIDERS, default=PROVIDER)
