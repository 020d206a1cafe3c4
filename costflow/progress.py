"""Progress of long runs: a bar on a terminal, plain log lines everywhere else.

Why here: the ingest (files and rows read) and the sync (sources done) already log their
progress on the ``costflow`` loggers; the steps that know a total attach it to the record
(`progress` builds the ``extra``). `install` is called by the CLI: on a terminal, a `rich`
progress display replaces the plain handler and turns those records into bars (files of a run,
rows of each file, sources of a sync) while every other record is printed above them; in a pipe,
a file or a log collector the plain lines stay exactly as they were.
"""

from __future__ import annotations

import logging
from typing import IO, Any

KEY = "costflow_progress"


def progress(task: str, description: str, completed: float, total: float | None = None,
             unit: str = "") -> dict[str, Any]:
    """The ``extra`` of a log record that moves bar ``task`` to ``completed`` (of ``total``)."""
    return {KEY: {"task": task, "description": description, "completed": completed,
                  "total": total, "unit": unit}}


class ProgressHandler(logging.Handler):
    """Draws progress records as bars and prints the others above them (rich)."""

    def __init__(self, stream: IO[str], *, force_terminal: bool | None = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(file=stream, force_terminal=force_terminal)
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                             console=self.console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.bars.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = getattr(record, KEY, None)
            if data is None:
                self.console.print(self.format(record), markup=False, highlight=False)
                return
            task = self.tasks.get(data["task"])
            if task is None:
                task = self.tasks[data["task"]] = self.bars.add_task(
                    data["description"], total=data["total"], unit=data["unit"])
            self.bars.update(task, completed=data["completed"], total=data["total"],
                             description=data["description"], unit=data["unit"])
        except Exception:  # noqa: BLE001 - a display problem never stops a run
            self.handleError(record)

    def close(self) -> None:
        self.bars.stop()
        super().close()


def install(logger: logging.Logger, stream: IO[str], formatter: logging.Formatter) -> bool:
    """On a terminal, draw ``logger``'s records with a `ProgressHandler`; returns whether it
    did (otherwise the caller keeps its plain handler)."""
    if not getattr(stream, "isatty", lambda: False)():
        return False
    handler = ProgressHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    return True
