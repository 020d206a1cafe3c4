"""The local runner's use of a second core: batches normalized on threads, in order, and the
quality gate built in the background while the files are read.

Speed itself is measured by the benchmarks (bench/), never here: these tests check that the
threaded paths keep the order of batches (so staged files are the same as with one thread),
fail the bundle with the normalizer's own error, and leave the gate built once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from apache_beam.utils.windowed_value import WindowedValue

from costflow.pipelines import normalize
from costflow.pipelines.ingest import warm_quality_gate
from costflow.quality import gate
from costflow.sources.contract import SourceBatch


def _batch(first_row: int, rows: int = 1) -> SourceBatch:
    """A source batch of ``rows`` rows whose column holds each row's number."""
    numbers = list(range(first_row, first_row + rows))
    return SourceBatch(source=None, first_row=first_row,  # type: ignore[arg-type]
                       batch=pa.record_batch({"row": numbers}))


def _drive(fn: normalize._NormalizeFn, elements: list[SourceBatch]) -> list[object]:
    """Run the DoFn by hand over one bundle; the values it emits, in emission order."""
    out: list[object] = []
    fn.setup()
    try:
        fn.start_bundle()
        for element in elements:
            out.extend(fn.process(element, timestamp=0, window=None))
        out.extend(fn.finish_bundle())
    finally:
        fn.teardown()
    return [v.value if isinstance(v, WindowedValue) else v for v in out]


@pytest.fixture
def fn(monkeypatch: pytest.MonkeyPatch) -> normalize._NormalizeFn:
    monkeypatch.setattr(normalize, "NORMALIZE_THREADS", 2)
    monkeypatch.setattr(normalize, "IN_FLIGHT", 2)
    return normalize._NormalizeFn("run", datetime(2026, 12, 3, tzinfo=UTC), {})


def test_batches_come_out_in_the_order_they_came_in(fn, monkeypatch) -> None:
    # Even batches take longer than odd ones, so the threads finish them out of order.
    threads: set[str] = set()

    def slow_even(self, element: SourceBatch) -> int:
        threads.add(threading.current_thread().name)
        time.sleep(0.03 if element.first_row % 2 == 0 else 0.0)
        return element.first_row * 10

    monkeypatch.setattr(normalize._NormalizeFn, "_normalize", slow_even)
    assert _drive(fn, [_batch(i) for i in range(12)]) == [i * 10 for i in range(12)]
    assert len(threads) == 2 and all(t.startswith("normalize") for t in threads)


def test_a_large_batch_is_normalized_in_pieces_with_their_own_row_numbers(fn,
                                                                           monkeypatch) -> None:
    monkeypatch.setattr(normalize, "PIECE_ROWS", 2)
    monkeypatch.setattr(normalize._NormalizeFn, "_normalize",
                        lambda self, e: (e.first_row, e.batch.column("row").to_pylist()))
    assert _drive(fn, [_batch(1, rows=5), _batch(6, rows=2)]) == [
        (1, [1, 2]), (3, [3, 4]), (5, [5]), (6, [6, 7])]


def test_a_failing_batch_fails_the_bundle_with_its_own_error(fn, monkeypatch) -> None:
    def fail_on_three(self, element: SourceBatch) -> int:
        if element.first_row == 3:
            raise ValueError("row 3: BilledCost 'x' is not a number")
        return element.first_row

    monkeypatch.setattr(normalize._NormalizeFn, "_normalize", fail_on_three)
    with pytest.raises(ValueError, match="row 3: BilledCost"):
        _drive(fn, [_batch(i) for i in range(8)])


def test_one_thread_normalizes_inline(monkeypatch) -> None:
    monkeypatch.setattr(normalize, "NORMALIZE_THREADS", 1)
    fn = normalize._NormalizeFn("run", datetime(2026, 12, 3, tzinfo=UTC), {})
    monkeypatch.setattr(normalize._NormalizeFn, "_normalize",
                        lambda self, e: (e.first_row, threading.current_thread().name))
    main = threading.current_thread().name
    assert _drive(fn, [_batch(1), _batch(2)]) == [(1, main), (2, main)]


def test_the_gate_warm_up_builds_the_default_suite_once(monkeypatch) -> None:
    built: list[int] = []
    monkeypatch.setattr(gate, "_DEFAULT_DEFINITION", [])
    monkeypatch.setattr(gate.QualityGate, "_build", lambda self: built.append(1) or "suite")
    warm_quality_gate().join(timeout=30)
    assert built == [1]
    assert gate.QualityGate()._definition() == "suite"  # the commit step finds it built
    assert built == [1]
