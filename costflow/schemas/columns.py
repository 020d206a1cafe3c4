"""The vocabulary every table declaration is written in.

A `Column` carries everything any consumer needs to know about one column: its logical type,
whether it may be null, the values it may take, what it means and which FOCUS version introduced
it. Renderers (pyarrow, BigQuery JSON, DDL, docs) and validators read these declarations; none of
them keeps a second copy of a column list. Type differences between engines are data
(`costflow.schemas.render`), not branches scattered through the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class LogicalType(StrEnum):
    """Logical column types. Money and quantities are exact decimals, never float."""

    STRING = "String"
    DECIMAL = "Decimal"
    TIMESTAMP = "Date/Time"
    JSON = "JSON"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    DATE = "Date"


# Exact decimal used for every cost, price and quantity. CUR costs go below 1e-8 (4.97e-9 in the
# real sample) and BigQuery NUMERIC only has scale 9, so the warehouse uses scale 18:
# DECIMAL(38, 18) locally and BIGNUMERIC in BigQuery. 20 integer digits leave room for any sum.
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18


@dataclass(frozen=True)
class Column:
    """One column of a declared table.

    Attributes:
        name: exact column name (FOCUS spelling; non-FOCUS columns start with ``x_``).
        type: logical type.
        nullable: whether null is allowed (FOCUS "Allows nulls").
        description: what the column means, one sentence.
        introduced: FOCUS version that introduced the column, or ``None`` for ``x_`` columns.
        feature_level: FOCUS feature level (Mandatory, Conditional, Recommended) or ``"Extension"``.
        allowed_values: the closed set of values, when the spec defines one.
        deprecated_in: FOCUS version that deprecated the column, if any.
    """

    name: str
    type: LogicalType
    nullable: bool
    description: str
    introduced: str | None = None
    feature_level: str = "Extension"
    allowed_values: tuple[str, ...] = ()
    deprecated_in: str | None = None

    @property
    def is_extension(self) -> bool:
        return self.name.startswith("x_")

    def in_focus(self, version: str) -> bool:
        """True when the column belongs to the FOCUS dataset of ``version`` (e.g. "1.2")."""
        if self.introduced is None:
            return False
        return _version_key(self.introduced) <= _version_key(version)


def _version_key(version: str) -> tuple[int, int, int]:
    # "1.0-preview" sorts before "1.0"; "0.5" < "1.0" < "1.2" < "1.3".
    base, _, pre = version.partition("-")
    major, minor = (int(p) for p in base.split("."))
    return (major, minor, 0 if pre else 1)


@dataclass(frozen=True)
class TableSpec:
    """A declared table: its columns plus where it lives and how BigQuery lays it out."""

    name: str
    description: str
    columns: tuple[Column, ...]
    partition_by_day: str | None = None
    cluster_by: tuple[str, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for c in self.columns:
            if c.name in seen:
                raise ValueError(f"{self.name}: column {c.name} declared twice")
            seen.add(c.name)
