"""What a provider normalizer is, and what it hands back.

A normalizer maps one Arrow record batch of a provider's export (every source column as a string,
empty fields as null) to the FOCUS columns, vectorized with `pyarrow.compute`. It never drops a
row: rows it cannot map are flagged through `RowError` masks, and the shared finishing step
(`costflow.transforms.finalize`) turns them into dead letters, applies the schema's hard rules,
stamps lineage and counts the per-slice totals used for reconciliation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

import pyarrow as pa


@dataclass(frozen=True)
class BatchContext:
    """Where a batch came from; lineage is stamped from this."""

    source_uri: str
    source_format: str
    provider: str
    first_row_number: int  # 1-based data-row number of the batch's first row (header excluded)
    run_id: str
    ingested_at: datetime


@dataclass(frozen=True)
class RowError:
    """Rows of a batch that fail one check.

    Attributes:
        mask: boolean array aligned with the input batch; True marks a failing row.
        column: the source (or FOCUS) column at fault.
        reason: what was wrong and what was expected, e.g. "not a decimal number".
    """

    mask: pa.BooleanArray
    column: str
    reason: str


@dataclass
class Mapped:
    """A normalizer's answer for one batch; every array is aligned with the input batch.

    Attributes:
        columns: values for `cost_line_items` columns (FOCUS and provider `x_` columns, not the
            lineage columns). Columns left out are null.
        errors: rows that could not be mapped, with the reason.
        providers: each row's provider (``x_SourceProvider``, the first part of its slice key)
            when the rows of one file belong to several providers, as in a FOCUS export holding
            AWS, Microsoft and Oracle rows; None (every other format): every row is the file's
            provider (`BatchContext.provider`).
        source_basis: the source's own invoice-basis amount per row (for CUR,
            lineItem/UnblendedCost) as decimal128(38, 18), null where it is unparseable. Its
            per-slice sum is what reconciliation compares with the warehouse.
    """

    columns: dict[str, pa.Array]
    source_basis: pa.Array
    errors: list[RowError] = field(default_factory=list)
    providers: pa.Array | None = None


class Normalizer(Protocol):
    """One provider export format (e.g. AWS legacy CUR CSV) mapped to the unified schema.

    A normalizer that reads any provider's file (a FOCUS export) sets the optional class
    attribute ``reads_any_provider = True``: detection then prefers a provider's own format
    whose header matches too (`costflow.transforms.formats.FormatRegistry.detect`).
    """

    provider: ClassVar[str]        # "aws", "gcp", "azure", "kubernetes"
    source_format: ClassVar[str]   # e.g. "aws_cur_legacy"; unique among all providers
    basis_column: ClassVar[str]    # source column summed as the invoice basis

    def detect(self, columns: Sequence[str]) -> bool:
        """True when a file with these header names is in this format."""
        ...

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        """True when a provider-neutral header (a plain FOCUS file) is in this format once the
        user names its provider (``--provider``); False for formats with their own columns."""
        ...

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        """Required source columns absent from ``columns`` (empty when the file is usable)."""
        ...

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Map one batch (all string columns) to FOCUS columns."""
        ...
