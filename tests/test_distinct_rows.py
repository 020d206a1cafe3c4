"""Row codes and once-per-distinct-row evaluation (`costflow.transforms.distinct_rows`): equal
codes exactly for equal rows, lists of records included, and the same output as computing
every row."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from costflow.transforms.distinct_rows import column_codes, once_per_distinct_row, row_codes

KV = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def same_partition(codes: np.ndarray, rows: list) -> bool:
    """Codes equal exactly where the Python values are equal."""
    return all((codes[i] == codes[j]) == (rows[i] == rows[j])
               for i in range(len(rows)) for j in range(len(rows)))


def test_lists_of_records_are_told_apart_by_every_difference():
    rows = [
        None,                                                  # a null list ...
        [],                                                    # ... is not an empty one
        [{"key": "ab", "value": "c"}],
        [{"key": "a", "value": "bc"}],                         # same letters, other split
        [{"key": "a", "value": None}],
        [{"key": "a", "value": ""}],                           # null value is not ""
        [None],                                                # a null element
        [{"key": "x", "value": "1"}, {"key": "y", "value": "2"}],
        [{"key": "y", "value": "2"}, {"key": "x", "value": "1"}],  # order kept
        [{"key": "x", "value": "1"}, {"key": "y", "value": "2"}],  # repeat of row 7
        [{"key": "ab", "value": "c"}],                         # repeat of row 2
        None,                                                  # repeat of row 0
        [],                                                    # repeat of row 1
    ]
    assert same_partition(column_codes(pa.array(rows, KV)), rows)


def test_sliced_and_chunked_columns_code_their_own_rows():
    rows = [[{"key": "k", "value": str(i % 3)}] if i % 4 else None for i in range(40)]
    whole = pa.array(rows, KV)
    part = whole.slice(7, 20)
    assert same_partition(column_codes(part), rows[7:27])
    chunked = pa.chunked_array([whole.slice(0, 13), whole.slice(13)])
    assert same_partition(column_codes(chunked), rows)


def test_several_columns_combine_into_one_code_per_row():
    names = ["a", "a", "b", None, "a", None]
    amounts = pa.array([1, 2, 1, 1, 1, 1], pa.int64())
    nested = pa.array([{"x": 1}, {"x": 1}, {"x": 1}, None, {"x": 1}, None],
                      pa.struct([("x", pa.int64())]))
    rows = list(zip(names, amounts.to_pylist(), nested.to_pylist(), strict=True))
    assert same_partition(row_codes([pa.array(names), amounts, nested]), rows)


def _render(columns: list[pa.Array]) -> pa.Array:
    """A row-wise function: the JSON of each row's list, joined to its name."""
    texts = [f"{n}:{lst}" for n, lst in zip(columns[0].to_pylist(), columns[1].to_pylist(),
                                            strict=True)]
    return pa.array(texts)


@pytest.mark.parametrize("distinct", [5, 5000])  # repeats, and mostly distinct (fallback)
def test_once_per_distinct_row_gives_what_every_row_gives(distinct):
    rng = random.Random(distinct)
    names = [f"n{rng.randrange(distinct)}" for _ in range(3000)]
    lists = [[{"key": f"k{rng.randrange(3)}", "value": str(rng.randrange(distinct))}]
             if rng.random() > 0.2 else None for _ in range(3000)]
    columns = [pa.array(names), pa.array(lists, KV)]
    calls: list[int] = []

    def counted(cols: list[pa.Array]) -> pa.Array:
        calls.append(len(cols[0]))
        return _render(cols)

    assert once_per_distinct_row(columns, counted).equals(_render(columns))
    if distinct == 5:
        assert calls[0] < 100  # a few dozen distinct rows, not 3,000
    else:
        assert calls == [3000]


def test_a_chunked_column_and_its_slice_come_back_aligned():
    base = pa.array([f"v{i % 7}" for i in range(1000)])
    column = pa.chunked_array([base.slice(0, 300), base.slice(300)])
    out = once_per_distinct_row([column], lambda cols: pc.utf8_upper(cols[0]))
    assert out.to_pylist() == [f"V{i % 7}" for i in range(1000)]
