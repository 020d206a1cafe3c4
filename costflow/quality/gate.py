"""The slice gate: the great-expectations suite run on staged data before a commit.

Why here (the commit step, on staged Parquet) and not per pipeline batch: the staged files are
exactly what the warehouse will load, and one GX validation per large chunk costs far less than
one per 16k-row pipeline batch (GX spends ~10 ms per expectation per call whatever the size).
The gate reads only the columns the suite needs, in chunks of `CHUNK_ROWS` rows, and validates
each chunk once; since every check is a per-row predicate, GX sees one row per distinct
combination of the values the checks read, weighted by its row count (`compact_frame`), which
keeps validation fast and memory flat however large the slice. Every unexpected row is
attributed to its slice. The GX context and suite are built
once per `QualityGate` (one per commit worker).

Column types are checked against the rendered Arrow schema (GX 1.x's pandas type expectations
cannot name an Arrow decimal or timestamp type); they count as hard checks like the rest.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from costflow.quality.expectations import (
    FLAGS_COLUMN,
    HARD,
    PAIR_COLUMN,
    PAIR_SEPARATOR,
    WARNED_FLAGS,
    Check,
    build_checks,
    flag_column,
    needed_columns,
)
from costflow.reconcile import SliceKey
from costflow.schemas.focus import COST_LINE_ITEMS, PERIOD_PAIRS, SLICE_KEY
from costflow.schemas.render import arrow_schema
from costflow.transforms import parquet_batches

LOG = logging.getLogger("costflow.quality")
CHUNK_ROWS = 100_000  # bounds the gate's memory (~+210 MB); GX sees only distinct combinations
SAMPLE_ROWS = 5
LOCATION = ("x_SourceUri", "x_SourceRowNumber")
ROW_SCHEMA = arrow_schema(COST_LINE_ITEMS)


@dataclass
class CheckOutcome:
    """One check on one slice: rows evaluated, rows failing, and a few failing rows."""

    check: Check
    evaluated: int = 0
    failed: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check.name, "severity": self.check.severity,
                "rule": self.check.rule, "expectation": self.check.expectation,
                "rows_evaluated": self.evaluated, "rows_failed": self.failed,
                "samples": self.samples, "error": self.error}


@dataclass
class SliceQuality:
    key: SliceKey
    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)

    @property
    def hard_failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes.values()
                if o.check.severity == HARD and (o.failed or o.error)]

    @property
    def soft_failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes.values()
                if o.check.severity != HARD and (o.failed or o.error)]


# The default suite's GX definition, built once per process and shared by every gate that uses
# it: building it takes seconds (GX import, context, ~150 expectations).
_DEFAULT_LOCK = threading.Lock()
_DEFAULT_DEFINITION: list[Any] = []


class QualityGate:
    """Builds the GX context and suite once; validates staged data slice by slice."""

    def __init__(self, checks: Sequence[Check] | None = None) -> None:
        self._default = checks is None  # the schema's suite: built once per process
        self.checks = list(checks) if checks is not None else build_checks()
        self.type_checks = [Check(f"type:{f.name}", HARD, "arrow_schema", {}, (f.name,),
                                  f"{f.name} MUST be {f.type}") for f in ROW_SCHEMA]
        self.columns = needed_columns(self.checks)
        self._values = value_columns(self.checks)
        self._stored_schema: pa.Schema | None = None  # of the staged files last read
        self._validation: Any = None

    def warm_up(self) -> None:
        """Build the GX context and suite now (seconds), not at the first validation.

        Safe from any thread: the default suite is built once per process under its lock.
        """
        self._definition()

    def _definition(self) -> Any:
        if self._validation is None:
            if self._default:
                with _DEFAULT_LOCK:  # a background warm-up may be building it right now
                    if not _DEFAULT_DEFINITION:
                        _DEFAULT_DEFINITION.append(self._build())
                    self._validation = _DEFAULT_DEFINITION[0]
            else:
                self._validation = self._build()
        return self._validation

    def _build(self) -> Any:
        """The GX context, suite and validation definition of ``self.checks`` (seconds)."""
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        context = gx.get_context(mode="ephemeral")
        # No progress bars: a run prints its summary, not GX's metric counters.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("costflow").add_dataframe_asset("slice")
        batch = asset.add_batch_definition_whole_dataframe("staged")
        # The whole suite in one add: adding expectations one by one re-serializes the suite
        # each time (quadratic; ~2.7 s for the default suite against ~0.1 s at once).
        suite = context.suites.add(gx.ExpectationSuite(name="cost_line_items", expectations=[
            getattr(gxe, check.expectation)(**_gx_kwargs(check),
                                            meta={"costflow_check": check.name})
            for check in self.checks]))
        return context.validation_definitions.add(
            gx.ValidationDefinition(name="slice_gate", data=batch, suite=suite))

    def validate_files(self, files: Iterable[str]) -> dict[SliceKey, SliceQuality]:
        """Validate staged Parquet files (local or any Beam filesystem), chunk by chunk.

        Each chunk is reduced to its distinct value combinations; the combinations of all
        chunks are merged and GX validates them once (a GX run costs seconds whatever its size).
        """
        merged: pa.Table | None = None
        for table in self._chunks(files):  # folded as it goes: memory ~ distinct combinations
            part = compact_frame(table, self.columns, self._values)
            merged = part if merged is None else fold_compact([merged, part])
        return self._validate([merged] if merged is not None else [], self._stored_schema, {})

    def _chunks(self, files: Iterable[str]) -> Iterator[pa.Table]:
        read = list(dict.fromkeys([*SLICE_KEY, *LOCATION, *self.columns]))
        pending: list[pa.RecordBatch] = []
        rows = 0
        for path in files:
            with FileSystems.open(path) as handle:
                # Strings stay dictionary-encoded (x_SourceUri repeats on every row): the gate
                # needs most of them only for nullness, and compact_frame decodes the rest.
                stored = pq.read_schema(handle)
                self._check_types(stored)  # the file's own types, before dictionary reading
                self._stored_schema = stored
                handle.seek(0)
                parquet = pq.ParquetFile(handle, read_dictionary=[
                    c for c in read if c in stored.names and pa.types.is_string(
                        ROW_SCHEMA.field(c).type)])
                for batch in parquet_batches.batches(parquet, batch_size=CHUNK_ROWS, columns=read):
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= CHUNK_ROWS:
                        yield pa.Table.from_batches(pending)
                        pending, rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending)

    def _check_types(self, schema: pa.Schema) -> None:
        for field_ in ROW_SCHEMA:
            index = schema.get_field_index(field_.name)
            if index < 0 or schema.field(index).type != field_.type:
                found = "absent" if index < 0 else str(schema.field(index).type)
                raise TypeError(f"staged column {field_.name} is {found}, declared "
                                f"{field_.type}")

    def validate_table(self, table: pa.Table,
                       result: dict[SliceKey, SliceQuality] | None = None,
                       provider: str | None = None) -> dict[SliceKey, SliceQuality]:
        """Validate one Arrow table shaped like cost_line_items; outcomes merged per slice."""
        result = {} if result is None else result
        if table.num_rows == 0:
            return result
        part = compact_frame(table, self.columns, self._values, provider)
        return self._validate([part], table.schema, result)

    def _validate(self, parts: list[pa.Table], schema: pa.Schema | None,
                  result: dict[SliceKey, SliceQuality]) -> dict[SliceKey, SliceQuality]:
        """One GX run over the merged distinct combinations, outcomes weighted by row count.

        Every check of the suite is a predicate on one row's values, so validating each
        distinct combination of the values the checks read once, weighted by how many rows
        carry it, gives the row-by-row outcome in a frame of thousands of rows, not millions.
        """
        if not parts or schema is None:
            return result
        merged = merge_compact(parts)
        slice_ids = [merged.column(f"{GROUP_PREFIX}{k}").to_pylist() for k in SLICE_KEY]
        keys = sorted(set(zip(*slice_ids, strict=True)), key=lambda k: tuple(map(str, k)))
        slice_keys = [SliceKey(*k) for k in keys]
        code_of = {k: i for i, k in enumerate(keys)}
        group_slice = np.asarray([code_of[k] for k in zip(*slice_ids, strict=True)],
                                 dtype=np.int64)
        weights = merged.column(f"{GROUP_PREFIX}rows").to_numpy()
        per_slice_rows = np.bincount(group_slice, weights=weights, minlength=len(keys))
        self._type_outcomes(schema.empty_table(), slice_keys, result)
        frame = merged.select([c for c in merged.column_names
                               if not c.startswith((GROUP_PREFIX, SAMPLE_PREFIX))])
        frame = pa.table({n: (pc.dictionary_encode(c) if pa.types.is_string(c.type) else c)
                          for n, c in zip(frame.column_names, frame.columns, strict=True)})
        run = self._definition().run(
            batch_parameters={"dataframe": _with_conditioned(frame.to_pandas(), self.checks)},
            result_format={"result_format": "COMPLETE", "include_unexpected_rows": False,
                           "partial_unexpected_count": 0})
        by_name = {c.name: c for c in self.checks}
        for item in run.results:
            check = by_name[item.expectation_config.meta["costflow_check"]]
            info = item.result or {}
            failed_groups = np.asarray(info.get("unexpected_index_list") or [], dtype=np.int64)
            error = None
            if item.exception_info and item.exception_info.get("raised_exception"):
                error = str(item.exception_info.get("exception_message"))
            elif not item.success and "unexpected_index_list" not in info:
                error = f"expectation failed: {info.get('observed_value')!r}"
            for code, key in enumerate(slice_keys):
                outcome = _outcome(result, key, check)
                outcome.evaluated += int(per_slice_rows[code])
                mine = failed_groups[group_slice[failed_groups] == code]
                outcome.failed += int(weights[mine].sum())
                if error and outcome.error is None:
                    outcome.error = error
                room = SAMPLE_ROWS - len(outcome.samples)
                if mine.size and room > 0:
                    outcome.samples.extend(_samples(merged, check, mine[:room]))
        return result

    def _type_outcomes(self, table: pa.Table, keys: list[SliceKey],
                       result: dict[SliceKey, SliceQuality]) -> None:
        for check, field_ in zip(self.type_checks, ROW_SCHEMA, strict=True):
            if field_.name not in table.column_names:
                continue
            found = table.schema.field(field_.name).type
            if isinstance(found, pa.BaseExtensionType):  # arrow.json over string (DuckDB JSON)
                found = found.storage_type
            wrong = found != field_.type
            for key in keys:
                outcome = _outcome(result, key, check)
                if wrong and outcome.error is None:
                    outcome.error = (f"is {table.schema.field(field_.name).type}, declared "
                                     f"{field_.type}")


# A conditional check ("X MUST be null when Y") reaches GX as an unconditional one on a derived
# column holding X where the condition holds and a neutral value elsewhere. Same verdict per row;
# GX's own row_condition re-parses the condition with pandas.query for every metric it computes
# (~90 times a run, over every column of the frame: about half the gate's time), this evaluates
# each distinct condition once.
WHEN_PREFIX = "_When_"
_NEUTRAL = "n/a"  # what a not-null check sees where its condition does not hold


def _when_column(check: Check) -> str:
    return WHEN_PREFIX + "".join(c if c.isalnum() else "_" for c in check.name)


def _gx_kwargs(check: Check) -> dict[str, Any]:
    """The check's expectation arguments as GX gets them (conditions moved into a column)."""
    kwargs = dict(check.kwargs)
    if kwargs.pop("row_condition", None) is None:
        return kwargs
    kwargs.pop("condition_parser", None)
    kwargs["column"] = _when_column(check)
    return kwargs


def _with_conditioned(frame: Any, checks: Sequence[Check]) -> Any:
    """The validation frame plus one derived column per conditional check (see WHEN_PREFIX).

    Where the condition holds the column is the checked column's value; elsewhere it is null
    (null checks, and set checks, which GX skips nulls for) or a neutral text (not-null checks).
    """
    masks: dict[str, Any] = {}
    derived = {}
    for check in checks:
        condition = check.kwargs.get("row_condition")
        if condition is None:
            continue
        if condition not in masks:
            masks[condition] = frame.eval(condition).fillna(False).astype(bool)
        column = frame[check.kwargs["column"]]
        if check.expectation == "ExpectColumnValuesToNotBeNull":
            derived[_when_column(check)] = column.astype(object).where(masks[condition],
                                                                       _NEUTRAL)
        else:
            derived[_when_column(check)] = column.where(masks[condition])
    if not derived:
        return frame
    import pandas as pd

    return pd.concat([frame, pd.DataFrame(derived, index=frame.index)], axis=1)


GROUP_PREFIX = "__group_"
NULLS = "__group_nulls"
POSITION = "__group_position"
SAMPLE_PREFIX = "__sample_"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def value_columns(checks: Sequence[Check]) -> set[str]:
    """Columns whose values (not only their nullness) some check reads.

    A column tested only for null (not_null, null_without_commitment, a ``.isnull()`` row
    condition) can be reduced to a null marker before grouping; every other column it reads
    (value sets, ``==`` row conditions, pair comparisons) keeps its values.
    """
    needed: set[str] = set()
    for check in checks:
        kwargs = check.kwargs
        if check.expectation not in ("ExpectColumnValuesToNotBeNull",
                                     "ExpectColumnValuesToBeNull"):
            needed.update(v for k, v in kwargs.items() if k in ("column", "column_A",
                                                                "column_B"))
        condition = kwargs.get("row_condition", "")
        for match in _NAME.finditer(condition):
            rest = condition[match.end():].lstrip()
            if not rest.startswith((".isnull()", ".notnull()")) and match.group() in check.columns:
                needed.add(match.group())
    return needed


def compact_frame(table: pa.Table, columns: Sequence[str], values: set[str],
                  provider: str | None = None) -> pa.Table:
    """One row per distinct (slice, values the checks read) of ``table``, with its row count.

    Decimals enter as their exact sign (-1, 0, 1 or null; every money rule is about sign), so
    no float or Python Decimal is ever made. Columns read only for nullness are grouped as one
    bitmask and come back as a marker ("set" or null). Extra columns: the slice key as
    ``__group_<column>``, ``__group_rows`` (rows carrying the combination) and
    ``__sample_<column>`` (one such row, as text, for sample rows).
    """
    n = table.num_rows
    table = pa.table({name: (pc.cast(col, col.type.value_type)
                             if pa.types.is_dictionary(col.type) and _decoded(name, values)
                             else col)
                      for name, col in zip(table.column_names, table.columns, strict=True)})
    present = [c for c in columns if c in table.column_names]
    null_only = [c for c in present if c not in values
                 and not pa.types.is_decimal(table.column(c).type)]
    arrays: dict[str, Any] = {}
    for name in present:
        if name in null_only:
            continue
        column = table.column(name)
        if pa.types.is_decimal(column.type):
            column = pc.sign(column).cast(pa.float32())  # null -> NaN, which pandas calls null
        arrays[name] = column
    if {"ServiceCategory", "ServiceSubcategory"} <= set(present):
        category, sub = table.column("ServiceCategory"), table.column("ServiceSubcategory")
        # fill_null first: binary_join_element_wise drops all-null rows (engineering notes).
        joined = pc.binary_join_element_wise(pc.fill_null(category, ""), pc.fill_null(sub, ""),
                                             PAIR_SEPARATOR)
        either_null = pc.or_(pc.is_null(category), pc.is_null(sub))
        arrays[PAIR_COLUMN] = pc.if_else(either_null, pa.scalar(None, pa.string()), joined)
    for start, end in PERIOD_PAIRS:
        if start in arrays and end in arrays:
            arrays[start], arrays[end] = _period_order(arrays[start], arrays[end])
    if FLAGS_COLUMN in present:
        arrays.update(_flag_markers(table.column(FLAGS_COLUMN)))
    mask = pa.repeat(pa.scalar(0, pa.int64()), n)
    for bit, name in enumerate(null_only):
        valid = pc.cast(pc.is_valid(table.column(name)), pa.int64())
        mask = pc.bit_wise_or(mask, pc.shift_left(valid, bit))
    arrays[NULLS] = mask
    for key in SLICE_KEY:
        values_ = table.column(key) if key in table.column_names else pa.nulls(n, pa.string())
        if key == "x_SourceProvider" and key not in table.column_names and provider:
            values_ = pa.repeat(pa.scalar(provider), n)
        arrays[f"{GROUP_PREFIX}{key}"] = values_
    group_keys = list(arrays)
    arrays[POSITION] = pa.array(np.arange(n, dtype=np.int64))
    grouped = pa.table(arrays).group_by(group_keys, use_threads=False).aggregate(
        [(POSITION, "count"), (POSITION, "min")])
    positions = grouped.column(f"{POSITION}_min")
    out = {name: grouped.column(name) for name in group_keys}
    out[f"{GROUP_PREFIX}rows"] = grouped.column(f"{POSITION}_count")
    for name in dict.fromkeys([*LOCATION, *present]):
        if name not in table.column_names:
            continue  # e.g. a FOCUS export carries no lineage
        sample = table.column(name).take(positions)
        if pa.types.is_dictionary(sample.type):
            sample = pc.cast(sample, sample.type.value_type)
        if not (pa.types.is_string(sample.type) or pa.types.is_integer(sample.type)):
            sample = pc.cast(sample, pa.string())  # exact text of decimals and timestamps
        out[f"{SAMPLE_PREFIX}{name}"] = sample
    result = pa.table(out)
    return result.replace_schema_metadata({b"null_only": ",".join(null_only).encode()})


def _flag_markers(flags: Any) -> dict[str, pa.Array]:
    """Per warned flag (`WARNED_FLAGS`), "set" where a row's x_DataQualityFlags holds it.

    Matched on the dictionary's distinct texts when the column is dictionary-encoded (staged
    files are read that way), so the substring search runs once per distinct flag set.
    """
    if isinstance(flags, pa.ChunkedArray):
        flags = flags.combine_chunks()
    out = {}
    for flag in WARNED_FLAGS:
        needle = '"' + flag + '"'
        if pa.types.is_dictionary(flags.type):
            hit = pc.take(pc.match_substring(flags.dictionary, needle), flags.indices)
        else:
            hit = pc.match_substring(flags, needle)
        out[flag_column(flag)] = pc.if_else(pc.fill_null(hit, False), pa.scalar("set"),
                                            pa.scalar(None, pa.string()))
    return out


def _period_order(start: Any, end: Any) -> tuple[pa.Array, pa.Array]:
    """A period pair reduced to its order, for grouping.

    The only rule that reads period timestamps is "end after start", which depends on nothing
    but the sign of end - start (and nullness). Each pair enters GX as the epoch and the epoch
    plus that sign in microseconds: the same verdict, and hourly charge periods no longer
    multiply the distinct combinations. Sample rows keep the real timestamps.
    """
    type_ = start.type
    sign = pc.sign(pc.cast(pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64())),
                           pa.int64()))
    epoch = pa.scalar(0, pa.int64())
    canonical_start = pc.cast(pc.if_else(pc.is_valid(start), epoch, pa.scalar(None, pa.int64())),
                              type_)
    canonical_end = pc.cast(pc.if_else(pc.is_valid(end), pc.fill_null(sign, 0),
                                       pa.scalar(None, pa.int64())), type_)
    return canonical_start, canonical_end


def _decoded(name: str, values: set[str]) -> bool:
    """Columns compact_frame groups on by value (or by slice) are decoded from dictionaries."""
    return name in values or name in SLICE_KEY


def fold_compact(parts: list[pa.Table]) -> pa.Table:
    """Compact frames of several chunks as one: the same combination once, counts summed."""
    metadata = parts[0].schema.metadata
    merged = pa.concat_tables(parts, promote_options="default")
    keys = [c for c in merged.column_names
            if not c.startswith(SAMPLE_PREFIX) and c != f"{GROUP_PREFIX}rows"]
    return _group(merged, keys).replace_schema_metadata(metadata)


def merge_compact(parts: list[pa.Table]) -> pa.Table:
    """Merge compact frames of several chunks (counts summed) and restore the null markers."""
    null_only = (parts[0].schema.metadata or {}).get(b"null_only", b"").decode()
    merged = fold_compact(parts) if len(parts) > 1 else parts[0]
    mask = merged.column(NULLS)
    for bit, name in enumerate(n for n in null_only.split(",") if n):
        is_set = pc.not_equal(pc.bit_wise_and(mask, pa.scalar(1 << bit, pa.int64())), 0)
        merged = merged.append_column(name, pc.if_else(is_set, pa.scalar("set"),
                                                        pa.scalar(None, pa.string())))
    return merged.drop_columns([NULLS])


def _group(table: pa.Table, keys: list[str]) -> pa.Table:
    samples = [c for c in table.column_names if c.startswith(SAMPLE_PREFIX)]
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [(f"{GROUP_PREFIX}rows", "sum")] + [(c, "first") for c in samples])
    return grouped.rename_columns([c.removesuffix("_sum").removesuffix("_first")
                                   for c in grouped.column_names])


def _outcome(result: dict[SliceKey, SliceQuality], key: SliceKey, check: Check) -> CheckOutcome:
    quality = result.setdefault(key, SliceQuality(key))
    return quality.outcomes.setdefault(check.name, CheckOutcome(check))


def _samples(merged: pa.Table, check: Check, groups: np.ndarray) -> list[dict[str, Any]]:
    names = [c for c in dict.fromkeys([*LOCATION, *check.columns])
             if f"{SAMPLE_PREFIX}{c}" in merged.column_names]
    picked = merged.select([f"{SAMPLE_PREFIX}{c}" for c in names]).take(pa.array(groups))
    return [dict(zip(names, row.values(), strict=True)) for row in picked.to_pylist()]
