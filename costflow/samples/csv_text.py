"""Vectorized CSV text building for the sample generators.

Billing exports are text. To test an ingest against millions of realistic rows, the generator has
to write that text as the provider does, fast, and without per-row Python. This module holds the
three pieces that make that possible:

* `java_number_strings` renders exact scaled integers the way AWS CUR writes numbers (Java's
  ``Double.toString``: ``0.0``, ``1.0``, ``0.0400929769``, ``1.443347E-4``, ``5.2E-9``), so the
  numbers in the file are exactly the integers the generator summed;
* `LineAssembler` joins per-column string arrays into CSV lines with `pyarrow.compute`, folding
  runs of columns that depend only on a product template into one pre-joined segment;
* `TextSink` streams those lines to a plain or gzip file, compressing gzip members on a thread
  pool so that generation and compression use every core.

Values handed to the assembler are already CSV-escaped (`csv_escape`): quoting is decided once per
distinct value, never per row, and empty fields are written empty, as AWS writes them.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


def csv_escape(value: str) -> str:
    """Quote ``value`` for CSV only when it needs it (RFC 4180, as AWS CUR does)."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _concat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def java_number_strings(units: np.ndarray, scale: int) -> pa.Array:
    """Render ``units * 10**-scale`` exactly, formatted like Java's ``Double.toString``.

    Magnitudes in [1e-3, 1e7) are written plainly with at least one decimal (``12.5``, ``1.0``);
    others in computerized scientific notation (``4.97E-9``, ``1.2E7``); zero is ``0.0``. Because
    the digits come from the integer, the text is exactly the decimal the caller summed.

    Args:
        units: int64 array of scaled integers.
        scale: number of decimal places one unit stands for (``units = value * 10**scale``).

    Returns:
        A string array aligned with ``units``.

    Example:
        >>> java_number_strings(np.array([0, 10**12, 497, -1443347 * 10**2]), 12).to_pylist()
        ['0.0', '1.0', '4.97E-10', '-1.443347E-4']
    """
    units = np.asarray(units, dtype=np.int64)
    neg = units < 0
    mag = np.abs(units)
    nonzero = mag != 0
    digits, trailing = mag.copy(), np.zeros(len(mag), dtype=np.int64)
    for _ in range(18):  # strip trailing zeros: value = digits * 10**(trailing - scale)
        step = nonzero & (digits % 10 == 0)
        if not step.any():
            break
        digits = np.where(step, digits // 10, digits)
        trailing += step
    decimals = np.where(nonzero, scale - trailing, 0)
    n_digits = np.maximum(np.searchsorted(_POW10, digits, side="right"), 1)
    exponent = n_digits - 1 - decimals
    plain = ~nonzero | ((exponent >= -3) & (exponent < 7))

    width = np.maximum(decimals, 1)
    frac = np.where(decimals > 0, digits % _POW10[width], 0) + _POW10[width]
    frac_text = pc.utf8_slice_codeunits(pc.cast(pa.array(frac), pa.string()), 1)
    int_text = pc.cast(pa.array(mag // _POW10[scale]), pa.string())
    plain_text = _concat(int_text, ".", frac_text)

    digit_text = pc.cast(pa.array(digits), pa.string())
    rest = pc.utf8_slice_codeunits(digit_text, 1)
    rest = pc.if_else(pc.equal(pc.utf8_length(rest), 0), "0", rest)
    exp_text = pc.cast(pa.array(exponent), pa.string())
    sci_text = _concat(pc.utf8_slice_codeunits(digit_text, 0, 1), ".", rest, "E", exp_text)

    text = pc.if_else(pa.array(plain), plain_text, sci_text)
    if neg.any():
        text = pc.if_else(pa.array(neg), _concat("-", text), text)
    return text


def strings_from_bytes(matrix: np.ndarray) -> pa.Array:
    """A string array whose i-th value is row i of a (n, width) uint8 matrix of ASCII codes."""
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                   pa.py_buffer(data)])


def line_bytes(lines: pa.Array) -> pa.Buffer:
    """The text of a string array of newline-terminated lines, zero-copy."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:
                                                                lines.offset + len(lines) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


class LineAssembler:
    """Joins column values into newline-terminated CSV lines, in a fixed column order.

    Each column's value is one of: a per-row string array (dynamic), a constant string, a
    per-template string (``static[column][template]``, picked by the row's template index), or
    absent (empty field). Consecutive non-dynamic columns are pre-joined once per template and
    cached, so a 110-column line costs about as many element-wise joins as it has dynamic columns.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self._runs: dict[tuple[Any, ...], pa.Array | str] = {}

    def lines(self, n: int, values: Mapping[str, pa.Array | str],
              static: Mapping[str, Sequence[str]] | None = None,
              template: np.ndarray | None = None) -> pa.Array:
        """Build ``n`` CSV lines.

        Args:
            n: number of rows.
            values: column -> per-row array (length ``n``, CSV-escaped, no nulls) or constant.
            static: column -> per-template escaped strings; used for columns not in ``values``.
            template: per-row template index into ``static`` (required when ``static`` is given).

        Returns:
            A string array of ``n`` lines, each ending in ``\\n``.
        """
        pieces: list[pa.Array | str] = []
        run: list[str] = []
        for column in self.columns:
            value = values.get(column)
            if isinstance(value, pa.Array):
                if run:
                    pieces.append(self._run(run, values, static, template))
                    run = []
                pieces.append(value)
            else:
                run.append(column)
        if run:
            pieces.append(self._run(run, values, static, template))
        if all(isinstance(p, str) for p in pieces):
            return pa.array([",".join(str(p) for p in pieces) + "\n"] * n, pa.string())
        last = pieces[-1]
        pieces[-1] = last + "\n" if isinstance(last, str) else _concat(last, "\n")
        return pc.binary_join_element_wise(*pieces, ",")

    def _run(self, run: list[str], values: Mapping[str, pa.Array | str],
             static: Mapping[str, Sequence[str]] | None,
             template: np.ndarray | None) -> pa.Array | str:
        """The pre-joined text of consecutive non-dynamic columns (cached per layout)."""
        consts = tuple(str(values.get(c, "")) if c in values else None for c in run)
        key = (id(static), tuple(run), consts)
        cached = self._runs.get(key)
        if cached is None:
            per_column: list[Sequence[str] | None] = [
                static[c] if const is None and static is not None and c in static else None
                for c, const in zip(run, consts, strict=True)]
            present = [p for p in per_column if p is not None]
            if not present:
                cached = ",".join(c or "" for c in consts)
            else:
                cached = pa.array([
                    ",".join(p[t] if p is not None else (c or "")
                             for p, c in zip(per_column, consts, strict=True))
                    for t in range(len(present[0]))], pa.string())
            self._runs[key] = cached
        if isinstance(cached, str):
            return cached
        assert template is not None, "per-template columns need a template index"
        return cached.take(pa.array(template))


def _gzip_member(parts: list[Any], level: int) -> bytes:
    """One complete gzip member (no timestamp, no name) holding ``parts`` in order."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
    return b"".join([*(deflate.compress(memoryview(p)) for p in parts), deflate.flush()])


class TextSink:
    """Writes text buffers to a file, plain or gzip, compressing on a thread pool.

    gzip output is a series of complete gzip members of about ``member_bytes`` each, compressed
    in parallel (zlib releases the GIL) while the caller generates the next rows. RFC 1952 allows
    several members in one file, and gzip, Python, pyarrow and DuckDB all read it as one stream.
    Members carry no timestamp or file name, and their boundaries depend only on the data
    written, so the same writes give the same bytes.
    """

    def __init__(self, path: str | Path, *, gzip: bool, level: int = 6, threads: int = 2,
                 member_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._gzip, self._level, self._member_bytes = gzip, level, member_bytes
        self._pool = ThreadPoolExecutor(threads, "TextSink") if gzip else None
        self._threads = threads
        self._parts: list[Any] = []
        self._size = 0
        self._pending: deque[Future[bytes]] = deque()

    def write(self, data: bytes | pa.Buffer) -> None:
        """Write ``data`` (kept referenced, not copied, until compressed)."""
        if self._pool is None:
            self._file.write(memoryview(data))
            return
        self._parts.append(data)
        self._size += len(memoryview(data))
        if self._size >= self._member_bytes:
            self._submit()

    def close(self) -> None:
        """Compress what is left, write every member in order and close the file."""
        try:
            if self._pool is not None:
                if self._parts:
                    self._submit()
                while self._pending:
                    self._file.write(self._pending.popleft().result())
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            self._file.close()

    def _submit(self) -> None:
        assert self._pool is not None
        self._pending.append(self._pool.submit(_gzip_member, self._parts, self._level))
        self._parts, self._size = [], 0
        while len(self._pending) > self._threads or (self._pending and self._pending[0].done()):
            self._file.write(self._pending.popleft().result())
