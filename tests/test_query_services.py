"""CloudCostProvider over the warehouse: hand-computed totals, tenant isolation, injection.

DuckDB runs for real on the fixture warehouse of tests.query_fixture; the BigQuery engine gets
the very same requests through the recording fake client of test_bigquery_warehouse, which here
also answers them by running the BigQuery SQL it received, with the BigQuery-typed parameters it
received, against the same DuckDB data, so both engines must give the same answers.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costflow.errors import ConfigError
from costflow.providers import NAMES
from costflow.services import InfrastructureModule, MixedCurrencyError, Tenant
from costflow.services.costs import DIMENSIONS, FILTER_ONLY, build_query
from costflow.services.tenancy import row_access_policy_ddl
from costflow.warehouse import sqlfiles
from costflow.warehouse.bigquery_engine import BigQueryWarehouse
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.query_fixture import (
    AWS_ACCT,
    AWS_SUB,
    AZ_BILLING,
    DEC_D,
    GCP_BILLING,
    NOV,
    NOV_D,
    ROWS,
    build,
    insert,
)
from tests.test_bigquery_warehouse import FakeBigQueryClient, FakeJob
from tests.warehouse_rows import EC2, S3, cost_row

OWNER = Tenant.unrestricted_owner()
USD = {"currency": ["USD"]}


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    return build(tmp_path_factory.mktemp("query") / "warehouse.duckdb")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def costs(wh: Any, tenant: Tenant = OWNER, provider: str = "all", **kwargs: Any) -> Any:
    return run(InfrastructureModule(wh, tenant).get_cost_provider(provider).get_costs(
        NOV_D, DEC_D, **kwargs))


def table_of(result: Any) -> list[tuple]:
    return [(*(b.values.values()), b.period.start if b.period else None, b.cost, b.rows)
            for b in result.breakdown]


# -- hand-computed totals ------------------------------------------------------------------

def test_usd_by_service_and_tag_total(wh) -> None:
    result = costs(wh, granularity="TOTAL", group_by=["service", "tag:team"], filters=USD)
    assert (result.currency, result.total_cost, result.provider) == ("USD", Decimal("18.5"), "all")
    assert table_of(result) == [
        (EC2, "web", None, Decimal("10.00"), 2),
        (S3, "data", None, Decimal("2.50"), 1),
        ("BigQuery", None, None, Decimal("1.75"), 1),
        ("Compute Engine", "web", None, Decimal("4.25"), 1),
    ]
    ec2 = result.breakdown[0]
    assert (ec2.dimension, ec2.value, ec2.usage_quantity, ec2.usage_unit) == (
        "service,tag:team", f"{EC2} / web", Decimal(2), "Hrs")


def test_daily_and_monthly_granularity(wh) -> None:
    daily = costs(wh, granularity="DAILY", group_by=["provider"], filters=USD)
    assert table_of(daily) == [
        ("AWS", date(2026, 11, 3), Decimal("8.50"), 2),
        ("Google Cloud", date(2026, 11, 3), Decimal("4.25"), 1),
        ("AWS", date(2026, 11, 4), Decimal("4.00"), 1),
        ("Google Cloud", date(2026, 11, 20), Decimal("1.75"), 1),
    ]
    assert daily.breakdown[0].period.end == date(2026, 11, 4)
    monthly = costs(wh, granularity="MONTHLY", group_by=[], filters={"currency": ["EUR"]})
    assert table_of(monthly) == [(NOV_D, Decimal("7.00"), 1)]
    assert monthly.breakdown[0].period.end == DEC_D
    assert monthly.breakdown[0].usage_unit == "GB-Mo"


def test_usage_is_not_summed_across_units(wh) -> None:
    result = costs(wh, granularity="TOTAL", group_by=["billing_account"], filters=USD)
    gcp = next(b for b in result.breakdown if b.values["billing_account"] == GCP_BILLING)
    assert (gcp.cost, gcp.usage_quantity, gcp.usage_unit) == (Decimal("6.00"), None, None)


def oracle(rows: list[dict], tenant: Tenant, dims: list[str], metric: str, provider: str,
           currency: str) -> dict[tuple, Decimal]:
    """The expected totals, computed from the fixture rows in Python."""
    out: dict[tuple, Decimal] = {}
    for r in rows:
        if not NOV <= r["ChargePeriodStart"] < NOV + timedelta(days=30):
            continue
        if r["BillingCurrency"] != currency or not tenant.can_see(r["BillingAccountId"],
                                                                   r["SubAccountId"]):
            continue
        if provider != "all" and r["x_SourceProvider"] != provider:
            continue
        key = tuple(json.loads(r["Tags"]).get(d[4:]) if d.startswith("tag:")
                    else r[DIMENSIONS[d]] for d in dims)
        out[key] = out.get(key, Decimal(0)) + r[metric]
    return out


@pytest.mark.parametrize("dimension", [*[d for d in DIMENSIONS if d not in ("day", "month")],
                                       "tag:team", "tag:absent"])
@pytest.mark.parametrize("metric", ["BilledCost", "EffectiveCost"])
def test_every_dimension_matches_the_rows(wh, dimension: str, metric: str) -> None:
    result = costs(wh, granularity="TOTAL", group_by=[dimension], filters=USD, metric=metric)
    got = {tuple(b.values.values()): b.cost for b in result.breakdown}
    assert got == oracle(ROWS, OWNER, [dimension], metric, "all", "USD")
    assert result.metric == metric


def test_filters_on_tags_providers_and_dimensions(wh) -> None:
    gcp = costs(wh, provider="gcp", granularity="TOTAL", group_by=["project"])
    assert (gcp.provider, gcp.currency, table_of(gcp)) == ("gcp", "USD", [
        ("acme-data", None, Decimal("1.75"), 1), ("acme-web", None, Decimal("4.25"), 1)])
    web = costs(wh, granularity="TOTAL", group_by=["provider"],
                filters={"tag:team": ["web"], "service_category": ["Compute"], **USD})
    assert table_of(web) == [("AWS", None, Decimal("10.00"), 2),
                             ("Google Cloud", None, Decimal("4.25"), 1)]


def test_mixed_currencies_are_never_summed(wh) -> None:
    with pytest.raises(MixedCurrencyError, match=r"2 currencies \(EUR 7, USD 18.5\)"):
        costs(wh, granularity="TOTAL")
    per = run(InfrastructureModule(wh, OWNER).get_cost_provider("all").get_costs_per_currency(
        NOV_D, DEC_D, "TOTAL"))
    assert [(r.currency, r.total_cost) for r in per] == [("EUR", Decimal("7")),
                                                         ("USD", Decimal("18.5"))]


# -- tenant isolation ----------------------------------------------------------------------

def test_tenants_see_only_their_accounts(wh) -> None:
    aws_only = Tenant.of("acme-aws", billing_accounts=[AWS_ACCT])
    result = costs(wh, aws_only, granularity="TOTAL", group_by=["sub_account"])
    assert table_of(result) == [(AWS_ACCT, None, Decimal("10.00"), 2),
                                (AWS_SUB, None, Decimal("2.50"), 1)]
    project = Tenant.of("web-team", sub_accounts=["acme-web"])
    assert costs(wh, project, granularity="TOTAL").total_cost == Decimal("4.25")
    nobody = Tenant.of("nobody")
    empty = costs(wh, nobody, granularity="TOTAL")
    assert (empty.total_cost, empty.breakdown) == (Decimal(0), [])
    # A project ID equal to another tenant's billing account grants nothing more.
    assert costs(wh, Tenant.of("x", sub_accounts=[GCP_BILLING]),
                 granularity="TOTAL").breakdown == []


def test_module_requires_a_tenant(wh) -> None:
    with pytest.raises(ConfigError, match="needs a Tenant"):
        InfrastructureModule(wh, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not the single string"):
        Tenant("t", billing_accounts="123")  # type: ignore[arg-type]


ACCOUNTS = ["A1", "A2", "A3"]
SUBS = ["s1", "s2", "s3", "s4"]


@pytest.fixture(scope="module")
def scratch() -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(":memory:")
    warehouse.ensure_schema()
    return warehouse


rows_strategy = st.lists(st.tuples(
    st.sampled_from(ACCOUNTS), st.sampled_from(SUBS),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("1000"), places=6),
    st.integers(min_value=0, max_value=29), st.sampled_from(["aws", "gcp"])),
    min_size=0, max_size=25)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, accounts=st.frozensets(st.sampled_from(ACCOUNTS)),
       subs=st.frozensets(st.sampled_from(SUBS)), provider=st.sampled_from(["all", "aws", "gcp"]))
def test_no_row_outside_a_tenant_ever_counts(scratch, rows, accounts, subs, provider) -> None:
    data = [cost_row(str(cost), account=acct, sub_account=sub, period=NOV,
                     charge_start=NOV + timedelta(days=day), row_number=i,
                     x_SourceProvider=src)
            for i, (acct, sub, cost, day, src) in enumerate(rows)]
    insert(scratch, data, replace=True)
    tenant = Tenant.of("t", accounts, subs)
    result = run(InfrastructureModule(scratch, tenant).get_cost_provider(provider)
                 .get_costs_per_currency(NOV_D, DEC_D, "TOTAL",
                                         ["billing_account", "sub_account"]))
    got = {tuple(b.values.values()): b.cost for r in result for b in r.breakdown}
    assert all(tenant.can_see(a, s) for a, s in got)
    assert got == oracle(data, tenant, ["billing_account", "sub_account"], "BilledCost",
                         provider, "USD")


# -- injection -------------------------------------------------------------------------------

EVIL = ["' OR 1=1 --", "x'; DROP TABLE cost_analytics.cost_line_items; --",
        "1 UNION SELECT * FROM cost_analytics.load_runs", "/* comment */ service",
        "service\u037e DROP", "\uff07 OR \uff071\uff07=\uff071", "serv\u200bice",
        "\u202eecivres", "tag\x00:team", "service`", '"service"']


@pytest.mark.parametrize("evil", EVIL)
def test_injection_in_names_is_refused(wh, evil: str) -> None:
    with pytest.raises(ConfigError, match="allowed: service"):
        costs(wh, granularity="TOTAL", group_by=[evil])
    with pytest.raises(ConfigError, match="allowed: service"):
        costs(wh, granularity="TOTAL", filters={evil: ["x"]})
    with pytest.raises(ConfigError, match="allowed: BilledCost"):
        costs(wh, granularity="TOTAL", metric=evil)
    with pytest.raises(ConfigError, match="allowed: DAILY"):
        costs(wh, granularity=evil)
    with pytest.raises(ConfigError, match=f"allowed: {', '.join(NAMES)}, all"):
        InfrastructureModule(wh, OWNER).get_cost_provider(evil)
    with pytest.raises(ConfigError, match="allowed: compute"):
        run(InfrastructureModule(wh, OWNER).get_cost_provider("all").get_recommendations(evil))


@pytest.mark.parametrize("evil", EVIL)
def test_injection_in_values_matches_literally(wh, evil: str) -> None:
    provider = InfrastructureModule(wh, OWNER).get_cost_provider("all")
    assert costs(wh, granularity="TOTAL", filters={"region": [evil], **USD}).breakdown == []
    assert run(provider.get_resources(evil)) == []
    # Tenant IDs are values too: an evil account ID sees nothing instead of everything.
    if "\x00" in evil:
        with pytest.raises(ConfigError, match="without control characters"):
            Tenant.of("t", [evil])
    else:
        assert costs(wh, Tenant.of("t", [evil], [evil]), granularity="TOTAL").breakdown == []
    if '"' not in evil and "\x00" not in evil:
        tag = costs(wh, granularity="TOTAL", group_by=[f"tag:{evil}"], filters=USD)
        assert [b.values for b in tag.breakdown] == [{f"tag:{evil}": None}]


def test_a_tag_key_and_value_with_sql_in_them_match_literally(wh, tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.ensure_schema()
    evil = "x') OR 1=1 --"
    insert(warehouse, [cost_row("3.00", period=NOV, charge_start=NOV + timedelta(days=1),
                                Tags=json.dumps({evil: evil, "team": "web"})),
                       cost_row("5.00", period=NOV, charge_start=NOV + timedelta(days=1))])
    result = costs(warehouse, granularity="TOTAL", group_by=[f"tag:{evil}"],
                   filters={f"tag:{evil}": [evil]})
    assert table_of(result) == [(evil, None, Decimal("3.00"), 1)]
    with pytest.raises(ConfigError, match="without double quotes"):
        costs(warehouse, granularity="TOTAL", group_by=['tag:a"] OR 1=1'])


def test_no_user_text_reaches_the_sql() -> None:
    evil = "zz'); DROP TABLE t; --"
    sql, params = build_query([f"tag:{evil}", "service"], {"region": [evil],
                                                          f"tag:{evil}": [evil]}, "ListCost")
    assert "DROP" not in sql and "zz" not in sql
    assert params == {"tag_path_0": f'$."{evil}"', "filter_0": [evil], "filter_1": [evil],
                      "filter_path_1": f'$."{evil}"'}
    assert set(FILTER_ONLY) == {"currency"}


# -- forecast, recommendations, resources -------------------------------------------------

def history_rows(days: int, first: date) -> list[dict]:
    rows = []
    for i in range(days):
        day = first + timedelta(days=i)
        cost = Decimal(100 + (40 if day.weekday() < 5 else 0)) + Decimal(i) / 4
        rows.append(cost_row(str(cost), period=datetime(day.year, day.month, 1, tzinfo=UTC),
                             charge_start=datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
                             row_number=i))
    return rows


def test_forecast_has_intervals_and_a_backtest(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "f.duckdb")
    warehouse.ensure_schema()
    insert(warehouse, history_rows(84, date(2026, 8, 10)))  # through 2026-11-01
    provider = InfrastructureModule(warehouse, OWNER).get_cost_provider("aws")
    result = run(provider.get_forecast(date(2026, 11, 2), date(2027, 1, 1), "MONTHLY"))
    assert [(p.period.start, p.period.end) for p in result.points] == [
        (date(2026, 11, 2), DEC_D), (DEC_D, date(2027, 1, 1))]
    assert (result.history.start, result.history.end) == (date(2026, 8, 10), date(2026, 11, 2))
    assert result.currency == "USD" and result.backtest_days == 14
    # Weekdays 140 + drift, weekends 100 + drift: ~ 29 days x ~150.
    assert Decimal(4000) < result.points[0].cost < Decimal(5200)
    for p in [*result.points]:
        assert p.lower < p.cost < p.upper
    assert result.total_cost == sum(p.cost for p in result.points)
    assert result.backtest_wape is not None and result.backtest_wape < Decimal("0.05")
    daily = run(provider.get_forecast(date(2026, 11, 2), date(2026, 11, 9), "DAILY"))
    weekday, weekend = daily.points[0].cost, daily.points[5].cost  # Mon 2nd, Sat 7th
    assert weekday - weekend > Decimal(25)


def test_forecast_refuses_short_history(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "s.duckdb")
    warehouse.ensure_schema()
    insert(warehouse, history_rows(20, date(2026, 10, 1)))
    provider = InfrastructureModule(warehouse, OWNER).get_cost_provider("all")
    with pytest.raises(ConfigError, match="20 day\\(s\\) of daily costs before 2026-11-01, 28 "
                                          "needed"):
        run(provider.get_forecast(NOV_D, DEC_D))
    with pytest.raises(ConfigError, match="no costs in the 365 days"):
        run(InfrastructureModule(warehouse, Tenant.of("none")).get_cost_provider("all")
            .get_forecast(NOV_D, DEC_D))


def test_recommendations_by_category_state_and_tenant(wh) -> None:
    provider = InfrastructureModule(wh, OWNER).get_cost_provider("all")
    compute = run(provider.get_recommendations("compute"))
    assert [(r.provider, r.estimated_monthly_savings, r.recommended_configuration)
            for r in compute] == [("aws", Decimal("52.56"), "t3.micro"),
                                  ("gcp", Decimal("48.91"), "e2-standard-2")]
    assert [r.category for r in run(provider.get_recommendations())] == [
        "compute", "compute", "storage"]
    dismissed = run(provider.get_recommendations(states=("dismissed",)))
    assert [r.estimated_monthly_savings for r in dismissed] == [Decimal("9.00")]
    web = InfrastructureModule(wh, Tenant.of("web", sub_accounts=["acme-web"]))
    assert [r.source for r in run(web.get_cost_provider("all").get_recommendations())] == [
        "google.compute.instance.MachineTypeRecommender"]
    assert run(web.get_cost_provider("aws").get_recommendations()) == []


def test_resources_with_cost_attribution(wh) -> None:
    provider = InfrastructureModule(wh, OWNER).get_cost_provider("all")
    vms = run(provider.get_resources("Virtual Machine", start_date=NOV_D, end_date=DEC_D))
    assert [(r.provider, r.currency, r.cost, r.rows) for r in vms] == [
        ("aws", "USD", Decimal("10.00"), 2), ("azure", "EUR", Decimal("7.00"), 1),
        ("gcp", "USD", Decimal("4.25"), 1)]
    effective = run(provider.get_resources("Virtual Machine", start_date=NOV_D, end_date=DEC_D,
                                           metric="EffectiveCost", limit=1))
    assert [(r.resource_id, r.cost) for r in effective] == [("i-0a1b2c3d4e5f60718",
                                                            Decimal("8.00"))]
    recent = run(provider.get_resources())  # the 30 days up to the last charge (Dec 1)
    assert recent[0].cost == Decimal("110.00")
    assert recent[0].time_period.end == date(2026, 12, 2)
    with pytest.raises(ConfigError, match="limit"):
        run(provider.get_resources(limit=0))


# -- BigQuery: same requests, same answers -------------------------------------------------

class ExecutingBigQueryClient(FakeBigQueryClient):
    """The recording fake, answering each query by running its BigQuery SQL on DuckDB."""

    def __init__(self, duck: DuckDBWarehouse) -> None:
        super().__init__()
        self.duck = duck

    def query(self, sql: str, job_config: Any = None) -> FakeJob:
        super().query(sql, job_config)  # parses as BigQuery, checks used == bound parameters
        local = sql.replace("`acme-finops-prod`.`billing`.", "cost_analytics.")
        params = {p.name: _python(p.to_api_repr()) for p in job_config.query_parameters}
        return FakeJob(table=self.duck.query(local, params))


def _python(api: dict) -> Any:
    kind = api["parameterType"]["type"]
    if kind == "ARRAY":
        return [v["value"] for v in api["parameterValue"].get("arrayValues", [])]
    value = api["parameterValue"]["value"]
    return {"DATE": lambda v: None if v is None else date.fromisoformat(v),
            "BOOL": lambda v: v == "true", "INT64": lambda v: None if v is None else int(v),
            }.get(kind, lambda v: v)(value)


def test_bigquery_gets_the_same_answers(wh) -> None:
    client = ExecutingBigQueryClient(wh)
    bq = BigQueryWarehouse("acme-finops-prod", "billing",
                           client_factory=lambda project, location: client)
    tenant = Tenant.of("acme", billing_accounts=[AWS_ACCT, AZ_BILLING], sub_accounts=["acme-web"])

    async def everything(warehouse: Any) -> list[Any]:
        p = InfrastructureModule(warehouse, tenant).get_cost_provider("all")
        return [await p.get_costs_per_currency(NOV_D, DEC_D, g, ["service", "tag:team"],
                                               {"region": ["us-east-1", "westeurope",
                                                           "us-central1"]})
                for g in ("TOTAL", "DAILY", "MONTHLY")] + [
            await p.get_recommendations("compute"), await p.get_resources(),
            await p.get_resources("Virtual Machine", start_date=NOV_D, end_date=DEC_D)]

    on_duckdb, on_bigquery = run(everything(wh)), run(everything(bq))
    assert on_bigquery == on_duckdb
    assert on_duckdb[0][1].total_cost == Decimal("14.25")  # USD: EC2 10 + GCE 4.25
    _, sql, bound = client.of("query")[0]
    assert "`acme-finops-prod`.`billing`.`cost_line_items`" in sql
    assert bound["tenant_billing_accounts"]["parameterValue"] == {
        "arrayValues": [{"value": AWS_ACCT}, {"value": AZ_BILLING}]}
    assert bound["tenant_all"]["parameterValue"] == {"value": "false"}
    assert bound["tag_path_1"]["parameterValue"] == {"value": '$."team"'}


def test_row_access_policy_ddl() -> None:
    tenant = Tenant.of("acme", billing_accounts=["0123-'x"], sub_accounts=["acme-web"])
    ddl = row_access_policy_ddl(tenant, "acme-finops-prod.billing.cost_line_items",
                                ["group:finops-acme@example.com"])
    assert ddl == (
        "CREATE OR REPLACE ROW ACCESS POLICY costflow_tenant_acme\n"
        "ON `acme-finops-prod`.`billing`.`cost_line_items`\n"
        "GRANT TO ('group:finops-acme@example.com')\n"
        "FILTER USING (BillingAccountId IN ('0123-\\'x') OR SubAccountId IN ('acme-web'))")
    nobody = row_access_policy_ddl(Tenant.of("none"), "p.d.t", ["user:a@example.com"])
    assert nobody.endswith("FILTER USING (FALSE)")
    for bad_tenant, table, grantees, message in [
            (Tenant.of("a-b"), "p.d.t", ["user:a@b.c"], "letters, digits"),
            (Tenant.of("a"), "p.d", ["user:a@b.c"], "project.dataset.table"),
            (Tenant.of("a"), "p.d.t", ["user:a@b.c') OR TRUE --"], "is not user:"),
            (Tenant.of("a"), "p.d.t", [], "at least one grantee"),
            (OWNER, "p.d.t", ["user:a@b.c"], "unrestricted")]:
        with pytest.raises(ConfigError, match=message):
            row_access_policy_ddl(bad_tenant, table, grantees)


def test_query_templates_carry_the_scope() -> None:
    for name in ("costs_by_dimension", "resources", "recommendations", "latest_charge"):
        (statement,) = sqlfiles.load(f"queries/{name}.sql")
        assert {"tenant_all", "tenant_billing_accounts", "tenant_sub_accounts",
                "provider"} <= statement.parameters, name

