"""A FOCUS export loaded as is: the one reader every FOCUS-export normalizer shares.

Why this module exists: AWS (Data Exports ``FOCUS_1_0_AWS`` / ``FOCUS_1_2_AWS``), Microsoft (Cost
Management dataset ``FocusCost`` 1.0 / 1.0r2 / 1.2-preview / 1.2), Oracle and SaaS vendors all
export FOCUS directly, and `costflow export` writes it. Their columns already are the
warehouse's columns, so the reading is the same for all and lives here once: the provider
modules (`aws.focus`, `azure.focus`) add only how their export is recognized and the few
fix-ups where it deviates from the spec; `focus` (any provider's export) adds each row's slice.
What is shared:

* every FOCUS or declared ``x_`` column the file has is typed as `costflow.schemas.focus`
  declares it: money and quantities exact from their decimal text (a Parquet double through its
  shortest round-trip text), date/times as UTC (zone-less text such as ``2024-09-01 00:00:00``
  is UTC [FOCUS "Date/Time Format": all date/times are UTC]), map columns as JSON objects;
* the literal text ``NULL`` is a null: FOCUS sample data and database dumps of FOCUS tables write
  unquoted ``NULL`` for an absent value [/work/shared/samples/focus/focus_1_0_sample.csv], and
  the CSV reader only treats an empty field as null;
* versions 1.0 to 1.3 (and 1.4's column set): a column a version added that the file lacks is
  null (or derived below); FOCUS 1.3 deprecates ProviderName for ServiceProviderName and 1.4
  removes it [focus_columns.md #49, #58], so a file with only the new name gets ProviderName
  from it (``SUCCESSORS``);
* the provider's own ``x_`` columns the schema does not declare (Microsoft's
  ``x_BillingProfileId``, ``x_SkuMeterCategory``, ...) are kept, as the file wrote them, in one
  JSON object per row, ``x_ProviderColumns`` (FOCUS: custom columns carry the ``x_`` prefix);
  other undeclared columns (the sample data's ``Id``) are left out;
* a value of a column with allowed values that differs from one only in letter case (Oracle's
  ``Usage-based`` for ``Usage-Based`` in the FOCUS sample data) is that value, flagged
  ``<column>:case_corrected``; any other value outside the list stays a dead letter;
* a 1.0 export's missing ServiceSubcategory becomes ``Other (<ServiceCategory>)`` (flagged);
* the FOCUS 1.3 ServiceProviderName / HostProviderName are derived when absent
  [FOCUS13 serviceprovidername.md, hostprovidername.md];
* a provider's own export (``provider_names`` set) refuses rows of another ProviderName as dead
  letters, so a mixed file loaded as ``--provider aws`` is never booked under AWS; the
  any-provider reader instead gives each row its own provider (`Mapped.providers`);
* BilledCost is the invoice basis, unchanged, so reconciliation is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from costflow.schemas.columns import LogicalType
from costflow.schemas.focus import (
    COMMITMENT_DISCOUNT_DEPENDENTS,
    COMMITMENT_DISCOUNT_ID,
    COMMITMENT_DISCOUNT_REQUIRED_WITH_ID,
    COST_LINE_ITEMS,
    FOCUS_COLUMNS,
    FORBIDDEN_FREQUENCY,
    LINEAGE_COLUMNS,
    NON_NEGATIVE_COLUMNS,
    NULL_WHEN_TAX,
)
from costflow.transforms.arrow_ops import (
    DECIMAL,
    STRING,
    TIMESTAMP,
    any_true,
    constant,
    fill_false,
    json_array_of_flags,
    json_object_from_columns,
    null_where,
    parse_decimal,
    parse_timestamp,
)
from costflow.transforms.arrow_text import as_text, map_json
from costflow.transforms.contract import Mapped, RowError

_LINEAGE = {c.name for c in LINEAGE_COLUMNS}
COLUMNS = tuple(c for c in COST_LINE_ITEMS if c.name not in _LINEAGE)
_DECLARED = frozenset(c.name for c in COLUMNS)
EXTENSIONS = "x_ProviderColumns"  # the undeclared x_ columns of the file, as one JSON object
# Columns of a FOCUS 1.0 export a row cannot do without (FOCUS 1.0 mandatory columns used by
# the slice key and reconciliation); the rest may be absent.
REQUIRED = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
            "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd",
            "ProviderName")
# Every column FOCUS 1.0 (and each later version) says MUST be present, read from the schema.
MANDATORY = tuple(c.name for c in FOCUS_COLUMNS
                  if c.feature_level == "Mandatory" and c.in_focus("1.0"))
# A column FOCUS 1.3 deprecates (1.4 removes it) -> the 1.3 column taking its role
# [focus_columns.md #49/#58: ServiceProviderName "replaces ProviderName"; #36/#50:
# HostProviderName the successor of PublisherName's role]. A header with the successor
# satisfies the mandatory column; ProviderName is read from ServiceProviderName.
SUCCESSORS = {"ProviderName": "ServiceProviderName", "PublisherName": "HostProviderName"}
# The text some FOCUS files write for an absent value (see the module docstring).
NULL_TEXT = "NULL"
_ZONE = r"(Z|[+-]\d\d:?\d\d)$"


def missing_columns(columns: Sequence[str], required: Sequence[str]) -> list[str]:
    """``required`` columns absent from a header, a deprecated one present by its successor."""
    names = set(columns)
    return [c for c in required if c not in names and SUCCESSORS.get(c) not in names]


def is_focus_header(columns: Sequence[str]) -> bool:
    """True when a header carries the mandatory FOCUS columns of a FOCUS export."""
    return not missing_columns(columns, REQUIRED)


def text(arr: pa.Array) -> pa.Array:
    """The CSV text of a column (see `as_text`), with the literal ``NULL`` read as null."""
    values = as_text(arr)
    return null_where(values, pc.equal(values, NULL_TEXT))


def provider_columns(batch: pa.RecordBatch) -> pa.Array | None:
    """The batch's undeclared ``x_`` columns as a JSON object per row (None: it has none).

    Values are their CSV text (`text`: a Parquet number through its shortest text, ``NULL`` and
    empty values left out), so ``json.loads`` gives back what the file wrote.
    """
    names = [name for name in batch.schema.names
             if name.startswith("x_") and name not in _DECLARED]
    if not names:
        return None
    texts = pa.RecordBatch.from_arrays([text(batch.column(name)) for name in names], names=names)
    return json_object_from_columns(texts, {name: name for name in names})


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
            dead letters. Empty: rows of any provider (`row_providers` gives their slices).
        markers: the provider's own ``x_`` columns; any one of them identifies its export.
    """

    provider: ClassVar[str]
    source_format: ClassVar[str]
    basis_column: ClassVar[str] = "BilledCost"
    provider_names: ClassVar[tuple[str, ...]] = ()
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
        return missing_columns(columns, REQUIRED)

    def row_providers(self, out: dict[str, pa.Array]) -> pa.Array | None:
        """Each row's provider when a file may hold several (None: the file's provider)."""
        return None

    def complete(self, batch: pa.RecordBatch, out: dict[str, pa.Array],
                 flags: dict[str, pa.Array], errors: list[RowError]) -> None:
        """Fill provider-specific columns the export lacks (override in the provider module)."""

    def map(self, batch: pa.RecordBatch) -> Mapped:
        """Type every FOCUS column the file has; derive what the provider's export lacks."""
        n = batch.num_rows
        out, errors = typed_columns(batch)
        extensions = provider_columns(batch)
        if extensions is not None:
            out[EXTENSIONS] = extensions
        successor = out.get("ServiceProviderName")
        if successor is not None:  # a 1.3 file: the deprecated column is optional, then absent
            out["ProviderName"] = (pc.coalesce(out["ProviderName"], successor)
                                   if "ProviderName" in out else successor)
        provider = out["ProviderName"]
        if self.provider_names:
            foreign = pc.invert(fill_false(pc.is_in(provider, pa.array(self.provider_names))))
            if foreign.true_count:
                errors.append(RowError(
                    mask=foreign, column="ProviderName",
                    reason=f"is not {' or '.join(self.provider_names)}: the row belongs to "
                           f"another provider's FOCUS data, not to a {self.source_format} "
                           f"export (load each provider's rows as that provider, or the whole "
                           f"file with --provider focus)"))
        flags: dict[str, pa.Array] = {}
        _correct_letter_case(out, flags)
        self.complete(batch, out, flags, errors)
        if "BillingAccountType" not in out:
            # FOCUS 1.2 added it as Conditional: present when the provider has more than one
            # kind of billing account [FOCUS 1.2 billingaccounttype.md]. A file without it
            # (1.0, 1.1, or one kind) gets the spec's generic term, flagged.
            out["BillingAccountType"] = null_where(constant("Billing Account", n),
                                                   pc.is_null(out["BillingAccountId"]))
            flags["BillingAccountType:not_in_export"] = pc.is_valid(out["BillingAccountId"])
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
        errors.extend(rule_errors(out))
        basis = out.get("BilledCost", pa.nulls(n, DECIMAL))
        return Mapped(columns=out, source_basis=basis, errors=errors,
                      providers=self.row_providers(out))


def rule_errors(out: dict[str, pa.Array]) -> list[RowError]:
    """Rows breaking a FOCUS cross-column rule, each named by its column.

    The rules are the schema's tables, the ones the slice gate (`costflow.quality.expectations`)
    holds every slice to: a FOCUS file is another generator's data, so one row breaking a MUST
    (the FOCUS sample's AWS credit with ContractedUnitPrice -3) is a dead letter with its reason
    instead of a rejected slice. Null-or-not masks are filled: a null value breaks no rule.
    """
    errors: list[RowError] = []

    def check(mask: pa.Array, column: str, reason: str) -> None:
        mask = fill_false(mask)
        if any_true(mask):
            errors.append(RowError(mask=mask, column=column, reason=reason))

    commitment = out.get(COMMITMENT_DISCOUNT_ID)
    if commitment is not None:
        for name in COMMITMENT_DISCOUNT_DEPENDENTS:
            if name in out:
                check(pc.and_(pc.is_null(commitment), pc.is_valid(out[name])), name,
                      f"is set, but MUST be null when {COMMITMENT_DISCOUNT_ID} is null")
        for name in COMMITMENT_DISCOUNT_REQUIRED_WITH_ID:
            check(pc.and_(pc.is_valid(commitment), pc.is_null(out[name]))
                  if name in out else pc.is_valid(commitment), name,
                  f"is empty, but MUST be set when {COMMITMENT_DISCOUNT_ID} is set")
    for name in NON_NEGATIVE_COLUMNS:
        if name in out:
            check(pc.less(out[name], pa.scalar(0, out[name].type)), name,
                  "is negative, but MUST be a non-negative decimal")
    category = out["ChargeCategory"]
    tax = fill_false(pc.equal(category, "Tax"))
    for name in NULL_WHEN_TAX:
        if name in out:
            check(pc.and_(tax, pc.is_valid(out[name])), name,
                  'is set, but MUST be null when ChargeCategory is "Tax"')
    if "ChargeFrequency" in out:
        for charge, frequency in FORBIDDEN_FREQUENCY.items():
            check(pc.and_(pc.equal(category, charge), pc.equal(out["ChargeFrequency"], frequency)),
                  "ChargeFrequency", f'MUST NOT be "{frequency}" when ChargeCategory is '
                  f'"{charge}"')
    return errors


def _correct_letter_case(out: dict[str, pa.Array], flags: dict[str, pa.Array]) -> None:
    """Values of allowed-value columns that match an allowed value but for letter case."""
    for col in COLUMNS:
        values = out.get(col.name)
        if values is None or not col.allowed_values:
            continue
        allowed = pa.array(col.allowed_values, STRING)
        position = pc.index_in(pc.utf8_lower(values), value_set=pc.utf8_lower(allowed))
        wrong = pc.and_(pc.invert(fill_false(pc.is_in(values, value_set=allowed))),
                        pc.is_valid(position))
        if any_true(wrong):
            out[col.name] = pc.if_else(wrong, pc.take(allowed, position), values)
            flags[f"{col.name}:case_corrected"] = wrong
