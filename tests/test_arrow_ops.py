"""The shared vectorized helpers: exact decimals, UTC timestamps, lookups and JSON building."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from costflow.transforms import arrow_ops as ops

STR = pa.string()


def _strings(*values: str | None) -> pa.Array:
    return pa.array(list(values), STR)


def _mask(errors, reason: str) -> list[bool]:
    (match,) = [e for e in errors if e.reason == reason]
    return match.mask.to_pylist()


def test_column_returns_the_column_or_an_aligned_null_array():
    batch = pa.record_batch({"lineItem/UnblendedCost": _strings("1.5", None, "2")})
    assert ops.column(batch, "lineItem/UnblendedCost").to_pylist() == ["1.5", None, "2"]
    absent = ops.column(batch, "savingsPlan/SavingsPlanARN")
    assert absent.type == STR and absent.to_pylist() == [None, None, None]


def test_constant_repeats_a_typed_value():
    values = ops.constant("AWS", 3)
    assert values.type == STR and values.to_pylist() == ["AWS", "AWS", "AWS"]
    zero = ops.constant(Decimal(0), 2, ops.DECIMAL)
    assert zero.type == pa.decimal128(38, 18) and zero.to_pylist() == [Decimal(0), Decimal(0)]


@pytest.mark.parametrize(("text", "expected"), [
    ("0.0", Decimal("0")),
    ("4.97e-9", Decimal("0.00000000497")),
    ("4.97E-9", Decimal("0.00000000497")),
    ("7.0E-10", Decimal("0.0000000007")),
    ("-1.5", Decimal("-1.5")),
    ("+2", Decimal("2")),
    (".5", Decimal("0.5")),
    ("1E+3", Decimal("1000")),
    ("0.123456789012345678", Decimal("0.123456789012345678")),
    ("0.1234567890123456780", Decimal("0.123456789012345678")),  # exact: only a trailing zero
    ("99999999999999999999.999999999999999999", Decimal("99999999999999999999.999999999999999999")),
])
def test_parse_decimal_is_exact(text, expected):
    values, errors = ops.parse_decimal(_strings(text, None), "lineItem/UnblendedCost")
    assert errors == []
    assert values.type == pa.decimal128(38, 18)
    assert values.to_pylist() == [expected, None]


def test_parse_decimal_flags_each_bad_value_with_its_reason_and_keeps_the_rest():
    raw = _strings("1.5", "abc", "0.0000000000000000001", "1e20", None, "", "0.25", "abc", "12,50")
    values, errors = ops.parse_decimal(raw, "lineItem/UnblendedCost")
    assert values.to_pylist() == [Decimal("1.5"), None, None, None, None, None, Decimal("0.25"),
                                  None, None]
    assert {e.column for e in errors} == {"lineItem/UnblendedCost"}
    assert len(errors) == 3
    assert _mask(errors, ops.REASON_NOT_A_NUMBER) == [
        False, True, False, False, False, False, False, True, True]
    # 19 decimal places: an error, never rounded to 0E-18.
    assert _mask(errors, ops.REASON_TOO_PRECISE) == [
        False, False, True, False, False, False, False, False, False]
    assert _mask(errors, ops.REASON_TOO_LARGE) == [
        False, False, False, True, False, False, False, False, False]
    assert ops.REASON_NOT_A_NUMBER.startswith("is not a decimal number (expected")


def test_parse_decimal_of_an_absent_column_is_null_without_errors():
    values, errors = ops.parse_decimal(pa.nulls(4, STR), "reservation/EffectiveCost")
    assert values.type == ops.DECIMAL and values.null_count == 4 and errors == []


def test_parse_decimal_sums_exactly_like_python_decimal():
    texts = ["5.2E-9", "1.3E-9", "0.07", "3.96E-6", "1.0E-18", "-0.01", "123456.789012345678"]
    values, _ = ops.parse_decimal(_strings(*texts), "c")
    assert sum(values.to_pylist()) == sum(Decimal(t) for t in texts) == Decimal(
        "123456.849016312178000001")


@pytest.mark.parametrize("text", [
    "2023-11-01T00:00:00.000Z", "2023-11-01T00:00:00Z", "2023-11-01T02:00:00+02:00",
    "2023-10-31T19:00:00-05:00", "2023-11-01 00:00:00Z",
])
def test_parse_timestamp_converts_every_iso_form_to_utc(text):
    values, errors = ops.parse_timestamp(_strings(text), "bill/BillingPeriodStartDate")
    assert errors == []
    assert values.type == pa.timestamp("us", tz="UTC")
    assert values.to_pylist() == [datetime(2023, 11, 1, tzinfo=UTC)]


def test_parse_timestamp_keeps_microseconds():
    values, _ = ops.parse_timestamp(_strings("2023-11-04T23:00:00.123456Z"), "c")
    assert values.to_pylist() == [datetime(2023, 11, 4, 23, 0, 0, 123456, tzinfo=UTC)]


def test_parse_timestamp_flags_bad_and_zoneless_values():
    raw = _strings("2023-11-05T00:00:00.000Z", "yesterday", "2023-11-05T00:00:00",
                   "2023-02-30T00:00:00Z", None, "")
    values, errors = ops.parse_timestamp(raw, "lineItem/UsageStartDate")
    assert values.to_pylist() == [datetime(2023, 11, 5, tzinfo=UTC), None, None, None, None, None]
    (error,) = errors
    assert error.column == "lineItem/UsageStartDate"
    assert error.reason == ops.REASON_NOT_A_TIMESTAMP
    assert error.mask.to_pylist() == [False, True, True, True, False, False]


def test_decimal_add_and_subtract_are_exact_and_null_propagating():
    a, _ = ops.parse_decimal(_strings("0.000000000000000001", "1.5", None), "a")
    b, _ = ops.parse_decimal(_strings("99999999999999999999.999999999999999998", "4.97e-9", "1"),
                             "b")
    total, errors = ops.decimal_add(a, b, "EffectiveCost")
    assert errors == [] and total.type == ops.DECIMAL
    assert total.to_pylist() == [Decimal("99999999999999999999.999999999999999999"),
                                 Decimal("1.50000000497"), None]
    difference, errors = ops.decimal_subtract(b, a, "EffectiveCost")
    assert errors == []
    assert difference.to_pylist() == [Decimal("99999999999999999999.999999999999999997"),
                                      Decimal("-1.49999999503"), None]


def test_decimal_add_overflow_is_a_row_error_not_an_exception():
    a, _ = ops.parse_decimal(_strings("99999999999999999999.5", "1"), "a")
    total, errors = ops.decimal_add(a, a, "EffectiveCost")
    assert total.to_pylist() == [None, Decimal("2")]
    (error,) = errors
    assert (error.column, error.reason) == ("EffectiveCost", ops.REASON_TOO_LARGE)
    assert error.mask.to_pylist() == [True, False]


def test_map_values_looks_up_with_a_default_for_unknown_and_null():
    mapping = {"Usage": "Usage", "Tax": "Tax", "EdpDiscount": "Credit"}
    got = ops.map_values(_strings("Tax", "EdpDiscount", "Mystery", None, "Usage"), mapping, "?")
    assert got.to_pylist() == ["Tax", "Credit", "?", "?", "Usage"]
    no_default = ops.map_values(_strings("Tax", "Mystery"), mapping)
    assert no_default.to_pylist() == ["Tax", None]


def test_index_in_and_take_values_share_one_lookup():
    positions = ops.index_in(_strings("b", "zz", None, "a"), ["a", "b"])
    assert positions.to_pylist() == [1, None, None, 0]
    assert ops.take_values(positions, ["A", "B"], default="-").to_pylist() == ["B", "-", "-", "A"]


def test_null_where_and_any_true():
    mask = pa.array([False, None, True])
    assert ops.null_where(_strings("a", "b", "c"), mask).to_pylist() == ["a", "b", None]
    assert ops.any_true(mask) is True
    assert ops.any_true(pa.array([False, None])) is False
    assert ops.any_true(pa.array([], pa.bool_())) is False
    assert ops.fill_false(mask).to_pylist() == [False, False, True]


def test_json_escape_handles_backslash_quote_and_control_characters():
    raw = _strings('say "hi"', "C:\\temp\\", "line1\nline2\ttab\r", "\x00\x01\x1f", "café ☃",
                   None)
    escaped = ops.json_escape(raw)
    assert escaped.to_pylist() == ['say \\"hi\\"', "C:\\\\temp\\\\", "line1\\nline2\\ttab\\r",
                                   "\\u0000\\u0001\\u001f", "café ☃", None]
    for original, text in zip(raw.to_pylist()[:5], escaped.to_pylist()[:5], strict=True):
        assert json.loads(f'"{text}"') == original


def test_json_escape_over_repeated_values_equals_each_value_escaped():
    """Repeated values are escaped once per distinct value (`on_distinct`); every row must
    still get its own value's escape, nulls stay null, order is kept."""
    values = ['say "hi"', "C:\\temp", "tab\there", "plain", None, "\x07bell", "café"]
    rows = [values[(i * 3) % len(values)] for i in range(2000)]
    escaped = ops.json_escape(_strings(*rows)).to_pylist()
    assert [None if t is None else json.loads(f'"{t}"') for t in escaped] == rows
    distinct = [f'v"{i}' for i in range(1000)]  # mostly distinct: computed directly
    assert ops.json_escape(_strings(*distinct)).to_pylist() == [f'v\\"{i}' for i in range(1000)]


def test_on_distinct_maps_each_row_through_its_value():
    rows = pa.array(["a", "bb", None, "a", "ccc"] * 100, pa.string())
    lengths = ops.on_distinct(rows, pc.utf8_length)
    assert lengths.to_pylist() == [None if r is None else len(r) for r in rows.to_pylist()]
    chunked = pa.chunked_array([rows.slice(0, 250), rows.slice(250)])
    assert ops.on_distinct(chunked, pc.utf8_upper).to_pylist() == [
        None if r is None else r.upper() for r in rows.to_pylist()]


def test_json_object_from_columns_escapes_and_aligns_rows():
    tricky = 'Quote " and back\\slash\nnew line, unicode: 日本 ☃ 🚀, ctl \x07'
    batch = pa.record_batch({
        "resourceTags/user:Environment": _strings("prod", None, None, "dev", ""),
        "resourceTags/aws:createdBy": _strings("IAMUser:AIDA:alice", None, None, None, None),
        "resourceTags/user:Note": _strings(tricky, None, 'x"y', None, None),
        "resourceTags/user:Empty": _strings(None, None, None, None, None),
    })
    keys = {name.removeprefix("resourceTags/"): name for name in batch.schema.names}
    tags = ops.json_object_from_columns(batch, keys)
    assert len(tags) == 5 and tags.type == STR
    assert [None if t is None else json.loads(t) for t in tags.to_pylist()] == [
        {"user:Environment": "prod", "aws:createdBy": "IAMUser:AIDA:alice", "user:Note": tricky},
        None,                      # every tag null: null, and the rows after it stay aligned
        {"user:Note": 'x"y'},
        {"user:Environment": "dev"},
        None,                      # an empty string is not a tag value
    ]
    assert tags[0].as_py().startswith('{"user:Environment":"prod","aws:createdBy":')


def test_json_object_keys_are_escaped_too():
    batch = pa.record_batch({'resourceTags/user:a"b\\c': _strings("v")})
    tags = ops.json_object_from_columns(batch, {'user:a"b\\c': 'resourceTags/user:a"b\\c'})
    assert json.loads(tags[0].as_py()) == {'user:a"b\\c': "v"}


def test_json_object_without_any_value_is_all_null():
    batch = pa.record_batch({"x": _strings(None, None)})
    assert ops.json_object_from_columns(batch, {}).to_pylist() == [None, None]
    assert ops.json_object_from_columns(batch, {"k": "x"}).to_pylist() == [None, None]
    assert ops.json_object_from_columns(batch, {"k": "absent"}).to_pylist() == [None, None]


def test_json_array_of_flags():
    flags = {"ServiceCategory:unmapped": pa.array([True, False, None, True]),
             "ListCost:from_BilledCost": pa.array([False, False, True, True]),
             "never": pa.array([False, False, False, False])}
    got = ops.json_array_of_flags(flags, 4)
    assert got.to_pylist() == [
        '["ServiceCategory:unmapped"]', None, '["ListCost:from_BilledCost"]',
        '["ServiceCategory:unmapped","ListCost:from_BilledCost"]']
    assert ops.json_array_of_flags({}, 2).to_pylist() == [None, None]


def test_json_object_repeated_combinations_map_back_to_their_rows():
    env = _strings("prod", "dev", "prod", None, "dev", "prod")
    team = _strings("a", "b", "a", None, "b", "c")
    batch = pa.record_batch({"resourceTags/user:env": env, "resourceTags/user:team": team})
    tags = ops.json_object_from_columns(batch, {"user:env": "resourceTags/user:env",
                                                "user:team": "resourceTags/user:team"})
    assert tags.to_pylist() == [
        '{"user:env":"prod","user:team":"a"}', '{"user:env":"dev","user:team":"b"}',
        '{"user:env":"prod","user:team":"a"}', None, '{"user:env":"dev","user:team":"b"}',
        '{"user:env":"prod","user:team":"c"}']


def test_json_object_of_an_empty_batch_is_empty():
    batch = pa.record_batch({"resourceTags/user:env": _strings()})
    assert ops.json_object_from_columns(batch, {"user:env": "resourceTags/user:env"}).to_pylist() \
        == []


def test_quantities_beyond_18_places_are_rounded_and_flagged_not_refused() -> None:
    texts = pa.array(["1.1574074074074073e-05", "3600", "1.06e-15", "0.0000000000000000005",
                      "0.0000000000000000015", None, "", "lots", "1e30"])
    values, rounded, errors = ops.parse_quantity(texts, "usage.amount_in_pricing_units")
    assert values.to_pylist() == [Decimal("0.000011574074074074"), Decimal(3600),
                                  Decimal("1.06e-15"), Decimal(0), Decimal("2e-18"),
                                  None, None, None, None]
    assert rounded.to_pylist() == [True, False, False, True, True, False, False, False, False]
    by_column = {e.reason: e.mask.to_pylist() for e in errors}
    assert by_column[ops.REASON_NOT_A_NUMBER] == [False] * 7 + [True, False]
    assert by_column[ops.REASON_TOO_LARGE] == [False] * 8 + [True]
    # Money is never rounded: the same text is refused by parse_decimal.
    _, money_errors = ops.parse_decimal(pa.array(["1.1574074074074073e-05"]), "cost")
    assert [e.reason for e in money_errors] == [ops.REASON_TOO_PRECISE]


def test_a_huge_exponent_is_too_large_not_a_wrapped_around_number() -> None:
    # pyarrow's cast turns "1e30" into 18960114910927365649.47... instead of failing.
    texts = ("1e30", "2.5E+1", "1e19", "-4E+35", "12345678901234567890123e0",
             "12345678901234567890123456e-3", "+99999999999999999999.5e0", "1.2e-7")
    values, errors = ops.parse_decimal(_strings(*texts), "cost")
    assert values.to_pylist() == [None, Decimal(25), Decimal("1e19"), None, None, None,
                                  Decimal("99999999999999999999.5"), Decimal("1.2e-7")]
    refused = [any(e.mask[i].as_py() for e in errors) for i in range(len(texts))]
    assert refused == [True, False, False, True, True, True, False, False]
    assert {e.reason for e in errors} == {ops.REASON_TOO_LARGE}
    # Quantities take the same guard, also when the whole batch casts without an error.
    values, rounded, errors = ops.parse_quantity(_strings("1e30"), "Quantity")
    assert values.to_pylist() == [None] and rounded.to_pylist() == [False]
    assert [e.reason for e in errors] == [ops.REASON_TOO_LARGE]


def _errors(errors: list) -> list[tuple[str, str, list]]:
    return [(e.column, e.reason, e.mask.to_pylist()) for e in errors]


def test_repeated_texts_parse_once_with_the_same_values_and_row_errors():
    """A column of few distinct texts is parsed per distinct text (`_per_distinct_text`); its
    values and its row errors (masks aligned with the rows) are those of a row-by-row parse."""
    texts = ["0.25", "abc", None, "", "1e30", "4.97E-9", "1.0E-19", "0.25", "12e-3"] * 100
    column = pa.array(texts)
    values, errors = ops.parse_decimal(column, "cost")
    direct_values, direct_errors = ops._parse_decimal(column, "cost")
    assert values.equals(direct_values)
    assert _errors(errors) == _errors(direct_errors)
    assert {reason for _, reason, _ in _errors(errors)} >= {ops.REASON_TOO_LARGE}
    rows = [i for i, bad in enumerate(_errors(errors)[0][2]) if bad]
    assert rows[:2] == [texts.index(texts[rows[0]]), texts.index(texts[rows[0]]) + 9]

    stamps = pa.array(["2026-10-01T00:00:00Z", "not a time", None, "2026-10-01T01:00:00+01:00",
                       "2026-10-01T00:00:00"] * 100)
    parsed, stamp_errors = ops.parse_timestamp(stamps, "usage_start")
    direct, direct_stamp_errors = ops._parse_timestamp(stamps, "usage_start")
    assert parsed.equals(direct) and parsed[3].as_py() == parsed[0].as_py()
    assert _errors(stamp_errors) == _errors(direct_stamp_errors)
    assert sum(_errors(stamp_errors)[0][2]) == 200  # "not a time" and the zoneless one


def test_repeated_quantities_parse_as_each_text_would_alone():
    texts = ["1.1574074074074073e-05", "2", None, "", "abc", "1e30", "0.5", "2"] * 100
    values, rounded, errors = ops.parse_quantity(pa.array(texts), "usage")
    alone = [ops.parse_quantity(pa.array([t], pa.string()), "usage") for t in texts[:8]]
    assert values.to_pylist() == [a[0][0].as_py() for a in alone] * 100
    assert rounded.to_pylist() == [a[1][0].as_py() for a in alone] * 100
    failing = {i for e in errors for i, bad in enumerate(e.mask.to_pylist()) if bad}
    assert failing == {i for i, t in enumerate(texts) if t in ("abc", "1e30")}


def test_a_quantity_column_of_only_empty_texts_is_null_not_a_crash():
    values, rounded, errors = ops.parse_quantity(pa.array(["", None, ""]), "usage")
    assert values.to_pylist() == [None, None, None]
    assert rounded.to_pylist() == [False, False, False] and errors == []
