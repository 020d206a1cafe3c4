"""The three spellings of one AWS Cost and Usage Report: legacy CSV, legacy Parquet, CUR 2.0.

Why this module exists: AWS ships the same line items under three column spellings, and the
FOCUS mapping must be written once (`costflow.providers.aws.cur`), over canonical names. The
canonical name is the legacy CSV header (``lineItem/UnblendedCost``); each `Shape` says where a
canonical column lives in its files and gives its values as text:

* legacy CSV [PF §2.1]: the canonical name itself; tags are ``resourceTags/<key>`` columns.
* legacy Parquet / Athena [PF §2.2]: snake_case with *every* capital split, so
  ``savingsPlan/SavingsPlanARN`` is ``savings_plan_savings_plan_a_r_n``; tags, cost categories
  and discounts are flattened columns (``resource_tags_user_env``); string ``year``/``month``
  partition columns may be present and are ignored.
* CUR 2.0 [PF §2.4]: snake_case with acronyms kept (``savings_plan_savings_plan_arn``); product
  attributes that are not flattened columns live in the ``product`` map (``product_name``,
  ``region``); tags, cost categories and discounts are the maps ``resource_tags``,
  ``cost_category`` and ``discount`` (Parquet MAP, JSON text in CSV).

[PF x] = ../shared/reference/provider_formats.md section x.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pyarrow as pa

from costflow.transforms.arrow_ops import STRING, column, json_object_from_columns
from costflow.transforms.arrow_text import as_text, map_json, map_lookup
from costflow.transforms.contract import RowError

# Canonical prefixes of the key/value families (legacy CSV: one column per key).
TAGS, COST_CATEGORIES, DISCOUNTS = "resourceTags/", "costCategory/", "discount/"
_FREE_TEXT_CATEGORIES = ("resourceTags", "costCategory")  # keys are user text, not CamelCase
_SEPARATORS = re.compile(r"[/: .\-]")


def _snake_every_capital(text: str) -> str:
    """Glue/Athena conversion: ``SavingsPlanARN`` -> ``savings_plan_a_r_n`` [PF §2.2]."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", text).lower()


def _snake_acronyms(text: str) -> str:
    """CUR 2.0 conversion: ``SavingsPlanARN`` -> ``savings_plan_arn`` [PF §2.4]."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text).lower()


@cache
def athena_name(canonical: str) -> str:
    """Legacy Parquet column of a canonical (legacy CSV) column name."""
    category, _, name = canonical.partition("/")
    key = name.lower() if category in _FREE_TEXT_CATEGORIES else _snake_every_capital(name)
    return _SEPARATORS.sub("_", f"{_snake_every_capital(category)}_{key}")


@cache
def cur2_name(canonical: str) -> str:
    """CUR 2.0 (flattened) column of a canonical column name."""
    category, _, name = canonical.partition("/")
    return _SEPARATORS.sub("_", f"{_snake_acronyms(category)}_{_snake_acronyms(name)}")


@dataclass(frozen=True)
class Shape:
    """Where the canonical columns live in one spelling, and their values as text."""

    name: str
    physical: object          # canonical name -> column name
    family_prefixes: dict[str, str]  # canonical family prefix -> flattened column prefix
    family_maps: dict[str, str]      # canonical family prefix -> map column (CUR 2.0)
    product_map: str | None = None   # map holding product attributes not flattened (CUR 2.0)

    def column_name(self, canonical: str) -> str:
        return self.physical(canonical)  # type: ignore[operator]

    def label(self, canonical: str, batch: pa.RecordBatch | None = None) -> str:
        """How errors name the column: its physical name, or ``map["key"]``."""
        name = self.column_name(canonical)
        if batch is not None and self.product_map and canonical.startswith("product/") and (
                batch.schema.get_field_index(name) < 0):
            return f'{self.product_map}["{name.removeprefix("product_")}"]'
        return name

    def text(self, batch: pa.RecordBatch, canonical: str) -> tuple[pa.Array, list[RowError]]:
        """Values of a canonical column as text (all-null when the file lacks it)."""
        name = self.column_name(canonical)
        index = batch.schema.get_field_index(name)
        if index >= 0:
            return as_text(batch.column(index)), []
        if self.product_map and canonical.startswith("product/"):
            index = batch.schema.get_field_index(self.product_map)
            if index >= 0:
                return map_lookup(batch.column(index), name.removeprefix("product_"),
                                  self.product_map)
        return pa.nulls(batch.num_rows, STRING), []

    def raw(self, batch: pa.RecordBatch, canonical: str) -> pa.Array:
        """The column as stored (typed in Parquet), for values that need no text round trip."""
        return column(batch, self.column_name(canonical))

    def family_json(self, batch: pa.RecordBatch, family: str) -> tuple[pa.Array, list[RowError]]:
        """A JSON object per row of one key/value family (tags, cost categories, discounts)."""
        map_column = self.family_maps.get(family)
        if map_column is not None:
            index = batch.schema.get_field_index(map_column)
            if index < 0:
                return pa.nulls(batch.num_rows, STRING), []
            return map_json(batch.column(index), map_column)
        prefix = self.family_prefixes[family]
        keys = {name[len(prefix):]: name for name in batch.schema.names
                if name.startswith(prefix)}
        if any(not pa.types.is_string(batch.schema.field(n).type) for n in keys.values()):
            batch = pa.RecordBatch.from_arrays(
                [as_text(batch.column(n)) for n in keys.values()], names=list(keys.values()))
        return json_object_from_columns(batch, keys), []

    def missing(self, columns: Sequence[str], required: Sequence[str]) -> list[str]:
        names = set(columns)
        return [self.column_name(c) for c in required if self.column_name(c) not in names]


LEGACY_CSV = Shape("legacy CSV", physical=lambda c: c,
                   family_prefixes={TAGS: TAGS, COST_CATEGORIES: COST_CATEGORIES,
                                    DISCOUNTS: DISCOUNTS},
                   family_maps={})
LEGACY_PARQUET = Shape("legacy Parquet (Athena)", physical=athena_name,
                       family_prefixes={TAGS: "resource_tags_",
                                        COST_CATEGORIES: "cost_category_",
                                        DISCOUNTS: "discount_"},
                       family_maps={})
CUR2 = Shape("CUR 2.0", physical=cur2_name, family_prefixes={},
             family_maps={TAGS: "resource_tags", COST_CATEGORIES: "cost_category",
                          DISCOUNTS: "discount"},
             product_map="product")

# CUR 2.0 columns a legacy Parquet file never has [PF §2.4: new in CUR 2.0, and the maps].
CUR2_MARKERS = frozenset({"product", "resource_tags", "cost_category", "discount",
                          "bill_payer_account_name", "line_item_usage_account_name"})
