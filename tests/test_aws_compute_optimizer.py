"""Compute Optimizer recommendations, fetched through botocore's Stubber (moto lacks the API).

Stubber checks every request and response against the botocore model of compute-optimizer, so
the answers below are shaped exactly like the API's [PF §2.7], including the live API's upper
snake findings (``OVER_PROVISIONED``) beside the model's (``Overprovisioned``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from costflow.errors import ConfigError, SourceError
from costflow.providers.aws import compute_optimizer as co
from costflow.recommendations import FetchRequest
from costflow.services.recommendation_fetch import fetch_and_store
from costflow.warehouse.duckdb_engine import DuckDBWarehouse

ACCOUNT = "123412340534"
REFRESHED = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


def _money(value: float, currency: str = "USD") -> dict:
    return {"savingsOpportunityPercentage": 50.0,
            "estimatedMonthlySavings": {"currency": currency, "value": value}}


def _instance(instance: str, finding: str, current: str, options: list[tuple[int, str, float]],
              region: str = "us-east-1", name: str | None = None) -> dict:
    return {
        "instanceArn": f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance}",
        "accountId": ACCOUNT, "instanceName": name or instance, "currentInstanceType": current,
        "finding": finding, "findingReasonCodes": ["CPUOverprovisioned"],
        "utilizationMetrics": [{"name": "CPU", "statistic": "MAXIMUM", "value": 12.5}],
        "lookBackPeriodInDays": 14.0,
        "recommendationOptions": [
            {"instanceType": target, "performanceRisk": 1.0, "rank": rank,
             "savingsOpportunity": _money(value), "migrationEffort": "VeryLow",
             "savingsOpportunityAfterDiscounts": {
                 "savingsOpportunityPercentage": 40.0,
                 "estimatedMonthlySavings": {"currency": "USD", "value": value * 0.8}}}
            for rank, target, value in options],
        "recommendationSources": [{"recommendationSourceArn": f"arn:aws:ec2:{region}:{ACCOUNT}"
                                                              f":instance/{instance}",
                                   "recommendationSourceType": "Ec2Instance"}],
        "lastRefreshTimestamp": REFRESHED, "currentPerformanceRisk": "VeryLow",
        "instanceState": "running", "tags": [{"key": "team", "value": "web"}], "idle": "False"}


# Page 1 of EC2: the live spelling, options out of rank order; page 2: the model's spelling,
# an under-provisioned instance (savings absent) and two optimized ones in both spellings.
EC2_PAGE_1 = {"nextToken": "AAEAAX-page-2", "errors": [], "instanceRecommendations": [
    _instance("i-0a1", "OVER_PROVISIONED", "m5.2xlarge",
              [(2, "m5.xlarge", 70.08), (1, "m6i.xlarge", 96.36), (3, "t3.2xlarge", 5.1)])]}
EC2_PAGE_2 = {"instanceRecommendations": [
    _instance("i-0b2", "Overprovisioned", "c5.4xlarge", [(1, "c5.2xlarge", 244.8)]),
    {**_instance("i-0c3", "UNDER_PROVISIONED", "t3.micro", [(1, "t3.small", 0.0)]),
     "recommendationOptions": [{"instanceType": "t3.small", "rank": 1, "performanceRisk": 0.0}]},
    _instance("i-0d4", "Optimized", "m5.large", [(1, "m5.large", 0.0)]),
    _instance("i-0e5", "OPTIMIZED", "m5.large", [(1, "m5.large", 0.0)])],
    "errors": [{"identifier": "i-0zz", "code": "InsufficientData", "message": "too new"}]}
EBS = {"volumeRecommendations": [{
    "volumeArn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/vol-09",
    "accountId": ACCOUNT, "finding": "NotOptimized", "lookBackPeriodInDays": 14.0,
    "currentConfiguration": {"volumeType": "gp2", "volumeSize": 500, "volumeBaselineIOPS": 1500,
                             "volumeBurstIOPS": 3000, "rootVolume": False},
    "volumeRecommendationOptions": [{
        "configuration": {"volumeType": "gp3", "volumeSize": 500, "volumeBaselineIOPS": 3000},
        "performanceRisk": 0.0, "rank": 1, "savingsOpportunity": _money(8.0)}],
    "lastRefreshTimestamp": REFRESHED, "currentPerformanceRisk": "Low"}]}
LAMBDA = {"lambdaFunctionRecommendations": [
    {"functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize:$LATEST",
     "functionVersion": "$LATEST", "accountId": ACCOUNT, "currentMemorySize": 1024,
     "numberOfInvocations": 120000, "finding": "NOT_OPTIMIZED",
     "findingReasonCodes": ["MemoryOverprovisioned"],
     "memorySizeRecommendationOptions": [{"rank": 1, "memorySize": 512,
                                          "savingsOpportunity": _money(1.12)}],
     "lastRefreshTimestamp": REFRESHED},
    {"functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:cron:$LATEST",
     "accountId": ACCOUNT, "currentMemorySize": 128, "finding": "Unavailable",
     "findingReasonCodes": ["Inconclusive"], "memorySizeRecommendationOptions": []}]}


def _stubbed(*answers: tuple[str, dict, dict]) -> tuple[object, Stubber]:
    client = boto3.client("compute-optimizer", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    stub = Stubber(client)
    for operation, answer, expected in answers:
        stub.add_response(operation, answer, expected)
    stub.activate()
    return client, stub


def _full_answer() -> tuple[object, Stubber]:
    return _stubbed(("get_ec2_instance_recommendations", EC2_PAGE_1, {}),
                    ("get_ec2_instance_recommendations", EC2_PAGE_2,
                     {"nextToken": "AAEAAX-page-2"}),
                    ("get_ebs_volume_recommendations", EBS, {}),
                    ("get_lambda_function_recommendations", LAMBDA, {}))


REQUEST = FetchRequest(provider="aws", run_id="recs-1", fetched_at=REFRESHED,
                       scope={"region": ["us-east-1"]})


@pytest.mark.parametrize("spelling", ["OVER_PROVISIONED", "Overprovisioned", "overprovisioned",
                                      "Over_Provisioned"])
def test_findings_match_case_insensitively_ignoring_underscores(spelling):
    assert co.normalize_finding(spelling) == "overprovisioned"
    assert co.normalize_finding("NOT_OPTIMIZED") == co.normalize_finding("NotOptimized")


def test_one_row_per_resource_from_its_top_ranked_option_across_pages():
    client, stub = _full_answer()
    result = co.fetch_with(lambda region: client, REQUEST)
    stub.assert_no_pending_responses()
    assert result.sources == ["aws.compute_optimizer.ec2/us-east-1",
                              "aws.compute_optimizer.ebs/us-east-1",
                              "aws.compute_optimizer.lambda/us-east-1"]
    rows = {r["ResourceId"].split(":", 5)[5]: r for r in result.rows.to_pylist()}
    assert sorted(rows) == ["function:resize:$LATEST", "instance/i-0a1", "instance/i-0b2",
                            "instance/i-0c3", "volume/vol-09"]
    a1 = rows["instance/i-0a1"]
    assert (a1["current_configuration"], a1["recommended_configuration"],
            a1["estimated_monthly_savings"], a1["savings_currency"]) == (
        "m5.2xlarge", "m6i.xlarge", Decimal("96.36"), "USD")
    assert a1["recommendation_id"] == f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0a1#m6i.xlarge"
    assert (a1["category"], a1["state"], a1["SubAccountId"], a1["RegionId"], a1["ResourceType"],
            a1["x_SourceProvider"], a1["x_RunId"]) == (
        "compute", "active", ACCOUNT, "us-east-1", "Virtual Machine", "aws", "recs-1")
    assert a1["description"] == ("Overprovisioned: change m5.2xlarge to m6i.xlarge "
                                 "(CPUOverprovisioned)")
    assert a1["last_refreshed_at"] == REFRESHED
    assert json.loads(a1["details"])["finding"] == "OVER_PROVISIONED"
    assert rows["instance/i-0b2"]["estimated_monthly_savings"] == Decimal("244.8")
    c3 = rows["instance/i-0c3"]
    assert (c3["description"].split(":")[0], c3["estimated_monthly_savings"]) == (
        "Underprovisioned", None)
    vol = rows["volume/vol-09"]
    assert (vol["category"], vol["current_configuration"], vol["recommended_configuration"],
            vol["estimated_monthly_savings"]) == (
        "storage", "gp2 500 GiB, 1500 IOPS", "gp3 500 GiB, 3000 IOPS", Decimal("8.0"))
    fn = rows["function:resize:$LATEST"]
    assert (fn["current_configuration"], fn["recommended_configuration"],
            fn["estimated_monthly_savings"]) == ("1024 MB", "512 MB", Decimal("1.12"))


def test_fetch_and_store_replaces_the_regions_previous_fetch(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path}/w.duckdb"
    client, stub = _full_answer()
    monkeypatch.setattr(co, "_client", lambda region: client)
    done = fetch_and_store("aws", url, {"region": ["us-east-1"]})
    assert done["recommendations"] == 5
    # Next day: only i-0b2 is still over-provisioned, in the live spelling.
    client, stub = _stubbed(
        ("get_ec2_instance_recommendations", {"instanceRecommendations": [
            _instance("i-0b2", "OVER_PROVISIONED", "c5.4xlarge", [(1, "c5.xlarge", 367.2)])]},
         {}),
        ("get_ebs_volume_recommendations", {"volumeRecommendations": []}, {}),
        ("get_lambda_function_recommendations", {"lambdaFunctionRecommendations": []}, {}))
    monkeypatch.setattr(co, "_client", lambda region: client)
    assert fetch_and_store("aws", url, {"region": ["us-east-1"]})[
        "recommendations"] == 1
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        stored = wh.query("SELECT ResourceId, recommended_configuration AS t, "
                          "estimated_monthly_savings AS s, savings_currency AS c, source "
                          "FROM cost_analytics.recommendations").to_pylist()
    finally:
        wh.close()
    assert stored == [{"ResourceId": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0b2",
                       "t": "c5.xlarge", "s": Decimal("367.2"), "c": "USD",
                       "source": "aws.compute_optimizer.ec2/us-east-1"}]


def test_a_refused_request_names_the_operation_and_region():
    client = boto3.client("compute-optimizer", region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stub:
        stub.add_client_error("get_ec2_instance_recommendations", "OptInRequiredException",
                              "The account is not opted in to Compute Optimizer.")
        with pytest.raises(SourceError, match="get_ec2_instance_recommendations in eu-west-1.*"
                                              "OptInRequiredException"):
            co.fetch_with(lambda region: client,
                          FetchRequest("aws", "r", REFRESHED, {"region": ["eu-west-1"]}))


def test_an_unknown_scope_key_is_a_config_error():
    with pytest.raises(ConfigError, match="takes region=<region>"):
        co.fetch_with(lambda region: None,
                      FetchRequest("aws", "r", REFRESHED, {"project": ["web"]}))


def test_cli_fetch_prints_what_replaced_what(tmp_path, monkeypatch, capsys):
    from costflow.cli import main

    client, stub = _full_answer()
    monkeypatch.setattr(co, "_client", lambda region: client)
    assert main(["recommendations", "fetch", "--provider", "aws", "--scope", "region=us-east-1",
                 "--warehouse", f"duckdb:///{tmp_path}/w.duckdb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 aws recommendation(s) from aws.compute_optimizer.ec2/us-east-1, "
                          "aws.compute_optimizer.ebs/us-east-1, "
                          "aws.compute_optimizer.lambda/us-east-1 replace the previous fetch")
