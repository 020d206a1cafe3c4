"""Errors a user can act on.

Every failure caused by input (a file, a row, a column) or by configuration is raised as a
`CostflowError` whose message is one paragraph naming the file, row and column and what was
expected. The CLI prints that paragraph and exits non-zero instead of a traceback.
"""

from __future__ import annotations


class CostflowError(Exception):
    """Base class: the message is what the user sees."""

    exit_code = 2


class SourceError(CostflowError):
    """A source file cannot be read as the format it claims to be."""

    def __init__(self, uri: str, problem: str, *, row: int | None = None,
                 column: str | None = None, expected: str | None = None) -> None:
        self.uri, self.problem, self.row, self.column, self.expected = (
            uri, problem, row, column, expected)
        where = uri
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        msg = f"{where}: {problem}"
        if expected:
            msg += f" Expected {expected}."
        super().__init__(msg)


class ConfigError(CostflowError):
    """Bad flags, URLs or environment."""


class ReconciliationError(CostflowError):
    """The warehouse would not hold exactly what the source says; nothing was committed."""

    exit_code = 3


class DeadLetterThresholdError(CostflowError):
    """Too many rows of a source were dead-lettered: the export looks systematically broken."""

    exit_code = 3


class IngestFailed(CostflowError):
    """The run failed; the ledger says so and the previous warehouse contents are intact."""

    exit_code = 3


class WarehouseBusy(CostflowError):
    """Another process holds the warehouse (a DuckDB file is written by one process at a time)
    for longer than this one would wait; nothing was written. Trying again later is enough."""

    exit_code = 4
