"""Azure Cost Management exports on disk or in Blob Storage: latest run per month, paired datasets.

Why this module exists: Azure writes every export run as a full month-to-date snapshot under
``<root>/<export>/<YYYYMMDD-YYYYMMDD>/<YYYYMMDDHHMM>/<runId>/part_*.csv[.gz]`` with a
``manifest.json`` [PF §3.3]. Reading every run would count a month many times over, and an
actual-cost and an amortized-cost export of the same month must never be added [PF §3.1]. So,
after every ``--source`` has been planned (the provider's *plan finisher*, `finish_plan`), this
module

1. keeps only the latest run per (export, month): by the manifest's ``runInfo.submittedTime``,
   else by the run folder's timestamp, else (legacy single-file layout) by modification time;
   the slice it produces replaces the month's previous contents;
2. tells actual from amortized exports by the manifest's ``exportConfig.type``, else by the
   word "amortized" in the export or file name;
3. pairs an actual run with the amortized run of the same scope and month (the manifest's
   ``exportConfig.resourceId``, else the same path with the dataset word removed). The pair is
   joined while reading (`read_azure`): each actual row gets its amortized twin's cost
   (``costflow:AmortizedCost``), matched on every column amortization leaves unchanged plus the
   occurrence number of that identity (`costflow.providers.azure.pairing`, in bounded memory);
   amortized rows without an actual twin are read from the amortized file with
   ``costflow:Dataset = amortized-only`` (BilledCost 0). One output row per input row, lineage
   pointing at the file and row each came from.

It also plans ``az://container/prefix`` with the official azure-storage-blob client: blobs are
listed once, the same selection applies, and an opener lets the csv/parquet readers stream them.
Authentication: ``AZURE_STORAGE_CONNECTION_STRING`` (Azurite, keys, SAS), else
``AZURE_STORAGE_ACCOUNT_URL`` (or ``AZURE_STORAGE_ACCOUNT``) with DefaultAzureCredential.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from costflow.errors import ConfigError, SourceError
from costflow.providers.azure.cost_details import (
    AMORTIZED_COST,
    ASSERTED_CURRENCY,
    DATASET,
    AzureCostNormalizer,
)
from costflow.providers.azure.headers import currency_spellings, identity_columns, resolve
from costflow.providers.azure.pairing import Pairing, pair
from costflow.sources import files as file_sources
from costflow.sources.contract import Plan, SourceCatalog, SourceFile
from costflow.transforms.arrow_text import as_text

FORMAT = AzureCostNormalizer.source_format
CONTAINER = "azure_export"
BATCH_ROWS = file_sources.BATCH_ROWS
# <base>/<export>/<YYYYMMDD-YYYYMMDD>/[<YYYYMMDDHHMM>/<runId>/]<file> [PF §3.3]
EXPORT_LAYOUT = re.compile(r"^(?P<base>.*)/(?P<export>[^/]+)/(?P<month>\d{8}-\d{8})/"
                     r"(?:(?P<ts>\d{12})/(?P<run>[0-9A-Za-z-]{8,})/)?(?P<name>[^/]+)$")
_DATASET_WORDS = re.compile(r"amorti[sz]ed|actual", re.IGNORECASE)
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class AzureSourceFile(SourceFile):
    """A planned Azure export file; ``container`` is CONTAINER, ``inner`` the real one.

    ``actual_run`` and ``amortized_run`` list every part of the paired runs (empty when the
    file was given without its companion); the reader joins them.
    """

    inner: str = "csv"
    dataset: str = "actual"                     # "actual" or "amortized"
    actual_run: tuple[SourceFile, ...] = ()
    amortized_run: tuple[SourceFile, ...] = ()
    billing_currency: str | None = None     # user assertion, set only without a currency column

    def content_key(self) -> tuple[str, ...]:
        return (*super().content_key(), self.dataset)

    def ledger_entry(self) -> dict[str, object]:
        entry = super().ledger_entry()
        entry["dataset"] = self.dataset
        if self.billing_currency:
            entry["billing_currency_asserted"] = self.billing_currency
        if self.actual_run and self.amortized_run:
            entry["paired_with"] = [f.uri for f in (
                self.amortized_run if self.dataset == "actual" else self.actual_run)]
        return entry


@dataclass
class _Run:
    """One export run (or a loose file): its parts and what its manifest says."""

    key: tuple[str, ...]        # (export path, month) for layouts, (uri,) for loose files
    files: list[SourceFile]
    empty: list[str]
    month: str | None
    order: tuple[str, ...]      # sort key; the latest run has the greatest
    run_id: str | None
    dataset: str
    pair_key: tuple[str, str | None]


def _read_manifest(folder: str, catalog: SourceCatalog) -> dict | None:
    uri = f"{folder}/manifest.json"
    try:
        with catalog.open(uri) as f:
            return json.loads(f.read())
    except (OSError, ValueError, FileNotFoundError):
        return None
    except Exception:  # noqa: BLE001 - a storage client's "not found" is not an OSError
        return None


def _dataset_of(manifest: dict | None, path: str) -> str:
    kind = ((manifest or {}).get("exportConfig") or {}).get("type") or ""
    if kind.lower() == "amortizedcost":
        return "amortized"
    if kind.lower() in ("actualcost", "usage"):
        return "actual"
    return "amortized" if re.search(r"amorti[sz]ed", path, re.IGNORECASE) else "actual"


def _scope(manifest: dict | None) -> str | None:
    resource = ((manifest or {}).get("exportConfig") or {}).get("resourceId")
    if not resource:
        return None
    return resource.lower().split("/providers/microsoft.costmanagement/")[0]


def _mtime(uri: str) -> str:
    return f"{os.path.getmtime(uri):020.6f}" if "://" not in uri and os.path.exists(uri) else ""


def _runs(files: list[SourceFile], empty: list[str], catalog: SourceCatalog) -> list[_Run]:
    """Group Azure files into runs, reading each run folder's manifest once."""
    grouped: dict[tuple[str, ...], list[str]] = defaultdict(list)
    key: tuple[str, ...]
    meta: dict[tuple[str, ...], re.Match | None] = {}
    for uri in [f.uri for f in files] + empty:
        match = EXPORT_LAYOUT.match(uri)
        if match and match.group("run"):
            key = (match.group("base"), match.group("export"), match.group("month"),
                   match.group("ts"), match.group("run"))
        else:
            key = (uri,)  # a loose file or a legacy single-file run
        grouped[key].append(uri)
        meta[key] = match
    by_uri = {f.uri: f for f in files}
    runs = []
    for key, uris in grouped.items():
        match = meta[key]
        folder = uris[0].rsplit("/", 1)[0]
        manifest = _read_manifest(folder, catalog) if match and match.group("run") else None
        info = (manifest or {}).get("runInfo") or {}
        order: tuple[str, ...]
        if match:
            export_path = f"{match.group('base')}/{match.group('export')}"
            order = (info.get("submittedTime") or "", match.group("ts") or "",
                     _mtime(uris[0]), match.group("run") or match.group("name"))
            month = match.group("month")
            group_key: tuple[str, ...] = (export_path, month)
        else:
            export_path, month, order = folder, None, ("",)
            group_key = (uris[0],)
        dataset = _dataset_of(manifest, export_path if match else uris[0])
        scope = _scope(manifest) or _DATASET_WORDS.sub("", export_path if match else uris[0])
        runs.append(_Run(key=group_key, files=[by_uri[u] for u in uris if u in by_uri],
                         empty=[u for u in uris if u not in by_uri], month=month, order=order,
                         run_id=info.get("runId") or (match.group("run") if match else None),
                         dataset=dataset, pair_key=(scope.lower(), month)))
        if manifest:
            _check_manifest(manifest, folder, uris)
    return runs


def _check_manifest(manifest: dict, folder: str, uris: list[str]) -> None:
    """A run whose manifest lists parts that are not there is incomplete: refuse it."""
    names = {u.rsplit("/", 1)[1] for u in uris}
    for blob in manifest.get("blobs") or []:
        name = str(blob.get("blobName", "")).rsplit("/", 1)[-1]
        if name and name not in names and name.lower().endswith(file_sources.SUPPORTED_SUFFIXES):
            raise SourceError(f"{folder}/manifest.json", f"lists the part {name!r}, which is "
                              "not in the run folder: the run is incomplete (still being "
                              "written, or partly deleted).",
                              expected="every part the manifest lists")


def _latest(runs: list[_Run], notes: list[str]) -> list[_Run]:
    by_month: dict[tuple[str, ...], list[_Run]] = defaultdict(list)
    for run in runs:
        by_month[run.key].append(run)
    kept = []
    for key, candidates in by_month.items():
        candidates.sort(key=lambda r: r.order)
        latest = candidates[-1]
        kept.append(latest)
        if len(candidates) > 1:
            notes.append(f"{key[0]} {key[1]}: read only the latest export run "
                         f"{latest.run_id or latest.order[0]}; {len(candidates) - 1} older "
                         "run(s) of the month passed over (each run is a full month-to-date "
                         "snapshot)")
    return kept


def _as_azure(source: SourceFile, run: _Run, actual: tuple[SourceFile, ...] = (),
              amortized: tuple[SourceFile, ...] = (),
              asserted: str | None = None) -> AzureSourceFile:
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(SourceFile)}
    fields["container"] = CONTAINER
    fields["delivery_id"] = run.run_id or source.delivery_id
    has_currency = "currency" in resolve(source.columns)
    return AzureSourceFile(**fields, inner=source.container, dataset=run.dataset,
                           actual_run=actual, amortized_run=amortized,
                           billing_currency=None if has_currency else asserted)


def _first_row_width(source: SourceFile, catalog: SourceCatalog) -> int | None:
    """Field count of the first data row of a CSV export (read from the first 64 KiB)."""
    with file_sources.csv_text_stream(source.uri, source.compression, catalog) as stream:
        head = stream.read(file_sources.HEADER_PEEK_BYTES)
    text = head.decode("utf-8", errors="ignore").removeprefix(file_sources.UTF8_BOM)
    records = csv.reader(io.StringIO(text))
    next(records, None)
    first = next(records, None)
    return len(first) if first else None


def _short_rows(source: SourceFile, notes: list[str], catalog: SourceCatalog) -> SourceFile:
    """A CSV whose rows all lack the header's trailing column(s) is read without them.

    opencost's ``values/Template.csv`` (a real export) names 11 columns and writes 10 fields
    per row: ``resourcelocation`` has no value anywhere. When the first data row is short and
    the missing trailing columns are not required, the file is planned with the header cut to
    the row width (those columns read as empty) and the run report says so. Any later row of
    another width still stops the read with the row number (the CSV reader's check).
    """
    if source.container != "csv":
        return source
    width = _first_row_width(source, catalog)
    if width is None or width >= len(source.columns):
        return source
    dropped = source.columns[width:]
    kept = source.columns[:width]
    if resolve(kept).keys() < {k for k in resolve(source.columns) if k in
                                ("date", "cost", "subscription_id", "currency")}:
        return source  # a required column would be lost: let the reader refuse the row
    notes.append(f"{source.uri}: the rows have {width} fields but the header names "
                 f"{len(source.columns)}; the trailing column(s) {', '.join(dropped)} have no "
                 "values in the file and are read as empty")
    return dataclasses.replace(source, columns=tuple(kept))


def _billing_currency(azure: list[SourceFile], plan: Plan, notes: list[str]) -> str | None:
    """The asserted currency, checked; without one, a file lacking a currency column is an error.

    An export without a currency column (opencost's ``values/`` samples) does not say what its
    costs are in. We never guess: the user asserts it with ``--billing-currency``, it is used
    only for such files, and every row they produce says so in x_DataQualityFlags.
    """
    asserted = plan.assertions.get("billing_currency")
    if asserted is not None and not _CURRENCY_CODE.match(asserted):
        raise ConfigError(f"--billing-currency {asserted!r} is not an ISO 4217 code (expected "
                          "three capital letters such as USD or EUR).")
    lacking = [f.uri for f in azure if "currency" not in resolve(f.columns)]
    if lacking and asserted is None:
        raise SourceError(
            lacking[0], f"has no currency column ({currency_spellings()}), so the currency of "
            "its costs is unknown and is not guessed. If you know it, pass --billing-currency "
            "CODE (e.g. --billing-currency USD): it is used only for exports without a currency "
            "column, and their rows are flagged BillingCurrency:asserted_by_user.",
            row=0, column=currency_spellings(),
            expected="a currency column, or --billing-currency")
    for uri in lacking:
        notes.append(f"{uri}: no currency column; its costs are taken to be in {asserted} as "
                     "asserted by --billing-currency (x_DataQualityFlags "
                     "BillingCurrency:asserted_by_user)")
    if asserted is not None and not lacking:
        notes.append(f"--billing-currency {asserted} was not used: every Azure export given "
                     "has its own currency column")
    return asserted


def finish_plan(plan: Plan, catalog: SourceCatalog) -> Plan:
    """The Azure plan finisher: latest run per month, then actual/amortized pairing."""
    azure = [f for f in plan.files if f.source_format == FORMAT
             and not isinstance(f, AzureSourceFile)]
    if not azure:
        return plan
    others = [f for f in plan.files if f not in azure]
    notes = list(plan.notes)
    azure = [_short_rows(f, notes, catalog) for f in azure]
    asserted = _billing_currency(azure, plan, notes)
    empty_azure = [u for u in plan.empty_files if EXPORT_LAYOUT.match(u)]
    runs = _latest(_runs(azure, empty_azure, catalog), notes)
    kept_empty = {u for r in runs for u in r.empty}
    empty = [u for u in plan.empty_files if u not in empty_azure or u in kept_empty]
    by_pair: dict[tuple[str, str | None], dict[str, list[_Run]]] = defaultdict(
        lambda: defaultdict(list))
    for run in runs:
        if run.files:
            by_pair[run.pair_key][run.dataset].append(run)
    files: list[SourceFile] = []
    alone: dict[str, list[str]] = {"actual": [], "amortized": []}
    for groups in by_pair.values():
        actual, amortized = groups.get("actual", []), groups.get("amortized", [])
        if len(actual) == 1 and len(amortized) == 1:
            a_run, m_run = tuple(actual[0].files), tuple(amortized[0].files)
            files += [_as_azure(f, actual[0], a_run, m_run, asserted) for f in a_run]
            files += [_as_azure(f, amortized[0], a_run, m_run, asserted) for f in m_run]
            continue
        for run in actual + amortized:
            files += [_as_azure(f, run, asserted=asserted) for f in run.files]
            alone[run.dataset] += [f.uri for f in run.files]
    if alone["actual"] and alone["amortized"]:
        raise ConfigError(
            "Azure actual-cost export(s) " + ", ".join(alone["actual"]) + " and amortized-cost "
            "export(s) " + ", ".join(alone["amortized"]) + " were given together but could not "
            "be paired (pairs need the same manifest scope and month, or the same path apart "
            "from the words 'actual'/'amortized'). Loading both would add amortized cost to "
            "actual cost. Give them in export layout, name them alike, or ingest them "
            "separately.")
    for uri in alone["actual"]:
        notes.append(f"{uri}: actual-cost export without its amortized-cost companion: "
                     "EffectiveCost is the actual cost, reservation and savings plan purchases "
                     "are not amortized (x_DataQualityFlags EffectiveCost:from_actual_cost)")
    for uri in alone["amortized"]:
        notes.append(f"{uri}: amortized-cost export without its actual-cost companion: "
                     "BilledCost is the amortized cost, not what was invoiced "
                     "(x_DataQualityFlags BilledCost:from_amortized_cost)")
    return Plan(others + files, empty, notes, plan.assertions)


# ---------------------------------------------------------------- reading and joining

def _with_columns(batch: pa.RecordBatch, dataset: str,
                  amortized: pa.Array | None = None) -> pa.RecordBatch:
    arrays = list(batch.columns) + [pa.repeat(pa.scalar(dataset), batch.num_rows),
                                    amortized if amortized is not None
                                    else pa.nulls(batch.num_rows, pa.string())]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names + [DATASET,
                                                                          AMORTIZED_COST])


def _part_batches(catalog: SourceCatalog) -> Callable[[SourceFile], Iterator[pa.RecordBatch]]:
    """One part's batches, its header's columns in order, as export text."""
    def read(part: SourceFile) -> Iterator[pa.RecordBatch]:
        for _, batch in catalog.read_batches(part):
            yield as_text_batch(batch.select(list(part.columns)))
    return read


_CACHE: dict[tuple, Pairing] = {}
_LOCK = threading.Lock()


def _join(actual: tuple[SourceFile, ...], amortized: tuple[SourceFile, ...],
          catalog: SourceCatalog) -> Pairing:
    """The pair's matches (`costflow.providers.azure.pairing`), computed once per pair."""
    key = tuple((f.uri, f.sha256) for f in actual + amortized)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        cost_name = resolve(list(amortized[0].columns)).get("cost")
        if cost_name is None:
            raise SourceError(amortized[0].uri, "has no cost column.",
                              expected="CostInBillingCurrency, Cost or PreTaxCost")
        names = identity_columns(list(actual[0].columns), list(amortized[0].columns))
        result = pair(actual, amortized, names, cost_name, _part_batches(catalog))
        _CACHE.clear()  # one pair at a time: runs are read file after file
        _CACHE[key] = result
        return result


def _part_index(source: AzureSourceFile, run: tuple[SourceFile, ...]) -> int:
    return [f.uri for f in run].index(source.uri)


def _read_paired(source: AzureSourceFile,
                 catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The part's rows again, batch by batch: actual rows with their twin's cost, amortized
    rows only where they have no actual twin (each keeps its own row number)."""
    join = _join(source.actual_run, source.amortized_run, catalog)
    read = _part_batches(catalog)
    if source.dataset == "actual":
        i = _part_index(source, source.actual_run)
        part, row = source.actual_run[i], join.actual_offsets[i]
        first = 1
        for batch in read(part):
            yield first, _with_columns(batch, "actual+amortized",
                                       join.amortized_cost.slice(row, batch.num_rows))
            first, row = first + batch.num_rows, row + batch.num_rows
        return
    i = _part_index(source, source.amortized_run)
    part, row = source.amortized_run[i], join.amortized_offsets[i]
    first = 1
    for batch in read(part):
        unmatched = join.amortized_unmatched[row:row + batch.num_rows]
        # Contiguous runs of amortized-only rows keep their own row numbers (lineage).
        edges = np.flatnonzero(np.diff(np.r_[0, unmatched.astype(np.int8), 0]))
        for run_start, run_stop in zip(edges[::2], edges[1::2], strict=True):
            yield first + int(run_start), _with_columns(
                batch.slice(int(run_start), int(run_stop - run_start)), "amortized-only")
        first, row = first + batch.num_rows, row + batch.num_rows


def as_text_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Typed columns (Azure Parquet exports: decimals, doubles, timestamps) as export text.

    `costflow.transforms.arrow_text.as_text` gives the text the CSV export of the same data
    carries, so one mapping serves CSV, CSV.gz and Parquet with identical results.
    """
    if all(pa.types.is_string(t) for t in batch.schema.types):
        return batch
    return pa.RecordBatch.from_arrays([as_text(c) for c in batch.columns],
                                      names=batch.schema.names)


def _asserted(batch: pa.RecordBatch, currency: str | None) -> pa.RecordBatch:
    if currency is None:
        return batch
    return batch.append_column(ASSERTED_CURRENCY, pa.repeat(pa.scalar(currency),
                                                            batch.num_rows))


def read_azure(source: SourceFile,
               catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Batches of one Azure export file with ``costflow:Dataset`` (and the joined cost)."""
    if not isinstance(source, AzureSourceFile):
        raise TypeError(f"{source.uri}: not planned as an Azure export")
    if source.actual_run and source.amortized_run:
        for first, batch in _read_paired(source, catalog):
            yield first, _asserted(batch, source.billing_currency)
        return
    inner = dataclasses.replace(source, container=source.inner)
    for first, batch in catalog.read_batches(SourceFile(**{
            f.name: getattr(inner, f.name) for f in dataclasses.fields(SourceFile)})):
        yield first, _asserted(_with_columns(as_text_batch(batch), source.dataset),
                               source.billing_currency)

