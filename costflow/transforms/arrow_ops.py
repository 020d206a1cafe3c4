"""Vectorized building blocks shared by every provider normalizer.

Normalizers receive record batches whose columns are all strings and must turn them into typed
FOCUS columns without per-row Python: a CUR month is millions of rows. The helpers here wrap the
`pyarrow.compute` idioms every provider needs (exact decimals, UTC timestamps, lookup tables, JSON
objects built from columns) together with the traps found while writing them, so that each
normalizer reads as a list of mappings rather than a list of workarounds.

Parsing never raises on bad data: a value that cannot be converted becomes null and is reported
as a `RowError` whose mask marks the offending rows, so the shared finishing step can dead-letter
exactly those rows. Per-element Python runs only for a batch whose vectorized cast failed, and
then only once per distinct value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE, LogicalType
from costflow.schemas.render import ARROW_TYPES
from costflow.transforms.contract import RowError

STRING = ARROW_TYPES[LogicalType.STRING]
DECIMAL = ARROW_TYPES[LogicalType.DECIMAL]      # decimal128(38, 18)
TIMESTAMP = ARROW_TYPES[LogicalType.TIMESTAMP]  # timestamp('us', tz='UTC')
# Arithmetic on two decimal128(38, 18) would need precision 39, which decimal128 cannot hold, so
# sums and differences are computed in decimal256 and checked back into DECIMAL.
_WIDE_DECIMAL = pa.decimal256(DECIMAL_PRECISION, DECIMAL_SCALE)
_DECIMAL_MAX = Decimal("9" * (DECIMAL_PRECISION - DECIMAL_SCALE) + "." + "9" * DECIMAL_SCALE)

# Reasons read after the column name ("lineItem/UnblendedCost is not a decimal number ...").
REASON_NOT_A_NUMBER = (
    "is not a decimal number (expected plain or exponent notation, e.g. 0.25 or 4.97e-9)")
REASON_TOO_PRECISE = (
    f"has more than {DECIMAL_SCALE} decimal places and would have to be rounded "
    f"(expected at most {DECIMAL_SCALE} decimal places, the scale of DECIMAL("
    f"{DECIMAL_PRECISION}, {DECIMAL_SCALE}))")
REASON_TOO_LARGE = (
    f"is too large for DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE}) "
    f"(expected at most {DECIMAL_PRECISION - DECIMAL_SCALE} digits before the decimal point)")
REASON_NOT_ASCII_DIGITS = (
    "is not a decimal number written with ASCII digits (expected the digits 0-9, e.g. 0.25; "
    "it holds other digits, such as Arabic-Indic or full-width ones)")
REASON_EXPONENT_OUT_OF_RANGE = (
    f"has an exponent out of range (expected a number whose exponent keeps it within "
    f"DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE}), e.g. 4.97e-9)")
REASON_NOT_A_TIMESTAMP = (
    "is not an ISO 8601 timestamp with a time zone (expected e.g. 2023-11-01T00:00:00Z, "
    "2023-11-01T00:00:00.000Z or 2023-11-01T02:00:00+02:00, at most microsecond precision)")

# Indexed by `_classify_decimal`.
DECIMAL_REASONS = (REASON_NOT_A_NUMBER, REASON_TOO_PRECISE, REASON_TOO_LARGE,
                   REASON_NOT_ASCII_DIGITS, REASON_EXPONENT_OUT_OF_RANGE)
# What Arrow's decimal parser accepts, used only to explain a failure (Arrow stays the judge).
_DECIMAL_SYNTAX = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)
# The same syntax with any Unicode decimal digit (what Python's Decimal would accept).
_UNICODE_DECIMAL_SYNTAX = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
# JSON (RFC 8259 §7) requires these escapes; every other control character becomes \u00XX.
_SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def column(batch: pa.RecordBatch, name: str, type_: pa.DataType = STRING) -> pa.Array:
    """The column ``name`` of ``batch``, or an all-null array when the export lacks it.

    CUR-style exports add and drop columns from month to month; a missing optional column means
    "no value on any row", not an error.
    """
    index = batch.schema.get_field_index(name)
    return batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, type_)


def constant(value: object, length: int, type_: pa.DataType = STRING) -> pa.Array:
    """An array repeating ``value`` (e.g. ProviderName "AWS"), without a Python list per row."""
    return pa.repeat(pa.scalar(value, type_), length)


def any_true(mask: pa.Array) -> bool:
    """True when at least one element of a boolean array is True (nulls count as False)."""
    return len(mask) > 0 and pc.any(mask).as_py() is True


def fill_false(mask: pa.Array) -> pa.BooleanArray:
    """A boolean mask with nulls turned into False, as `RowError` masks must be."""
    return mask if mask.null_count == 0 else pc.fill_null(mask, False)


def null_where(values: pa.Array, mask: pa.Array) -> pa.Array:
    """``values`` with the elements where ``mask`` is True replaced by null."""
    if not any_true(mask):
        return values
    return pc.if_else(fill_false(mask), pa.scalar(None, values.type), values)


def _null_if_empty(arr: pa.Array) -> pa.Array:
    # Empty strings mean "no value"; readers usually null them already, this is the safety net.
    return null_where(arr, pc.equal(arr, ""))


def _errors_by_reason(bad_rows: pa.Array, reasons_by_row: pa.Array, column_name: str,
                      reasons: Sequence[str]) -> list[RowError]:
    errors = []
    for code, reason in enumerate(reasons):
        mask = fill_false(pc.and_(bad_rows, pc.equal(reasons_by_row, code)))
        if any_true(mask):
            errors.append(RowError(mask=mask, column=column_name, reason=reason))
    return errors


def _parse_slowly(arr: pa.Array, target: pa.DataType, column_name: str,
                  classify: Callable[[str], int], reasons: Sequence[str],
                  ) -> tuple[pa.Array, list[RowError]]:
    """Locate the values Arrow cannot cast, once per distinct value, and null them."""
    arr = _null_if_empty(arr)
    try:
        return pc.cast(arr, target), []
    except pa.ArrowInvalid:
        pass
    encoded = pc.dictionary_encode(arr)
    distinct = encoded.dictionary
    codes: list[int] = []  # -1 = parses, else the index of its reason
    for text in distinct.to_pylist():
        try:
            pc.cast(pa.array([text], STRING), target)
            codes.append(-1)
        except pa.ArrowInvalid:
            codes.append(classify(text))
    code_array = pa.array(codes, pa.int8())
    bad_distinct = pc.not_equal(code_array, -1)
    parsed = pc.cast(null_where(distinct, bad_distinct), target)
    values = pc.take(parsed, encoded.indices)
    bad_rows = fill_false(pc.take(bad_distinct, encoded.indices))
    reasons_by_row = pc.take(code_array, encoded.indices)
    return values, _errors_by_reason(bad_rows, reasons_by_row, column_name, reasons)


def _classify_decimal(text: str) -> int:
    """Why Arrow rejected ``text``: an index into `DECIMAL_REASONS`.

    0 = not a number, 1 = too many decimals, 2 = too large, 3 = digits that are not ASCII
    (Python's Decimal reads Arabic-Indic and full-width digits; exports and Arrow do not),
    4 = the exponent is out of range (``0e400``: a number, but not one Arrow can scale).
    """
    if not _DECIMAL_SYNTAX.match(text):
        return 3 if not text.isascii() and _UNICODE_DECIMAL_SYNTAX.match(text) else 0
    with localcontext() as ctx:
        ctx.prec = 2 * DECIMAL_PRECISION + 10
        try:
            value = Decimal(text)
            if abs(value) > _DECIMAL_MAX:
                return 2
            scaled = value.scaleb(DECIMAL_SCALE)
            if scaled != scaled.to_integral_value():
                return 1
        except (InvalidOperation, ArithmeticError):
            return 4
    return 4  # fits DECIMAL, yet Arrow refused it: its exponent is beyond what Arrow scales


def parse_decimal(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Parse decimal text exactly into DECIMAL (decimal128(38, 18)).

    Arrow parses plain and exponent notation (``0.25``, ``4.97E-9``) exactly, and refuses values
    it would have to round: ``1.0E-19`` is an error, never a silent zero. Trailing zeros beyond 18
    places (``0.1000000000000000000``) are exact and accepted. Empty strings are null.

    Args:
        arr: string array, nulls for missing values.
        column_name: the source column, named in the errors.

    Returns:
        The decimals (null where absent or unparseable) and one `RowError` per kind of failure
        (not a number / too many decimal places / too large); empty when every value parsed.
    """
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), DECIMAL), []
    return _per_distinct_text(arr, lambda texts: _parse_decimal(texts, column_name))


def _parse_decimal(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    errors: list[RowError] = []
    try:
        values = pc.cast(arr, DECIMAL)
    except pa.ArrowInvalid:
        values, errors = _parse_slowly(arr, DECIMAL, column_name, _classify_decimal,
                                       DECIMAL_REASONS)
    return _refuse_wrapped_exponents(arr, values, errors, column_name)


# Arrow's string -> decimal128 cast wraps around instead of failing for some texts in exponent
# notation ("1e30" and "12345678901234567890123456e-3" both become 95513692080783205441.9...,
# pyarrow 25). So every parsed text with an exponent is sized as a double (which cannot wrap),
# and those within a factor 10 of the limit are checked exactly, once per distinct value.
_EXPONENT = r"[eE]"
_NEAR_LIMIT = 1e19


def _refuse_wrapped_exponents(arr: pa.Array, values: pa.Array, errors: list[RowError],
                              column_name: str) -> tuple[pa.Array, list[RowError]]:
    exponent = fill_false(pc.and_(pc.match_substring_regex(arr, _EXPONENT),
                                  pc.is_valid(values)))  # parsed, maybe wrongly
    if not any_true(exponent):
        return values, errors
    texts = arr.filter(exponent)
    near = texts.filter(pc.greater_equal(pc.abs(pc.cast(texts, pa.float64())), _NEAR_LIMIT))
    too_large = []
    for text in pc.unique(near).to_pylist():
        with localcontext() as ctx:
            ctx.prec = 2 * DECIMAL_PRECISION + 10
            if abs(Decimal(text)) > _DECIMAL_MAX:
                too_large.append(text)
    if not too_large:
        return values, errors
    mask = fill_false(pc.is_in(arr, value_set=pa.array(too_large, STRING)))
    return null_where(values, mask), [
        *errors, RowError(mask=mask, column=column_name, reason=REASON_TOO_LARGE)]


def parse_quantity(arr: pa.Array, column_name: str,
                   ) -> tuple[pa.Array, pa.Array, list[RowError]]:
    """Parse a quantity (usage, not money) into DECIMAL, rounding beyond 18 decimal places.

    Some providers compute quantities in floating point: GCP's
    ``usage.amount_in_pricing_units`` holds values such as ``1.1574074074074073e-05`` (21
    places). A quantity is not reconciled money, so rounding it half-even at 1e-18 changes
    nothing a user can see, while refusing it would dead-letter a row whose cost is fine. Money
    keeps `parse_decimal`'s refusal to round. Rounding happens once per distinct value; text that
    is not a number, or too large, is still a `RowError`.

    Returns:
        The decimals, a mask of the rows whose value was rounded, and the errors.
    """
    nothing_rounded = pa.repeat(pa.scalar(False), len(arr))
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), DECIMAL), nothing_rounded, []
    try:
        values, errors = _per_distinct_text(arr, lambda texts: _refuse_wrapped_exponents(
            texts, pc.cast(texts, DECIMAL), [], column_name))
        return values, nothing_rounded, errors
    except pa.ArrowInvalid:
        pass
    encoded = pc.dictionary_encode(_null_if_empty(arr))
    texts, rounded = [], []
    quantum = Decimal(1).scaleb(-DECIMAL_SCALE)
    for text in encoded.dictionary.to_pylist():
        fixed = text
        if _DECIMAL_SYNTAX.match(text) and _classify_decimal(text) == 1:  # too many places
            with localcontext() as ctx:
                ctx.prec = 2 * DECIMAL_PRECISION + 10
                fixed = str(Decimal(text).quantize(quantum, rounding=ROUND_HALF_EVEN))
        texts.append(fixed)
        rounded.append(fixed != text)
    values, errors = parse_decimal(pc.take(pa.array(texts, STRING), encoded.indices),
                                   column_name)
    return values, fill_false(pc.take(pa.array(rounded, pa.bool_()), encoded.indices)), errors


def parse_timestamp(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Parse ISO 8601 text with a zone (``Z`` or ``+hh:mm``) into UTC microsecond timestamps.

    Offsets are converted to UTC. Text without a zone is rejected rather than assumed to be UTC:
    billing exports always state the zone, so a zoneless value means the column is not what it
    claims to be. Empty strings are null.

    Returns:
        The timestamps (null where absent or unparseable) and a `RowError` list, empty when every
        value parsed.
    """
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), TIMESTAMP), []
    return _per_distinct_text(arr, lambda texts: _parse_timestamp(texts, column_name))


def _parse_timestamp(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    try:
        return pc.cast(arr, TIMESTAMP), []
    except pa.ArrowInvalid:
        return _parse_slowly(arr, TIMESTAMP, column_name, lambda _text: 0,
                             (REASON_NOT_A_TIMESTAMP,))


def _per_distinct_text(arr: pa.Array, parse: Callable[[pa.Array], tuple[pa.Array, list[RowError]]],
                       ) -> tuple[pa.Array, list[RowError]]:
    """``parse(arr)`` (values and row errors), computed once per distinct text when texts
    repeat: an hour's start on every row of that hour, a rate or a unit price on thousands.
    Mostly distinct texts are parsed directly."""
    arr, encoded = _encoded_if_repeating(arr)
    if encoded is None:
        return parse(arr)
    values, errors = parse(encoded.dictionary)
    return pc.take(values, encoded.indices), [
        RowError(mask=fill_false(pc.take(e.mask, encoded.indices)), column=e.column,
                 reason=e.reason) for e in errors]


def _checked_decimal(wide: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    too_large = fill_false(pc.greater(pc.abs(wide), pa.scalar(_DECIMAL_MAX, _WIDE_DECIMAL)))
    errors = []
    if any_true(too_large):
        errors.append(RowError(mask=too_large, column=column_name, reason=REASON_TOO_LARGE))
        wide = null_where(wide, too_large)
    return pc.cast(wide, DECIMAL), errors


def decimal_add(a: pa.Array, b: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Exact ``a + b`` of two DECIMAL arrays (null when either is null).

    decimal128(38, 18) + decimal128(38, 18) is not computable in decimal128 (Arrow asks for
    precision 39), so the sum is computed in decimal256 and checked back into DECIMAL; a result
    that does not fit is null and reported against ``column_name``.
    """
    return _checked_decimal(pc.add(pc.cast(a, _WIDE_DECIMAL), pc.cast(b, _WIDE_DECIMAL)),
                            column_name)


def decimal_subtract(a: pa.Array, b: pa.Array, column_name: str,
                     ) -> tuple[pa.Array, list[RowError]]:
    """Exact ``a - b`` of two DECIMAL arrays; see `decimal_add`."""
    return _checked_decimal(
        pc.subtract(pc.cast(a, _WIDE_DECIMAL), pc.cast(b, _WIDE_DECIMAL)), column_name)


def index_in(arr: pa.Array, keys: Sequence[str]) -> pa.Array:
    """Position of each value of ``arr`` in ``keys`` (int32; null when absent or null).

    One hash lookup per row; several attributes can then be taken from the same positions.
    """
    return pc.index_in(arr, value_set=pa.array(list(keys), STRING))


def take_values(positions: pa.Array, values: Sequence[object], type_: pa.DataType = STRING,
                default: object = None) -> pa.Array:
    """``values[position]`` per row; ``default`` where the position is null (key not found)."""
    out = pc.take(pa.array(list(values), type_), positions)
    if default is None or positions.null_count == 0:
        return out
    return pc.if_else(pc.is_null(positions), pa.scalar(default, type_), out)


def map_values(arr: pa.Array, mapping: Mapping[str, object], default: object = None,
               type_: pa.DataType = STRING) -> pa.Array:
    """Translate each value through ``mapping`` (a dictionary lookup, not a row loop).

    Values absent from ``mapping`` (and nulls) become ``default``.
    """
    return take_values(index_in(arr, list(mapping)), list(mapping.values()), type_, default)


def on_distinct(arr: pa.Array, elementwise: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``elementwise(arr)``, computed once per distinct value when the values repeat.

    Export columns mostly do (a resource's name on each of its hourly rows, a few label
    values over thousands of rows): string kernels (regular expressions, escaping) then run
    on the few distinct values, ~30x faster on a GCP batch. ``elementwise`` must map each
    value on its own, null to null. Mostly distinct values are computed directly.
    """
    arr, encoded = _encoded_if_repeating(arr)
    if encoded is None:
        return elementwise(arr)
    return pc.take(elementwise(encoded.dictionary), encoded.indices)


def whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one contiguous array (a chunked column's chunks combined)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _encoded_if_repeating(arr: pa.Array | pa.ChunkedArray,
                          ) -> tuple[pa.Array, pa.DictionaryArray | None]:
    """``arr`` in one piece, and its dictionary encoding when values repeat enough for work
    on the distinct values to pay (at most half as many as rows); else None."""
    arr = whole(arr)
    if len(arr) < _DISTINCT_MIN_ROWS:
        return arr, None
    encoded = pc.dictionary_encode(arr)
    return arr, (encoded if len(encoded.dictionary) * 2 <= len(arr) else None)


_DISTINCT_MIN_ROWS = 256


def json_escape(arr: pa.Array) -> pa.Array:
    """Escape string values for use inside a JSON string literal (RFC 8259 §7).

    Backslash first (the later escapes add backslashes of their own), then the quote, then the
    control characters U+0000..U+001F. Each pass runs only when a value needs it, so clean data
    costs one scan per character class, over the distinct values (`on_distinct`). Non-ASCII
    text stays as UTF-8, which JSON allows.
    """
    return on_distinct(arr, _json_escape)


def _json_escape(arr: pa.Array) -> pa.Array:
    if any_true(pc.match_substring(arr, "\\")):
        arr = pc.replace_substring(arr, "\\", "\\\\")
    if any_true(pc.match_substring(arr, '"')):
        arr = pc.replace_substring(arr, '"', '\\"')
    if any_true(pc.match_substring_regex(arr, r"[\x00-\x1f]")):
        for code in range(0x20):
            char = chr(code)
            if any_true(pc.match_substring(arr, char)):
                arr = pc.replace_substring(arr, char, _SHORT_ESCAPES.get(char, f"\\u{code:04x}"))
    return arr


def _join_pieces(pieces: list[pa.Array], opening: str, closing: str, length: int) -> pa.Array:
    """Wrap per-row concatenations of ``,item`` pieces in brackets; null when a row has none.

    A null piece means "nothing here". Nulls are joined as '' (``null_handling="replace"``):
    ``null_handling="skip"`` returns a SHORTER array when a row has only nulls (pyarrow 14 and
    25), which would misalign every later row.
    """
    if not pieces:
        return pa.nulls(length, STRING)
    joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace",
                                         null_replacement="")
    wrapped = pc.binary_join_element_wise(
        opening, pc.utf8_slice_codeunits(joined, 1), closing, "")  # drop the leading comma
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, STRING), wrapped)


def _distinct_combinations(codes: list[pa.Array]) -> tuple[pa.Array, list[pa.Array]]:
    """Number the distinct combinations of dictionary codes that rows carry across columns.

    Args:
        codes: per column, the int32 dictionary index of each row (null = no value).

    Returns:
        The combination number of each row, and per column the code each combination holds
        (null = no value), so per-row work can be done once per combination.
    """
    rows, width = len(codes[0]), len(codes)
    matrix = np.empty((rows, width), dtype=np.int32)
    for i, column_codes in enumerate(codes):
        matrix[:, i] = pc.fill_null(column_codes, -1).to_numpy()
    keys = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4 * width), rows, [None, pa.py_buffer(matrix)])
    encoded = pc.dictionary_encode(keys)
    distinct = encoded.dictionary
    flat = np.frombuffer(distinct.buffers()[1], dtype=np.int32,
                         count=(distinct.offset + len(distinct)) * width)
    combos = flat[distinct.offset * width:].reshape(len(distinct), width)
    return encoded.indices, [pa.array(combos[:, i], mask=combos[:, i] < 0)
                             for i in range(width)]


def json_object_from_columns(batch: pa.RecordBatch, keys: Mapping[str, str]) -> pa.Array:
    """A JSON object per row from several string columns (e.g. every ``resourceTags/*``).

    Rows of one resource repeat the same tags hour after hour, so each column's distinct values
    are escaped once and each distinct combination of values becomes JSON text once; `take`
    then spreads the text to the rows. The cost follows the number of distinct combinations,
    not rows x tag columns.

    Args:
        batch: the source batch.
        keys: JSON key -> source column name, in the order the keys should appear.

    Returns:
        A string array of JSON objects holding the row's non-null, non-empty values; null for a
        row that has none. Keys and values are escaped, so ``json.loads`` gives back exactly the
        source text.
    """
    pieces: list[pa.Array] = []
    codes: list[pa.Array] = []
    for key, name in keys.items():
        values = column(batch, name)
        if values.null_count == len(values):
            continue
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary
        prefix = "," + json.dumps(key, ensure_ascii=False) + ':"'
        piece = pc.binary_join_element_wise(prefix, json_escape(distinct), '"', "")
        pieces.append(null_where(piece, pc.equal(distinct, "")))  # an empty value is no tag
        codes.append(encoded.indices)
    if not pieces:
        return pa.nulls(batch.num_rows, STRING)
    combination, combination_codes = _distinct_combinations(codes)
    per_combination = [pc.take(piece, code)
                       for piece, code in zip(pieces, combination_codes, strict=True)]
    text = _join_pieces(per_combination, "{", "}", len(combination_codes[0]))
    return pc.take(text, combination)


def json_array_of_flags(flags: Mapping[str, pa.Array], length: int) -> pa.Array:
    """A JSON array per row naming the flags whose mask is True there; null when none is.

    Used for ``x_DataQualityFlags``, e.g. ``["ServiceCategory:unmapped"]``.
    """
    pieces = []
    for flag, mask in flags.items():
        if any_true(mask):
            pieces.append(pc.if_else(fill_false(mask), "," + json.dumps(flag, ensure_ascii=False),
                                     pa.scalar(None, STRING)))
    return _join_pieces(pieces, "[", "]", length)


def add_flags(existing: pa.Array, flags: Mapping[str, pa.Array]) -> pa.Array:
    """``x_DataQualityFlags`` (JSON arrays or null) with more flags appended where their mask
    is True; rows and flags without a mask are returned unchanged."""
    if isinstance(existing, pa.ChunkedArray):
        existing = existing.combine_chunks()
    extra = json_array_of_flags(flags, len(existing))
    if extra.null_count == len(extra):
        return existing
    present = fill_false(pc.and_(pc.is_valid(existing), pc.not_equal(existing, "[]")))
    # '["a"]' + '["b"]' -> '["a","b"]': the first without its ']', the second without its '['.
    both = pc.binary_join_element_wise(pc.utf8_slice_codeunits(existing, 0, -1),
                                       pc.utf8_slice_codeunits(extra, 1), ",")
    merged = pc.if_else(present, both, extra)
    return pc.if_else(pc.is_null(extra), existing, merged)
