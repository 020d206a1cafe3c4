"""The actual/amortized join in bounded memory gives exactly the matches of the whole-table join.

`costflow.providers.azure.pairing` keeps two 64-bit hashes and an occurrence number per row
instead of both exports as text. The oracle here is written independently, in plain Python over
the full identity text: the n-th actual row of an identity is the twin of the n-th amortized row
of that identity. Rows are fed in small batches and over two parts per run, so occurrence
numbers must carry across batch and part boundaries.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import pyarrow as pa
import pytest

from costflow.errors import SourceError
from costflow.providers.azure.pairing import pair
from costflow.sources.contract import SourceFile

COLUMNS = ("Date", "SubscriptionId", "MeterId", "Quantity", "Cost")


def part(uri: str, columns: tuple[str, ...] = COLUMNS) -> SourceFile:
    return SourceFile(uri=uri, size_bytes=0, sha256=uri, container="csv", compression=None,
                      columns=columns, source_format="azure_cost_details", provider="azure")


def rows(rng: random.Random, n: int, cost_prefix: str) -> list[dict[str, str | None]]:
    """Few distinct identities, so most repeat; some fields empty (null)."""
    out = []
    for i in range(n):
        out.append({"Date": f"10/{rng.randint(1, 3):02d}/2026",
                    "SubscriptionId": rng.choice(["s1", "s2", None]),
                    "MeterId": rng.choice(["m1", "m2", "m\x1fx", ""]),
                    "Quantity": rng.choice(["1", "2", None]),
                    "Cost": f"{cost_prefix}{i}"})
    return out


def reader(data: dict[str, list[dict]]):
    def batches(p: SourceFile) -> Iterator[pa.RecordBatch]:
        records = data[p.uri]
        for start in range(0, len(records), 7):  # small batches: boundaries everywhere
            chunk = records[start:start + 7]
            yield pa.RecordBatch.from_pydict(
                {c: pa.array([r[c] for r in chunk], pa.string()) for c in p.columns})
    return batches


def oracle(actual: list[dict], amortized: list[dict]) -> tuple[list, list[bool]]:
    names = COLUMNS[:-1]
    def ident(r: dict) -> tuple:  # an empty field is a missing one, as the CSV reader reads it
        return tuple(r[n] or None for n in names)
    seen: dict[tuple, int] = defaultdict(int)
    by_key: dict[tuple, int] = {}
    for i, r in enumerate(amortized):
        k = ident(r)
        by_key[(k, seen[k])] = i
        seen[k] += 1
    seen.clear()
    costs, matched = [], set()
    for r in actual:
        k = ident(r)
        j = by_key.get((k, seen[k]))
        seen[k] += 1
        costs.append(None if j is None else amortized[j]["Cost"])
        if j is not None:
            matched.add(j)
    return costs, [j not in matched for j in range(len(amortized))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_equal_the_whole_table_join(seed: int) -> None:
    rng = random.Random(seed)
    actual, amortized = rows(rng, 300, "a"), rows(rng, 280, "m")
    data = {"a1": actual[:130], "a2": actual[130:], "m1": amortized[:200], "m2": amortized[200:]}
    names = [(c, c) for c in COLUMNS[:-1]]
    got = pair([part("a1"), part("a2")], [part("m1"), part("m2")], names, "Cost", reader(data))
    costs, unmatched = oracle(actual, amortized)
    assert got.amortized_cost.to_pylist() == costs
    assert got.amortized_unmatched.tolist() == unmatched
    assert (got.actual_offsets, got.amortized_offsets) == ([0, 130, 300], [0, 200, 280])
    assert 0 < sum(c is not None for c in costs) < len(costs)  # the case is not trivial


def test_a_missing_field_never_matches_a_present_one() -> None:
    actual = [{"Date": "d", "SubscriptionId": None, "MeterId": "x", "Quantity": "1", "Cost": "a"},
              {"Date": "d", "SubscriptionId": "", "MeterId": "x", "Quantity": "1", "Cost": "b"}]
    amortized = [{"Date": "d", "SubscriptionId": "s", "MeterId": "x", "Quantity": "1",
                  "Cost": "m"},
                 {"Date": "d", "SubscriptionId": None, "MeterId": "x", "Quantity": "1",
                  "Cost": "n"}]
    data = {"a": actual, "m": amortized}
    got = pair([part("a")], [part("m")], [(c, c) for c in COLUMNS[:-1]], "Cost", reader(data))
    # The first missing-subscription row pairs with the amortized missing one, never with
    # "s"; the second missing one (occurrence 1) has no twin.
    assert got.amortized_cost.to_pylist() == ["n", None]
    assert got.amortized_unmatched.tolist() == [True, False]


def test_parts_of_one_run_must_share_a_header() -> None:
    data = {"a1": [], "a2": [], "m": []}
    with pytest.raises(SourceError, match="different header"):
        pair([part("a1"), part("a2", COLUMNS[::-1])], [part("m")],
             [(c, c) for c in COLUMNS[:-1]], "Cost", reader(data))
