"""The Cloud Billing export table as Arrow types, and how every file flavour is brought to it.

Why this module exists: the same export reaches us as newline-delimited JSON (numbers as JSON
numbers, timestamps as text), as Parquet or Avro written by BigQuery (FLOAT64 as IEEE doubles,
NUMERIC as decimals, TIMESTAMP as microseconds), or straight from BigQuery. The normalizer must
give identical rows for all of them, so each batch is first *conformed* to one canonical shape:
the export's nesting exactly (records as structs, REPEATED records as lists of structs) with
every leaf as text. Fields an older export lacks come back as nulls, so the normalizer never has
to ask which generation of the schema it is reading.

Exact money, and why no float ever takes part:
    * JSON: the reader types every FLOAT/NUMERIC field as ``decimal256(76, 38)`` (`READER_SCHEMA`);
      Arrow's JSON parser converts the number's own text to a decimal, so ``0.1`` is
      ``Decimal('0.1')``, never ``0.1000000000000000055511151231257827``.
    * Parquet/Avro/BigQuery: the value *is* a double as BigQuery stored it; it becomes the
      shortest decimal text that round-trips to that double (Arrow's float->string cast), which
      is exactly the text BigQuery prints for it in a JSON export. The decimal is then parsed
      from that text. Sums are only ever computed on decimals.

Source: ../shared/reference/provider_formats.md §1.2 (the schema dumped from a real detailed
table, Recidiviz/pulse-data), §1.5 (JSONL layout), Google's detailed-usage schema doc.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import on_distinct

S = pa.string()
_KV = pa.list_(pa.struct([("key", S), ("value", S)]))

# The canonical shape: every leaf is text (money as exact decimal text, timestamps as text).
CANONICAL_SCHEMA = pa.schema([
    ("billing_account_id", S),
    ("service", pa.struct([("id", S), ("description", S)])),
    ("sku", pa.struct([("id", S), ("description", S)])),
    ("usage_start_time", S),
    ("usage_end_time", S),
    ("project", pa.struct([
        ("id", S), ("number", S), ("name", S), ("labels", _KV), ("ancestry_numbers", S),
        ("ancestors", pa.list_(pa.struct([("resource_name", S), ("display_name", S)]))),
    ])),
    ("labels", _KV),
    ("system_labels", _KV),
    ("location", pa.struct([("location", S), ("country", S), ("region", S), ("zone", S)])),
    ("resource", pa.struct([("name", S), ("global_name", S)])),          # detailed only
    ("tags", pa.list_(pa.struct([("key", S), ("value", S), ("inherited", S),
                                 ("namespace", S)]))),
    ("price", pa.struct([
        ("effective_price", S), ("tier_start_amount", S), ("unit", S),
        ("pricing_unit_quantity", S), ("list_price", S), ("effective_price_default", S),
        ("list_price_consumption_model", S),
    ])),
    ("subscription", pa.struct([("instance_id", S)])),                  # detailed only
    ("transaction_type", S),
    ("seller_name", S),
    ("export_time", S),
    ("cost", S),
    ("currency", S),
    ("currency_conversion_rate", S),
    ("usage", pa.struct([("amount", S), ("unit", S), ("amount_in_pricing_units", S),
                         ("pricing_unit", S)])),
    ("credits", pa.list_(pa.struct([("name", S), ("amount", S), ("full_name", S), ("id", S),
                                    ("type", S)]))),
    ("invoice", pa.struct([("month", S), ("publisher_type", S)])),
    ("cost_type", S),
    ("adjustment_info", pa.struct([("id", S), ("description", S), ("mode", S), ("type", S)])),
    ("cost_at_list", S),
    ("consumption_model", pa.struct([("id", S), ("description", S),
                                     ("applied_subscription_instance_id", S)])),
    ("cost_at_effective_price_default", S),
    ("cost_at_list_consumption_model", S),
])

# Dotted paths of the FLOAT / NUMERIC fields (BigQuery types in provider_formats.md §1.2).
NUMERIC_PATHS = frozenset({
    "cost", "currency_conversion_rate", "cost_at_list", "cost_at_effective_price_default",
    "cost_at_list_consumption_model", "usage.amount", "usage.amount_in_pricing_units",
    "credits.amount", "price.effective_price", "price.tier_start_amount",
    "price.pricing_unit_quantity", "price.list_price", "price.effective_price_default",
    "price.list_price_consumption_model",
})
BOOLEAN_PATHS = frozenset({"tags.inherited"})
TOP_LEVEL_FIELDS = tuple(CANONICAL_SCHEMA.names)
# Top-level timestamps that `conform(..., keep_timestamps=True)` leaves as timestamps when a
# file flavour delivers them zone-aware (Parquet, Avro and BigQuery do): Arrow formats a
# timestamp as text at ~3 us a value, more than conforming all the other leaves of a Parquet
# batch, only for the normalizer to parse the text back into the same instant.
TIMESTAMP_FIELDS = frozenset({"usage_start_time", "usage_end_time", "export_time"})
# Wide enough for any JSON number BigQuery writes for a FLOAT64 cost (17 significant digits).
JSON_NUMBER = pa.decimal256(76, 38)


def schema_with_leaf_types(leaf: Callable[[str], pa.DataType | None]) -> pa.Schema:
    """`CANONICAL_SCHEMA` with each text leaf retyped by ``leaf(dotted path)`` (None keeps it):
    the one walk behind every typed flavour of the export (JSON reader, Parquet/Avro writers)."""
    def walk(type_: pa.DataType, path: str) -> pa.DataType:
        if pa.types.is_struct(type_):
            return pa.struct([pa.field(f.name, walk(f.type, f"{path}.{f.name}"))
                              for f in type_])
        if pa.types.is_list(type_):
            return pa.list_(walk(type_.value_type, path))
        return leaf(path) or type_

    return pa.schema([pa.field(f.name, walk(f.type, f.name)) for f in CANONICAL_SCHEMA])


def _reader_type(path: str) -> pa.DataType | None:
    if path in NUMERIC_PATHS:
        return JSON_NUMBER
    return pa.bool_() if path in BOOLEAN_PATHS else None


# What the JSON-lines reader asks Arrow for: numbers as exact decimals, booleans as booleans.
READER_SCHEMA = schema_with_leaf_types(_reader_type)


class NestingError(ValueError):
    """A field's type cannot be brought to the export's shape (e.g. a record where a list is)."""

    def __init__(self, path: str, found: pa.DataType, expected: pa.DataType) -> None:
        self.path, self.found, self.expected = path, found, expected
        super().__init__(f"field {path} is {found}, expected {expected}")


def decimal_text(values: pa.Array) -> pa.Array:
    """Exact text of decimals without the padding to the type's scale ("0.25", not
    "0.250000..."), so it fits DECIMAL(38, 18) whenever the value does (JSON numbers are read as
    decimal(76, 38)).

    Arrow writes a decimal of positive scale as plain text ("12.500") unless it is below 1e-6,
    which it writes with an exponent ("0E-9", "1.5E-7"). Plain text only loses its trailing
    zeros and point (two trims), zero is "0"; the regular expressions run only on the other
    values with an exponent.
    """
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([decimal_text(chunk) for chunk in values.chunks], S)
    text = pc.cast(values, S)
    if not pa.types.is_decimal(values.type) or values.type.scale <= 0:
        return _trimmed_decimal_text(text)
    zero = pc.equal(values, pa.scalar(0, values.type))
    other = pc.fill_null(pc.and_(pc.match_substring(text, "E"), pc.invert(zero)), False)
    trimmed = pc.if_else(zero, pa.scalar("0", S), pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), "."))
    if not pc.any(other).as_py():
        return trimmed
    return pc.replace_with_mask(trimmed, other, _trimmed_decimal_text(text.filter(other)))


def _trimmed_decimal_text(text: pa.Array) -> pa.Array:
    """`decimal_text` of any decimal text, by regular expressions (exponents included)."""
    text = pc.replace_substring_regex(text, r"(\.[0-9]*?)0+([eE].*)?$", r"\1\2")
    text = pc.replace_substring_regex(text, r"^-?0[eE][-+]?[0-9]+$", "0")  # 0E-9 is 0
    return pc.replace_substring_regex(text, r"\.([eE]|$)", r"\1")


def _leaf_text(values: pa.Array, path: str) -> pa.Array:
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_large_string(values.type) or pa.types.is_dictionary(values.type):
        return pc.cast(values, S)
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), S)
    # Numbers repeat (a rate, a unit price, a tier on thousands of rows): each distinct value
    # is written once.
    if pa.types.is_decimal(values.type):
        return on_distinct(values, decimal_text)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        # Floats: the shortest round-trip text (the text BigQuery's JSON export holds).
        return on_distinct(values, _as_text)
    if pa.types.is_boolean(values.type) or pa.types.is_timestamp(values.type):
        # Timestamps: "YYYY-MM-DD HH:MM:SS.ffffffZ" in UTC.
        return pc.cast(values, S)
    raise NestingError(path, values.type, S)


def _as_text(values: pa.Array) -> pa.Array:
    return pc.cast(values, S)


def conform_array(values: pa.Array, target: pa.DataType, path: str) -> pa.Array:
    """``values`` brought to ``target`` (a canonical type): missing struct fields become null,
    extra fields are dropped, leaves become text. Raises `NestingError` on a shape mismatch."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), target)
    if pa.types.is_struct(target):
        if not pa.types.is_struct(values.type):
            raise NestingError(path, values.type, target)
        children = []
        for field in target:
            index = values.type.get_field_index(field.name)
            child_path = f"{path}.{field.name}"
            if index < 0:
                children.append(pa.nulls(len(values), field.type))
            else:
                children.append(conform_array(values.field(index), field.type, child_path))
        # .field() ignores the parent's validity and offset; both are re-applied here.
        return pa.StructArray.from_arrays(children, fields=list(target),
                                          mask=pc.is_null(values))
    if pa.types.is_list(target):
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            raise NestingError(path, values.type, target)
        # Raw child values and offsets (flatten() would skip null slots and misalign them).
        offsets = values.offsets
        start = offsets[0].as_py() if len(offsets) else 0
        end = offsets[-1].as_py() if len(offsets) else 0
        flat = conform_array(values.values.slice(start, end - start), target.value_type, path)
        offsets = pc.cast(pc.subtract(offsets, start), pa.int32())
        return pa.ListArray.from_arrays(offsets, flat, type=target, mask=pc.is_null(values))
    return _leaf_text(values, path)


def conform(batch: pa.RecordBatch, *, keep_timestamps: bool = False) -> pa.RecordBatch:
    """A batch of any export flavour in `CANONICAL_SCHEMA` (top-level extras dropped).

    With ``keep_timestamps`` the `TIMESTAMP_FIELDS` that arrive as `kept_timestamp` values stay
    as they are (the same instants their text would name); every other leaf is text.
    """
    columns = []
    for field in CANONICAL_SCHEMA:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, field.type))
            continue
        values = batch.column(index)
        if keep_timestamps and field.name in TIMESTAMP_FIELDS and kept_timestamp(values.type):
            columns.append(values)
        else:
            columns.append(conform_array(values, field.type, field.name))
    return pa.RecordBatch.from_arrays(columns, names=CANONICAL_SCHEMA.names)


def kept_timestamp(type_: pa.DataType) -> bool:
    """A zone-aware timestamp: an instant (a naive one goes through text, where the normalizer
    refuses a value that names no zone rather than assume UTC)."""
    return pa.types.is_timestamp(type_) and type_.tz is not None
