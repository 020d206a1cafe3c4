"""Line items repeated across the files of one slice, found at commit time over staged keys.

Why: a provider may deliver one billing period in several files (AWS CUR parts, Azure
partitioned exports). The reader flags a line-item id repeated inside one file
(`costflow.transforms.duplicates`), but the same line item in two part files of a slice (a part
delivered twice under two names, an old and a restated copy side by side) would be loaded twice
and reconcile "to 0 difference" against itself. The commit step is the first place that sees
every file of a slice, so it checks there, before the slice gate.

What: staging writes, beside each bundle's row files, the line-item keys of its loaded rows of
formats with an id (`costflow.pipelines.staging.KEY_SCHEMA`: slice, source location, the
reader's 64-bit key hash and the key's text); formats without an id (GCP, Azure cost details)
stage none and cost nothing here. A key whose rows sit in more than one file of a slice is
handled as the reader handles a repeat inside a file: every copy outside the first file (files
in URI order) is loaded but flagged ``LineItemId:duplicate`` (the staged row files holding them
are rewritten), so the gate counts them into its warning; and one warning per slice names the
files and a repeated id.

How: pass 1 reads only the hash, slice and file columns (12 bytes kept per keyed row: the
hash mixed with the slice, and a file number), sorts once and finds hashes spanning two files;
only when there are some does pass 2 read the locations and texts of those rows and rewrite the
row files that hold them. Two different ids share a hash with probability ~n²/2⁶⁵.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from costflow.pipelines.staging import KEY_SLICE as SLICE
from costflow.pipelines.staging import rewrite_staged
from costflow.transforms.arrow_ops import add_flags
from costflow.transforms.duplicates import (
    DUPLICATE_FLAG,
    KEY_HASH_COLUMN,
    KEY_SEPARATOR,
    KEY_TEXT_COLUMN,
)

LOG = logging.getLogger("costflow.ingest")
FLAGS = "x_DataQualityFlags"
SUFFIX = ".crossfile.parquet"
EXAMPLES = 3  # file pairs named per slice in the warning


def bundle_of(path: str) -> str:
    """The staging bundle a row or key file belongs to (the name before its first dot)."""
    return posixpath.basename(path).split(".", 1)[0]


@dataclass
class CrossFile:
    """The run's row files after the check, and a warning per slice with repeats."""

    row_files: list[str]
    warnings: list[str] = field(default_factory=list)
    flagged: int = 0


def flag_across_files(row_files: Sequence[str], key_files: Sequence[str]) -> CrossFile:
    """Flag the copies of line items repeated across files of a slice; see the module doc."""
    if not key_files:
        return CrossFile(list(row_files))
    keys, file_ranks, sizes = _read_keys(key_files)
    repeated = _repeated(keys, file_ranks)
    if not repeated.size:
        return CrossFile(list(row_files))
    # Pass 2: the locations and texts of the rows involved (a few, unless a file came twice).
    picked = _take(key_files, sizes, repeated)
    order = np.lexsort((picked.column("x_SourceRowNumber").to_numpy(), file_ranks[repeated],
                        keys[repeated]))
    picked = picked.take(pa.array(order))
    keys_sorted, files_sorted = keys[repeated][order], file_ranks[repeated][order]
    new_key = np.r_[True, keys_sorted[1:] != keys_sorted[:-1]]
    first = np.maximum.accumulate(np.where(new_key, np.arange(len(order)), 0))
    later = files_sorted != files_sorted[first]  # a copy outside the key's first file
    warnings = _warnings(picked, first, later)
    flagged = picked.filter(pa.array(later))
    by_uri = _rows_by_uri(flagged)
    targets = {bundle_of(f) for f in pc.unique(flagged.column("key_file")).to_pylist()}
    out = [(_rewrite(path, by_uri) if bundle_of(path) in targets else path)
           for path in row_files]
    LOG.info("flagged %d row(s) repeating a line item of another file of their slice",
             flagged.num_rows)
    return CrossFile(out, warnings, flagged.num_rows)


def _read_keys(key_files: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Pass 1: per keyed row, its key hash mixed with its slice, and its file's rank among the
    run's files in URI order; and the row count of each key file."""
    uri_codes: dict[tuple, int] = {}
    slice_codes: dict[tuple, int] = {}
    keys, codes, sizes = [], [], []
    for path in key_files:
        with FileSystems.open(path) as handle:
            table = pq.read_table(handle, columns=[*SLICE, "x_SourceUri", KEY_HASH_COLUMN])
        sizes.append(table.num_rows)
        codes.append(_codes([table.column("x_SourceUri")], uri_codes))
        salt = (_codes([table.column(c) for c in SLICE], slice_codes).astype(np.uint64)
                + np.uint64(1)) * _SLICE_SALT
        keys.append(table.column(KEY_HASH_COLUMN).to_numpy() ^ salt)
    if not uri_codes:
        return np.zeros(0, np.uint64), np.zeros(0, np.int32), sizes
    names = [uri for (uri,) in uri_codes]
    rank = np.empty(len(names), np.int32)
    for position, code in enumerate(sorted(range(len(names)), key=names.__getitem__)):
        rank[code] = position
    return np.concatenate(keys), rank[np.concatenate(codes)], sizes


_SLICE_SALT = np.uint64(0x9E3779B97F4A7C15)


def _codes(columns: Sequence[pa.ChunkedArray], known: dict[tuple, int]) -> np.ndarray:
    """A number per row for its combination of values of ``columns``, numbered across calls
    in ``known``; Python runs once per distinct combination (a file, a slice), not per row."""
    n = len(columns[0])
    combined = np.zeros(n, np.int64)
    dictionaries = []
    for column in columns:
        encoded = pc.dictionary_encode(column).combine_chunks()
        size = len(encoded.dictionary) + 1  # the last code: null
        combined = combined * size + pc.fill_null(encoded.indices, size - 1).to_numpy()
        dictionaries.append((encoded.dictionary.to_pylist() + [None], size))
    distinct, inverse = np.unique(combined, return_inverse=True)
    numbers = np.empty(len(distinct), np.int32)
    for i, code in enumerate(distinct.tolist()):  # a few per file
        values = []
        for values_of, size in reversed(dictionaries):
            code, at = divmod(code, size)
            values.append(values_of[at])
        numbers[i] = known.setdefault(tuple(reversed(values)), len(known))
    return numbers[inverse.reshape(-1)] if n else np.zeros(0, np.int32)


def _repeated(keys: np.ndarray, file_ranks: np.ndarray) -> np.ndarray:
    """Positions of every row whose (slice, key) also has a row in another file."""
    if not keys.size:
        return np.zeros(0, np.int64)
    order = np.argsort(keys)
    k, f = keys[order], file_ranks[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], len(k)]
    spans = np.minimum.reduceat(f, starts) != np.maximum.reduceat(f, starts)
    if not spans.any():
        return np.zeros(0, np.int64)
    return np.sort(order[np.repeat(spans, ends - starts)])


def _take(key_files: Sequence[str], sizes: list[int], positions: np.ndarray) -> pa.Table:
    """The rows at (ascending) ``positions`` over the key files read in order, with the key
    file each came from."""
    bounds = np.cumsum([0, *sizes])
    parts = []
    for i, path in enumerate(key_files):
        mine = positions[(positions >= bounds[i]) & (positions < bounds[i + 1])] - bounds[i]
        if not mine.size:
            continue
        with FileSystems.open(path) as handle:
            picked = pq.read_table(handle).take(pa.array(mine))
        parts.append(picked.append_column("key_file", pa.repeat(pa.scalar(path), len(mine))))
    return pa.concat_tables(parts)


def _rows_by_uri(flagged: pa.Table) -> dict[str, pa.Array]:
    """The flagged source row numbers of each source file (few files)."""
    uri = flagged.column("x_SourceUri")
    numbers = flagged.column("x_SourceRowNumber").combine_chunks()
    return {name: pc.unique(numbers.filter(pc.equal(uri, name)))
            for name in pc.unique(uri).to_pylist()}


def _warnings(picked: pa.Table, first: np.ndarray, later: np.ndarray) -> list[str]:
    """One warning per slice: how many rows repeat a line item of another file, and examples
    (the repeat of each pair of files first in the later file, up to EXAMPLES pairs)."""
    at_first = pa.array(first)
    repeats = pa.table({
        **{c: picked.column(c) for c in SLICE},
        "first_uri": picked.column("x_SourceUri").take(at_first),
        "first_row": picked.column("x_SourceRowNumber").take(at_first),
        "uri": picked.column("x_SourceUri"), "row": picked.column("x_SourceRowNumber"),
        "text": picked.column(KEY_TEXT_COLUMN),
    }).filter(pa.array(later)).sort_by([("uri", "ascending"), ("row", "ascending")])
    pairs = repeats.group_by([*SLICE, "first_uri", "uri"], use_threads=False).aggregate(
        [("row", "count"), ("first_row", "first"), ("row", "first"), ("text", "first")])
    by_slice: dict[tuple, list[dict]] = {}
    for pair in pairs.to_pylist():  # one per pair of files
        by_slice.setdefault(tuple(pair[c] for c in SLICE), []).append(pair)
    out = []
    for (provider, account, period), found in sorted(by_slice.items(), key=lambda kv: str(kv[0])):
        found.sort(key=lambda p: (p["first_uri"], p["uri"]))
        examples = "; ".join(
            f"line item {_shown(p['text_first'])} is in {p['first_uri']} (row "
            f"{p['first_row_first']}) and again in {p['uri']} (row {p['row_first']})"
            for p in found[:EXAMPLES])
        more = (f"; and {len(found) - EXAMPLES} more pair(s) of files"
                if len(found) > EXAMPLES else "")
        rows = sum(p["row_count"] for p in found)
        when = period.strftime("%Y-%m") if hasattr(period, "strftime") else period
        out.append(
            f"slice {provider}/{account}/{when}: {rows:,} row(s) repeat a line item of another "
            f"file of the same slice, so the cost would count twice; they are loaded flagged "
            f"{DUPLICATE_FLAG}: {examples}{more}. Is one part delivered twice, or an old and a "
            "new copy of the export side by side? Remove one and ingest again.")
    return out


def _shown(text: str) -> str:
    return "'" + text.replace(KEY_SEPARATOR, "' at '") + "'"


def _rewrite(path: str, by_uri: dict[str, pa.Array]) -> str:
    """``path`` with the flag added to the rows of ``by_uri``, as a new file (the old one is
    removed); rows already flagged (a repeat inside their file) keep one flag."""
    return rewrite_staged(path, SUFFIX, lambda table: _flag(table, by_uri))


def _flag(table: pa.Table, by_uri: dict[str, pa.Array]) -> pa.Table:
    uri, number = table.column("x_SourceUri"), table.column("x_SourceRowNumber")
    mask = pa.repeat(pa.scalar(False), table.num_rows)
    for name, numbers in by_uri.items():
        mask = pc.or_(mask, pc.and_(pc.equal(uri, name),
                                    pc.is_in(number, value_set=numbers)))
    flags = table.column(FLAGS)
    already = pc.fill_null(pc.match_substring(flags, f'"{DUPLICATE_FLAG}"'), False)
    mask = pc.and_(mask, pc.invert(already))
    if not pc.any(mask).as_py():
        return table
    index = table.schema.get_field_index(FLAGS)
    return table.set_column(index, table.schema.field(index),
                            add_flags(flags.combine_chunks(), {DUPLICATE_FLAG: mask}))
