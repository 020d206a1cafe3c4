"""A small multi-cloud warehouse for the query-service tests, with every total known by hand.

Rows look like what the normalizers write: AWS legacy CUR line items (tests.warehouse_rows),
GCP billing export rows (project IDs as sub accounts, labels in Tags, ``Google Cloud`` as
ProviderName) and Azure rows billed in EUR. They are inserted straight into cost_line_items
(the query side does not care how they got there); recommendations look like a GCP Recommender
MachineTypeRecommender record and an AWS Compute Optimizer EC2 finding.

Hand-computed totals (November 2026, BilledCost):
    aws  USD  acct 111111111111 / 111111111111  EC2  us-east-1  team=web     10.00 (2 rows)
    aws  USD  acct 111111111111 / 222222222222  S3   us-west-2  team=data     2.50
    gcp  USD  billing 01A2B3-C4D5E6-F7A8B9 / acme-web   Compute Engine  us-central1 team=web 4.25
    gcp  USD  billing 01A2B3-C4D5E6-F7A8B9 / acme-data  BigQuery        US          (no tag) 1.75
    azure EUR billing 8f1c...-e2 / sub-az-1  Virtual Machines  westeurope  team=web  7.00
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.operational import RECOMMENDATIONS
from costflow.schemas.render import arrow_schema
from costflow.warehouse.duckdb_engine import DuckDBWarehouse
from tests.warehouse_rows import EC2, S3, cost_row

AWS_ACCT, AWS_SUB = "111111111111", "222222222222"
GCP_BILLING = "01A2B3-C4D5E6-F7A8B9"
AZ_BILLING = "8f1c2d3e-0000-4000-8000-0000000000e2"
NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
NOV_D, DEC_D = date(2026, 11, 1), date(2026, 12, 1)


def gcp_row(cost: str, project: str, service: str, region: str, day: int,
            labels: dict[str, str], unit: str = "hour", **overrides: Any) -> dict[str, Any]:
    """A GCP billing export row as the GCP normalizer would write it."""
    start = NOV + timedelta(days=day - 1, hours=3)
    return cost_row(cost, account=GCP_BILLING, sub_account=project, period=NOV,
                    charge_start=start, service=service, region=region,
                    ProviderName="Google Cloud", InvoiceIssuerName="Google",
                    PublisherName="Google", HostProviderName="Google Cloud",
                    ServiceProviderName="Google Cloud", SubAccountType="Project",
                    ServiceCategory="Compute" if service == "Compute Engine" else "Databases",
                    ResourceId=f"//compute.googleapis.com/projects/{project}/zones/"
                               f"{region}-a/instances/web-1" if service == "Compute Engine"
                    else None,
                    ResourceType="Virtual Machine" if service == "Compute Engine" else None,
                    ConsumedUnit=unit, Tags=json.dumps(labels), x_SourceProvider="gcp",
                    x_SourceFormat="gcp_billing_export_standard", **overrides)


def azure_row(cost: str, day: int) -> dict[str, Any]:
    start = NOV + timedelta(days=day - 1, hours=5)
    return cost_row(cost, account=AZ_BILLING, sub_account="sub-az-1", period=NOV,
                    charge_start=start, service="Virtual Machines", region="westeurope",
                    currency="EUR", ProviderName="Microsoft", ServiceCategory="Compute",
                    ResourceId="/subscriptions/sub-az-1/resourcegroups/rg/providers/"
                               "microsoft.compute/virtualmachines/vm-web",
                    ResourceType="Virtual Machine", Tags=json.dumps({"team": "web"}),
                    x_SourceProvider="azure", x_SourceFormat="azure_focus_csv")


ROWS = [
    cost_row("6.00", account=AWS_ACCT, sub_account=AWS_ACCT, period=NOV,
             charge_start=NOV + timedelta(days=2), Tags=json.dumps({"team": "web"}),
             ResourceType="Virtual Machine", EffectiveCost=Decimal("5.00")),
    cost_row("4.00", account=AWS_ACCT, sub_account=AWS_ACCT, period=NOV,
             charge_start=NOV + timedelta(days=3), Tags=json.dumps({"team": "web"}),
             ResourceType="Virtual Machine", EffectiveCost=Decimal("3.00")),
    cost_row("2.50", account=AWS_ACCT, sub_account=AWS_SUB, period=NOV, service=S3,
             region="us-west-2", charge_start=NOV + timedelta(days=2),
             Tags=json.dumps({"team": "data"})),
    gcp_row("4.25", "acme-web", "Compute Engine", "us-central1", 3, {"team": "web"}),
    gcp_row("1.75", "acme-data", "BigQuery", "US", 20, {}, unit="tebibyte"),
    azure_row("7.00", 4),
    # December: outside every November query.
    cost_row("100.00", account=AWS_ACCT, sub_account=AWS_ACCT, period=DEC,
             charge_start=DEC + timedelta(hours=1)),
]
assert ROWS[0]["ServiceName"] == EC2


def insert(warehouse: DuckDBWarehouse, rows: list[dict[str, Any]],
           spec: Any = COST_LINE_ITEMS, replace: bool = False) -> None:
    """Insert rows (declared schema) into a table of the warehouse."""
    schema = arrow_schema(spec)
    table = pa.table({n: [r.get(n) for r in rows] for n in spec.names}).cast(schema)
    with warehouse.connection() as con:
        if replace:
            con.execute(f"DELETE FROM cost_analytics.{spec.name}")
        con.register("incoming", table)
        con.execute(f"INSERT INTO cost_analytics.{spec.name} BY NAME SELECT * FROM incoming")


def recommendation(**values: Any) -> dict[str, Any]:
    row = {n: None for n in RECOMMENDATIONS.names}
    row.update({"state": "active", "x_RunId": "run-rec-1",
                "x_IngestedAt": datetime(2026, 11, 20, 6, tzinfo=UTC)})
    row.update(values)
    return row


RECOMMENDATION_ROWS = [
    recommendation(
        recommendation_id="projects/481516234/locations/us-central1-a/recommenders/"
                          "google.compute.instance.MachineTypeRecommender/recommendations/"
                          "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
        x_SourceProvider="gcp", source="google.compute.instance.MachineTypeRecommender",
        category="compute", BillingAccountId=GCP_BILLING, SubAccountId="acme-web",
        RegionId="us-central1", ResourceId="//compute.googleapis.com/projects/acme-web/zones/"
                                           "us-central1-a/instances/web-1",
        ResourceName="web-1", ResourceType="Virtual Machine",
        description="Save cost by changing machine type from e2-standard-4 to e2-standard-2.",
        current_configuration="e2-standard-4", recommended_configuration="e2-standard-2",
        estimated_monthly_savings=Decimal("48.910000000"), savings_currency="USD",
        priority="P2", last_refreshed_at=datetime(2026, 11, 19, 8, tzinfo=UTC),
        details=json.dumps({"recommenderSubtype": "CHANGE_MACHINE_TYPE",
                            "primaryImpact": {"category": "COST", "costProjection": {
                                "cost": {"currencyCode": "USD", "units": "-48",
                                         "nanos": -910000000}, "duration": "2592000s"}}})),
    recommendation(
        recommendation_id="arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60718"
                          "#option-1",
        x_SourceProvider="aws", source="aws.compute_optimizer.ec2", category="compute",
        BillingAccountId=AWS_ACCT, SubAccountId=AWS_ACCT, RegionId="us-east-1",
        ResourceId="i-0a1b2c3d4e5f60718", ResourceName="web-frontend",
        ResourceType="Virtual Machine", description="Overprovisioned: downsize to t3.micro.",
        current_configuration="t3.large", recommended_configuration="t3.micro",
        estimated_monthly_savings=Decimal("52.56"), savings_currency="USD", priority="High",
        last_refreshed_at=datetime(2026, 11, 18, tzinfo=UTC),
        details=json.dumps({"finding": "OVER_PROVISIONED",
                            "findingReasonCodes": ["CPUOverprovisioned"]})),
    recommendation(
        recommendation_id="arn:aws:s3:::acme-logs#lifecycle", x_SourceProvider="aws",
        source="aws.cost_optimization_hub", category="storage", BillingAccountId=AWS_ACCT,
        SubAccountId=AWS_SUB, ResourceId="arn:aws:s3:::acme-logs", ResourceType="Bucket",
        description="Move objects older than 30 days to S3 Glacier Instant Retrieval.",
        estimated_monthly_savings=Decimal("3.20"), savings_currency="USD"),
    recommendation(
        recommendation_id="arn:aws:ec2:us-east-1:111111111111:instance/i-0dismissed#option-1",
        x_SourceProvider="aws", source="aws.compute_optimizer.ec2", category="compute",
        BillingAccountId=AWS_ACCT, SubAccountId=AWS_ACCT, state="dismissed",
        description="Downsize to t3.small.", estimated_monthly_savings=Decimal("9.00"),
        savings_currency="USD"),
]


def build(path: Any) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(path)
    warehouse.ensure_schema()
    insert(warehouse, ROWS)
    insert(warehouse, RECOMMENDATION_ROWS, RECOMMENDATIONS)
    return warehouse
