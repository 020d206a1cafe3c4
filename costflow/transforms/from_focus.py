"""A provider's own FOCUS export loaded as is: the mapping every FOCUS-export normalizer shares.

Why this module exists: AWS (Data Exports ``FOCUS_1_0_AWS`` / ``FOCUS_1_2_AWS``) and Microsoft
(Cost Management dataset ``FocusCost`` 1.0 / 1.0r2 / 1.2-preview / 1.2) both export FOCUS
directly. Their columns already are the warehouse's columns, so the mapping is the same for both
and lives here once; a provider module (`aws_focus`, `azure_focus`) only says how its export is
recognized and fills the few columns its export lacks. What is shared:

* every FOCUS or declared ``x_`` column the file has is typed as `costflow.schemas.focus`
  declares it: money and quantities exact from their decimal text (a Parquet double through its
  shortest round-trip text), date/times as UTC (zone-less text such as ``2024-09-01 00:00:00``
  is UTC [FOCUS "Date/Time Format": all date/times are UTC]), map columns as JSON objects;
* the literal text ``NULL`` is a null: FOCUS sample data and database dumps of FOCUS tables write
  unquoted ``NULL`` for an absent value [/work/shared/samples/focus/focus_1_0_sample.csv], and
  the CSV reader only treats an empty field as null;
* columns the schema does not declare (e.g. Microsoft's ``x_BillingProfileId``) are left out;
* a 1.0 export's missing ServiceSubcategory becomes ``Other (<ServiceCategory>)`` (flagged);
* the FOCUS 1.3 ServiceProviderName / HostProviderName are derived when absent
  [FOCUS13 serviceprovidername.md, hostprovidername.md];
* rows whose ProviderName is not the provider the file is loaded as become dead letters, so a
  mixed multi-provider FOCUS file can never be booked under the wrong provider;
* BilledCost is the invoice basis, unchanged, so reconciliation is exact.
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
    fill_false,
    json_array_of_flags,
    null_where,
    parse_decimal,
    parse_timestamp,
)
from costflow.transforms.arrow_text import as_text, map_json
from costflow.transforms.contract import Mapped, RowError

_LINEAGE = {c.name for c in LINEAGE_COLUMNS}
COLUMNS = tuple(c for c in COST_LINE_ITEMS if c.name not in _LINEAGE)
# Columns of a FOCUS 1.0 export a row cannot do without (FOCUS 1.0 mandatory columns used by
# the slice key and reconciliation); the rest may be absent.
REQUIRED = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
            "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
            "ProviderName")
# The text some FOCUS files write for an absent value (see the module docstring).
NULL_TEXT = "NULL"
_ZONE = r"(Z|[+-]\d\d:?\d\d)$"


def is_focus_header(columns: Sequence[str]) -> bool:
    """True when a header carries the mandatory FOCUS columns of a FOCUS export."""
    return set(REQUIRED) <= set(columns)


def text(arr: pa.Array) -> pa.Array:
    """The CSV text of a column (see `as_text`), with the literal ``NULL`` read as null."""
    values = as_text(arr)
    return null_where(values, pc.equal(values, NULL_TEXT))


def utc_text(values: pa.Array) -> pa.Array:
    """FOCUS date/times are UTC; zone-less text (``2024-09-01 00:00:00``) gets its ``Z``."""
    zoned = fill_false(pc.match_substring_regex(values, _ZONE))
    with_z = pc.binary_join_element_wise(pc.replace_substring(values, " ", "T"), "Z", "")
    return pc.if_else(pc.or_(zoned, pc.is_null(values)), values, with_z)


def typed_columns(batch: pa.RecordBatch) -> tuple[dict[str, pa.Array], list[RowError]]:
    """Every declared column the batch has, typed as `costflow.schemas.focus` declares it."""
    errors: list[RowError] = []
    out: dict[str, pa.Array] = {}
    for col in COLUMNS:
        index = batch.schema.get_field_index(col.name)
        if index < 0:
            continue
        raw = batch.column(index)
        if col.type is LogicalType.DECIMAL:
            values, errs = parse_decimal(text(raw), col.name)
        elif col.type is LogicalType.TIMESTAMP:
            if pa.types.is_timestamp(raw.type):
                # A zone-less Parquet timestamp is UTC by the same FOCUS rule.
                values, errs = pc.cast(raw, TIMESTAMP), []
            else:
                values, errs = parse_timestamp(utc_text(text(raw)), col.name)
        elif col.type is LogicalType.JSON:
            values, errs = map_json(raw if pa.types.is_map(raw.type) else text(raw), col.name)
        elif col.type is LogicalType.STRING:
            values, errs = text(raw), []
        else:
            continue  # no FOCUS export column of another type is declared
        errors.extend(errs)
        out[col.name] = values
    return out, errors


class FocusExportNormalizer:
    """The shared mapping of a provider's FOCUS export; subclasses set the class attributes.

    Attributes:
        provider / source_format / basis_column: the `Normalizer` protocol.
        provider_names: the ProviderName values the provider's export writes; other rows are
            dead letters.
        markers: the provider's own ``x_`` columns; any one of them identifies its export.
    """

    provider: ClassVar[str]
    source_format: ClassVar[str]
    basis_column: ClassVar[str] = "BilledCost"
    provider_names: ClassVar[tuple[str, ...]]
    markers: ClassVar[tuple[str, ...]]
    # A row id some FOCUS exports carry beside the spec's columns (the FOCUS sample data's
    # ``Id``); used only when the file has it (`costflow.transforms.duplicates`).
    line_item_key: ClassVar[tuple[str, ...]] = ("Id",)

    def detect(self, columns: Sequence[str]) -> bool:
        """FOCUS headers plus at least one of the provider's own ``x_`` columns."""
        names = set(columns)
        return {"BilledCost", "ChargeCategory"} <= names and any(m in names for m in self.markers)

    def detect_unmarked(self, columns: Sequence[str]) -> bool:
        """A plain FOCUS header (no provider's ``x_`` columns): only when --provider names us."""
        return is_focus_header(columns)

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        names = set(columns)
        return [c for c in REQUIRED if c not in names]

    def complete(self, batch: pa.RecordBatch, out: dict[str, pa.Array],
                 flags: dict[str, pa.Array], errors: list[RowError]) -> None:
        """Fill provider-specific columns the export lacks (override in the provider module)."""

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Type every FOCUS column the file has; derive what the provider's export lacks."""
        n = batch.num_rows
        out, errors = typed_columns(batch)
        provider = out["ProviderName"]
        foreign = pc.invert(fill_false(pc.is_in(provider, pa.array(self.provider_names))))
        if foreign.true_count:
            errors.append(RowError(
                mask=foreign, column="ProviderName",
                reason=f"is not {' or '.join(self.provider_names)}: the row belongs to another "
                       f"provider's FOCUS data, not to a {self.source_format} export (load "
                       f"each provider's rows as that provider)"))
        flags: dict[str, pa.Array] = {}
        self.complete(batch, out, flags, errors)
        if "ServiceSubcategory" not in out and "ServiceCategory" in out:
            # A 1.0 export has no ServiceSubcategory (FOCUS 1.1); every 1.2 ServiceCategory has
            # the subcategory "Other (<category>)" [FOCUS 1.2 servicesubcategory.md], the only
            # one derivable without a provider's service mapping.
            category = out["ServiceCategory"]
            out["ServiceSubcategory"] = pc.binary_join_element_wise(
                "Other (", category, ")", "")
            derived = pc.is_valid(category)
            if any_true(derived):
                flags["ServiceSubcategory:other_of_category"] = derived
        # [FOCUS13 serviceprovidername.md] replaces ProviderName; on Marketplace rows the
        # publisher (the seller) provides the service, and the provider hosts it when the row
        # names one of its resources; a resource-less Marketplace row is SaaS hosted by the
        # seller [FOCUS13 hostprovidername.md] (aws_cur._providers applies the same rule).
        # A publisher is a third-party seller only when it is neither the provider nor the
        # invoice issuer: AWS's export names its own legal entity in both PublisherName and
        # InvoiceIssuerName ("Amazon Web Services Canada, Inc."), a Marketplace seller only in
        # PublisherName ("Red Hat Inc.", invoiced by AWS) [FOCUS 1.0 sample data].
        publisher = out.setdefault("PublisherName", provider)
        issuer = out.get("InvoiceIssuerName", pa.nulls(n, STRING))
        market = fill_false(pc.and_(pc.not_equal(publisher, provider),
                                    pc.or_kleene(pc.is_null(issuer),
                                                 pc.not_equal(publisher, issuer))))
        out.setdefault("ServiceProviderName", pc.if_else(market, publisher, provider))
        resource = out.get("ResourceId", pa.nulls(n, STRING))
        saas = pc.and_(market, pc.is_null(resource))
        if "HostProviderName" not in out:
            if any_true(saas):
                flags["HostProviderName:assumed_seller"] = saas
            out["HostProviderName"] = pc.if_else(saas, publisher, provider)
        out["x_DataQualityFlags"] = json_array_of_flags(flags, n)
        basis = out.get("BilledCost", pa.nulls(n, DECIMAL))
        return Mapped(columns=out, source_basis=basis, errors=errors)
