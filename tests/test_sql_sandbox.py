"""run_query against a real DuckDB warehouse holding two tenants' rows and a ledger.

Tenant A is AWS billing account 111111111111; tenant B is the GCP billing account (and the
Azure rows belong to neither). Every row outside tenant A, and the ledger row, carries a
marker string. The escape corpus throws comments, CTE shadowing, subqueries on other tables,
UNION, quoted and unicode identifiers, stacked statements, DuckDB table functions,
information_schema and duckdb_* functions at tenant A's sandbox: each must be refused, or
answer without a single marker and only with tenant A's accounts. Ordinary analysis queries
are compared with direct warehouse queries written with the tenant condition by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from costflow.errors import ConfigError
from costflow.schemas.operational import LOAD_RUNS
from costflow.services.sql_sandbox import QueryRefused, run_query, scoped_query
from costflow.services.tenancy import Tenant
from costflow.text import exact
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import AWS_ACCT, AWS_SUB, GCP_BILLING, ROWS, build, insert

MARK = "ZZLEAK"  # on every row tenant A may not read
TENANT_A = Tenant.of("a", billing_accounts=[AWS_ACCT])
TENANT_B = Tenant.of("b", billing_accounts=[GCP_BILLING])
A_ACCOUNTS = {AWS_ACCT, AWS_SUB}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    path: Path = tmp_path_factory.mktemp("sandbox") / "w.duckdb"
    wh = build(path)
    with wh.connection() as con:  # mark every row tenant A may not see
        con.execute(f"UPDATE cost_analytics.cost_line_items SET ResourceName = '{MARK}-' || "
                    f"x_SourceProvider WHERE BillingAccountId <> '{AWS_ACCT}'")
    insert(wh, [{n: None for n in LOAD_RUNS.names} | {
        "run_id": f"{MARK}-run", "status": "failed", "sources": "[]",
        "started_at": datetime(2026, 11, 2, tzinfo=UTC), "error": f"{MARK} ledger"}], LOAD_RUNS)
    return wh


def leaks(result: Any) -> list[str]:
    """What in an answer tenant A may not see: a marker, or an account not its own."""
    text = json.dumps(result.rows)
    found = [MARK] if MARK in text else []
    for row in result.rows:
        for key in ("BillingAccountId", "SubAccountId"):
            if row.get(key) is not None and row[key] not in A_ACCOUNTS:
                found.append(f"{key}={row[key]}")
    return found


ESCAPES: list[str] = [
    # stacked statements and comments
    "SELECT * FROM focus; SELECT * FROM cost_analytics.cost_line_items",
    "SELECT * FROM focus; DROP TABLE cost_analytics.load_runs",
    "SELECT * FROM focus -- \n; SELECT * FROM load_runs",
    "SELECT * FROM /* focus */ cost_analytics.cost_line_items",
    "SELECT * FROM focus /*; SELECT 1 */ WHERE TRUE OR 1=1",
    "SELECT ResourceName FROM focus WHERE 1=1 --' OR BillingAccountId <> ''",
    # other tables, schemas, catalog
    "SELECT * FROM cost_line_items",
    "SELECT * FROM cost_analytics.cost_line_items",
    "SELECT * FROM cost_analytics.focus_v1_3",
    "SELECT * FROM load_runs",
    "SELECT * FROM cost_analytics.load_runs",
    "SELECT * FROM memory.cost_analytics.load_runs",
    "SELECT * FROM main.focus",
    "SELECT * FROM cost_analytics.focus",
    "SELECT * FROM focus WHERE BillingAccountId IN (SELECT BillingAccountId FROM "
    "cost_analytics.cost_line_items)",
    "SELECT (SELECT MAX(error) FROM cost_analytics.load_runs) AS e FROM focus",
    "SELECT * FROM focus JOIN cost_analytics.cost_line_items c USING (BillingAccountId)",
    "SELECT * FROM focus WHERE EXISTS (SELECT 1 FROM load_runs)",
    "SELECT ResourceName FROM focus UNION ALL SELECT ResourceName FROM "
    "cost_analytics.cost_line_items",
    "SELECT ResourceName FROM focus UNION ALL SELECT run_id FROM cost_analytics.load_runs",
    "SELECT ResourceName FROM focus UNION DISTINCT SELECT error FROM load_runs",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM focus, information_schema.tables",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM sqlite_master",
    # CTE shadowing of focus and CTEs over other tables
    "WITH focus AS (SELECT * FROM cost_analytics.cost_line_items) SELECT * FROM focus",
    "WITH FOCUS AS (SELECT 1 AS x) SELECT * FROM focus",
    "WITH `focus` AS (SELECT * FROM load_runs) SELECT * FROM focus",
    "WITH x AS (SELECT * FROM cost_analytics.cost_line_items) SELECT * FROM x",
    "WITH cost_line_items AS (SELECT * FROM focus) SELECT * FROM cost_analytics.cost_line_items",
    "WITH load_runs AS (SELECT * FROM focus) SELECT ResourceName, BillingAccountId FROM "
    "load_runs",
    "SELECT * FROM (WITH load_runs AS (SELECT * FROM focus) SELECT * FROM load_runs) a "
    "JOIN load_runs b ON TRUE",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
    # quoted and unicode identifiers
    "SELECT * FROM `cost_analytics.cost_line_items`",
    "SELECT * FROM `cost_analytics`.`load_runs`",
    "SELECT * FROM `focus`",
    "SELECT * FROM f\u043ecus",              # Cyrillic o
    "SELECT * FROM ｆｏｃｕｓ",                 # fullwidth
    "SELECT * FROM focus\u200b",              # zero-width space
    "SELECT * FROM \"focus\"",
    "SELECT * FROM `/etc/passwd`",
    "SELECT * FROM 'cost_line_items'",
    "SELECT * FROM `x.csv`",
    # DuckDB table functions, files, network, extensions, settings
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "SELECT * FROM read_json('/etc/hosts')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_settings()",
    "SELECT duckdb_tables() FROM focus",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM range(10)",
    "SELECT * FROM generate_series(1, 10)",
    "SELECT * FROM 'https://example.com/x.parquet'",
    "SELECT getenv('HOME') FROM focus",
    "SELECT current_setting('memory_limit') FROM focus",
    "SELECT version() FROM focus",
    "SELECT * FROM focus WHERE ResourceName = (SELECT content FROM read_text('/etc/passwd'))",
    "SELECT * FROM query_table('cost_analytics.load_runs')",
    "SELECT * FROM query('SELECT * FROM cost_analytics.load_runs')",
    "ATTACH '/tmp/other.duckdb' AS other",
    "COPY (SELECT * FROM focus) TO '/tmp/out.csv'",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CALL duckdb_tables()",
    "DESCRIBE cost_analytics.load_runs",
    "SHOW TABLES",
    "EXPORT DATABASE '/tmp/x'",
    "CREATE TABLE t AS SELECT * FROM focus",
    "INSERT INTO cost_analytics.load_runs SELECT * FROM cost_analytics.load_runs",
    "DELETE FROM cost_analytics.cost_line_items",
    "UPDATE focus SET BilledCost = 0",
    # parameters: the tenant's own parameters may not be reused or overridden
    "SELECT * FROM focus WHERE @tenant_all",
    "SELECT * FROM focus WHERE $tenant_all",
    "SELECT ResourceName, $1 FROM focus",
    "SELECT * FROM focus WHERE ? = 1",
    # time travel, sampling, pivots, lateral
    "SELECT * FROM focus FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01'",
    "SELECT * FROM focus TABLESAMPLE SYSTEM (10 PERCENT)",
    "SELECT * FROM focus, UNNEST([1, 2]) AS n",
    # tautologies stay inside the tenant's rows
    "SELECT ResourceName, BillingAccountId, SubAccountId FROM focus WHERE TRUE OR 1 = 1",
    "SELECT ResourceName, BillingAccountId FROM focus f WHERE f.BillingAccountId <> 'x' OR "
    "BillingAccountId IS NULL",
    "SELECT BillingAccountId, ResourceName FROM focus UNION ALL SELECT BillingAccountId, "
    "ResourceName FROM focus",
    "SELECT * FROM focus a JOIN focus b ON TRUE",
    "SELECT DISTINCT SubAccountId, BillingAccountId FROM focus",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_no_escape_reads_outside_the_tenant(warehouse: DuckDBWarehouse, sql: str) -> None:
    try:
        result = run_query(warehouse, TENANT_A, sql, max_rows=500)
    except QueryRefused:
        return
    except ConfigError as err:  # the engine refused what got through: fine, nothing was read
        assert MARK not in str(err)
        return
    assert leaks(result) == [], (sql, result.rows)


def test_the_rewritten_sql_has_no_table_but_the_scoped_one() -> None:
    """Whatever is accepted becomes SQL whose only real table is cost_line_items, reached
    through the scope condition."""
    accepted = 0
    for sql in ESCAPES:
        try:
            query, params = scoped_query(sql, TENANT_A)
        except (QueryRefused, ConfigError):
            continue
        accepted += 1
        tables = [t for t in query.find_all(exp.Table) if not t.name.startswith("_q_cte_")]
        assert tables and {(t.db, t.name) for t in tables} == {
            ("cost_analytics", "cost_line_items")}, sql
        for table in tables:
            where = table.find_ancestor(exp.Select).args["where"].sql("bigquery")
            assert "@tenant_billing_accounts" in where and "@provider" in where, sql
        assert params["tenant_billing_accounts"] == [AWS_ACCT]
    assert accepted >= 6  # the neutralized ones above, not only refusals


def test_refusals_say_what_is_allowed(warehouse: DuckDBWarehouse) -> None:
    for sql, words in [
        ("SELECT * FROM focus; SELECT 1", "exactly one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "function READ_CSV() is not allowed"),
        ("SELECT * FROM `x.csv`", "not a relation run_query reads"),
        ("SELECT getenv('HOME') FROM focus", "function getenv() is not allowed"),
        ("SELECT * FROM load_runs", "the only table is `focus`"),
        ("WITH focus AS (SELECT 1 AS x) SELECT * FROM focus", "may not be called `focus`"),
        ("PRAGMA database_list", "only a SELECT is accepted"),
        ("SELECT * FROM focus WHERE @tenant_all", "parameters are not allowed"),
        ("SELEC * FROM focus", "parse"),
    ]:
        with pytest.raises(QueryRefused) as err:
            run_query(warehouse, TENANT_A, sql)
        assert words in str(err.value), (sql, str(err.value))


def direct(warehouse: DuckDBWarehouse, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = warehouse.query(sql).to_pylist()
    return rows


def test_analysis_queries_match_the_warehouse(warehouse: DuckDBWarehouse) -> None:
    by_service = run_query(warehouse, TENANT_A, """
        -- what each service cost in November
        SELECT ServiceName, BillingCurrency, SUM(BilledCost) AS cost, COUNT(*) AS n
        FROM focus
        WHERE ChargePeriodStart >= TIMESTAMP('2026-11-01')
          AND ChargePeriodStart < TIMESTAMP('2026-12-01')
        GROUP BY ServiceName, BillingCurrency ORDER BY cost DESC""")
    expected = direct(warehouse, f"""
        SELECT ServiceName, BillingCurrency, SUM(BilledCost) AS cost, COUNT(*) AS n
        FROM cost_analytics.cost_line_items
        WHERE BillingAccountId = '{AWS_ACCT}'
          AND ChargePeriodStart >= TIMESTAMP('2026-11-01')
          AND ChargePeriodStart < TIMESTAMP('2026-12-01')
        GROUP BY ServiceName, BillingCurrency ORDER BY cost DESC""")
    assert by_service.rows == [{**r, "cost": exact(r["cost"])} for r in expected]
    assert [r["cost"] for r in by_service.rows] == ["10", "2.5"]  # by hand: query_fixture
    assert by_service.columns == ["ServiceName", "BillingCurrency", "cost", "n"]

    monthly = run_query(warehouse, TENANT_B, """
        WITH tagged AS (
          SELECT DATE_TRUNC(DATE(ChargePeriodStart), MONTH) AS month,
                 JSON_VALUE(Tags, '$.team') AS team, BilledCost
          FROM focus)
        SELECT month, COALESCE(team, '(none)') AS team, SUM(BilledCost) AS cost
        FROM tagged GROUP BY month, team ORDER BY cost DESC""")
    assert monthly.rows == [{"month": "2026-11-01", "team": "web", "cost": "4.25"},
                            {"month": "2026-11-01", "team": "(none)", "cost": "1.75"}]

    ranked = run_query(warehouse, Tenant.unrestricted_owner(), """
        SELECT x_SourceProvider AS provider, BillingCurrency, SUM(EffectiveCost) AS cost,
               RANK() OVER (PARTITION BY BillingCurrency ORDER BY SUM(EffectiveCost) DESC) AS r
        FROM focus WHERE ChargePeriodStart < TIMESTAMP('2026-12-01')
        GROUP BY 1, 2 ORDER BY BillingCurrency, r""")
    totals: dict[tuple[str, str], Decimal] = {}
    for row in ROWS:
        if row["ChargePeriodStart"] < datetime(2026, 12, 1, tzinfo=UTC):
            key = (row["x_SourceProvider"], row["BillingCurrency"])
            totals[key] = totals.get(key, Decimal(0)) + row["EffectiveCost"]
    assert {(r["provider"], r["BillingCurrency"]): Decimal(r["cost"]) for r in ranked.rows} \
        == totals
    assert [r["r"] for r in ranked.rows] == [1, 1, 2]

    days = run_query(warehouse, TENANT_A, """
        SELECT EXTRACT(DAY FROM ChargePeriodStart) AS d,
               DATE_DIFF(DATE_ADD(DATE(ChargePeriodStart), INTERVAL 2 DAY),
                         DATE(ChargePeriodStart), DAY) AS two
        FROM focus WHERE ChargePeriodStart < TIMESTAMP('2026-12-01') ORDER BY d""")
    assert [(r["d"], r["two"]) for r in days.rows] == sorted(
        (r["ChargePeriodStart"].day, 2) for r in ROWS if r["BillingAccountId"] == AWS_ACCT
        and r["ChargePeriodStart"] < datetime(2026, 12, 1, tzinfo=UTC))

    only_gcp = run_query(warehouse, Tenant.unrestricted_owner(),
                         "SELECT DISTINCT x_SourceProvider FROM focus", provider="gcp")
    assert only_gcp.rows == [{"x_SourceProvider": "gcp"}]


def test_row_and_time_limits(warehouse: DuckDBWarehouse) -> None:
    cut = run_query(warehouse, Tenant.unrestricted_owner(),
                    "SELECT ResourceId FROM focus ORDER BY ResourceId", max_rows=2)
    assert len(cut.rows) == 2 and cut.truncated and cut.row_limit == 2
    own = run_query(warehouse, Tenant.unrestricted_owner(),
                    "SELECT ResourceId FROM focus ORDER BY ResourceId LIMIT 1", max_rows=2)
    assert len(own.rows) == 1 and not own.truncated
    with pytest.raises(ConfigError, match="max_rows"):
        run_query(warehouse, TENANT_A, "SELECT 1 AS x FROM focus", max_rows=0)
    slow = ("SELECT COUNT(*) AS n FROM focus a, focus b, focus c, focus d, focus e, focus f, "
            "focus g, focus h, focus i, focus j, focus k, focus l, focus m")
    with pytest.raises(ConfigError, match="longer than 0.3 s"):
        run_query(warehouse, Tenant.unrestricted_owner(), slow, timeout=0.3)
    # the connection is usable afterwards
    assert run_query(warehouse, TENANT_A, "SELECT COUNT(*) AS n FROM focus").rows == [{"n": 4}]


class _Job:
    def __init__(self, table: pa.Table) -> None:
        self.table, self.asked = table, {}

    def result(self, **asked: Any) -> _Job:
        self.asked = asked
        return self

    def to_arrow(self) -> pa.Table:
        return self.table


class _Client:
    """Stands in for google.cloud.bigquery.Client: records the job it is given."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, Any, _Job]] = []

    def query(self, sql: str, job_config: Any = None) -> _Job:
        job = _Job(pa.table({"n": [3]}))
        self.jobs.append((sql, job_config, job))
        return job


def test_bigquery_jobs_carry_the_scope_and_the_limits() -> None:
    from costflow.warehouse.bigquery_engine import BigQueryWarehouse

    client = _Client()
    wh = BigQueryWarehouse("acme-finops", "billing", client_factory=lambda p, loc: client)
    result = run_query(wh, TENANT_A, "SELECT COUNT(*) AS n FROM focus", timeout=7,
                       max_bytes_billed=10**9, max_rows=50)
    assert result.rows == [{"n": 3}]
    ((sql, config, job),) = client.jobs
    assert config.maximum_bytes_billed == 10**9 and int(config.job_timeout_ms) == 7000
    assert job.asked == {"timeout": 7, "max_results": 51}
    bound = {p.name: p.to_api_repr() for p in config.query_parameters}
    assert bound["tenant_billing_accounts"]["parameterValue"]["arrayValues"] == [
        {"value": AWS_ACCT}]
    (table,) = sqlglot.parse_one(sql, read="bigquery").find_all(exp.Table)
    assert (table.catalog, table.db, table.name) == ("acme-finops", "billing", "cost_line_items")
    assert sql.endswith("LIMIT 51")
