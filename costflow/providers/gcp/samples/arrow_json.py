"""Nested Arrow columns built from small catalogs, rendered as Arrow arrays or as JSON text.

Why this module exists: a bulk billing-export generator picks most of a row's nested values
(project with labels and ancestors, SKU, location, price...) from small catalogs, and writes the
same rows both as Parquet (nested Arrow) and as newline-delimited JSON (BigQuery's JSON extract).
Rendering millions of nested rows to JSON per row in Python is far too slow, so a column is kept
as a tree of *nodes* until it is written:

* `Pick`: values of a small catalog array, chosen per row by position. As Arrow it is a ``take``;
  as JSON the catalog is rendered once and its *text* is taken, so a 600-byte project record
  costs one string ``take`` per row.
* `Record` / `Repeated`: a struct or a list whose fields / elements are nodes themselves.
* a plain `pyarrow.Array`: per-row values (costs, timestamps).

JSON text follows BigQuery's JSON extract [../shared/reference/provider_formats.md §1.5]:
TIMESTAMP as ``YYYY-MM-DD HH:MM:SS[.ffffff] UTC``, NUMERIC (decimal) as a JSON string, FLOAT64 as
a JSON number in its shortest round-trip form, REPEATED as arrays, null as ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.providers.gcp.export_schema import decimal_text
from costflow.transforms.arrow_ops import json_escape


@dataclass(frozen=True, eq=False)
class Pick:
    """``catalog.take(index)``: per-row positions into a small catalog (no null positions; put
    a null entry in the catalog instead)."""

    catalog: pa.Array
    index: np.ndarray


@dataclass(frozen=True, eq=False)
class Record:
    """A struct column: ``fields`` in the order of ``type``; null where ``valid`` is False."""

    type: pa.StructType
    fields: dict[str, pa.Array | Pick | Record | Repeated]
    valid: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Repeated:
    """A list column: row i holds ``values[offsets[i]:offsets[i + 1]]`` (never null)."""

    type: pa.ListType
    offsets: np.ndarray
    values: pa.Array | Pick | Record | Repeated


def to_arrow(node: pa.Array | Pick | Record | Repeated) -> pa.Array:
    """The node as an Arrow array of its declared type."""
    if isinstance(node, Pick):
        return node.catalog.take(pa.array(node.index, pa.int32()))
    if isinstance(node, Record):
        children = [to_arrow(node.fields[f.name]) for f in node.type]
        mask = None if node.valid is None else pa.array(~node.valid)
        return pa.StructArray.from_arrays(children, fields=list(node.type), mask=mask)
    if isinstance(node, Repeated):
        offsets = pa.array(node.offsets, pa.int32())
        return pa.ListArray.from_arrays(offsets, to_arrow(node.values), type=node.type)
    return node


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def json_values(values: pa.Array) -> pa.Array:
    """Each value of ``values`` as JSON text (``null`` for nulls), recursively for nested types."""
    t = values.type
    if pa.types.is_struct(t):
        members: list[pa.Array | str] = []
        for i, f in enumerate(t):
            members += [("{" if i == 0 else ",") + f'"{f.name}":', json_values(
                pc.struct_field(values, [i]))]
        text = _join(*members, "}") if members else pa.array(["{}"] * len(values))
    elif pa.types.is_list(t):
        start = values.offsets[0].as_py()
        end = values.offsets[-1].as_py()
        flat = json_values(values.values.slice(start, end - start))
        offsets = pc.subtract(values.offsets, start)
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, flat), ",")
        text = _join("[", joined, "]")
    elif pa.types.is_string(t):
        text = _join('"', json_escape(values), '"')
    elif pa.types.is_floating(t):
        finite = pc.is_finite(values)
        if not pc.all(pc.or_kleene(finite, pc.is_null(values))).as_py():
            raise ValueError("NaN or infinity is not a JSON number")
        text = pc.cast(values, pa.string())  # shortest round-trip text of the double
    elif pa.types.is_decimal(t):
        text = _join('"', decimal_text(values), '"')  # BigQuery NUMERIC: a JSON string
    elif pa.types.is_timestamp(t):
        seconds = pc.strftime(values, "%Y-%m-%d %H:%M:%S")  # "...:SS.ffffff" for us
        text = _join('"', pc.replace_substring_regex(seconds, r"\.0+$", ""), ' UTC"')
    elif pa.types.is_boolean(t):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_integer(t):
        text = pc.cast(values, pa.string())
    else:
        raise TypeError(f"no JSON rendering for {t}")
    if not values.null_count:
        return text
    # Struct and list texts are built from their children, so a null parent is set here.
    return pc.if_else(pc.is_valid(values), text, "null")


@dataclass
class JsonRenderer:
    """Renders nodes as JSON text; each catalog is rendered once and reused across calls."""

    _catalogs: dict[int, tuple[pa.Array, pa.Array]] = field(default_factory=dict)

    def render(self, node: pa.Array | Pick | Record | Repeated) -> pa.Array:
        """One JSON text per row of ``node``."""
        if isinstance(node, Pick):
            return self._catalog_text(node.catalog).take(pa.array(node.index, pa.int32()))
        if isinstance(node, Record):
            return self.record(node)
        if isinstance(node, Repeated):
            flat = self.render(node.values)
            lists = pa.ListArray.from_arrays(pa.array(node.offsets, pa.int32()), flat)
            return _join("[", pc.binary_join(lists, ","), "]")
        return json_values(node)

    def record(self, node: Record, suffix: str = "") -> pa.Array:
        """A struct node as JSON objects, ``suffix`` (e.g. a newline) appended to each."""
        parts: list[pa.Array | str] = []
        for i, f in enumerate(node.type):
            parts += [("{" if i == 0 else ",") + f'"{f.name}":', self.render(node.fields[f.name])]
        text = _join(*parts, "}" + suffix)
        if node.valid is not None:
            text = pc.if_else(pa.array(node.valid), text, "null" + suffix)
        return text

    def _catalog_text(self, catalog: pa.Array) -> pa.Array:
        cached = self._catalogs.get(id(catalog))
        if cached is None or cached[0] is not catalog:
            cached = (catalog, json_values(catalog))
            self._catalogs[id(catalog)] = cached
        return cached[1]
