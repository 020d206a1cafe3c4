"""Line items that appear more than once in a file, found vectorized while the file is read.

Why: a line-item id names one line item of the bill. A file where every line item appears twice
(an export concatenated with itself, a part appended twice) reconciles "to 0 difference"
against itself: the invoice basis is summed from the same doubled rows. Formats that carry an id
say which source columns hold it (`line_item_key`): AWS CUR ``identity/LineItemId`` with
``identity/TimeInterval`` (CUR ids are unique per time interval, not per file), a FOCUS export's
``Id`` column where it has one. Rows are never dropped: every repeat of an id seen earlier in the
same file is marked (`DUPLICATE_COLUMN` on the batch), `costflow.transforms.finalize` turns the
mark into the ``LineItemId:duplicate`` data-quality flag, and the slice gate
(`costflow.quality.gate`) counts the flagged rows per slice into a run warning. The same id in
two files of one slice (CUR parts, partitioned exports) is found at commit time from the keys
the reader attaches to every batch (`KEY_HASH_COLUMN`, `KEY_TEXT_COLUMN`; staged beside the
rows, `costflow.pipelines.cross_file`) and flagged the same way.

How: each key is hashed to 64 bits from Arrow's string buffer with numpy, eight bytes at a
time (no Python object per row); repeats within a batch come from one sort, repeats of earlier
batches from binary search in sorted runs of the hashes seen so far, merged like a binary
counter so that the work stays O(n log n) over the file. Memory: 8 bytes per row of the file.
Two different ids collide with probability about n²/2⁶⁵ (1e-6 for ten million rows), which
would flag one row, never change it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_text import as_text

DUPLICATE_COLUMN = "costflow:LineItemDuplicate"
DUPLICATE_FLAG = "LineItemId:duplicate"
# The reader's key of every row (formats with a line-item id): its 64-bit hash (null where the
# row has no id) and its text (the key columns joined by KEY_SEPARATOR). Carried past the
# normalizer to staging, so that the commit can find a line item repeated in another file of
# the same slice (`costflow.pipelines.cross_file`); never a warehouse column.
KEY_HASH_COLUMN = "costflow:LineItemKey"
KEY_TEXT_COLUMN = "costflow:LineItemKeyText"
KEY_SEPARATOR = "\x1f"
READER_COLUMNS = (DUPLICATE_COLUMN, KEY_HASH_COLUMN, KEY_TEXT_COLUMN)


def line_item_key(normalizer: object, columns: Sequence[str]) -> tuple[str, ...]:
    """The file's columns that identify one line item, or () when its format has none.

    A normalizer declares them as ``line_item_key`` (a tuple of source column names, all of
    which must be in the file); formats without an id (GCP, Azure cost details) declare none.
    """
    key = tuple(getattr(normalizer, "line_item_key", ()) or ())
    return key if key and all(name in columns for name in key) else ()


def key_hashes(batch: pa.RecordBatch, key: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(a 64-bit hash per row of the key columns' text, whether the row has a key at all).

    A row whose id (or any key column) is empty has no identity to repeat, so it never counts.
    """
    hashes, valid, _ = key_texts(batch, key)
    return hashes, valid


def key_texts(batch: pa.RecordBatch,
              key: Sequence[str]) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """`key_hashes`, with the key's text (columns joined by `KEY_SEPARATOR`) per row."""
    texts = [as_text(batch.column(batch.schema.get_field_index(name))) for name in key]
    valid = np.ones(batch.num_rows, dtype=bool)
    for text in texts:
        if text.null_count:
            valid &= pc.is_valid(text).to_numpy(zero_copy_only=False)
    parts = [pc.fill_null(text, "") for text in texts]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts,
                                                                           KEY_SEPARATOR)
    return hash_strings(joined), valid, joined


def hash_strings(text: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string's bytes, eight bytes at a time.

    Rows of one length form a (rows, length) byte matrix (a view of Arrow's buffer when every
    row of the batch has the same length, as CUR ids do), padded to whole 64-bit words; each
    word is mixed with its position and the words of a row are summed, then mixed with the
    length. No Python object per row.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not pa.types.is_string(text.type):
        text = pc.cast(text, pa.string())
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + n + 1]
    data = (np.frombuffer(text.buffers()[2], dtype=np.uint8)
            if n and offsets[-1] > offsets[0] else np.zeros(0, np.uint8))
    lengths = np.diff(offsets)
    hashes = _mix(lengths.astype(np.uint64) * _LENGTH_SALT)
    for length in np.unique(lengths):
        if length == 0:
            continue
        rows = np.flatnonzero(lengths == length)
        if len(rows) == n:  # one length: the buffer itself, viewed as a matrix
            matrix = data[offsets[0]:offsets[-1]].reshape(n, int(length))
        else:
            matrix = data[offsets[rows][:, None] + np.arange(int(length))]
        hashes[rows] ^= _hash_matrix(matrix)
    return hashes


_LENGTH_SALT = np.uint64(0x9E3779B97F4A7C15)
_WORD_SALT = np.uint64(0xD6E8FEB86659FD93)


def _hash_matrix(matrix: np.ndarray) -> np.ndarray:
    rows, length = matrix.shape
    words = -(-length // 8)
    padded = np.zeros((rows, words * 8), np.uint8)
    padded[:, :length] = matrix
    salts = np.arange(1, words + 1, dtype=np.uint64) * _WORD_SALT
    with np.errstate(over="ignore"):
        return _mix(_mix(padded.view(np.uint64) ^ salts).sum(axis=1, dtype=np.uint64))


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: every input bit affects every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class SeenKeys:
    """The key hashes of the rows read so far, as sorted runs merged like a binary counter."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def repeats(self, hashes: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Mask of the rows whose key appeared earlier (in this batch or a previous one);
        the batch's keys are remembered. Rows where ``valid`` is False never repeat."""
        repeat = np.zeros(len(hashes), dtype=bool)
        if valid is not None and not valid.all():
            repeat[valid] = self.repeats(hashes[valid])
            return repeat
        if not len(hashes):
            return repeat
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        later = np.r_[False, ordered[1:] == ordered[:-1]]  # not the first in this batch
        repeat[order[later]] = True
        for run in self._runs:
            at = np.searchsorted(run, hashes)
            found = at < len(run)
            found[found] = run[at[found]] == hashes[found]
            repeat |= found
        self._add(ordered[~later])
        return repeat

    def _add(self, run: np.ndarray) -> None:
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            merged.sort(kind="mergesort")
            self._runs.append(merged)


def mark_repeats(batches: Iterator[tuple[int, pa.RecordBatch]],
                 key: Sequence[str]) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The file's batches, each with `DUPLICATE_COLUMN` (bool) when one of its rows repeats a
    line item seen earlier in the file, and with every row's key (`KEY_HASH_COLUMN`, null for a
    row without an id, and `KEY_TEXT_COLUMN`) for the slice-level check across files."""
    seen = SeenKeys()
    for first, batch in batches:
        marks = [name for name in READER_COLUMNS if name in batch.schema.names]
        if marks:  # marked by a reader this one wraps (and maybe retyped): marked here again
            batch = batch.drop_columns(marks)
        hashes, valid, text = key_texts(batch, key)
        repeat = seen.repeats(hashes, valid)
        if repeat.any():
            batch = batch.append_column(DUPLICATE_COLUMN, pa.array(repeat))
        batch = batch.append_column(KEY_HASH_COLUMN, pa.array(hashes, mask=~valid))
        yield first, batch.append_column(KEY_TEXT_COLUMN, text)
