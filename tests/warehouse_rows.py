"""Small hand-made staged runs for the warehouse tests: rows that look like normalized AWS CUR.

A test describes only what it cares about (slice, cost, service); everything else is filled with
the values a real legacy CUR row of an EC2 instance-hour normalizes to. Files are written with the
very schemas the pipeline writes (`arrow_schema(COST_LINE_ITEMS)` / `arrow_schema(DEAD_LETTERS)`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from costflow.reconcile import SliceKey, SliceStats
from costflow.schemas.columns import TableSpec
from costflow.schemas.focus import COST_LINE_ITEMS
from costflow.schemas.operational import DEAD_LETTERS
from costflow.schemas.render import arrow_schema
from costflow.warehouse.base import RunStart, StagedRun

ACCOUNT = "123412340534"
OTHER_ACCOUNT = "987698760021"
NOV = datetime(2023, 11, 1, tzinfo=UTC)
DEC = datetime(2023, 12, 1, tzinfo=UTC)
JAN = datetime(2024, 1, 1, tzinfo=UTC)
SOURCE = "s3://billing-exports/cur/costflow-cur/20231101-20231201/costflow-cur-00001.csv.gz"
EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"


def cost_row(cost: str, *, account: str = ACCOUNT, period: datetime = NOV,
             charge_start: datetime | None = None, service: str = EC2, row_number: int = 1,
             currency: str = "USD", sub_account: str = ACCOUNT, region: str = "us-east-1",
             source_uri: str = SOURCE, **overrides: Any) -> dict[str, Any]:
    """One normalized CUR line item; BilledCost = EffectiveCost = ContractedCost = ``cost``."""
    start = charge_start or period + timedelta(days=4, hours=10)
    money = Decimal(cost)
    is_ec2 = service == EC2
    row: dict[str, Any] = {name: None for name in COST_LINE_ITEMS.names}
    row.update({
        "AvailabilityZone": f"{region}a",
        "BilledCost": money, "EffectiveCost": money, "ContractedCost": money, "ListCost": money,
        "BillingAccountId": account, "BillingAccountType": "Billing Account",
        "BillingCurrency": currency,
        "BillingPeriodStart": period, "BillingPeriodEnd": _next_month(period),
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "ChargeDescription": ("$0.0052 per On Demand Linux t3.nano Instance Hour" if is_ec2
                              else "$0.023 per GB - first 50 TB / month of storage used"),
        "ChargePeriodStart": start, "ChargePeriodEnd": start + timedelta(hours=1),
        "ConsumedQuantity": Decimal("1"), "ConsumedUnit": "Hrs" if is_ec2 else "GB-Mo",
        "PricingQuantity": Decimal("1"), "PricingUnit": "Hrs" if is_ec2 else "GB-Mo",
        "PricingCategory": "Standard",
        "InvoiceIssuerName": "AWS", "ProviderName": "AWS", "PublisherName": "AWS",
        "HostProviderName": "AWS", "ServiceProviderName": "AWS",
        "RegionId": region, "RegionName": "US East (N. Virginia)",
        "ResourceId": "i-0a1b2c3d4e5f60718" if is_ec2 else "arn:aws:s3:::costflow-logs",
        "ServiceCategory": "Compute" if is_ec2 else "Storage",
        "ServiceSubcategory": "Virtual Machines" if is_ec2 else "Object Storage",
        "ServiceName": service,
        "SkuId": "DQ578CGN99KG6ECF" if is_ec2 else "WP9ANXZGBYYSGJEA",
        "SubAccountId": sub_account, "SubAccountType": "Linked Account",
        "Tags": json.dumps({"user:team": "data-platform"}),
        "x_SourceProvider": "aws", "x_SourceFormat": "aws_cur_legacy_csv",
        "x_SourceUri": source_uri, "x_SourceRowNumber": row_number,
        "x_RunId": "unset", "x_IngestedAt": datetime(2023, 12, 3, 6, 0, tzinfo=UTC),
        "x_ServiceCode": "AmazonEC2" if is_ec2 else "AmazonS3",
        "x_UsageType": "BoxUsage:t3.nano" if is_ec2 else "TimedStorage-ByteHrs",
        "x_Operation": "RunInstances" if is_ec2 else "StandardStorage",
        "x_LineItemType": "Usage", "x_InvoicingEntity": "Amazon Web Services, Inc.",
        "x_BillingEntity": "AWS", "x_DataQualityFlags": "[]",
    })
    row.update(overrides)
    return row


def dead_letter(source_cost: str | None, *, account: str | None = ACCOUNT,
                period: datetime | None = NOV, row_number: int = 99,
                source_uri: str = SOURCE) -> dict[str, Any]:
    """One dead-lettered CUR row (its UsageStartDate could not be parsed)."""
    raw = {"lineItem/UsageAccountId": account or "", "lineItem/UsageStartDate": "2023-11-3x",
           "lineItem/UnblendedCost": source_cost or "n/a"}
    return {
        "x_SourceProvider": "aws", "x_SourceFormat": "aws_cur_legacy_csv",
        "x_SourceUri": source_uri, "x_SourceRowNumber": row_number, "x_RunId": "unset",
        "x_IngestedAt": datetime(2023, 12, 3, 6, 0, tzinfo=UTC),
        "BillingAccountId": account, "BillingPeriodStart": period,
        "ErrorColumn": "lineItem/UsageStartDate",
        "ErrorReason": "not an ISO 8601 timestamp; expected e.g. 2023-11-03T00:00:00Z",
        "SourceCost": Decimal(source_cost) if source_cost is not None else None,
        "RawRecord": json.dumps(raw),
    }


def write(spec: TableSpec, path: Path, rows: list[dict[str, Any]]) -> str:
    """Write ``rows`` as the pipeline does: a table cast to the declared schema."""
    schema = arrow_schema(spec)
    columns = {name: [r[name] for r in rows] for name in spec.names}
    table = pa.table(columns) if rows else schema.empty_table()
    pq.write_table(table.cast(schema), path)
    return str(path)


def expected_for(rows: Iterable[dict[str, Any]],
                 dead: Iterable[dict[str, Any]] = ()) -> dict[SliceKey, SliceStats]:
    """What the pipeline counts per slice for these rows and dead letters."""
    out: dict[SliceKey, SliceStats] = {}
    for r in rows:
        key = SliceKey("aws", r["BillingAccountId"], r["BillingPeriodStart"])
        s = out.setdefault(key, SliceStats())
        s.rows_read += 1
        s.rows_loaded += 1
        s.billed_cost += r["BilledCost"]
        s.source_basis += r["BilledCost"]
    for d in dead:
        key = SliceKey("aws", d["BillingAccountId"], d["BillingPeriodStart"])
        s = out.setdefault(key, SliceStats())
        s.rows_read += 1
        s.rows_dead_lettered += 1
        if d["SourceCost"] is not None:
            s.dead_lettered_cost += d["SourceCost"]
            s.source_basis += d["SourceCost"]
    return out


def stage(directory: Path, run_id: str, rows: list[dict[str, Any]],
          dead: list[dict[str, Any]] = (), source_uris: list[str] | None = None) -> StagedRun:
    """Stamp ``run_id`` on the rows and write one rows file and one dead-letters file."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "x_RunId": run_id} for r in rows]
    dead = [{**d, "x_RunId": run_id} for d in dead]
    uris = sorted({r["x_SourceUri"] for r in rows} | {d["x_SourceUri"] for d in dead})
    return StagedRun(
        run_id=run_id,
        row_files=[write(COST_LINE_ITEMS, directory / f"{run_id}-rows.parquet", rows)],
        dead_letter_files=[write(DEAD_LETTERS, directory / f"{run_id}-dead.parquet", dead)],
        source_uris=uris if source_uris is None else source_uris,
    )


def run_start(run_id: str) -> RunStart:
    """The ledger entry a CLI ingest of the CUR sample would open."""
    return RunStart(run_id=run_id, started_at=datetime(2023, 12, 3, 6, 0, tzinfo=UTC),
                    provider="aws", source_format="aws_cur_legacy_csv",
                    sources=[{"uri": SOURCE, "size_bytes": 48213, "sha256": "ab" * 32,
                              "format": "aws_cur_legacy_csv"}])


def _next_month(period: datetime) -> datetime:
    return (period.replace(day=28) + timedelta(days=4)).replace(day=1)
