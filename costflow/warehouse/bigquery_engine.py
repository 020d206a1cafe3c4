"""The `cost_analytics` dataset in BigQuery.

Tables are created from the rendered BigQuery JSON schemas (partitioned by day and clustered as
declared), the FOCUS read views from the rendered DDL. A commit stages the run's Parquet files
with load jobs into tables of its own (`_staged_<table>_<run>`, expiring after a week), runs the
reconciliation query and compares its answer with the source's totals as `Decimal`, then
replaces the slices with ONE multi-statement transaction (``BEGIN TRANSACTION; ... COMMIT
TRANSACTION;``): BigQuery rolls the whole script back if any statement fails. Every value is a
named query parameter; decimals travel as exact BIGNUMERIC text.

The client is built on first use by ``client_factory`` (default: `google.cloud.bigquery.Client`),
never at import, so tests pass a fake that records every request.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.reconcile import SliceCheck, SliceKey, SliceStats
from costflow.schemas.columns import TableSpec
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.operational import DEAD_LETTERS, LOAD_SLICES, RECOMMENDATIONS
from costflow.schemas.render import (
    ALL_TABLES,
    BIGQUERY_TYPES,
    FOCUS_VIEWS,
    GENERATED,
    bigquery_schema,
)
from costflow.warehouse import commit_params as slices
from costflow.warehouse import migrate, sqlfiles
from costflow.warehouse import recommendation_checks as recommendations
from costflow.warehouse.base import RunStart, StagedRun, Warehouse

LOG = logging.getLogger("costflow.warehouse")

STAGING_TTL = timedelta(days=7)  # a failed run's staging stays inspectable for a week
# Types of the fields of struct-array parameters, from the declaration of the table they feed.
STRUCT_PARAMETERS: dict[str, dict[str, str]] = {
    "slices": {f: BIGQUERY_TYPES[LOAD_SLICES.column(f).type] for f in slices.SLICE_FIELDS},
}
# Python type -> BigQuery parameter type (checked in order: bool before int, datetime before date).
SCALAR_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "BOOL"), (int, "INT64"), (Decimal, "BIGNUMERIC"), (float, "FLOAT64"),
    (datetime, "TIMESTAMP"), (date, "DATE"), (bytes, "BYTES"), (str, "STRING"),
)
PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def default_client(project: str, location: str | None) -> Any:
    """The real client, with application-default credentials."""
    return bigquery.Client(project=project, location=location)


class BigQueryWarehouse(Warehouse):
    """`Warehouse` on a BigQuery dataset.

    Args:
        project: GCP project id.
        dataset: dataset id (it plays the role of `cost_analytics` in the SQL files).
        client_factory: ``(project, location) -> client``; called once, on first use.
        location: dataset location for new datasets and jobs (e.g. ``"EU"``).
    """

    def __init__(self, project: str, dataset: str, *,
                 client_factory: Callable[[str, str | None], Any] = default_client,
                 location: str | None = None) -> None:
        if not PROJECT_ID.match(project) or not DATASET_ID.match(dataset):
            raise ConfigError(
                f"bigquery://{project}/{dataset} does not name a BigQuery dataset: a project id "
                "is 6-30 lowercase letters, digits or dashes, a dataset id letters, digits or "
                "underscores.")
        self.project, self.dataset, self.location = project, dataset, location
        self.url = f"bigquery://{project}/{dataset}"
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The BigQuery client, built on first use."""
        if self._client is None:
            self._client = self._client_factory(self.project, self.location)
        return self._client

    def close(self) -> None:
        """Close the client's HTTP session, if one was built."""
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
        self._client = None

    def table_id(self, name: str) -> str:
        """``project.dataset.name``."""
        return f"{self.project}.{self.dataset}.{name}"

    def tables(self, run_id: str | None = None) -> dict[str, exp.Table]:
        """Where each `cost_analytics.<name>` of the SQL files lives (staging per run)."""
        names = [t.name for t in ALL_TABLES] + list(FOCUS_VIEWS)
        out = {n: sqlfiles.table(n, self.dataset, self.project) for n in names}
        if run_id is not None:
            out.update({logical: sqlfiles.table(staging_name(logical, run_id), self.dataset,
                                                self.project)
                        for logical in slices.STAGING_TABLES.values()})
        return out

    def ensure_schema(self) -> None:
        """Create the dataset, the tables (partitioned, clustered) and the FOCUS views."""
        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        if self.location:
            dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True)
        for spec in ALL_TABLES:
            table = self.client.create_table(self._table(spec, self.table_id(spec.name)),
                                             exists_ok=True)
            self._add_new_columns(spec, table)
        tables = self.tables()
        for statement in sqlfiles.load_file(str(GENERATED / "bigquery_ddl.sql")):
            if isinstance(statement.expression, exp.Create) and (
                    statement.expression.kind == "VIEW"):
                view = statement.expression.this.name
                self._query(f"create_view_{view}", statement.bigquery(tables), {}).result()

    def _add_new_columns(self, spec: TableSpec, table: Any) -> None:
        """Append the declared columns an older table lacks (`costflow.warehouse.migrate`)."""
        existing = [field.name for field in table.schema]
        table_id = self.table_id(spec.name)
        added = migrate.columns_to_add(spec, existing, table_id)
        if added:
            declared = {f.name: f for f in _schema(spec, relaxed=False)}
            table.schema = [*table.schema, *(declared[c.name] for c in added)]
            self.client.update_table(table, ["schema"])
            LOG.info("added column(s) %s to %s", [c.name for c in added], table_id)

    def begin_run(self, run: RunStart) -> None:
        """Record the run in load_runs with status 'running', owner and first heartbeat.

        Raises:
            ConfigError: a run with this id is in the ledger already; nothing was written.
        """
        params = slices.begin_params(run)
        (exists,) = sqlfiles.load("load/run_exists.sql")
        found = list(self._query(exists.name, exists.bigquery(self.tables()),
                                 {"run_id": run.run_id}).result())
        if found:
            raise slices.run_id_taken(run.run_id, dict(found[0].items()))
        self._run_file("load/begin_run.sql", params)

    def fail_run(self, run_id: str, error: str, report: dict[str, Any]) -> None:
        """Mark the run failed (a single DML statement: its own transaction)."""
        self._run_file("load/fail_run.sql", slices.fail_params(run_id, error, report))

    def commit_run(self, staged: StagedRun, expected: dict[SliceKey, SliceStats],
                   report: dict[str, Any]) -> list[SliceCheck]:
        """Stage with load jobs, reconcile, then replace the slices in one transaction script.

        Raises:
            ReconciliationError: a slice does not match ``expected``; nothing was committed.
            IngestFailed: any other error; BigQuery rolled the script back.
        """
        tables = self.tables(staged.run_id)
        with slices.failures_recorded(self.fail_run, staged.run_id, report,
                                      "BigQuery rolled it back"):
            self._stage(staged)
            (reconcile,) = sqlfiles.load("load/reconcile_slices.sql")
            job = self._query("reconcile_slices", reconcile.bigquery(tables),
                              {"run_id": staged.run_id})
            checks = slices.build_checks(expected, job.result())
            slices.verdict(staged.run_id, checks)
            script = sqlfiles.transaction_script("load/replace_slices.sql", tables)
            params = slices.replace_params(staged, expected, report)
            used = set().union(*(s.parameters for s in sqlfiles.load("load/replace_slices.sql")))
            self._query("replace_slices", script,
                        {k: v for k, v in params.items() if k in used}).result()
        for logical in slices.STAGING_TABLES.values():
            self.client.delete_table(self.table_id(staging_name(logical, staged.run_id)),
                                     not_found_ok=True)
        return checks

    def replace_recommendations(self, rows: pa.Table, provider: str,
                                sources: list[str] | None = None) -> int:
        """Load into a per-fetch staging table, then delete and insert in one script."""
        table, params = recommendations.replace_params(rows, provider, sources)
        if not params["sources"]:
            return 0
        staging = staging_name(recommendations.STAGING_NAME, params["run_id"])
        table_id = self.table_id(staging)
        self.client.delete_table(table_id, not_found_ok=True)
        self.client.create_table(self._table(RECOMMENDATIONS, table_id, staging=True))
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema=_schema(RECOMMENDATIONS, relaxed=True),
            decimal_target_types=["BIGNUMERIC"],
            labels={"costflow_statement": "stage_recommendations"},
        )
        self.client.load_table_from_file(buffer, table_id, job_config=config).result()
        tables = self.tables()
        tables[recommendations.STAGING_NAME] = sqlfiles.table(staging, self.dataset,
                                                             self.project)
        script = sqlfiles.transaction_script("load/replace_recommendations.sql", tables)
        try:
            self._query("replace_recommendations", script, params).result()
        finally:
            self.client.delete_table(table_id, not_found_ok=True)
        return table.num_rows

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run BigQuery SQL with named ``@params``; `cost_analytics.*` means this dataset."""
        tables = self.tables()
        text = ";\n".join(s.bigquery(tables) for s in sqlfiles.split(sql))
        return self._query("query", text, params or {}).to_arrow()

    def _stage(self, staged: StagedRun) -> None:
        """Load the staged Parquet files into fresh per-run staging tables."""
        for spec, files in ((COST_LINE_ITEMS, staged.row_files),
                            (DEAD_LETTERS, staged.dead_letter_files)):
            table_id = self.table_id(staging_name(slices.STAGING_TABLES[spec.name],
                                                  staged.run_id))
            self.client.delete_table(table_id, not_found_ok=True)
            self.client.create_table(self._table(spec, table_id, staging=True))
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                schema=_schema(spec, relaxed=True),
                decimal_target_types=["BIGNUMERIC"],
                labels={"costflow_statement": f"stage_{spec.name}"},
            )
            remote = [f for f in files if f.startswith("gs://")]
            unsupported = [f for f in files if "://" in f and not f.startswith("gs://")]
            if unsupported:
                raise ConfigError(f"BigQuery loads staged files from gs:// or local paths, not "
                                  f"{unsupported[0]}")
            if remote:
                self.client.load_table_from_uri(remote, table_id, job_config=config).result()
            for path in (f for f in files if "://" not in f):
                with open(path, "rb") as handle:
                    self.client.load_table_from_file(handle, table_id,
                                                     job_config=config).result()

    def _table(self, spec: TableSpec, table_id: str, *, staging: bool = False) -> Any:
        table = bigquery.Table(table_id, schema=_schema(spec, relaxed=staging))
        table.description = spec.description
        if staging:
            table.expires = datetime.now(UTC) + STAGING_TTL
            return table
        if spec.partition_by_day:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=spec.partition_by_day)
        if spec.cluster_by:
            table.clustering_fields = list(spec.cluster_by)
        return table

    def _run_file(self, relative: str, params: Mapping[str, Any]) -> None:
        tables = self.tables()
        for statement in sqlfiles.load(relative):
            used = {k: v for k, v in params.items() if k in statement.parameters}
            self._query(statement.name, statement.bigquery(tables), used).result()

    def _query(self, name: str, sql: str, params: Mapping[str, Any]) -> Any:
        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(params),
            labels={"costflow_statement": _label(name)},
        )
        return self.client.query(sql, job_config=config)


def staging_name(logical: str, run_id: str) -> str:
    """Per-run staging table: readable run id plus a hash, so distinct ids never collide."""
    readable = re.sub(r"[^A-Za-z0-9_]", "_", run_id)[:64]
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{logical}_{readable}_{digest}"


def _label(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "_", name.lower())[:63]


def _schema(spec: TableSpec, *, relaxed: bool) -> list[bigquery.SchemaField]:
    """The rendered schema; ``relaxed`` makes every field NULLABLE (staging: the target's
    REQUIRED columns still reject nulls when the staged rows are inserted)."""
    return [bigquery.SchemaField.from_api_repr({**field, "mode": "NULLABLE"} if relaxed
                                               else field)
            for field in bigquery_schema(spec)]


def query_parameters(params: Mapping[str, Any]) -> list[Any]:
    """Named BigQuery parameters for ``params`` (Decimal -> exact BIGNUMERIC text)."""
    out: list[Any] = []
    for name, value in params.items():
        if name in STRUCT_PARAMETERS:
            out.append(_struct_array(name, STRUCT_PARAMETERS[name], value))
        elif isinstance(value, list | tuple):
            kind = _scalar_type(next((v for v in value if v is not None), ""))
            out.append(bigquery.ArrayQueryParameter(name, kind, [_value(v) for v in value]))
        else:
            out.append(bigquery.ScalarQueryParameter(name, _scalar_type(value), _value(value)))
    return out


def _struct_array(name: str, types: dict[str, str], rows: list[dict[str, Any]]) -> Any:
    struct_type = bigquery.StructQueryParameterType(
        *(bigquery.ScalarQueryParameterType(t, name=f) for f, t in types.items()))
    values = [bigquery.StructQueryParameter(
        None, *(bigquery.ScalarQueryParameter(f, t, _value(row[f])) for f, t in types.items()))
        for row in rows]
    return bigquery.ArrayQueryParameter(name, struct_type, values)


def _scalar_type(value: Any) -> str:
    if value is None:
        return "STRING"
    for python_type, bigquery_type in SCALAR_TYPES:
        if isinstance(value, python_type):
            return bigquery_type
    raise TypeError(f"no BigQuery parameter type for {type(value).__name__}")


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # plain digits: never exponent notation, never float
    if isinstance(value, datetime):
        return slices.utc(value)
    return value
