"""``aws-ce://`` end to end against moto in server mode (Cost Explorer results queued via its API).

moto answers GetCostAndUsage with results queued through ``/moto-api/static/ce/cost-and-usage-
results``: each distinct request body takes the next queued result (so page 2, whose body carries
the NextPageToken, gets the second), the same body gets the same result again [PF §2.8]. The
server is the S3 tests' moto fixture; each test resets moto first.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from costflow.cli import main
from costflow.errors import ConfigError, SourceError
from costflow.providers import CATALOG
from costflow.providers.aws import cost_explorer_api as aws_ce
from costflow.sources.contract import PlanRequest, with_period
from costflow.warehouse import connect
from tests.test_s3_deliveries import s3_endpoint  # noqa: F401 - the shared moto server fixture

AWS_REQUEST = PlanRequest("aws", None, CATALOG)  # a planner call restricted to aws

PAYER = "999988887777"
STS_ACCOUNT = "123456789012"   # what moto's STS GetCallerIdentity answers
APP, DATA = "111122223333", "444455556666"
EC2, S3, TAX = "Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service", "Tax"
OTHER = ("BlendedCost", "NetUnblendedCost", "NetAmortizedCost")


def _group(account: str, service: str, unblended: str, amortized: str) -> dict:
    """One group exactly as GetCostAndUsage returns it: every metric, Amounts as strings."""
    usd = lambda amount: {"Amount": amount, "Unit": "USD"}  # noqa: E731
    return {"Keys": [account, service], "Metrics": {
        "UnblendedCost": usd(unblended), "AmortizedCost": usd(amortized),
        **{m: usd(unblended) for m in OTHER},
        "UsageQuantity": {"Amount": "744.0000000012", "Unit": "N/A"},
        "NormalizedUsageAmount": {"Amount": "2976", "Unit": "N/A"}}}


def _day(day: date, groups: list[dict], estimated: bool = False) -> dict:
    return {"TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(1)).isoformat()},
            "Total": {}, "Groups": groups, "Estimated": estimated}


def _month(first: date, days: int, scale: int) -> list[dict]:
    """Days of a month: EC2 and S3 in two accounts, tax on the 1st; amounts with 10 decimals."""
    out = []
    for i in range(days):
        day = first + timedelta(i)
        groups = [_group(APP, EC2, f"{scale * (i + 1)}.1234567891", f"{scale * (i + 1)}.2"),
                  _group(DATA, S3, f"0.{i + 1:08d}", f"0.{i + 1:08d}")]
        if i == 0:
            groups.append(_group(APP, TAX, "7.35", "7.35"))
        out.append(_day(day, groups, estimated=i >= days - 2))
    return out


ATTRIBUTES = [{"Value": APP, "Attributes": {"description": "app-prod"}},
              {"Value": DATA, "Attributes": {"description": "data-lake"}}]
DEFINITIONS = [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
               {"Type": "DIMENSION", "Key": "SERVICE"}]


def _pages(results: list[dict], split: int) -> list[dict]:
    """The answer in two pages, the first carrying a NextPageToken."""
    first = {"ResultsByTime": results[:split], "GroupDefinitions": DEFINITIONS,
             "DimensionValueAttributes": ATTRIBUTES, "NextPageToken": "eyJwYWdlIjoyfQ=="}
    second = {"ResultsByTime": results[split:], "GroupDefinitions": DEFINITIONS,
              "DimensionValueAttributes": ATTRIBUTES}
    return [first, second]


def _totals(results: list[dict]) -> tuple[Decimal, Decimal, int]:
    groups = [g for r in results for g in r["Groups"]]
    return (sum(Decimal(g["Metrics"]["UnblendedCost"]["Amount"]) for g in groups),
            sum(Decimal(g["Metrics"]["AmortizedCost"]["Amount"]) for g in groups), len(groups))


class MotoCe:
    """Queue GetCostAndUsage results on the moto server, or forget everything it holds."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{self.endpoint}/moto-api/reset", method="POST")).read()

    def __call__(self, *answers: dict) -> None:
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/static/ce/cost-and-usage-results", method="POST",
            data=json.dumps({"results": list(answers)}).encode(),
            headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(req).status == 201


@pytest.fixture
def ce(s3_endpoint, monkeypatch, tmp_path):  # noqa: F811 - the imported fixture
    """moto reset, credentials and the CE endpoint set; calling it queues results."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"),
                        (aws_ce.ENDPOINT_ENV, s3_endpoint)):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # the answer cache (.costflow/cache/aws-ce) goes here
    moto = MotoCe(s3_endpoint)
    moto.reset()
    return moto


def _rows(tmp_path: Path, sql: str) -> list[dict]:
    wh = connect(f"duckdb:///{tmp_path}/w.duckdb")
    try:
        return wh.query(sql).to_pylist()
    finally:
        wh.close()


SLICE = """
SELECT BillingAccountId AS account, FORMAT_TIMESTAMP('%Y-%m-%d', BillingPeriodStart) AS period,
       SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, COUNT(*) AS n
FROM cost_analytics.cost_line_items GROUP BY 1, 2 ORDER BY 1, 2
"""
OCT = "aws-ce://{payer}?start=2024-10-01&end=2024-11-01"


def test_two_page_answer_loads_every_group_exactly(ce, tmp_path, ingest):
    october = _month(date(2024, 10, 1), 31, 1)
    ce(*_pages(october, 20))
    report = ingest(OCT.format(payer=PAYER), provider="aws")
    assert report["status"] == "succeeded"
    billed, effective, n = _totals(october)
    assert n == 63
    assert _rows(tmp_path, SLICE) == [{"account": PAYER, "period": "2024-10-01",
                                       "billed": billed, "effective": effective, "n": 63}]
    # EC2 496 + 31 x 0.1234567891, tax 7.35, S3 496 x 0.00000001.
    assert billed == Decimal("507.1771654221")
    assert all(s["reconciled"] is True and s["difference"] == "0" for s in report["slices"])
    (ec2,) = _rows(tmp_path, """
        SELECT * FROM cost_analytics.cost_line_items
        WHERE ServiceName = 'Amazon Elastic Compute Cloud - Compute'
          AND ChargePeriodStart = TIMESTAMP '2024-10-31 00:00:00+00'""")
    assert (ec2["BilledCost"], ec2["EffectiveCost"], ec2["ListCost"]) == (
        Decimal("31.1234567891"), Decimal("31.2"), Decimal("31.1234567891"))
    assert (ec2["SubAccountId"], ec2["SubAccountName"], ec2["BillingCurrency"]) == (
        APP, "app-prod", "USD")
    assert (ec2["ServiceCategory"], ec2["ServiceSubcategory"], ec2["x_ServiceCode"]) == (
        "Compute", "Virtual Machines", "AmazonEC2")
    assert ec2["ChargePeriodEnd"].isoformat() == "2024-11-01T00:00:00+00:00"
    assert ec2["BillingPeriodEnd"].isoformat() == "2024-11-01T00:00:00+00:00"
    assert json.loads(ec2["x_DataQualityFlags"]) == [
        "aggregated:cost_explorer", "estimated:cost_explorer", "ListCost:from_BilledCost",
        "ContractedCost:from_BilledCost"]
    assert json.loads(ec2["x_ProviderMetrics"]) == {
        **{m: "31.1234567891" for m in OTHER}, **{f"{m}Unit": "USD" for m in OTHER},
        "UsageQuantity": "744.0000000012", "UsageQuantityUnit": "N/A",
        "NormalizedUsageAmount": "2976", "NormalizedUsageAmountUnit": "N/A"}
    (tax,) = _rows(tmp_path, "SELECT ChargeCategory, PricingCategory, BilledCost FROM "
                             "cost_analytics.cost_line_items WHERE ServiceName = 'Tax'")
    assert tax == {"ChargeCategory": "Tax", "PricingCategory": None, "BilledCost": Decimal("7.35")}
    assert any("63 daily rows" in w and "2 page(s)" in w for w in report["warnings"])


def test_refetch_of_a_month_replaces_it_and_an_identical_answer_is_skipped(ce, tmp_path, ingest):
    ce(*_pages(_month(date(2024, 10, 1), 31, 1), 20))
    source = OCT.format(payer=PAYER)
    assert ingest(source, provider="aws")["status"] == "succeeded"
    before = _rows(tmp_path, SLICE)
    again = ingest(source, provider="aws")  # moto gives the same body the same answer
    assert again["status"] == "skipped" and _rows(tmp_path, SLICE) == before
    # Cost Explorer restates October (amounts changed, a day fewer in the answer).
    restated = _month(date(2024, 10, 1), 30, 3)
    ce.reset()
    ce(*_pages(restated, 10))
    assert ingest(source, provider="aws")["status"] == "succeeded"
    billed, effective, n = _totals(restated)
    assert _rows(tmp_path, SLICE) == [{"account": PAYER, "period": "2024-10-01",
                                       "billed": billed, "effective": effective, "n": n}]


def test_cli_period_flags_and_the_callers_account_as_payer(ce, tmp_path, capsys):
    ce({"ResultsByTime": _month(date(2024, 10, 1), 3, 2), "GroupDefinitions": DEFINITIONS,
        "DimensionValueAttributes": ATTRIBUTES})
    code = main(["ingest", "--provider", "aws", "--source", "aws-ce://", "--start", "2024-10-01",
                 "--end", "2024-11-01", f"--warehouse=duckdb:///{tmp_path}/w.duckdb",
                 f"--staging_dir={tmp_path}/staging", f"--report_dir={tmp_path}/runs"])
    assert code == 0, capsys.readouterr().err
    assert [(r["account"], r["n"]) for r in _rows(tmp_path, SLICE)] == [(STS_ACCOUNT, 7)]


def test_part_of_a_month_is_widened_to_whole_months():
    spec = aws_ce.parse_uri("aws-ce://?start=2024-10-15&end=2024-12-03", today=date(2025, 1, 5))
    assert (spec.start, spec.end, spec.widened) == (date(2024, 10, 1), date(2025, 1, 1), True)
    # The current month ends tomorrow: Cost Explorer has nothing later.
    spec = aws_ce.parse_uri("aws-ce://?start=2024-11-01&end=2024-12-01", today=date(2024, 11, 20))
    assert (spec.end, spec.widened) == (date(2024, 11, 21), True)
    assert aws_ce.request(spec) == {
        "TimePeriod": {"Start": "2024-11-01", "End": "2024-11-21"}, "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "AmortizedCost", "BlendedCost", "NetUnblendedCost",
                    "NetAmortizedCost", "UsageQuantity", "NormalizedUsageAmount"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                    {"Type": "DIMENSION", "Key": "SERVICE"}]}


@pytest.mark.parametrize("uri, message", [
    ("aws-ce://", "give the period with --start and --end"),
    ("aws-ce://12345?start=2024-10-01&end=2024-11-01", "12 digits"),
    ("aws-ce://?start=2024-11-01&end=2024-10-01", "--end must be after --start"),
])
def test_bad_uris_are_config_errors(uri, message):
    with pytest.raises(ConfigError, match=message):
        aws_ce.parse_uri(uri)


def test_with_period_appends_to_api_sources_only():
    start, end = date(2026, 10, 1), date(2026, 11, 1)
    api = CATALOG.period_schemes
    assert with_period("aws-ce://", start, end, api) == "aws-ce://?start=2026-10-01&end=2026-11-01"
    assert with_period("azure-query://subscriptions/x?group=A", start, end, api) == \
        "azure-query://subscriptions/x?group=A&start=2026-10-01&end=2026-11-01"
    assert with_period("s3://b/cur/", start, end, api) == "s3://b/cur/"


def test_a_refused_query_names_the_source(ce, tmp_path):
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ce", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "AccessDeniedException",
                              "User is not authorized to perform: ce:GetCostAndUsage")
        with pytest.raises(SourceError, match="AccessDeniedException: User is not authorized"):
            aws_ce.plan_ce(OCT.format(payer=PAYER), AWS_REQUEST, client=client,
                           cache_dir=str(tmp_path))
