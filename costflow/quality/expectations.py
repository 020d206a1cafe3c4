"""The great-expectations suite of `cost_line_items`, rendered from the schema declaration.

Why: the warehouse must prove every slice before it replaces the previous one. The row-level hard
rules (`costflow.transforms.validate`) dead-letter single bad rows; this suite is the slice-level
gate over what was actually staged. Neither keeps its own copy of a rule: non-null columns and
allowed values come from the column declarations, the cross-column rules (periods, commitment
columns, Tax nulls, non-negative prices, ChargeFrequency) from the rule tables of
`costflow.schemas.focus`. Only the soft sign heuristics are written here, because the FOCUS spec
states no MUST for them.

Every check is a `Check`: its GX expectation, its severity (``hard`` rejects the slice, ``soft``
becomes a warning), the columns it reads and the FOCUS rule it enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from costflow.schemas.focus import (
    COMMITMENT_DISCOUNT_DEPENDENTS,
    COMMITMENT_DISCOUNT_ID,
    COMMITMENT_DISCOUNT_REQUIRED_WITH_ID,
    COST_LINE_ITEMS,
    FORBIDDEN_FREQUENCY,
    NON_NEGATIVE_COLUMNS,
    NULL_WHEN_TAX,
    PERIOD_PAIRS,
    SERVICE_SUBCATEGORIES,
)

Severity = Literal["hard", "soft"]
# The derived column holding "ServiceCategory<US>ServiceSubcategory" in the validation frame.
PAIR_COLUMN = "_ServiceCategoryPair"
PAIR_SEPARATOR = "\x1f"
# Decimal columns enter the validation frame as their exact sign (costflow.quality.gate), so
# sign rules are set membership: vectorized, where GX's "between" is row-wise Python.
NEGATIVE, POSITIVE = -1.0, 1.0
HARD: Severity = "hard"
SOFT: Severity = "soft"


@dataclass(frozen=True)
class Check:
    """One expectation of the suite.

    Attributes:
        name: stable id, e.g. ``not_null:BilledCost`` (shown in reports).
        severity: ``hard`` rejects the slice; ``soft`` is a warning.
        expectation: GX expectation class name (``great_expectations.expectations``).
        kwargs: its arguments.
        columns: the columns it reads (shown beside sample rows).
        rule: the FOCUS requirement it enforces, in words.
    """

    name: str
    severity: Severity
    expectation: str
    kwargs: dict[str, Any]
    columns: tuple[str, ...]
    rule: str


def _when(condition: str) -> dict[str, Any]:
    # A pandas row condition (trusted text built from declared names and values only).
    return {"row_condition": condition, "condition_parser": "pandas"}


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_checks(columns: Sequence[str] | None = None) -> list[Check]:
    """Every check of the suite, restricted to ``columns`` when given (e.g. a FOCUS export)."""
    have = set(columns) if columns is not None else set(COST_LINE_ITEMS.names)
    checks: list[Check] = []
    for col in COST_LINE_ITEMS:
        if col.name not in have:
            continue
        if not col.nullable:
            checks.append(Check(f"not_null:{col.name}", HARD, "ExpectColumnValuesToNotBeNull",
                                {"column": col.name}, (col.name,),
                                f"{col.name} MUST NOT be null"))
        if col.allowed_values:
            checks.append(Check(
                f"allowed_values:{col.name}", HARD, "ExpectColumnValuesToBeInSet",
                {"column": col.name, "value_set": list(col.allowed_values)}, (col.name,),
                f"{col.name} MUST be one of: {', '.join(col.allowed_values[:6])}"
                + ("..." if len(col.allowed_values) > 6 else "")
                + (" or null" if col.nullable else "")))
    if {"ServiceCategory", "ServiceSubcategory"} <= have:
        # One derived column (category + PAIR_SEPARATOR + subcategory, null when either is
        # null) checked against the declared pairs: GX's pair expectation is row-wise Python.
        pairs = [f"{cat}{PAIR_SEPARATOR}{sub}" for cat, subs in SERVICE_SUBCATEGORIES.items()
                 for sub in subs]
        checks.append(Check(
            "subcategory_in_category", HARD, "ExpectColumnValuesToBeInSet",
            {"column": PAIR_COLUMN, "value_set": pairs},
            ("ServiceCategory", "ServiceSubcategory"),
            "ServiceSubcategory MUST belong to its ServiceCategory"))
    for start, end in PERIOD_PAIRS:
        if {start, end} <= have:
            checks.append(Check(
                f"period_order:{end}", HARD, "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": end, "column_B": start, "or_equal": False,
                 "ignore_row_if": "either_value_is_missing"}, (start, end),
                f"{end} MUST be after {start} (periods are [start, end))"))
    if COMMITMENT_DISCOUNT_ID in have:
        for dep in COMMITMENT_DISCOUNT_DEPENDENTS:
            if dep in have:
                checks.append(Check(
                    f"null_without_commitment:{dep}", HARD, "ExpectColumnValuesToBeNull",
                    {"column": dep, **_when(f"{COMMITMENT_DISCOUNT_ID}.isnull()")},
                    (COMMITMENT_DISCOUNT_ID, dep),
                    f"{dep} MUST be null when {COMMITMENT_DISCOUNT_ID} is null"))
        for dep in COMMITMENT_DISCOUNT_REQUIRED_WITH_ID:
            if dep in have:
                checks.append(Check(
                    f"set_with_commitment:{dep}", HARD, "ExpectColumnValuesToNotBeNull",
                    {"column": dep, **_when(f"{COMMITMENT_DISCOUNT_ID}.notnull()")},
                    (COMMITMENT_DISCOUNT_ID, dep),
                    f"{dep} MUST NOT be null when {COMMITMENT_DISCOUNT_ID} is not null"))
    for name in NON_NEGATIVE_COLUMNS:
        if name in have:
            checks.append(Check(f"non_negative:{name}", HARD, "ExpectColumnValuesToNotBeInSet",
                                {"column": name, "value_set": [NEGATIVE]}, (name,),
                                f"{name} MUST be a non-negative decimal"))
    if "ChargeCategory" in have:
        for name in NULL_WHEN_TAX:
            if name in have:
                checks.append(Check(
                    f"null_on_tax:{name}", HARD, "ExpectColumnValuesToBeNull",
                    {"column": name, **_when('ChargeCategory == "Tax"')},
                    ("ChargeCategory", name), f'{name} MUST be null when ChargeCategory is "Tax"'))
        for category, frequency in FORBIDDEN_FREQUENCY.items():
            if "ChargeFrequency" in have:
                checks.append(Check(
                    f"frequency:{category}", HARD, "ExpectColumnValuesToNotBeInSet",
                    {"column": "ChargeFrequency", "value_set": [frequency],
                     **_when(f"ChargeCategory == {_q(category)}")},
                    ("ChargeCategory", "ChargeFrequency"),
                    f'ChargeFrequency MUST NOT be "{frequency}" when ChargeCategory is '
                    f'"{category}"'))
    checks.extend(_soft_sign_checks(have))
    checks.extend(_flag_checks(have))
    return checks


# Row flags (x_DataQualityFlags) that the rows carry into the warehouse and the gate counts per
# slice into a run warning: the rows are loaded, but someone should look at them.
FLAGS_COLUMN = "x_DataQualityFlags"
FLAG_PREFIX = "_Flag_"
WARNED_FLAGS = {
    "LineItemId:duplicate": "a line-item id is expected once per slice (CUR: per time "
                            "interval); a repeat, in its own file or another file of the slice, "
                            "is usually the same line item loaded twice",
    "ChargePeriodStart:outside_billing_period": "a charge is expected to start inside its "
                                                "billing period (Corrections excepted)",
    "BillingPeriod:not_one_month": "a billing period is expected to be one month long",
}


def flag_column(flag: str) -> str:
    """The derived validation-frame column: "set" on rows carrying ``flag``, else null."""
    return FLAG_PREFIX + "".join(c if c.isalnum() else "_" for c in flag)


def _flag_checks(have: set[str]) -> list[Check]:
    if FLAGS_COLUMN not in have:
        return []
    return [Check(f"flag:{flag}", SOFT, "ExpectColumnValuesToBeNull",
                  {"column": flag_column(flag)}, (FLAGS_COLUMN,), rule)
            for flag, rule in WARNED_FLAGS.items()]


def _soft_sign_checks(have: set[str]) -> list[Check]:
    """Sign expectations per ChargeCategory. FOCUS 1.2 makes none of them a MUST (a credit is a
    reduction, purchases and taxes are charges, corrections may go either way), so they warn."""
    if not {"ChargeCategory", "ChargeClass", "BilledCost"} <= have:
        return []
    not_correction = "ChargeClass.isnull()"
    out = [Check("sign:Credit", SOFT, "ExpectColumnValuesToNotBeInSet",
                 {"column": "BilledCost", "value_set": [POSITIVE],
                  **_when(f'ChargeCategory == "Credit" and {not_correction}')},
                 ("ChargeCategory", "BilledCost"),
                 "a Credit reduces cost: BilledCost is expected to be <= 0")]
    for category in ("Purchase", "Tax"):
        out.append(Check(f"sign:{category}", SOFT, "ExpectColumnValuesToNotBeInSet",
                         {"column": "BilledCost", "value_set": [NEGATIVE],
                          **_when(f"ChargeCategory == {_q(category)} and {not_correction}")},
                         ("ChargeCategory", "ChargeClass", "BilledCost"),
                         f"a {category} that is not a Correction is expected to cost >= 0"))
    if "ServiceCategory" in have:
        out.append(Check("service_mapped", SOFT, "ExpectColumnValuesToNotBeInSet",
                         {"column": "ServiceCategory", "value_set": ["Other"]},
                         ("ServiceName", "ServiceCategory") if "ServiceName" in have
                         else ("ServiceCategory",),
                         "every service is expected to map to a real ServiceCategory "
                         "(\"Other\" means the provider's service is not in our mapping yet)"))
    return out


def needed_columns(checks: Sequence[Check]) -> list[str]:
    """Columns a suite reads, in declaration order (what the gate loads from staged files)."""
    wanted = {c for check in checks for c in check.columns}
    return [name for name in COST_LINE_ITEMS.names if name in wanted]
