"""Vectorized work on REPEATED records (Arrow lists of structs): sums, picks and JSON per row.

Why this module exists: BigQuery exports carry per-row arrays — GCP ``credits``, ``labels``,
``system_labels``, ``tags``, ``project.labels`` — and a normalizer must reduce each array to one
value per row (the sum of the credits, the first commitment credit, a JSON object of tags)
without a Python loop over rows. The idiom is always the same: flatten the list
(`pc.list_flatten`), remember which row each element came from (`pc.list_parent_indices`), group
by that parent, and scatter the per-group result back onto the rows. Written once here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import STRING, json_escape


@dataclass(frozen=True)
class Exploded:
    """The elements of a list column with the row each one belongs to.

    Attributes:
        parents: int64 row index of every element (aligned with ``values``).
        values: the flattened elements (a struct array for lists of records).
        rows: number of rows of the original column.
    """

    parents: pa.Array
    values: pa.Array
    rows: int

    def field(self, name: str) -> pa.Array:
        return pc.struct_field(self.values, name)

    def filter(self, mask: pa.Array) -> Exploded:
        mask = pc.fill_null(mask, False)
        return Exploded(self.parents.filter(mask), self.values.filter(mask), self.rows)


def explode(values: pa.Array) -> Exploded:
    """Flatten a list column; null and empty lists contribute no element."""
    return Exploded(pc.list_parent_indices(values), pc.list_flatten(values), len(values))


def scatter(parents: pa.Array, per_parent: pa.Array, rows: int) -> pa.Array:
    """An array of ``rows`` values: ``per_parent[i]`` at row ``parents[i]``, null elsewhere.

    ``parents`` must be distinct (one value per row), as group-by output is.
    """
    positions = np.full(rows, -1, dtype=np.int64)
    positions[parents.to_numpy(zero_copy_only=False)] = np.arange(len(parents), dtype=np.int64)
    index = pa.array(positions, mask=positions < 0)
    return pc.take(per_parent, index)


def rows_with(exploded: Exploded, mask: pa.Array) -> pa.BooleanArray:
    """True for every row having at least one element where ``mask`` is True."""
    hit = np.zeros(exploded.rows, dtype=bool)
    chosen = exploded.parents.filter(pc.fill_null(mask, False)).to_numpy(zero_copy_only=False)
    hit[chosen] = True
    return pa.array(hit)


def group_sum(exploded: Exploded, amounts: pa.Array) -> pa.Array:
    """Per row, the exact sum of ``amounts`` (aligned with the elements); null without any."""
    table = pa.table({"p": exploded.parents, "a": amounts})
    grouped = table.group_by("p", use_threads=False).aggregate([("a", "sum")])
    return scatter(grouped.column("p"), grouped.column("a_sum").combine_chunks(), exploded.rows)


def group_first(exploded: Exploded, values: pa.Array) -> pa.Array:
    """Per row, the first non-null of ``values`` in element order; null without any."""
    table = pa.table({"p": exploded.parents, "v": values}).filter(pc.is_valid(values))
    grouped = table.group_by("p", use_threads=False).aggregate([("v", "first")])
    return scatter(grouped.column("p"), grouped.column("v_first").combine_chunks(),
                   exploded.rows)


def json_members(fields: Mapping[str, pa.Array]) -> pa.Array:
    """``"k1":"v1","k2":null,...`` per element: JSON object members from string arrays."""
    pieces = []
    for position, (key, values) in enumerate(fields.items()):
        prefix = ("," if position else "") + json.dumps(key) + ":"
        quoted = pc.binary_join_element_wise('"', json_escape(values), '"', "")
        pieces.append(pc.binary_join_element_wise(
            prefix, pc.fill_null(quoted, "null"), ""))
    return pc.binary_join_element_wise(*pieces, "")


def join_per_row(exploded: Exploded, texts: pa.Array, opening: str, closing: str) -> pa.Array:
    """Per row, its elements' ``texts`` joined by commas inside ``opening``/``closing``.

    Rows without an element are null. Element order within a row is kept.
    """
    valid = pc.is_valid(texts)
    parents = exploded.parents.filter(valid).to_numpy(zero_copy_only=False)
    texts = texts.filter(valid)
    if len(parents) > 1 and not bool(np.all(parents[1:] >= parents[:-1])):
        order = np.argsort(parents, kind="stable")  # keeps element order within a row
        parents, texts = parents[order], texts.take(pa.array(order))
    # Elements sorted by row (as explode gives them): each row's run of texts is a list slice.
    counts = np.bincount(parents, minlength=exploded.rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, texts), ",")
    wrapped = pc.binary_join_element_wise(opening, joined, closing, "")
    return pc.if_else(pa.array(counts > 0), wrapped, pa.scalar(None, STRING))


@dataclass(frozen=True)
class KeyValues:
    """One source of tags: an exploded list and how its keys are spelled.

    Attributes:
        exploded: the list's elements.
        keys: the key of each element as it should appear in the JSON object.
        values: the value of each element.
        precedence: higher wins when two sources give a row the same key.
    """

    exploded: Exploded
    keys: pa.Array
    values: pa.Array
    precedence: int


def merged_json_object(sources: Sequence[KeyValues], rows: int) -> pa.Array:
    """Per row, one JSON object merging every source's key/value pairs.

    Where two sources give a row the same key, the one with the higher precedence wins (FOCUS
    tag finalization: the more specific scope overrides the inherited one). Keys are sorted.
    Rows with no pair are null.
    """
    parts = [pa.table({
        "p": s.exploded.parents,
        "k": pc.cast(s.keys, STRING),
        "v": pc.cast(s.values, STRING),
        "r": pa.repeat(pa.scalar(s.precedence, pa.int32()), len(s.keys)),
    }) for s in sources if len(s.keys)]
    if not parts:
        return pa.nulls(rows, STRING)
    table = pa.concat_tables(parts).filter(pc.is_valid(pc.field("k")))
    if not table.num_rows:
        return pa.nulls(rows, STRING)
    table = table.sort_by([("p", "ascending"), ("k", "ascending"), ("r", "descending")])
    # The winner of each (row, key) is the first of its run in this order.
    p = table.column("p").to_numpy()
    keys = table.column("k").combine_chunks()
    first = np.ones(table.num_rows, dtype=bool)
    first[1:] = (p[1:] != p[:-1]) | np.asarray(pc.not_equal(keys[1:], keys[:-1]))
    winners = table.filter(pa.array(first))
    members = pc.binary_join_element_wise(
        '"', json_escape(winners.column("k").combine_chunks()), '":',
        pc.fill_null(pc.binary_join_element_wise(
            '"', json_escape(winners.column("v").combine_chunks()), '"', ""), "null"), "")
    exploded = Exploded(winners.column("p").combine_chunks(), members, rows)
    return join_per_row(exploded, members, "{", "}")
