"""Per-row operations over exploded list columns (credits, labels, ancestors)."""

from __future__ import annotations

import json

import pyarrow as pa

from costflow.transforms.nested_ops import (
    Exploded,
    KeyValues,
    explode,
    join_per_row,
    merged_json_object,
)


def test_join_per_row_keeps_element_order_and_nulls_rows_without_elements() -> None:
    lists = pa.array([["a", "b"], None, [], ["c"], ["d", None, "e"]], pa.list_(pa.string()))
    ex = explode(lists)
    assert join_per_row(ex, ex.values, "[", "]").to_pylist() == [
        "[a,b]", None, None, "[c]", "[d,e]"]


def test_join_per_row_accepts_elements_not_sorted_by_row() -> None:
    ex = Exploded(pa.array([2, 0, 2, 0], pa.int64()), pa.array(["x", "a", "y", "b"]), 4)
    assert join_per_row(ex, ex.values, "<", ">").to_pylist() == ["<a,b>", None, "<x,y>", None]


def test_merged_json_object_lets_the_higher_precedence_win_per_key() -> None:
    kv = pa.struct([("key", pa.string()), ("value", pa.string())])
    resource = explode(pa.array([[{"key": "env", "value": "prod"}], [],
                                 [{"key": "team", "value": 'we"b'}]], pa.list_(kv)))
    project = explode(pa.array([[{"key": "env", "value": "dev"}, {"key": "cc", "value": "1"}],
                                [{"key": "cc", "value": "2"}], []], pa.list_(kv)))
    merged = merged_json_object([
        KeyValues(project, project.field("key"), project.field("value"), 1),
        KeyValues(resource, resource.field("key"), resource.field("value"), 3)], 3)
    assert [json.loads(t) for t in merged.to_pylist()] == [
        {"cc": "1", "env": "prod"}, {"cc": "2"}, {"team": 'we"b'}]
