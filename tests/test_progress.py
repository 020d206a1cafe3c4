"""Progress of long runs: bars on a terminal (rich), the same records as plain lines elsewhere;
the ingest feeds a bar per file with its rows, the sync one for its sources."""

from __future__ import annotations

import io
import logging

from costflow.progress import KEY, ProgressHandler, install, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("costflow.ingest", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_bars_on_a_terminal_and_other_records_printed_above_them() -> None:
    out = io.StringIO()
    handler = ProgressHandler(out, force_terminal=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(_record("run r1: 2 file(s) to read"))
    handler.emit(_record("a.csv: 1,000 rows read",
                         **progress("s3://b/a.csv", "a.csv", 1000, None, "rows")))
    handler.emit(_record("a.csv: done", **progress("s3://b/a.csv", "a.csv", 1281, 1281, "rows")))
    handler.emit(_record("aws/cur: loaded", **progress("sync", "sources", 2, 3, "sources")))
    handler.close()
    text = out.getvalue()
    assert "run r1: 2 file(s) to read" in text
    assert "a.csv" in text and "1281/1281" in text and "2/3" in text and "sources" in text
    assert len(handler.tasks) == 2  # one bar per file, one for the sync


def test_plain_lines_when_not_a_terminal() -> None:
    logger = logging.getLogger("costflow.test-progress")
    assert install(logger, io.StringIO(), logging.Formatter("%(message)s")) is False
    assert logger.handlers == []
    terminal = _Terminal()
    assert install(logger, terminal, logging.Formatter("%(message)s")) is True
    try:
        assert isinstance(logger.handlers[0], ProgressHandler)
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)


def test_an_ingest_feeds_a_bar_per_file_with_its_rows(cur_sample, ingest, caplog,
                                                       monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="costflow.ingest")
    # cli.main turns propagation off; caplog listens at the root.
    monkeypatch.setattr(logging.getLogger("costflow"), "propagate", True)
    report = ingest(cur_sample)
    bars = [getattr(r, KEY) for r in caplog.records if hasattr(r, KEY)]
    finished = [b for b in bars if b["total"] is not None]
    assert finished == [{"task": str(cur_sample), "description": cur_sample.name,
                         "completed": report["totals"]["rows_read"],
                         "total": report["totals"]["rows_read"], "unit": "rows"}]
