"""The provider-neutral recommendations table: one fetch replaces the previous one, atomically."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from costflow import recommendations
from costflow.errors import ConfigError
from costflow.providers import CATALOG, Catalog
from costflow.recommendations import FetchRequest, FetchResult, rows_from_records
from costflow.services.recommendation_fetch import fetch_and_store
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.test_bigquery_warehouse import FakeBigQueryClient, warehouse

REQUEST = FetchRequest(provider="aws", run_id="recs-1",
                       fetched_at=datetime(2026, 11, 26, 10, tzinfo=UTC))
SOURCE = "aws.compute_optimizer.ec2"


def _ec2(instance: str, current: str, target: str, savings: str, **extra) -> dict:
    # Shaped like a Compute Optimizer GetEC2InstanceRecommendations item, normalized.
    arn = f"arn:aws:ec2:us-east-1:123412340534:instance/{instance}"
    return {"recommendation_id": f"{arn}#{target}", "source": SOURCE, "category": "compute",
            "SubAccountId": "123412340534", "RegionId": "us-east-1", "ResourceId": arn,
            "ResourceType": "Virtual Machine",
            "description": f"Overprovisioned: change {current} to {target}",
            "current_configuration": current, "recommended_configuration": target,
            "estimated_monthly_savings": Decimal(savings), "savings_currency": "USD",
            "state": "active", "details": {"finding": "OVER_PROVISIONED"}, **extra}


@pytest.fixture
def duck(tmp_path):
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    yield wh
    wh.close()


def _stored(wh) -> list[tuple]:
    table = wh.query("SELECT ResourceId, recommended_configuration AS t, "
                     "estimated_monthly_savings AS s FROM cost_analytics.recommendations "
                     "ORDER BY ResourceId")
    return [(r["ResourceId"].rsplit("/", 1)[1], r["t"], r["s"]) for r in table.to_pylist()]


def test_a_fetch_replaces_the_previous_one_and_keeps_other_sources(duck):
    first = rows_from_records([_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08"),
                               _ec2("i-0b2", "c5.4xlarge", "c5.2xlarge", "244.80")], REQUEST)
    assert duck.replace_recommendations(first, "aws") == 2
    ebs = rows_from_records([{**_ec2("vol-9", "gp2", "gp3", "1.60"),
                              "source": "aws.compute_optimizer.ebs", "category": "storage"}],
                            REQUEST)
    duck.replace_recommendations(ebs, "aws")
    second = rows_from_records([_ec2("i-0b2", "c5.4xlarge", "c5.xlarge", "367.20")],
                               FetchRequest("aws", "recs-2", REQUEST.fetched_at))
    duck.replace_recommendations(second, "aws", [SOURCE])
    assert _stored(duck) == [("i-0b2", "c5.xlarge", Decimal("367.2")),
                             ("vol-9", "gp3", Decimal("1.6"))]


def test_an_empty_fetch_of_a_source_clears_it(duck):
    duck.replace_recommendations(rows_from_records(
        [_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08")], REQUEST), "aws")
    empty = rows_from_records([], FetchRequest("aws", "recs-2", REQUEST.fetched_at))
    assert duck.replace_recommendations(empty, "aws", [SOURCE]) == 0
    assert _stored(duck) == []


@pytest.mark.parametrize("change, message", [
    ({"category": "cheaper"}, "category has ['cheaper']; allowed: compute"),
    ({"state": None}, "state has 1 empty value(s)"),
])
def test_rows_breaking_the_declaration_are_refused_before_anything_changes(duck, change, message):
    duck.replace_recommendations(rows_from_records(
        [_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08")], REQUEST), "aws")
    bad = rows_from_records([{**_ec2("i-0b2", "c5.4xlarge", "c5.2xlarge", "1"), **change}],
                            FetchRequest("aws", "recs-2", REQUEST.fetched_at))
    with pytest.raises(ConfigError, match=re.escape(message)):
        duck.replace_recommendations(bad, "aws")
    assert [r[0] for r in _stored(duck)] == ["i-0a1"]


def test_rows_of_another_provider_are_refused(duck):
    rows = rows_from_records([_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08")], REQUEST)
    with pytest.raises(ConfigError, match=r"recommendations of \['aws'\] handed over as 'gcp'"):
        duck.replace_recommendations(rows, "gcp")


def test_bigquery_stages_then_replaces_in_one_transaction():
    client = FakeBigQueryClient()
    rows = rows_from_records([_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08")], REQUEST)
    assert warehouse(client).replace_recommendations(rows, "aws") == 1
    (loaded, destination, config) = client.of("load_file")[0]
    assert loaded.column("estimated_monthly_savings").to_pylist() == [Decimal("70.08")]
    assert "_staged_recommendations" in destination
    assert set(config.decimal_target_types) == {"BIGNUMERIC"}
    sql, bound = client.query_labelled("replace_recommendations")
    assert sql.startswith("BEGIN TRANSACTION;") and sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert "DELETE FROM" in sql and destination.split(".")[-1] in sql
    assert bound["provider"]["parameterValue"]["value"] == "aws"
    assert [v["value"] for v in bound["sources"]["parameterValue"]["arrayValues"]] == [SOURCE]
    assert client.of("delete_table")[-1] == destination


def _with_recommender(fetch) -> Catalog:
    """The real catalog with AWS's fetcher replaced (a declaration is a frozen value)."""
    return Catalog(tuple(dataclasses.replace(p, recommender=fetch) if p.name == "aws" else p
                         for p in CATALOG.providers))


def test_fetch_and_store_runs_the_declared_fetcher(tmp_path):
    def fetch(request: FetchRequest) -> FetchResult:
        assert request.scope == {"region": ["us-east-1"]}
        return FetchResult(rows_from_records(
            [_ec2("i-0a1", "m5.2xlarge", "m5.xlarge", "70.08")], request), [SOURCE])

    done = fetch_and_store("aws", f"duckdb:///{tmp_path}/w.duckdb", {"region": ["us-east-1"]},
                           catalog=_with_recommender(fetch))
    assert done["recommendations"] == 1 and done["sources"] == [SOURCE]
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    assert _stored(wh) == [("i-0a1", "m5.xlarge", Decimal("70.08"))]


def test_unknown_provider_names_the_available_fetchers():
    with pytest.raises(ConfigError,
                       match="No recommendations fetcher for 'oracle'; available: aws, gcp, azure"):
        fetch_and_store("oracle", "duckdb:///:memory:")


def test_rows_from_records_refuses_undeclared_fields():
    with pytest.raises(ValueError, match="not in the schema: \\['savings'\\]"):
        rows_from_records([{"savings": 1}], REQUEST)
    assert rows_from_records([], REQUEST).schema.names == list(pa.schema(
        recommendations.SCHEMA).names)
