"""Additive schema migration: a warehouse made by an older costflow gains the newer columns.

Why this module exists: the schema is declared once (`costflow.schemas`) and grows between
releases, while a user's warehouse holds months of history that must survive an upgrade. New
columns are only ever appended, and nullable, so both engines can add them in place (DuckDB
``ALTER TABLE ... ADD COLUMN``, a BigQuery schema update) and the positional
``INSERT ... SELECT *`` of a load stays aligned. Anything else — a renamed, dropped or reordered
column — is refused with a message naming the table and the columns that differ, never patched
silently. Column names are compared, not types: the schema has never retyped a column.
"""

from __future__ import annotations

from collections.abc import Sequence

from costflow.errors import ConfigError
from costflow.schemas.columns import Column, TableSpec


def columns_to_add(spec: TableSpec, existing: Sequence[str], where: str) -> list[Column]:
    """The declared columns an existing table lacks, in order (none if it is current).

    Args:
        spec: the table's declaration.
        existing: the table's column names as the warehouse lists them, in order.
        where: the table's location for messages (e.g. a DuckDB file or a BigQuery table id).

    Raises:
        ConfigError: the existing columns are not a prefix of the declared ones, or a missing
            column is NOT NULL (it could not be added to rows that already exist).
    """
    declared = list(spec.names)
    have = list(existing)
    if have == declared:
        return []
    if declared[:len(have)] != have:
        unknown = [name for name in have if name not in declared]
        moved = [name for name, want in zip(have, declared, strict=False) if name != want]
        raise ConfigError(
            f"table {spec.name} in {where} does not match this costflow's schema and cannot be "
            f"upgraded in place: columns not declared {unknown or 'none'}; first columns out of "
            f"order {moved[:5] or 'none'}. Load into a new warehouse, or export the old one "
            "and recreate it.")
    missing = spec.columns[len(have):]
    required = [c.name for c in missing if not c.nullable]
    if required:
        raise ConfigError(
            f"table {spec.name} in {where} lacks the NOT NULL column(s) {required}, which "
            "cannot be added to existing rows. Load into a new warehouse.")
    return list(missing)
