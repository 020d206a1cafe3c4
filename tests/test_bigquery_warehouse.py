"""The BigQuery warehouse, against a fake client that records every request.

No BigQuery emulator works offline, so the fake stands in for `google.cloud.bigquery.Client`:
it records load jobs, tables and queries with their parameters, answers the reconciliation
query with canned rows, and refuses any SQL text sqlglot cannot parse as BigQuery. The same SQL
statements run for real on DuckDB in test_duckdb_warehouse.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from google.cloud import bigquery
from sqlglot import exp

from costflow.errors import ConfigError, IngestFailed, ReconciliationError
from costflow.reconcile import SliceKey
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.render import ALL_TABLES, bigquery_schema
from costflow.services.costs import costs_by_dimension
from costflow.services.focus_export import export_focus
from costflow.warehouse.base import StagedRun
from costflow.warehouse.bigquery_engine import BigQueryWarehouse, query_parameters, staging_name
from tests.warehouse_rows import ACCOUNT, DEC, NOV, SOURCE, cost_row, expected_for, run_start, stage

PROJECT, DATASET = "acme-finops-prod", "billing"


@dataclass
class FakeJob:
    rows: list[dict[str, Any]] = field(default_factory=list)
    table: pa.Table | None = None
    error: Exception | None = None

    def result(self) -> list[dict[str, Any]]:
        if self.error:
            raise self.error
        return self.rows

    def to_arrow(self) -> pa.Table:
        return self.table if self.table is not None else pa.table({})


class FakeBigQueryClient:
    """Records requests; answers queries by their `costflow_statement` job label."""

    def __init__(self, answers: dict[str, FakeJob] | None = None,
                 existing: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.existing = existing or {}  # table id -> bigquery.Table already in the dataset
        self.requests: list[tuple[str, Any]] = []

    def create_dataset(self, dataset: Any, exists_ok: bool = False) -> None:
        self.requests.append(("create_dataset", dataset.dataset_id))

    def create_table(self, table: Any, exists_ok: bool = False) -> Any:
        """Like the real client: with exists_ok, an existing table is returned as it is."""
        self.requests.append(("create_table", table))
        found = self.existing.get(f"{table.project}.{table.dataset_id}.{table.table_id}")
        return found if found is not None and exists_ok else table

    def update_table(self, table: Any, fields: list[str]) -> Any:
        self.requests.append(("update_table", (table, list(fields))))
        return table

    def delete_table(self, table: str, not_found_ok: bool = False) -> None:
        self.requests.append(("delete_table", table))

    def load_table_from_uri(self, uris: list[str], destination: str,
                            job_config: Any = None) -> FakeJob:
        self.requests.append(("load_uri", (list(uris), destination, job_config)))
        return FakeJob()

    def load_table_from_file(self, handle: Any, destination: str,
                             job_config: Any = None) -> FakeJob:
        table = pq.read_table(io.BytesIO(handle.read()))
        self.requests.append(("load_file", (table, destination, job_config)))
        return FakeJob()

    def query(self, sql: str, job_config: Any = None) -> FakeJob:
        statements = sqlglot.parse(sql, read="bigquery")  # raises on SQL BigQuery would reject
        assert not [n for s in statements for n in s.walk() if isinstance(n, exp.Command)]
        bound = {p.name: p.to_api_repr() for p in job_config.query_parameters}
        used = {p.name for s in statements for p in s.find_all(exp.Parameter)}
        assert used == set(bound), f"parameters used {used} != bound {set(bound)}"
        label = job_config.labels["costflow_statement"]
        self.requests.append(("query", (label, sql, bound)))
        return self.answers.get(label, FakeJob())

    def of(self, kind: str) -> list[Any]:
        return [detail for k, detail in self.requests if k == kind]

    def query_labelled(self, label: str) -> tuple[str, dict[str, Any]]:
        (found,) = [(sql, bound) for name, sql, bound in self.of("query") if name == label]
        return found


def warehouse(client: FakeBigQueryClient) -> BigQueryWarehouse:
    return BigQueryWarehouse(PROJECT, DATASET, client_factory=lambda project, location: client)


def reconciled(expected: dict) -> FakeJob:
    """What BigQuery would answer to the reconciliation query for these staged slices."""
    return FakeJob(rows=[{"x_SourceProvider": k.provider, "BillingAccountId": k.billing_account_id,
                          "BillingPeriodStart": k.billing_period_start,
                          "rows_loaded": v.rows_loaded, "billed_cost": v.billed_cost,
                          "rows_dead_lettered": v.rows_dead_lettered,
                          "dead_lettered_cost": v.dead_lettered_cost}
                         for k, v in expected.items()])


ROWS = [cost_row("0.0000000497", row_number=1), cost_row("1.25", row_number=2),
        cost_row("3.10", period=DEC, row_number=3)]


def test_the_client_is_built_on_first_use_only() -> None:
    built: list[str] = []
    wh = BigQueryWarehouse(PROJECT, DATASET,
                           client_factory=lambda p, loc: built.append(p) or FakeBigQueryClient())
    assert built == []
    wh.query("SELECT 1 AS one")
    wh.query("SELECT 2 AS two")
    assert built == [PROJECT]


def test_ensure_schema_creates_partitioned_clustered_tables_and_the_views() -> None:
    client = FakeBigQueryClient()
    warehouse(client).ensure_schema()

    assert client.of("create_dataset") == [DATASET]
    tables = {t.table_id: t for t in client.of("create_table")}
    assert set(tables) == {t.name for t in ALL_TABLES}
    assert {"cost_line_items", "dead_letters", "load_runs", "load_slices"} <= set(tables)
    cli = tables["cost_line_items"]
    assert cli.project == PROJECT and cli.dataset_id == DATASET
    assert [f.to_api_repr() for f in cli.schema] == [
        bigquery.SchemaField.from_api_repr(f).to_api_repr()
        for f in bigquery_schema(COST_LINE_ITEMS)]
    assert cli.schema[1].field_type == "BIGNUMERIC" and cli.schema[1].mode == "REQUIRED"
    assert (cli.time_partitioning.type_, cli.time_partitioning.field) == ("DAY",
                                                                         "ChargePeriodStart")
    assert cli.clustering_fields == ["x_SourceProvider", "BillingAccountId"]
    assert tables["dead_letters"].time_partitioning.field == "x_IngestedAt"
    assert tables["load_runs"].time_partitioning is None
    views = {label: sql for label, sql, _ in client.of("query")}
    assert set(views) == {"create_view_focus_v1_2", "create_view_focus_v1_3"}
    view = sqlglot.parse_one(views["create_view_focus_v1_2"], read="bigquery")
    assert view.this.sql("bigquery") == f"`{PROJECT}`.`{DATASET}`.`focus_v1_2`"
    assert len(view.expression.expressions) == 57
    assert [t.sql("bigquery") for t in view.expression.find_all(exp.Table)] == [
        f"`{PROJECT}`.`{DATASET}`.`cost_line_items` AS c",
        f"`{PROJECT}`.`{DATASET}`.`account_names`"]


def _older_table(spec, drop_last: int) -> bigquery.Table:
    """The table as an earlier costflow created it: the declaration minus its last columns."""
    fields = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_schema(spec)]
    return bigquery.Table(f"{PROJECT}.{DATASET}.{spec.name}", schema=fields[:-drop_last])


def test_ensure_schema_appends_the_columns_an_older_table_lacks() -> None:
    older = _older_table(COST_LINE_ITEMS, drop_last=3)
    client = FakeBigQueryClient(existing={f"{PROJECT}.{DATASET}.cost_line_items": older})
    warehouse(client).ensure_schema()

    ((table, fields),) = client.of("update_table")
    assert fields == ["schema"] and table.table_id == "cost_line_items"
    assert [f.name for f in table.schema] == list(COST_LINE_ITEMS.names)
    assert [(f.name, f.field_type, f.mode) for f in table.schema[-3:]] == [
        ("x_ConsumedUnitDescription", "STRING", "NULLABLE"),
        ("x_PricingToBillingRate", "BIGNUMERIC", "NULLABLE"),
        ("x_ProviderColumns", "JSON", "NULLABLE")]


def test_ensure_schema_refuses_a_table_it_cannot_upgrade_in_place() -> None:
    fields = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_schema(COST_LINE_ITEMS)]
    renamed = bigquery.Table(f"{PROJECT}.{DATASET}.cost_line_items",
                             schema=[bigquery.SchemaField("Cost", "BIGNUMERIC"), *fields[1:]])
    client = FakeBigQueryClient(existing={f"{PROJECT}.{DATASET}.cost_line_items": renamed})
    with pytest.raises(ConfigError, match=r"cost_line_items in acme-finops-prod\.billing\."
                                          r"cost_line_items .*not declared \['Cost'\]"):
        warehouse(client).ensure_schema()
    assert client.of("update_table") == []


def test_commit_loads_reconciles_and_replaces_in_one_transaction(tmp_path: Path) -> None:
    expected = expected_for(ROWS)
    client = FakeBigQueryClient({"reconcile_slices": reconciled(expected)})
    staged = stage(tmp_path, "run-20231203T0600", ROWS)

    checks = warehouse(client).commit_run(staged, expected, {"files": 1})

    assert [(c.key.billing_period_start, c.ok) for c in checks] == [(NOV, True), (DEC, True)]
    rows_table = f"{PROJECT}.{DATASET}." + staging_name("_staged_cost_line_items", staged.run_id)
    loads = {dest: (table, config) for table, dest, config in client.of("load_file")}
    table, config = loads[rows_table]
    assert table.num_rows == 3 and table.column("BilledCost").to_pylist()[0] == Decimal(
        "0.0000000497")
    assert config.source_format == "PARQUET" and set(config.decimal_target_types) == {"BIGNUMERIC"}
    assert config.write_disposition == "WRITE_APPEND"
    staging = [t for t in client.of("create_table")]
    assert {t.table_id for t in staging} == {
        staging_name("_staged_cost_line_items", staged.run_id),
        staging_name("_staged_dead_letters", staged.run_id)}
    assert all(t.expires is not None for t in staging)

    sql, bound = client.query_labelled("reconcile_slices")
    assert f"`{rows_table.replace('.', '`.`')}`" in sql
    assert bound == {"run_id": {"name": "run_id", "parameterType": {"type": "STRING"},
                                "parameterValue": {"value": "run-20231203T0600"}}}

    script, bound = client.query_labelled("replace_slices")
    statements = sqlglot.parse(script, read="bigquery")
    assert isinstance(statements[0], exp.Transaction) and isinstance(statements[-1], exp.Commit)
    assert [type(s).__name__ for s in statements[1:-1]] == [
        "Delete", "Insert", "Delete", "Insert", "Delete", "Insert", "Delete", "Delete", "Update"]
    assert "cost_analytics" not in script
    slices = bound["slices"]["parameterValue"]["arrayValues"]
    assert [s["structValues"]["BillingPeriodStart"]["value"] for s in slices] == [
        "2023-11-01 00:00:00+00:00", "2023-12-01 00:00:00+00:00"]
    assert slices[0]["structValues"]["loaded_billed_cost"] == {"value": "1.2500000497"}
    struct_types = {t["name"]: t["type"]["type"]
                    for t in bound["slices"]["parameterType"]["arrayType"]["structTypes"]}
    assert struct_types["source_basis"] == "BIGNUMERIC" and struct_types["rows_read"] == "INT64"
    assert bound["billed_cost_total"]["parameterValue"] == {"value": "4.3500000497"}
    assert bound["source_uris"]["parameterValue"] == {"arrayValues": [{"value": SOURCE}]}
    assert set(client.of("delete_table")[-2:]) == {
        f"{PROJECT}.{DATASET}.{t.table_id}" for t in staging}


def test_gs_files_are_loaded_by_uri_in_one_job(tmp_path: Path) -> None:
    expected = expected_for(ROWS)
    client = FakeBigQueryClient({"reconcile_slices": reconciled(expected)})
    uris = ["gs://acme-costflow/runs/r1/rows-00000.parquet",
            "gs://acme-costflow/runs/r1/rows-00001.parquet"]
    warehouse(client).commit_run(StagedRun("r1", row_files=uris), expected, {})
    ((loaded, destination, config),) = client.of("load_uri")
    assert loaded == uris and destination.endswith(staging_name("_staged_cost_line_items", "r1"))
    assert client.of("load_file") == []


def test_a_mismatch_raises_names_the_slice_and_sends_no_replace_script(tmp_path: Path) -> None:
    expected = expected_for(ROWS)
    answer = reconciled(expected)
    answer.rows[0]["billed_cost"] = Decimal("1.2500000496")  # BigQuery holds a hair less
    client = FakeBigQueryClient({"reconcile_slices": answer})

    with pytest.raises(ReconciliationError, match=r"slice aws/123412340534/2023-11: .*"
                                                   r"difference 1E-10"):
        warehouse(client).commit_run(stage(tmp_path, "r2", ROWS), expected, {"k": "v"})

    labels = [label for label, _, _ in client.of("query")]
    assert labels == ["reconcile_slices", "fail_run"]
    _, bound = client.query_labelled("fail_run")
    assert bound["status"]["parameterValue"] == {"value": "failed"}
    assert "aws/123412340534/2023-11" in bound["error"]["parameterValue"]["value"]
    assert "2023-12" not in bound["error"]["parameterValue"]["value"]


def test_a_failing_script_is_reported_as_a_rolled_back_run(tmp_path: Path) -> None:
    expected = expected_for(ROWS)
    client = FakeBigQueryClient({"reconcile_slices": reconciled(expected),
                                 "replace_slices": FakeJob(error=RuntimeError("quota"))})
    with pytest.raises(IngestFailed, match="rolled it back.*quota"):
        warehouse(client).commit_run(stage(tmp_path, "r3", ROWS), expected, {})
    _, bound = client.query_labelled("fail_run")
    assert "quota" in bound["error"]["parameterValue"]["value"]


def test_begin_run_binds_typed_parameters() -> None:
    client = FakeBigQueryClient()
    warehouse(client).begin_run(run_start("r4"))
    sql, bound = client.query_labelled("begin_run")
    assert f"`{PROJECT}`.`{DATASET}`.`load_runs`" in sql
    assert bound["started_at"]["parameterType"] == {"type": "TIMESTAMP"}
    assert bound["provider"]["parameterValue"] == {"value": "aws"}


def test_costs_query_is_sent_with_date_and_array_parameters() -> None:
    answer = pa.table({"service": ["Amazon Elastic Compute Cloud"], "BillingCurrency": ["USD"],
                       "cost": pa.array([Decimal("1.25")], pa.decimal256(76, 38)),
                       "rows": [2]})
    client = FakeBigQueryClient({"query": FakeJob(table=answer)})
    table = costs_by_dimension(warehouse(client), date(2023, 11, 1), date(2023, 12, 1),
                               ["service"], filters={"region": ["' OR 1=1 --"]})
    assert table is answer
    sql, bound = client.query_labelled("query")
    assert f"`{PROJECT}`.`{DATASET}`.`cost_line_items`" in sql
    assert bound["start"]["parameterType"] == {"type": "DATE"}
    assert bound["filter_0"]["parameterValue"] == {"arrayValues": [{"value": "' OR 1=1 --"}]}
    assert "OR 1=1" not in sql


def test_export_on_bigquery_goes_through_arrow(tmp_path: Path) -> None:
    answer = pa.table({"BilledCost": pa.array([Decimal("0.0000000497")], pa.decimal128(38, 18))})
    client = FakeBigQueryClient({"query": FakeJob(table=answer)})
    out = tmp_path / "export" / "focus.parquet"
    assert export_focus(warehouse(client), out, version="1.3") == 1
    assert pq.read_table(out).equals(answer)
    sql, _ = client.query_labelled("query")
    # The view's columns by name, JSON ones serialized as JSON text (costflow.services.
    # focus_export: FOCUS Parquet carries JSON as UTF-8 strings).
    assert sql.startswith("SELECT `AvailabilityZone`, `BilledCost`, ")
    assert "TO_JSON_STRING(`Tags`) AS `Tags`" in sql
    assert sql.endswith(f" FROM `{PROJECT}`.`{DATASET}`.`focus_v1_3`")


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.0000000497"), {"type": "BIGNUMERIC", "value": "0.0000000497"}),
    (Decimal("12345678901234567890.000000000000000001"),
     {"type": "BIGNUMERIC", "value": "12345678901234567890.000000000000000001"}),
    (3, {"type": "INT64", "value": "3"}),
    (True, {"type": "BOOL", "value": "true"}),
    (date(2023, 11, 1), {"type": "DATE", "value": "2023-11-01"}),
    (NOV, {"type": "TIMESTAMP", "value": "2023-11-01 00:00:00+00:00"}),
    (None, {"type": "STRING", "value": None}),
])
def test_scalar_parameters_are_typed_and_decimals_stay_exact(value: Any, expected: dict) -> None:
    (param,) = query_parameters({"p": value})
    api = param.to_api_repr()
    assert {"type": api["parameterType"]["type"],
            "value": api["parameterValue"]["value"] if api.get("parameterValue") else None
            } == expected


def test_an_empty_slice_list_is_still_a_typed_struct_array() -> None:
    (param,) = query_parameters({"slices": []})
    api = param.to_api_repr()
    assert api["parameterType"]["arrayType"]["type"] == "STRUCT"
    assert api["parameterValue"] == {"arrayValues": []}


def test_staging_names_are_valid_and_distinct_for_similar_run_ids() -> None:
    a, b = staging_name("_staged_dead_letters", "a-b"), staging_name("_staged_dead_letters", "a_b")
    assert a != b and a.startswith("_staged_dead_letters_a_b_")
    assert all(ch.isalnum() or ch == "_" for ch in a + b)
    assert SliceKey("aws", ACCOUNT, NOV).attributable


def test_begin_run_refuses_a_run_id_the_ledger_has_and_writes_nothing() -> None:
    client = FakeBigQueryClient({"run_exists": FakeJob(rows=[
        {"run_id": "r4", "status": "failed", "started_at": NOV, "error": "x"}])})
    with pytest.raises(ConfigError, match=r"run id 'r4' is already in the ledger \(a failed "
                                          r"run, started 2023-11-01 00:00:00 UTC\)"):
        warehouse(client).begin_run(run_start("r4"))
    sql, bound = client.query_labelled("run_exists")
    assert f"`{PROJECT}`.`{DATASET}`.`load_runs`" in sql
    assert bound["run_id"]["parameterValue"] == {"value": "r4"}
    assert [label for label, _, _ in client.of("query")] == ["run_exists"]


def test_begin_run_records_its_owner() -> None:
    import os
    import socket

    client = FakeBigQueryClient()
    warehouse(client).begin_run(run_start("r5"))
    assert [label for label, _, _ in client.of("query")] == ["run_exists", "begin_run"]
    _, bound = client.query_labelled("begin_run")
    assert bound["owner_pid"]["parameterType"] == {"type": "INT64"}
    assert bound["owner_pid"]["parameterValue"] == {"value": str(os.getpid())}
    assert bound["owner_host"]["parameterValue"] == {"value": socket.gethostname()}
