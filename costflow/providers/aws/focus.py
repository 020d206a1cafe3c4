"""AWS's own FOCUS export (Data Exports ``FOCUS_1_0_AWS`` / ``FOCUS_1_2_AWS``) loaded as is.

Why this module exists: the FOCUS reader is shared (`costflow.transforms.from_focus`: exact
types, UTC, ``NULL`` text, 1.0-1.3 column sets, map columns as JSON, the FOCUS rules as dead
letters, the 1.3 provider columns with the Marketplace rule); this module is its AWS fix-ups:
how AWS's export is recognized (its own ``x_`` columns), that its rows are AWS's only, and the
1.2 BillingAccountType a 1.0 export lacks. A file of several providers' rows is read by
``--provider focus`` (`costflow.providers.focus`) instead. AWS's ``x_`` columns the schema
declares (x_ServiceCode, x_UsageType, x_Operation, x_CostCategories, x_Discounts) are kept by
the shared reader.

[PF §2.5] = ../shared/reference/provider_formats.md §2.5 (columns, types, 1.2 additions).
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from costflow.transforms.arrow_ops import constant
from costflow.transforms.contract import RowError
from costflow.transforms.from_focus import FocusExportNormalizer


class AwsFocusNormalizer(FocusExportNormalizer):
    """AWS FOCUS 1.0 / 1.2 export (CSV or Parquet) -> cost_line_items."""

    provider: ClassVar[str] = "aws"
    source_format: ClassVar[str] = "aws_focus"
    basis_column: ClassVar[str] = "BilledCost"
    # AWS's FOCUS exports write ProviderName "AWS" [PF §2.5; FOCUS sample data].
    provider_names: ClassVar[tuple[str, ...]] = ("AWS",)
    # AWS's own extension columns, present in both the 1.0 and 1.2 exports [PF §2.5].
    markers: ClassVar[tuple[str, ...]] = ("x_ServiceCode", "x_UsageType", "x_Operation")

    def complete(self, batch: pa.RecordBatch, out: dict[str, pa.Array],
                 flags: dict[str, pa.Array], errors: list[RowError]) -> None:
        """The 1.2 BillingAccountType: AWS bills from the payer (management) account [PF §2.5]."""
        out.setdefault("BillingAccountType", constant("Payer Account", batch.num_rows))
