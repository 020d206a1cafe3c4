"""AWS's own FOCUS export (Data Exports ``FOCUS_1_0_AWS`` / ``FOCUS_1_2_AWS``) loaded as is.

Why this module exists: many AWS payers now export FOCUS directly. Its columns already are the
warehouse's columns, so nothing is re-derived: each column is typed exactly as declared in
`costflow.schemas.focus` (costs are doubles in Parquet and text in CSV, both read as their exact
decimal text), map columns (``Tags``, ``x_CostCategories``, ``x_Discounts``) become JSON, AWS's
``x_`` columns are kept, and only what a 1.0 export lacks is filled: the 1.2 BillingAccountType
and the FOCUS 1.3 ServiceProviderName / HostProviderName. BilledCost is the invoice basis,
unchanged, so reconciliation is exact.

[PF §2.5] = ../shared/reference/provider_formats.md §2.5 (columns, types, 1.2 additions).
[FOCUS13 x] = FOCUS 1.3 ``specification/columns/x.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.schemas.columns import LogicalType
from costflow.schemas.focus import COST_LINE_ITEMS, LINEAGE_COLUMNS
from costflow.transforms.arrow_ops import (
    DECIMAL,
    STRING,
    TIMESTAMP,
    any_true,
    constant,
    fill_false,
    json_array_of_flags,
    parse_decimal,
    parse_timestamp,
)
from costflow.transforms.arrow_text import as_text, map_json
from costflow.transforms.contract import Mapped, RowError
from costflow.transforms.registry import register

_LINEAGE = {c.name for c in LINEAGE_COLUMNS}
_COLUMNS = [c for c in COST_LINE_ITEMS if c.name not in _LINEAGE]
# Columns of the 1.0 export a row cannot do without [PF §2.5]; the rest may be absent.
REQUIRED = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
            "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
            "ProviderName")
# AWS's own extension columns, present in both the 1.0 and 1.2 exports [PF §2.5].
_AWS_MARKERS = ("x_ServiceCode", "x_UsageType", "x_Operation")
_ZONE = r"(Z|[+-]\d\d:?\d\d)$"


def _utc_text(text: pa.Array) -> pa.Array:
    """FOCUS date/times are UTC [FOCUS datetime format]; zoneless text gets its ``Z``."""
    zoned = fill_false(pc.match_substring_regex(text, _ZONE))
    with_z = pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")
    return pc.if_else(pc.or_(zoned, pc.is_null(text)), text, with_z)


class AwsFocusNormalizer:
    """AWS FOCUS 1.0 / 1.2 export (CSV or Parquet) -> cost_line_items."""

    provider: ClassVar[str] = "aws"
    source_format: ClassVar[str] = "aws_focus"
    basis_column: ClassVar[str] = "BilledCost"

    def detect(self, columns: Sequence[str]) -> bool:
        """FOCUS headers plus AWS's own ``x_`` columns [PF §2.5]."""
        names = set(columns)
        return {"BilledCost", "ChargeCategory"} <= names and any(
            m in names for m in _AWS_MARKERS)

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [c for c in REQUIRED if c not in names]

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Type every FOCUS column the file has; derive the few a 1.0 export lacks."""
        errors: list[RowError] = []
        out: dict[str, pa.Array] = {}
        n = batch.num_rows
        for col in _COLUMNS:
            index = batch.schema.get_field_index(col.name)
            if index < 0:
                continue
            raw = batch.column(index)
            if col.type is LogicalType.DECIMAL:
                values, errs = parse_decimal(as_text(raw), col.name)
            elif col.type is LogicalType.TIMESTAMP:
                if pa.types.is_timestamp(raw.type):
                    values, errs = pc.cast(raw, TIMESTAMP), []
                else:
                    values, errs = parse_timestamp(_utc_text(as_text(raw)), col.name)
            elif col.type is LogicalType.JSON:
                values, errs = map_json(raw, col.name)
            elif col.type is LogicalType.STRING:
                values, errs = as_text(raw), []
            else:
                continue  # no AWS FOCUS column of another type is declared here
            errors.extend(errs)
            out[col.name] = values
        flags: dict[str, pa.Array] = {}
        provider = out["ProviderName"]
        # 1.2 column; AWS bills from the payer (management) account [PF §2.5].
        out.setdefault("BillingAccountType", constant("Payer Account", n))
        publisher = out.get("PublisherName", provider)
        out.setdefault("PublisherName", publisher)
        # [FOCUS13 serviceprovidername.md] replaces ProviderName; on Marketplace rows the
        # publisher (the seller) provides the service, and AWS hosts it when the row names an
        # AWS resource (see aws_cur._providers, the same rule for the CUR).
        market = fill_false(pc.not_equal(publisher, provider))
        out.setdefault("ServiceProviderName", pc.if_else(market, publisher, provider))
        resource = out.get("ResourceId", pa.nulls(n, STRING))
        saas = pc.and_(market, pc.is_null(resource))
        if any_true(saas):
            flags["HostProviderName:assumed_seller"] = saas
        out.setdefault("HostProviderName", pc.if_else(saas, publisher, provider))
        out["x_DataQualityFlags"] = json_array_of_flags(flags, n)
        basis = out.get("BilledCost", pa.nulls(n, DECIMAL))
        return Mapped(columns=out, source_basis=basis, errors=errors)


register(AwsFocusNormalizer())
