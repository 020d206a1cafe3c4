"""Exact integer arithmetic on the warehouse's DECIMAL(38, 18) columns.

Why this module exists: two steps need arithmetic that Arrow's decimal kernels cannot do exactly
at this width: commitment amortization (a fee times a weight over a total, ~80 bits more than
decimal128 holds) and pricing-currency conversion (an amount over an exchange rate, rounded
half-even at the 18th place; Arrow's decimal division truncates and runs out of precision).
Both read a column as Python integers of 1e-18 straight from decimal128's two 64-bit words
(numpy object arrays: one vectorized expression per batch, no Decimal objects), compute, and
write the integers back the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costflow.schemas.columns import DECIMAL_PRECISION, DECIMAL_SCALE
from costflow.transforms.arrow_ops import DECIMAL, whole

_WORD = 1 << 64
ONE = 10 ** DECIMAL_SCALE  # 1 in units of 1e-18
LIMIT = 10 ** DECIMAL_PRECISION  # DECIMAL(38, 18) holds |units| < 1e38


def units_of(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """DECIMAL values as Python integers of 1e-18 (a numpy object array; nulls are 0)."""
    values = whole(pc.cast(values, DECIMAL))
    words = np.frombuffer(values.buffers()[1], dtype="<u8")[
        2 * values.offset:2 * (values.offset + len(values))].reshape(-1, 2)
    units = words[:, 1].view("<i8").astype(object) * _WORD + words[:, 0].astype(object)
    return np.where(np.asarray(values.is_valid()), units, 0)


def decimals_of(units: np.ndarray) -> pa.Array:
    """Python integers of 1e-18, each with |units| < 1e38, as a DECIMAL array."""
    units = np.asarray(units, dtype=object)
    words = np.empty(2 * len(units), dtype="<u8")
    words[0::2] = (units % _WORD).astype("<u8")   # floor division: two's complement words
    words[1::2] = (units // _WORD).astype("<i8").view("<u8")
    return pa.Array.from_buffers(DECIMAL, len(units), [None, pa.py_buffer(words.tobytes())])


def divide_half_even(dividends: np.ndarray, divisors: np.ndarray) -> np.ndarray:
    """``dividends / divisors`` (both in units of 1e-18; no divisor 0) in units of 1e-18,
    rounded half to even, exactly."""
    numerators = dividends * ONE
    negative = (numerators < 0) != (divisors < 0)
    magnitude, by = np.abs(numerators), np.abs(divisors)
    quotients = magnitude // by
    twice_rest = 2 * (magnitude - quotients * by)
    up = (twice_rest > by) | ((twice_rest == by) & (quotients % 2 == 1))
    quotients = quotients + up.astype(object)
    return np.where(negative, -quotients, quotients)
