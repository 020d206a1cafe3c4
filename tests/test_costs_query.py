"""costs_by_dimension and export_focus on DuckDB: hand-computed totals, injection refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costflow.errors import ConfigError
from costflow.schemas.focus import COST_LINE_ITEMS, focus_columns
from costflow.services.costs import DIMENSIONS, METRICS, costs_by_dimension
from costflow.services.focus_export import export_focus
from costflow.warehouse.base import Warehouse
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.warehouse_rows import (
    DEC,
    EC2,
    OTHER_ACCOUNT,
    S3,
    cost_row,
    expected_for,
    run_start,
    stage,
)

NOV_START, DEC_START, JAN_START = date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1)
EUR = {"account": OTHER_ACCOUNT, "sub_account": OTHER_ACCOUNT, "currency": "EUR",
       "region": "eu-west-1"}
ROWS = [
    cost_row("0.0000000497", row_number=1, charge_start=datetime(2023, 11, 5, 10, tzinfo=UTC)),
    cost_row("1.25", row_number=2, region="us-west-2",
             charge_start=datetime(2023, 11, 5, 11, tzinfo=UTC), EffectiveCost=Decimal("0.80")),
    cost_row("0.023", row_number=3, service=S3, charge_start=datetime(2023, 11, 20, tzinfo=UTC)),
    cost_row("2.50", row_number=4, charge_start=datetime(2023, 11, 6, tzinfo=UTC), **EUR),
    cost_row("0.75", row_number=5, service=S3, period=DEC,
             charge_start=datetime(2023, 12, 2, tzinfo=UTC), **EUR),
    # Exactly on the boundary: belongs to December, never to November.
    cost_row("10.00", row_number=6, period=DEC, charge_start=datetime(2023, 12, 1, tzinfo=UTC)),
    cost_row("4.00", row_number=7, period=DEC, ResourceId="' OR 1=1 --",
             charge_start=datetime(2023, 12, 15, tzinfo=UTC)),
]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    directory = tmp_path_factory.mktemp("costs")
    warehouse = DuckDBWarehouse(directory / "warehouse.duckdb")
    warehouse.ensure_schema()
    warehouse.begin_run(run_start("run-1"))
    warehouse.commit_run(stage(directory, "run-1", ROWS), expected_for(ROWS), {})
    return warehouse


def rows_of(table: pa.Table) -> list[tuple]:
    return [tuple(r.values()) for r in table.to_pylist()]


def test_by_service_in_november_keeps_currencies_apart(wh) -> None:
    table = costs_by_dimension(wh, NOV_START, DEC_START, ["service"])
    assert table.column_names == ["service", "BillingCurrency", "cost", "rows"]
    assert table.schema.field("cost").type == pa.decimal128(38, 18)
    assert rows_of(table) == [
        (EC2, "EUR", Decimal("2.50"), 1),
        (EC2, "USD", Decimal("1.2500000497"), 2),
        (S3, "USD", Decimal("0.023"), 1),
    ]


def test_without_dimensions_there_is_one_row_per_currency(wh) -> None:
    assert rows_of(costs_by_dimension(wh, NOV_START, JAN_START, [])) == [
        ("EUR", Decimal("3.25"), 2),
        ("USD", Decimal("15.2730000497"), 5),
    ]


def test_by_month_and_region_with_the_half_open_range(wh) -> None:
    table = costs_by_dimension(wh, NOV_START, JAN_START, ["month", "region"])
    assert rows_of(table) == [
        (NOV_START, "eu-west-1", "EUR", Decimal("2.50"), 1),
        (NOV_START, "us-east-1", "USD", Decimal("0.0230000497"), 2),
        (NOV_START, "us-west-2", "USD", Decimal("1.25"), 1),
        (DEC_START, "eu-west-1", "EUR", Decimal("0.75"), 1),
        (DEC_START, "us-east-1", "USD", Decimal("14.00"), 2),
    ]
    assert table.schema.field("month").type == pa.date32()


def test_by_day_and_account_alias(wh) -> None:
    table = costs_by_dimension(wh, date(2023, 11, 5), date(2023, 11, 7), ["day", "account"])
    assert rows_of(table) == [
        (date(2023, 11, 5), "123412340534", "USD", Decimal("1.2500000497"), 2),
        (date(2023, 11, 6), OTHER_ACCOUNT, "EUR", Decimal("2.50"), 1),
    ]


def test_filters_and_another_metric(wh) -> None:
    table = costs_by_dimension(wh, NOV_START, DEC_START, ["service"],
                               filters={"region": ["us-east-1", "us-west-2"]},
                               metric="EffectiveCost")
    assert rows_of(table) == [
        (EC2, "USD", Decimal("0.8000000497"), 2),
        (S3, "USD", Decimal("0.023"), 1),
    ]


@pytest.mark.parametrize("name", ["service; DROP TABLE x", '"service"', "ServiceName) --",
                                  "ServiceName", "BillingCurrency", ""])
def test_injection_in_group_by_names_is_refused(wh, name: str) -> None:
    with pytest.raises(ConfigError, match="allowed: service, service_category, sub_account"):
        costs_by_dimension(wh, NOV_START, DEC_START, [name])
    with pytest.raises(ConfigError, match="allowed: service"):
        costs_by_dimension(wh, NOV_START, DEC_START, ["service"], filters={name: ["x"]})


def test_injection_in_filter_values_matches_literally(wh) -> None:
    assert costs_by_dimension(wh, NOV_START, JAN_START, ["service"],
                              filters={"region": ["' OR 1=1 --"]}).num_rows == 0
    table = costs_by_dimension(wh, NOV_START, JAN_START, ["resource"],
                               filters={"resource": ["' OR 1=1 --"]})
    assert rows_of(table) == [("' OR 1=1 --", "USD", Decimal("4.00"), 1)]


@pytest.mark.parametrize("metric", ["BilledCost); DROP TABLE x --", "billedcost", "Tags"])
def test_unknown_metrics_are_refused(wh, metric: str) -> None:
    with pytest.raises(ConfigError, match="allowed: BilledCost, EffectiveCost, ListCost"):
        costs_by_dimension(wh, NOV_START, DEC_START, ["service"], metric=metric)


@pytest.mark.parametrize(("start", "end", "message"), [
    (DEC_START, NOV_START, "not after start"),
    (NOV_START, NOV_START, "not after start"),
    (datetime(2023, 11, 1), DEC_START, "must be a date"),
    ("2023-11-01", DEC_START, "must be a date"),
])
def test_bad_date_ranges_are_refused(wh, start, end, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        costs_by_dimension(wh, start, end, ["service"])


def test_bad_filters_and_repeated_dimensions_are_refused(wh) -> None:
    with pytest.raises(ConfigError, match="one or more text values"):
        costs_by_dimension(wh, NOV_START, DEC_START, [], filters={"region": []})
    with pytest.raises(ConfigError, match="narrow the date range"):
        costs_by_dimension(wh, NOV_START, DEC_START, [], filters={"day": ["2023-11-05"]})
    with pytest.raises(ConfigError, match="twice"):
        costs_by_dimension(wh, NOV_START, DEC_START, ["service", "service"])


def test_the_allow_lists_name_real_columns() -> None:
    import sqlglot
    from sqlglot import exp

    for expression in DIMENSIONS.values():
        columns = {c.name for c in sqlglot.parse_one(expression, read="bigquery")
                   .find_all(exp.Column)}
        assert columns and columns <= set(COST_LINE_ITEMS.names), expression
    assert set(METRICS) <= set(COST_LINE_ITEMS.names)


def test_export_writes_exactly_the_focus_1_2_columns(wh, tmp_path: Path) -> None:
    out = tmp_path / "o'brien's exports" / "focus.parquet"
    assert export_focus(wh, out) == len(ROWS)
    table = pq.read_table(out)
    assert table.column_names == [c.name for c in focus_columns("1.2")]
    assert table.num_columns == 57
    assert sorted(table.column("BilledCost").to_pylist())[0] == Decimal("0.0000000497")


def test_export_of_focus_1_3_adds_its_columns(wh, tmp_path: Path) -> None:
    out = tmp_path / "focus13.parquet"
    export_focus(wh, out, version="1.3")
    names = pq.read_schema(out).names
    assert names == [c.name for c in focus_columns("1.3")]
    assert {"HostProviderName", "ServiceProviderName"} <= set(names) and len(names) == 65


class QueryOnly(Warehouse):
    """A warehouse with nothing but the abstract interface (no streaming export)."""

    url = "test://query-only"

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner

    def query(self, sql, params=None):
        return self.inner.query(sql, params)

    def ensure_schema(self):
        raise NotImplementedError

    def begin_run(self, run):
        raise NotImplementedError

    def commit_run(self, staged, expected, report):
        raise NotImplementedError

    def fail_run(self, run_id, error, report):
        raise NotImplementedError

    def replace_recommendations(self, rows, provider, sources=None):
        raise NotImplementedError


def test_export_without_a_streaming_engine_goes_through_arrow(wh, tmp_path: Path) -> None:
    out = tmp_path / "via-arrow.parquet"
    assert export_focus(QueryOnly(wh), out) == len(ROWS)
    assert pq.read_schema(out).names == [c.name for c in focus_columns("1.2")]


def test_unknown_focus_version_and_control_characters_are_refused(wh, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allowed: 1.2, 1.3"):
        export_focus(wh, tmp_path / "x.parquet", version="1.2'; --")
    with pytest.raises(ConfigError, match="control characters"):
        export_focus(wh, tmp_path / "bad\nname.parquet")
