"""Row-wise work done once per distinct row, for column combinations Arrow cannot hash.

Why this module exists: export rows repeat. A resource's labels, its project's ancestry, a SKU's
unit price with the day's exchange rate: the same values stand on thousands of hourly rows,
while the JSON and exact-decimal kernels that turn them into FOCUS columns cost per row.
`costflow.transforms.arrow_ops.on_distinct` runs a kernel once per distinct value of one column;
this module does it for a combination of columns, lists of records included (GCP labels, tags,
project ancestors), which Arrow's hash kernels cannot encode (``dictionary_encode`` has no
kernel for ``list<struct>``).

`row_codes` gives every row an integer that is equal for two rows exactly when their values are
equal in every column (null equals null, a null list is not an empty one). A list's code comes
from its elements' codes laid end to end as bytes, one binary value per row, which Arrow can
hash. `once_per_distinct_row` evaluates a row-wise function on one row of each distinct
combination and spreads the results back; when most rows are distinct it simply runs on all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.transforms.arrow_ops import whole

_MIN_ROWS = 256  # below this the bookkeeping costs more than it saves


def _compact(codes: np.ndarray) -> np.ndarray:
    """The same partition of rows, numbered 0..k-1 (keeps combined codes small)."""
    return np.asarray(pc.dictionary_encode(pa.array(codes, pa.int64())).indices,
                      dtype=np.int64)


def _combine(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Codes equal exactly where every part's codes are equal (each part 0..k-1)."""
    combined = parts[0]
    for part in parts[1:]:
        width = int(part.max()) + 1 if len(part) else 1
        combined = _compact(combined * width + part)
    return combined


def column_codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per row, an int64 code equal exactly where the values are equal (nulls included)."""
    values = whole(values)
    kind = values.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _list_codes(values)
    if pa.types.is_struct(kind):
        fields = [column_codes(pc.struct_field(values, i)) for i in range(kind.num_fields)]
        valid = np.asarray(values.is_valid(), dtype=np.int64)
        return _combine([*fields, valid])
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return np.asarray(encoded.indices, dtype=np.int64)


def _list_codes(values: pa.Array) -> np.ndarray:
    offsets = np.asarray(values.offsets, dtype=np.int64)  # absolute into values.values
    first, last = int(offsets[0]), int(offsets[-1])
    elements = column_codes(values.values.slice(first, last - first)).astype("<i4")
    byte_offsets = ((offsets - first) * 4).astype("<i4")
    rows = pa.Array.from_buffers(pa.binary(), len(values), [
        None, pa.py_buffer(byte_offsets.tobytes()), pa.py_buffer(elements.tobytes())])
    codes = np.asarray(pc.dictionary_encode(rows).indices, dtype=np.int64)
    return codes * 2 + np.asarray(values.is_null(), dtype=np.int64)


def row_codes(columns: Sequence[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """Per row, an int64 code equal exactly where every column's values are equal."""
    return _combine([column_codes(c) for c in columns])


def once_per_distinct_row(columns: Sequence[pa.Array | pa.ChunkedArray],
                          rowwise: Callable[[list[pa.Array]], pa.Array]) -> pa.Array:
    """``rowwise(columns)``, computed on one row of each distinct combination of values.

    ``rowwise`` must compute each row from that row's values alone (same length out as in).
    """
    columns = [whole(c) for c in columns]
    rows = len(columns[0]) if columns else 0
    if rows < _MIN_ROWS:
        return rowwise(columns)
    _, first, inverse = np.unique(row_codes(columns), return_index=True, return_inverse=True)
    if len(first) * 2 > rows:
        return rowwise(columns)
    chosen = pa.array(first, pa.int64())
    return whole(pc.take(rowwise([c.take(chosen) for c in columns]),
                         pa.array(inverse.reshape(-1), pa.int64())))
