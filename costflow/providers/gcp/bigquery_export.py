"""``bq://PROJECT.DATASET.TABLE``: the GCP Cloud Billing export read straight from BigQuery.

Why this module exists: the export lives in BigQuery and is append-only; rows and corrections
keep arriving for days [PF §1.3]. A run must (a) select whole invoice months, because a slice
(billing account, invoice month) is replaced whole, (b) pick up late rows, and (c) not re-read
what did not change. So planning runs one cheap parameterized query (`touched_slices` in
`costflow/providers/gcp/sql/gcp_billing_export.sql`): which (account, month) slices the window
touches, with their row count and MAX(export_time). Each slice becomes one planned source whose
delivery id is that (count, high-water) pair, so the generic unchanged-delivery check
(`costflow.pipelines.unchanged`) skips a run in which no slice changed, and a changed slice is
re-read whole and replaced atomically by the commit.

The window is ``[start, end)`` of usage time (default: the first day of the previous month to
tomorrow), widened by ``exported_since``: the ledger's high-water ``export_time``
(`load_slices.high_water_export_time`) minus ``--lookback_days`` (default 3), so rows exported
late for any month come in with their whole month. ``--authorized_project`` restricts rows to
those projects (bound as an array; an empty array means no filter).

Reading: Beam 2.77's ReadFromBigQuery takes no query parameters, so the parameterized
`export_rows` query runs with google-cloud-bigquery into its temporary result table, which
`ReadFromBigQuery(table=..., method=DIRECT_READ, row_restriction=<one slice>)` reads; rows are
grouped into blocks by the query's per-slice row number and become Arrow record batches of the
export's nested shape (the GCP normalizer conforms them like Parquet/Avro files).

Credentials: with ``--credentials secret://...`` the planning query and the materializing query
run as that service account (`costflow.sources.credentials`); Beam's ``ReadFromBigQuery`` of
the materialized result table runs as the pipeline's own identity (the launcher's Application
Default Credentials locally, the worker service account on Dataflow), which therefore needs
``bigquery.tables.getData`` and ``bigquery.readsessions.create`` on that temporary table.

``bq+duckdb:///path.duckdb?table=DATASET.TABLE`` runs the same SQL, transpiled by sqlglot, on a
local DuckDB copy of an export table (same nesting). It is the offline proof of the SQL and the
source of the demo; the slices are read in process, not through Beam's BigQuery IO.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from costflow.errors import ConfigError, SourceError
from costflow.providers.gcp.billing import GcpDetailedExport, GcpStandardExport
from costflow.providers.gcp.export_schema import TOP_LEVEL_FIELDS
from costflow.sources import credentials as creds
from costflow.sources.contract import Plan, PlanRequest, SourceBatch, SourceCatalog, SourceFile
from costflow.sources.credentials import CredentialsRef
from costflow.warehouse import sqlfiles

SQL_FILE = os.path.join(os.path.dirname(__file__), "sql", "gcp_billing_export.sql")
LEDGER_SQL = os.path.join(os.path.dirname(__file__), "sql", "gcp_high_water.sql")
PLACEHOLDER = ("billing_export", "gcp_billing_export")
ROW_NUMBER = "costflow_row_number"
BLOCK_ROWS = 16_384
DEFAULT_LOOKBACK_DAYS = 3
GOOGLE_BILLING_TZ = ZoneInfo("America/Los_Angeles")  # Google billing days [PF §1.3]
BIGQUERY, LOCAL = "bigquery_export", "bigquery_export_local"
# Billing account IDs and invoice months as the export writes them; checked before one is used in
# a Storage API row restriction (which takes no parameters).
_ACCOUNT = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_MONTH = re.compile(r"^[0-9]{6}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
# BigQuery types of the bound parameters (explicit: a NULL or an empty array has no type).
PARAMETER_TYPES = {"start_time": "TIMESTAMP", "end_time": "TIMESTAMP",
                   "exported_since": "TIMESTAMP", "authorized_projects": "STRING"}


@dataclass(frozen=True)
class ExportSpec:
    """A parsed ``bq://`` or ``bq+duckdb://`` source and its run window."""

    uri: str                      # the pattern without the window's query string
    table: tuple[str | None, str, str]  # (project or None, dataset, table)
    start: datetime
    end: datetime
    authorized_projects: tuple[str, ...] = ()
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    exported_since: datetime | None = None
    duckdb_path: str | None = None

    @property
    def table_name(self) -> str:
        return ".".join(p for p in self.table if p)

    def params(self) -> dict[str, Any]:
        return {"start_time": self.start, "end_time": self.end,
                "exported_since": self.exported_since,
                "authorized_projects": list(self.authorized_projects)}

    def key(self) -> str:
        """Identity of the query (table + bound values), for caching and source digests."""
        return json.dumps([self.duckdb_path, self.table, self.params()], default=str)


def billing_day_start(day: date) -> datetime:
    """Midnight of a Google billing day, in UTC: Google's billing days and invoice months are
    US/Pacific [PF §1.3], so a window given in days means Pacific days, as the console and the
    invoice count them."""
    return datetime.combine(day, time.min, GOOGLE_BILLING_TZ).astimezone(UTC)


def _default_window(today: date) -> tuple[datetime, datetime]:
    """First day of the previous month to tomorrow: the current and previous invoice months."""
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return billing_day_start(previous), billing_day_start(today + timedelta(days=1))


def _utc(text: str, uri: str, what: str) -> datetime:
    """A window bound: a day (YYYY-MM-DD) is a Google billing day; a timestamp without an
    offset is UTC; one with an offset is converted."""
    try:
        return billing_day_start(date.fromisoformat(text))
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--source {uri!r}: {what}={text!r} is not a date or timestamp "
                          "(YYYY-MM-DD or ISO 8601).") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_uri(pattern: str, today: date | None = None) -> ExportSpec:
    """``bq://[PROJECT.]DATASET.TABLE?start=&end=&authorized_project=&lookback_days=``."""
    parsed = urlparse(pattern)
    query = parse_qs(parsed.query)
    base = pattern.split("?", 1)[0]
    if parsed.scheme == "bq+duckdb":
        path = parsed.path
        names = (query.get("table") or [""])[0].split(".")
        if not path or len(names) != 2:
            raise ConfigError(f"--source {pattern!r}: expected bq+duckdb:///PATH.duckdb"
                              "?table=DATASET.TABLE.")
        table: tuple[str | None, str, str] = (None, names[0], names[1])
        base = f"bq+duckdb://{path}?table={names[0]}.{names[1]}"
    else:
        names = (parsed.netloc + parsed.path).strip("/").split(".")
        if len(names) not in (2, 3):
            raise ConfigError(f"--source {pattern!r}: expected bq://PROJECT.DATASET.TABLE, the "
                              "Cloud Billing export table.")
        table = ((names[0], names[1], names[2]) if len(names) == 3
                 else (None, names[0], names[1]))
        path = None
    if not all(_NAME.match(n) for n in table if n):
        raise ConfigError(f"--source {pattern!r}: project, dataset and table names may only "
                          "hold letters, digits, '_' and '-'.")
    start, end = _default_window(today or datetime.now(GOOGLE_BILLING_TZ).date())
    if "start" in query:
        start = _utc(query["start"][0], pattern, "start")
    if "end" in query:
        end = _utc(query["end"][0], pattern, "end")
    if end <= start:
        raise ConfigError(f"--source {pattern!r}: --end must be after --start.")
    try:
        lookback = int(query.get("lookback_days", [DEFAULT_LOOKBACK_DAYS])[0])
    except ValueError:
        raise ConfigError(f"--source {pattern!r}: lookback_days must be a whole number of "
                          "days.") from None
    if lookback < 0:
        raise ConfigError(f"--source {pattern!r}: lookback_days must not be negative.")
    since = (_utc(query["exported_since"][0], pattern, "exported_since")
             if "exported_since" in query else None)
    projects = tuple(sorted({p for p in query.get("authorized_project", []) if p}))
    return ExportSpec(uri=base, table=table, start=start, end=end,
                      authorized_projects=projects, lookback_days=lookback,
                      exported_since=since, duckdb_path=path)


def source_format_of(spec: ExportSpec, forced: str | None) -> str:
    """Detailed or standard table, from ``--format`` or the table's documented name [PF §1.1]."""
    formats = (GcpDetailedExport.source_format, GcpStandardExport.source_format)
    if forced:
        if forced not in formats:
            raise ConfigError(f"--format {forced} cannot read {spec.uri}; expected one of "
                              f"{', '.join(formats)}.")
        return forced
    name = spec.table[2]
    if name.startswith("gcp_billing_export_resource_v1"):
        return GcpDetailedExport.source_format
    if name.startswith("gcp_billing_export_v1"):
        return GcpStandardExport.source_format
    raise ConfigError(f"--source {spec.uri}: the table {name!r} is not named like a Cloud "
                      "Billing export (gcp_billing_export_v1_* or "
                      "gcp_billing_export_resource_v1_*); say which it is with --format.")


def statement(name: str, spec: ExportSpec) -> sqlfiles.Statement:
    """The named statement of the source SQL with the placeholder table set to ``spec``'s."""
    (found,) = [s for s in sqlfiles.load_file(SQL_FILE) if s.name == name]
    target = sqlfiles.table(spec.table[2], spec.table[1], spec.table[0])

    def swap(node: Any) -> Any:
        if (isinstance(node, sqlfiles.exp.Table) and (node.db, node.name) == PLACEHOLDER
                and not node.catalog):
            return sqlfiles.exp.alias_(target.copy(), node.alias) if node.alias else target.copy()
        return node

    expression = found.expression.copy().transform(swap)
    return sqlfiles.Statement(found.name, expression, found.parameters)


# --- query backends ----------------------------------------------------------------------------

class BigQueryBackend:
    """Runs the source SQL with google-cloud-bigquery (parameters typed, jobs labelled)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _config(self, name: str, params: Mapping[str, Any]) -> Any:
        from google.cloud import bigquery

        bound: list[Any] = []
        for key, value in params.items():
            kind = PARAMETER_TYPES[key]
            if isinstance(value, list):
                bound.append(bigquery.ArrayQueryParameter(key, kind, value))
            else:
                bound.append(bigquery.ScalarQueryParameter(key, kind, value))
        return bigquery.QueryJobConfig(query_parameters=bound,
                                       labels={"costflow_statement": name})

    def summary(self, spec: ExportSpec) -> list[dict[str, Any]]:
        found = statement("touched_slices", spec)
        job = self.client.query(found.bigquery(), job_config=self._config(found.name,
                                                                         spec.params()))
        return [dict(row) for row in job.result()]

    def materialize(self, spec: ExportSpec) -> str:
        """Run `export_rows`; returns its result table as ``PROJECT:DATASET.TABLE``."""
        found = statement("export_rows", spec)
        job = self.client.query(found.bigquery(), job_config=self._config(found.name,
                                                                         spec.params()))
        job.result()
        dest = job.destination
        return f"{dest.project}:{dest.dataset_id}.{dest.table_id}"


class DuckDBBackend:
    """Runs the same SQL, transpiled, on a local DuckDB copy of an export table."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _run(self, name: str, spec: ExportSpec) -> pa.Table:
        import duckdb

        duck = statement(name, spec).duckdb
        con = duckdb.connect(self.path, read_only=True)
        try:
            return con.sql(duck.sql, params=duck.bind(spec.params())).to_arrow_table()
        finally:
            con.close()

    def summary(self, spec: ExportSpec) -> list[dict[str, Any]]:
        return self._run("touched_slices", spec).to_pylist()

    def rows(self, spec: ExportSpec) -> pa.Table:
        return self._run("export_rows", spec)


def default_backend(spec: ExportSpec, credentials: CredentialsRef | None = None) -> Any:
    """DuckDB for ``bq+duckdb://``; else a BigQuery client billed to the export's project,
    as the source's service account (``--credentials``) or Application Default Credentials."""
    if spec.duckdb_path:
        return DuckDBBackend(spec.duckdb_path)
    from google.cloud import bigquery

    if credentials is None:
        return BigQueryBackend(bigquery.Client(project=spec.table[0]))
    return BigQueryBackend(bigquery.Client(
        project=spec.table[0], credentials=creds.gcp_credentials(credentials, spec.uri)))


# --- planning ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportSliceSource(SourceFile):
    """One (billing account, invoice month) slice of the export, read by one query."""

    spec: ExportSpec | None = None
    billing_account_id: str = ""
    invoice_month: str = ""
    row_count: int = 0
    max_export_time: str = ""


def _ts_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return "" if value is None else str(value)


def plan_export(pattern: str, request: PlanRequest, backend: Any = None) -> Plan:
    """Find the slices the window touches; one planned source per slice."""
    provider, source_format = request.provider, request.source_format
    if provider not in (None, "gcp"):
        raise ConfigError(f"--source {pattern!r} is a GCP billing export table, but --provider "
                          f"{provider} was given.")
    spec = parse_uri(pattern)
    fmt = source_format_of(spec, source_format)
    backend = backend or default_backend(spec, request.credentials)
    summary = backend.summary(spec)
    if not summary:
        return Plan(empty_files=[pattern])
    container = LOCAL if spec.duckdb_path else BIGQUERY
    files: list[SourceFile] = []
    for row in summary:
        account, month = str(row["billing_account_id"]), str(row["invoice_month"])
        if not (_ACCOUNT.match(account) and _MONTH.match(month)):
            raise SourceError(spec.uri, f"slice ({account!r}, {month!r}) is not a billing "
                              "account ID and an invoice month.", column="invoice.month",
                              expected="billing_account_id like 01338E-BE3FD6-363B4C and "
                              "invoice.month as YYYYMM")
        high = _ts_text(row["max_export_time"])
        uri = f"{spec.uri}{'&' if '?' in spec.uri else '?'}" + urlencode(
            {"billing_account_id": account, "invoice_month": month})
        if spec.authorized_projects:
            uri += "&" + urlencode([("authorized_project", p) for p in spec.authorized_projects])
        identity = f"rows={int(row['row_count'])};max_export_time={high}"
        files.append(ExportSliceSource(
            uri=uri, size_bytes=0, sha256=hashlib.sha256(
                json.dumps([uri, identity]).encode()).hexdigest(),
            container=container, compression=None, columns=TOP_LEVEL_FIELDS,
            source_format=fmt, provider="gcp", delivery_id=identity, delivery=uri,
            spec=spec, billing_account_id=account, invoice_month=month,
            row_count=int(row["row_count"]), max_export_time=high))
    window = (f"{spec.start:%Y-%m-%d}..{spec.end:%Y-%m-%d}"
              + (f", exported since {spec.exported_since:%Y-%m-%d %H:%M}Z"
                 if spec.exported_since else ""))
    return Plan(files=files, notes=[
        f"{spec.uri}: {len(files)} whole invoice-month slice(s) touched by usage {window}"
        + (f", projects {', '.join(spec.authorized_projects)} only"
           if spec.authorized_projects else "")])


def resolve_pattern(pattern: str, options: Mapping[str, Any], ledger: Any) -> str:
    """Add the run options and the ledger's lookback start to a ``bq://`` pattern."""
    query = parse_qs(urlparse(pattern).query)
    extra: list[tuple[str, str]] = []
    if "authorized_project" not in query:
        extra += [("authorized_project", p) for p in options.get("authorized_project") or ()]
    lookback = options.get("lookback_days")
    if lookback is None:
        lookback = int(query.get("lookback_days", [DEFAULT_LOOKBACK_DAYS])[0])
    if "lookback_days" not in query:
        extra.append(("lookback_days", str(lookback)))
    if ledger is not None and "exported_since" not in query:
        (found,) = sqlfiles.load_file(LEDGER_SQL)
        table = ledger.query(found.bigquery(), {"provider": "gcp"})
        high = table.column("high_water")[0].as_py() if table.num_rows else None
        if high is not None:
            since = high.replace(tzinfo=high.tzinfo or UTC) - timedelta(days=int(lookback))
            extra.append(("exported_since", since.astimezone(UTC).isoformat()))
    if not extra:
        return pattern
    return f"{pattern}{'&' if '?' in pattern else '?'}{urlencode(extra)}"


# --- reading -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _local_rows(path: str, key: str, spec: ExportSpec) -> pa.Table:
    """The `export_rows` answer of one run (cached: every slice of the run reads from it)."""
    return DuckDBBackend(path).rows(spec)


def read_local(source: SourceFile,
               catalog: SourceCatalog) -> Iterator[tuple[int, pa.RecordBatch]]:
    """One slice from a local DuckDB export table, in its row-number order."""
    if not isinstance(source, ExportSliceSource) or source.spec is None:
        raise TypeError(f"{source.uri}: not planned as a BigQuery export slice")
    spec = source.spec
    table = _local_rows(spec.duckdb_path or "", spec.key(), spec)
    mask = pc.and_(pc.equal(table["billing_account_id"], source.billing_account_id),
                   pc.equal(pc.struct_field(table["invoice"], "month"), source.invoice_month))
    rows = table.filter(mask).sort_by(ROW_NUMBER)
    if rows.num_rows != source.row_count:
        raise SourceError(source.uri, f"the slice has {rows.num_rows} rows now, "
                          f"{source.row_count} when the run was planned.",
                          expected="an export table that is only appended to between "
                          "planning and reading; run the ingest again")
    rows = rows.drop_columns([ROW_NUMBER])
    first = 1
    for batch in rows.to_batches(max_chunksize=BLOCK_ROWS):
        yield first, batch
        first += batch.num_rows


def row_restriction(source: ExportSliceSource) -> str:
    """The Storage Read API filter of one slice (values checked against strict patterns at
    planning; the API takes no parameters)."""
    if not (_ACCOUNT.match(source.billing_account_id) and _MONTH.match(source.invoice_month)):
        raise ValueError(f"refusing unchecked slice key {source.billing_account_id!r}, "
                         f"{source.invoice_month!r}")
    return (f'billing_account_id = "{source.billing_account_id}" '
            f'AND invoice.month = "{source.invoice_month}"')


class RowsToBatch(beam.DoFn):
    """One block of a slice's rows (keyed by row-number block) -> one `SourceBatch`."""

    def __init__(self, source: ExportSliceSource) -> None:
        self.source = source

    def process(self, element: tuple[int, Sequence[dict[str, Any]]]) -> Iterator[SourceBatch]:
        block, rows = element
        ordered = sorted(rows, key=lambda r: r[ROW_NUMBER])
        first = block * BLOCK_ROWS + 1
        numbers = [r[ROW_NUMBER] for r in ordered]
        if numbers != list(range(first, first + len(ordered))):
            raise SourceError(self.source.uri, f"rows {first}..{first + len(ordered) - 1} of "
                              "the query result are not complete.",
                              expected="every row number of the slice exactly once")
        records = [{k: v for k, v in r.items() if k != ROW_NUMBER} for r in ordered]
        yield SourceBatch(source=self.source, first_row=first,
                          batch=pa.RecordBatch.from_pylist(records))


class ReadExportSlice(beam.PTransform):
    """Beam's BigQuery IO over the materialized query result, restricted to one slice."""

    def __init__(self, source: ExportSliceSource, table: str) -> None:
        super().__init__()
        self.source, self.table = source, table

    def read_transform(self) -> beam.io.ReadFromBigQuery:
        return beam.io.ReadFromBigQuery(
            table=self.table, method=beam.io.ReadFromBigQuery.Method.DIRECT_READ,
            row_restriction=row_restriction(self.source), use_native_datetime=True)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (pbegin
                | "Read" >> self.read_transform()
                | "Block" >> beam.Map(lambda r: ((r[ROW_NUMBER] - 1) // BLOCK_ROWS, r))
                | "GroupBlocks" >> beam.GroupByKey()
                | "ToBatches" >> beam.ParDo(RowsToBatch(self.source)))


_MATERIALIZED: dict[str, str] = {}


def beam_read(source: SourceFile, backend: Any = None) -> beam.PTransform:
    """The Beam read of one planned slice; the query runs once per run (at construction)."""
    if not isinstance(source, ExportSliceSource) or source.spec is None:
        raise TypeError(f"{source.uri}: not planned as a BigQuery export slice")
    key = source.spec.key()
    if key not in _MATERIALIZED:
        _MATERIALIZED[key] = (backend or default_backend(
            source.spec, source.credentials)).materialize(source.spec)
    return ReadExportSlice(source, _MATERIALIZED[key])

