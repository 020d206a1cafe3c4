"""Azure export value formats: dates, tags JSON, and exact decimal products.

Why this module exists: the same Azure column is written differently by different exports.
``Date`` is ``MM/dd/yyyy`` in EA/MCA exports, ``M/d/yyyy`` in others and ``yyyy-MM-dd`` in the
legacy pay-as-you-go export [PF §3.1]; ``Tags`` is JSON that often lacks its outer braces
(``"k": "v","k2": "v2"``, OpenCost's ``encloseInBrackets``) [PF §3.1]. These helpers parse them
vectorized (dates) or once per distinct value (tags: a batch repeats the same few tag sets), and
report what they cannot parse as `RowError`s naming the column.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import DECIMAL, STRING, TIMESTAMP, any_true, fill_false
from costflow.transforms.contract import RowError

REASON_NOT_A_DATE = ("is not a date Azure writes (expected MM/dd/yyyy, M/d/yyyy or yyyy-MM-dd, "
                     "e.g. 09/21/2023, 9/2/2023 or 2023-09-21, optionally with a time)")
REASON_TAGS = ("is not a JSON object of tags (expected e.g. {\"env\": \"prod\"} or, as Azure "
               "often writes it, \"env\": \"prod\",\"team\": \"a\" without the braces)")
_PRODUCT = pa.decimal256(76, 36)
_FACTOR = pa.decimal256(37, 18)


def parse_date(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Azure dates (US month-first or ISO, optional time of day) -> UTC midnight timestamps.

    The date part is kept; daily exports carry no meaningful time. Unparseable values are null
    and reported.
    """
    text = pc.utf8_trim_whitespace(arr)
    iso = fill_false(pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}"))
    iso_value = pc.strptime(pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="us",
                            error_is_null=True)
    # Month-first with an optional time ("9/2/2023", "09/21/2023 00:00:00").
    us_text = pc.replace_substring_regex(text, r"^(\d{1,2}/\d{1,2}/\d{4})([ T].*)?$", r"\1")
    us_value = pc.strptime(us_text, format="%m/%d/%Y", unit="us", error_is_null=True)
    value = pc.if_else(iso, iso_value, us_value)
    bad = fill_false(pc.and_(pc.is_valid(text), pc.is_null(value)))
    bad = fill_false(pc.and_(bad, pc.not_equal(text, "")))
    errors = [RowError(mask=bad, column=column_name, reason=REASON_NOT_A_DATE)] if any_true(
        bad) else []
    return pc.cast(value, TIMESTAMP), errors


def _normalize_tags(text: str) -> str | None:
    body = text.strip()
    if not body:
        return None
    if not body.startswith("{"):
        body = "{" + body + "}"  # opencost encloseInBrackets [PF §3.1]
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    tags = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in value.items()}
    return json.dumps(tags, ensure_ascii=False, separators=(",", ":")) if tags else None


def normalize_tags(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Azure ``Tags`` text -> a JSON object with string values, once per distinct value.

    Braces are added when missing; an empty object or empty text is null; non-string values
    are kept as their JSON text. Anything that is not a JSON object is null and reported.
    """
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), STRING), []
    encoded = pc.dictionary_encode(arr)
    normalized, bad = [], []
    for text in encoded.dictionary.to_pylist():
        try:
            normalized.append(_normalize_tags(text))
            bad.append(False)
        except (ValueError, TypeError):
            normalized.append(None)
            bad.append(True)
    values = pc.take(pa.array(normalized, STRING), encoded.indices)
    mask = fill_false(pc.take(pa.array(bad, pa.bool_()), encoded.indices))
    errors = [RowError(mask=mask, column=column_name, reason=REASON_TAGS)] if any_true(
        mask) else []
    return values, errors


def multiply(a: pa.Array, b: pa.Array) -> pa.Array:
    """``a x b`` of two DECIMAL arrays, rounded half-even to DECIMAL's 18 places.

    Used for derived columns only (ListCost = PayGPrice x Quantity, ContractedCost); the invoice
    basis is never computed. decimal128(38,18) x decimal128(38,18) needs precision 77, so both
    sides are narrowed to decimal256(37, 18) (values above 10^19 do not occur in exports).
    """
    product = pc.multiply(pc.cast(a, _FACTOR), pc.cast(b, _FACTOR))
    return pc.cast(pc.round(pc.cast(product, _PRODUCT), ndigits=18,
                            round_mode="half_to_even"), DECIMAL)


def divide(a: pa.Array, b: pa.Array) -> pa.Array:
    """``a / b`` rounded to 18 places, for ``b`` a whole number (a pricing block size)."""
    quotient = pc.divide(pc.cast(a, pa.decimal256(40, 22)), pc.cast(b, pa.decimal256(20, 0)))
    return pc.cast(pc.round(quotient, ndigits=18, round_mode="half_to_even"), DECIMAL)


def zero(length: int) -> pa.Array:
    return pa.repeat(pa.scalar(Decimal(0), DECIMAL), length)
