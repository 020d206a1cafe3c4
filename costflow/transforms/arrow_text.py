"""Typed Parquet columns and map columns seen as the text a CSV export would carry.

Why this module exists: normalizers are written over text (a CSV export's every column is a
string, and money must be parsed exactly from its decimal text). Parquet exports of the same data
carry typed columns instead: doubles for money, timestamps, and MAP columns (CUR 2.0
``resource_tags``/``product``/``cost_category``/``discount``, the FOCUS export's ``Tags``), which
the CSV variant of the same export writes as JSON-object strings. These helpers turn either form
into one text form, vectorized, so a mapping is written once and gives identical results for the
CSV and the Parquet file of the same data:

* doubles become their shortest round-trip decimal text (Arrow's cast), which is exactly the
  decimal the exporter wrote (``0.1`` stays ``0.1``, never ``0.1000000000000000055``);
* a map (Parquet) and a JSON object (CSV) both become one canonical JSON object text whose values
  are strings (``{"user_env":"prod"}``), empty values dropped, keys in source order;
* a key looked up in a map column gives a string column (``product["product_name"]``).

JSON text is parsed once per distinct value (CSV map columns repeat heavily), never per row.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import STRING, fill_false, json_escape, null_where
from costflow.transforms.contract import RowError

REASON_NOT_A_JSON_OBJECT = (
    "is not a JSON object of key to value (expected e.g. {\"user_env\":\"prod\"}, as AWS writes "
    "map columns in CSV exports)")


def as_text(arr: pa.Array) -> pa.Array:
    """A string array holding what a CSV export of the same value would hold (empty -> null).

    Floating and decimal numbers become their shortest exact decimal text, timestamps ISO 8601
    UTC text with a ``Z``; strings are kept (empty strings become null, as the CSV reader does).
    Map and list columns are not scalars: use `map_json` / `map_lookup` for them.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = pc.cast(arr, t.value_type), t.value_type
    if pa.types.is_string(t):
        return null_where(arr, pc.equal(arr, ""))
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return as_text(pc.cast(arr, STRING))
    if pa.types.is_null(t):
        return pa.nulls(len(arr), STRING)
    if pa.types.is_timestamp(t):
        # Exports state UTC; a zoneless Parquet timestamp (Athena layout) is UTC by definition.
        utc = pc.cast(arr, pa.timestamp("us", tz="UTC"))
        return pc.binary_join_element_wise(pc.strftime(utc, "%Y-%m-%dT%H:%M:%S"), "Z", "")
    return pc.cast(arr, STRING)


def is_map_like(arr: pa.Array) -> bool:
    """True for a Parquet map column (or a list of key/value structs)."""
    return pa.types.is_map(arr.type)


def _distinct_objects(arr: pa.Array, column_name: str,
                      ) -> tuple[pa.Array, list[dict[str, str | None] | None], list[RowError]]:
    """Parse each distinct JSON text of a CSV map column once.

    Returns:
        Per-row indices into the distinct values, the parsed objects (values as text; None for
        null or unparseable), and a RowError for rows whose text is not a JSON object.
    """
    encoded = pc.dictionary_encode(as_text(arr))
    objects: list[dict[str, str | None] | None] = []
    bad: list[bool] = []
    for text in encoded.dictionary.to_pylist():
        try:
            value = json.loads(text, parse_float=str, parse_int=str)
        except (TypeError, ValueError):
            value = None
        ok = isinstance(value, dict)
        objects.append({str(k): _json_scalar_text(v) for k, v in value.items()} if ok else None)
        bad.append(not ok)
    errors = []
    if any(bad):
        mask = fill_false(pc.take(pa.array(bad), encoded.indices))
        errors.append(RowError(mask=mask, column=column_name, reason=REASON_NOT_A_JSON_OBJECT))
    return encoded.indices, objects, errors


def _json_scalar_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _render(obj: dict[str, str | None] | None) -> str | None:
    if not obj:
        return None
    pieces = [f"{json.dumps(k, ensure_ascii=False)}:{json.dumps(v, ensure_ascii=False)}"
              for k, v in obj.items() if v not in (None, "")]
    return "{" + ",".join(pieces) + "}" if pieces else None


def map_json(arr: pa.Array, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """Canonical JSON object text per row of a map column (Parquet MAP or CSV JSON text).

    Values become JSON strings (a double in a Parquet map becomes its shortest decimal text, so
    the CSV and Parquet forms of one export agree); empty values are dropped; a row with no
    value left is null.
    """
    if is_map_like(arr):
        return _map_array_json(arr), []
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), STRING), []
    indices, objects, errors = _distinct_objects(arr, column_name)
    rendered = pa.array([_render(o) for o in objects], STRING)
    return pc.take(rendered, indices), errors


def _map_array_json(arr: pa.MapArray) -> pa.Array:
    """Vectorized JSON text of a MapArray: one piece per entry, joined per row."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    keys, items = arr.keys, as_text(arr.items)
    piece = pc.binary_join_element_wise(
        ',"', json_escape(pc.cast(keys, STRING)), '":"', json_escape(items), '"', "")
    piece = pc.fill_null(piece, "")  # null or empty value: no entry
    lists = pa.ListArray.from_arrays(arr.offsets, piece, mask=arr.is_null())
    joined = pc.binary_join(lists, "")
    wrapped = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    return pc.if_else(fill_false(pc.equal(joined, "")), pa.scalar(None, STRING), wrapped)


def map_lookup(arr: pa.Array, key: str, column_name: str) -> tuple[pa.Array, list[RowError]]:
    """The text of ``key`` in each row's map (Parquet MAP or CSV JSON text); null when absent."""
    if is_map_like(arr):
        return as_text(pc.map_lookup(arr, pa.scalar(key, arr.type.key_type), "first")), []
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), STRING), []
    indices, objects, errors = _distinct_objects(arr, column_name)
    values = pa.array([None if o is None else (o.get(key) or None) for o in objects], STRING)
    return pc.take(values, indices), errors

