"""The row-by-row join of an Azure actual-cost export with its amortized twin, in bounded memory.

Why this module exists: an actual row and its amortized twin share every column amortization
leaves unchanged (`costflow.providers.azure.headers.identity_columns`); the n-th actual row of
an identity is the twin of the n-th amortized row of the same identity. Holding both exports as
tables of text to match them took ~5 GB for a month of one million rows. Here each row's
identity is kept as two 64-bit hashes of its text (`costflow.transforms.duplicates.hash_strings`
of the text and of the text behind a one-byte prefix: two different identities agree on both
with probability ~2^-128 per pair) plus its occurrence number, and the amortized cost as text:
about 40 bytes a row. The files are read once to match and once more to emit their rows
(`costflow.providers.azure.exports`), batch by batch. An identity's text is its fields' export
text joined by the unit separator, a missing (or empty) field written as NUL, as before this
module: exports hold neither control character.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.errors import SourceError
from costflow.sources.contract import SourceFile
from costflow.transforms.arrow_text import as_text
from costflow.transforms.duplicates import hash_strings

NULL_FIELD, FIELD_SEPARATOR = "\x00", "\x1f"

Batches = Callable[[SourceFile], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class Pairing:
    """The matches of one actual run with one amortized run (parts in run order).

    Attributes:
        actual_offsets: first row (0-based, over the run's parts) of each actual part, and the
            total at the end; ``amortized_offsets`` likewise.
        amortized_cost: per actual row, its twin's cost text (null without a twin).
        amortized_unmatched: per amortized row, True when no actual row is its twin.
    """

    actual_offsets: list[int]
    amortized_offsets: list[int]
    amortized_cost: pa.Array
    amortized_unmatched: np.ndarray


@dataclass
class _Identities:
    """One run's identity hashes (two uint64 per row), occurrence numbers, and costs if asked."""

    first: np.ndarray
    second: np.ndarray
    occurrence: np.ndarray
    offsets: list[int]
    costs: pa.Array | None


def _texts(batch: pa.RecordBatch, names: Sequence[str]) -> pa.Array:
    """Each row's identity: the columns' export text (null as NUL) joined by a separator."""
    parts = [pc.fill_null(as_text(batch.column(batch.schema.get_field_index(n))), NULL_FIELD)
             for n in names]
    if not parts:
        return pa.repeat(pa.scalar(""), batch.num_rows)
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts,
                                                                        FIELD_SEPARATOR)


def _occurrences(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row, how many earlier rows (in file order) share its identity."""
    order = np.lexsort((np.arange(len(first)), second, first))
    a, b = first[order], second[order]
    starts = np.r_[0, np.flatnonzero((a[1:] != a[:-1]) | (b[1:] != b[:-1])) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    occurrence = np.empty(len(order), dtype=np.int64)
    occurrence[order] = np.arange(len(order)) - group_start
    return occurrence


def _identities(parts: Sequence[SourceFile], names: Sequence[str], batches: Batches,
                cost: str | None) -> _Identities:
    firsts: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    costs: list[pa.Array] = []
    offsets, total = [], 0
    header: list[str] | None = None
    for part in parts:
        if header is not None and list(part.columns) != header:
            raise SourceError(part.uri, "has a different header than the other parts of its "
                              "export run.", expected="parts of one run to share one header")
        header = list(part.columns)
        offsets.append(total)
        for batch in batches(part):
            text = _texts(batch, names)
            firsts.append(hash_strings(text))
            seconds.append(hash_strings(pc.binary_join_element_wise("\x01", text, "")))
            if cost is not None:
                costs.append(as_text(batch.column(batch.schema.get_field_index(cost))))
            total += batch.num_rows
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.uint64)
    second = np.concatenate(seconds) if seconds else np.zeros(0, np.uint64)
    return _Identities(first, second, _occurrences(first, second), offsets + [total],
                       pa.concat_arrays(costs) if costs else (
                           pa.array([], pa.string()) if cost is not None else None))


def pair(actual: Sequence[SourceFile], amortized: Sequence[SourceFile],
         names: Sequence[tuple[str, str]], amortized_cost_column: str,
         batches: Batches) -> Pairing:
    """Match ``actual``'s rows with ``amortized``'s on the ``names`` (actual, amortized) column
    pairs and the occurrence number; ``batches`` reads one part as text-ready record batches."""
    a = _identities(actual, [x for x, _ in names], batches, None)
    m = _identities(amortized, [y for _, y in names], batches, amortized_cost_column)
    n_a, n_m = len(a.first), len(m.first)
    # All rows of both runs sorted by (identity, occurrence), amortized before actual: an
    # actual row's twin (a triple is unique within a run) sorts right before it.
    source = np.r_[np.zeros(n_m, np.int8), np.ones(n_a, np.int8)]
    h1, h2 = np.r_[m.first, a.first], np.r_[m.second, a.second]
    occ = np.r_[m.occurrence, a.occurrence]
    order = np.lexsort((source, occ, h2, h1))
    s_h1, s_h2, s_occ, s_src = h1[order], h2[order], occ[order], source[order]
    twin = np.zeros(len(order), dtype=bool)
    twin[1:] = ((s_src[1:] == 1) & (s_src[:-1] == 0) & (s_h1[1:] == s_h1[:-1])
                & (s_h2[1:] == s_h2[:-1]) & (s_occ[1:] == s_occ[:-1]))
    actual_rows = order[1:][twin[1:]] - n_m          # actual positions with a twin
    twin_rows = order[:-1][twin[1:]]                  # their amortized positions
    positions = np.full(n_a, -1, dtype=np.int64)
    positions[actual_rows] = twin_rows
    unmatched = np.ones(n_m, dtype=bool)
    unmatched[twin_rows] = False
    assert m.costs is not None
    cost = pc.take(m.costs, pa.array(positions, mask=positions < 0))
    return Pairing(a.offsets, m.offsets, cost, unmatched)
