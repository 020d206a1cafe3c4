"""What a synthetic AWS legacy CUR is made of: its columns and a catalog of priced products.

The column list is the real anonymized sample's header (``../shared/samples/aws/
cur_legacy_anonymous.csv``, 94 columns, same order) plus the columns a report with resource IDs,
reservations, Savings Plans and cost-allocation tags also carries, each inserted where AWS puts it
(categories in order, names in ASCII order inside ``product/``, ``pricing/`` and
``reservation/``; Savings Plan extras after the sample's own ``savingsPlan/`` columns; tags last).

The catalog lists products as AWS prices them in the public price list (usage types, operations,
units, on-demand rates in USD, descriptions), and expands each over the regions used, applying
AWS's naming: ``us-east-1`` usage types carry no region prefix (``BoxUsage:m5.large``), other
regions do (``USW2-BoxUsage:m5.large``), inter-region transfer always does
(``USE1-CAN1-AWS-Out-Bytes``), as the real sample shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from costflow.samples.csv_text import csv_escape, java_number_strings

SAMPLE_COLUMNS: tuple[str, ...] = (
    "identity/LineItemId", "identity/TimeInterval", "bill/InvoiceId", "bill/InvoicingEntity",
    "bill/BillingEntity", "bill/BillType", "bill/PayerAccountId", "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate", "lineItem/UsageAccountId", "lineItem/LineItemType",
    "lineItem/UsageStartDate", "lineItem/UsageEndDate", "lineItem/ProductCode",
    "lineItem/UsageType", "lineItem/Operation", "lineItem/AvailabilityZone", "lineItem/UsageAmount",
    "lineItem/NormalizationFactor", "lineItem/NormalizedUsageAmount", "lineItem/CurrencyCode",
    "lineItem/UnblendedRate", "lineItem/UnblendedCost", "lineItem/BlendedRate",
    "lineItem/BlendedCost", "lineItem/LineItemDescription", "lineItem/TaxType",
    "lineItem/LegalEntity", "product/ProductName", "product/availability", "product/durability",
    "product/eventType", "product/feeCode", "product/feeDescription", "product/fromLocation",
    "product/fromLocationType", "product/fromRegionCode", "product/group",
    "product/groupDescription", "product/location", "product/locationType",
    "product/messageDeliveryFrequency", "product/messageDeliveryOrder", "product/operation",
    "product/overhead", "product/productFamily", "product/productType", "product/queueType",
    "product/region", "product/regionCode", "product/servicecode", "product/servicename",
    "product/sku", "product/storageClass", "product/storageMedia", "product/toLocation",
    "product/toLocationType", "product/toRegionCode", "product/transferType", "product/usagetype",
    "product/version", "product/volumeType", "pricing/RateCode", "pricing/RateId",
    "pricing/currency", "pricing/publicOnDemandCost", "pricing/publicOnDemandRate", "pricing/term",
    "pricing/unit", "reservation/AmortizedUpfrontCostForUsage",
    "reservation/AmortizedUpfrontFeeForBillingPeriod", "reservation/EffectiveCost",
    "reservation/EndTime", "reservation/ModificationStatus",
    "reservation/NormalizedUnitsPerReservation", "reservation/NumberOfReservations",
    "reservation/RecurringFeeForUsage", "reservation/StartTime", "reservation/SubscriptionId",
    "reservation/TotalReservedNormalizedUnits", "reservation/TotalReservedUnits",
    "reservation/UnitsPerReservation", "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedNormalizedUnitQuantity", "reservation/UnusedQuantity",
    "reservation/UnusedRecurringFee", "reservation/UpfrontValue",
    "savingsPlan/TotalCommitmentToDate", "savingsPlan/SavingsPlanARN",
    "savingsPlan/SavingsPlanRate", "savingsPlan/UsedCommitment",
    "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod",
    "savingsPlan/RecurringCommitmentForBillingPeriod",
)

TAG_COLUMNS = ("resourceTags/aws:createdBy", "resourceTags/user:CostCenter",
               "resourceTags/user:Environment", "resourceTags/user:Team")

# extra column -> the sample column it follows (None: appended at the end).
_EXTRA_AFTER: tuple[tuple[str, str | None], ...] = (
    ("lineItem/ResourceId", "lineItem/AvailabilityZone"),
    ("product/instanceType", "product/groupDescription"),
    ("pricing/LeaseContractLength", "product/volumeType"),
    ("pricing/OfferingClass", "pricing/LeaseContractLength"),
    ("pricing/purchaseOption", "pricing/publicOnDemandRate"),
    ("reservation/ReservationARN", "reservation/RecurringFeeForUsage"),
    ("savingsPlan/StartTime", "savingsPlan/RecurringCommitmentForBillingPeriod"),
    ("savingsPlan/EndTime", "savingsPlan/StartTime"),
    ("savingsPlan/OfferingType", "savingsPlan/EndTime"),
    ("savingsPlan/PaymentOption", "savingsPlan/OfferingType"),
    ("savingsPlan/PurchaseTerm", "savingsPlan/PaymentOption"),
    *((tag, None) for tag in TAG_COLUMNS),
)


def _columns() -> tuple[str, ...]:
    columns = list(SAMPLE_COLUMNS)
    for name, after in _EXTRA_AFTER:
        columns.insert(len(columns) if after is None else columns.index(after) + 1, name)
    return tuple(columns)


CUR_COLUMNS = _columns()

# region code, usage-type prefix, price-list location name, share of usage, price multiplier.
REGIONS: tuple[tuple[str, str, str, float, str], ...] = (
    ("us-east-1", "USE1", "US East (N. Virginia)", 0.45, "1"),
    ("us-west-2", "USW2", "US West (Oregon)", 0.25, "1"),
    ("eu-west-1", "EU", "EU (Ireland)", 0.15, "1.1"),
    ("ca-central-1", "CAN1", "Canada (Central)", 0.15, "1.1"),
)
# Where inter-region transfer from each region goes (destination region code).
_TRANSFER_TO = {"us-east-1": "ca-central-1", "us-west-2": "us-east-1",
                "eu-west-1": "us-east-1", "ca-central-1": "us-east-1"}

# Usage amount models (how much of the unit one hourly row carries).
HOURS, GB_MONTH, GB, REQUESTS, GB_SECONDS, PER_MONTH, VCPU_HOURS = range(7)

_EC2 = ("AmazonEC2", "Amazon Elastic Compute Cloud")
_DT = {"product/servicecode": "AWSDataTransfer", "product/servicename": "AWS Data Transfer"}
_S3_STD = {"product/storageClass": "General Purpose", "product/volumeType": "Standard",
           "product/availability": "99.99%", "product/durability": "99.999999999%"}
_SQS = {"product/messageDeliveryFrequency": "At Least Once",
        "product/messageDeliveryOrder": "Not Guaranteed", "product/queueType": "Standard",
        "product/group": "SQS-APIRequest-Tier1", "product/groupDescription": "Amazon SQS Requests"}


@dataclass(frozen=True)
class Sku:
    """One priced product as the AWS price list describes it (region-independent)."""

    code: str                 # lineItem/ProductCode
    name: str                 # product/ProductName
    usage_type: str           # {r}: region prefix except us-east-1; {R}: always; {D}: destination
    operation: str
    unit: str                 # pricing/unit
    rate: str                 # us-east-1 public on-demand rate, USD per unit
    family: str               # product/productFamily
    description: str          # {rate}, {rate_k} (x1000), {rate_m} (x1e6), {loc}, {dloc}
    amount: int               # usage amount model
    resource: str = ""        # resource id kind ("" = no resource id)
    weight: float = 1.0       # relative share of usage rows
    extra: tuple[tuple[str, str], ...] = ()
    zonal: bool = False       # rows carry an availability zone
    sp: float = 0.0           # Compute Savings Plan discount (0 = not covered)
    tagged: bool = True       # resources carry cost-allocation tags
    norm: str = ""            # lineItem/NormalizationFactor (EC2 instance sizes)
    regional: bool = True     # False: one global template (Route 53, CloudWatch dashboards)


def _ec2(itype: str, rate: str, norm: str, weight: float, os_: str = "Linux",
         op: str = "RunInstances") -> Sku:
    return Sku(*_EC2, f"{{r}}BoxUsage:{itype}", op, "Hrs", rate, "Compute Instance",
               f"${{rate}} per On Demand {os_} {itype} Instance Hour", HOURS, "i", weight,
               (("product/instanceType", itype),), zonal=True, sp=0.28, norm=norm)


SKUS: tuple[Sku, ...] = (
    _ec2("m5.large", "0.096", "4", 9), _ec2("c5.xlarge", "0.17", "8", 6),
    _ec2("r5.2xlarge", "0.504", "16", 3), _ec2("t3.medium", "0.0416", "2", 6),
    _ec2("m6g.large", "0.077", "4", 3), _ec2("m5.xlarge", "0.384", "8", 2, "Windows",
                                             "RunInstances:0002"),
    Sku(*_EC2, "{r}EBS:VolumeUsage.gp3", "CreateVolume-Gp3", "GB-Mo", "0.08", "Storage",
        "${rate} per GB-month of General Purpose (gp3) provisioned storage - {loc}", GB_MONTH,
        "vol", 6, (("product/volumeType", "General Purpose"),
                   ("product/storageMedia", "SSD-backed")), zonal=True),
    Sku(*_EC2, "{r}EBS:SnapshotUsage", "CreateSnapshot", "GB-Mo", "0.05", "Storage Snapshot",
        "${rate} per GB-Month of snapshot data stored - {loc}", GB_MONTH, "snap", 2,
        (("product/storageMedia", "Amazon S3"),)),
    Sku(*_EC2, "{r}NatGateway-Hours", "NatGateway", "Hrs", "0.045", "NAT Gateway",
        "${rate} per NAT Gateway Hour", HOURS, "nat", 2),
    Sku(*_EC2, "{r}NatGateway-Bytes", "NatGateway", "GB", "0.045", "NAT Gateway",
        "${rate} per GB Data Processed by NAT Gateways", GB, "nat", 2),
    Sku(*_EC2, "{r}DataTransfer-Out-Bytes", "RunInstances", "GB", "0.09", "Data Transfer",
        "${rate} per GB - first 10 TB / month data transfer out beyond the global free tier",
        GB, "i", 4, (*_DT.items(), ("product/toLocation", "External"),
                     ("product/toLocationType", "Other"),
                     ("product/transferType", "AWS Outbound"))),
    Sku(*_EC2, "{r}DataTransfer-Regional-Bytes", "InterZone-In", "GB", "0.01", "Data Transfer",
        "${rate} per GB - regional data transfer - in/out/between EC2 AZs or using elastic IPs"
        " or ELB", GB, "i", 3, (*_DT.items(), ("product/transferType", "IntraRegion"))),
    Sku("AmazonVPC", "Amazon Virtual Private Cloud", "{r}PublicIPv4:InUseAddress",
        "AssociateAddressVPC", "Hrs", "0.005", "VPC Public IPv4 Address",
        "${rate} per In-use public IPv4 address per hour", HOURS, "eip", 2),
    Sku("AmazonS3", "Amazon Simple Storage Service", "{r}TimedStorage-ByteHrs",
        "StandardStorage", "GB-Mo", "0.023", "Storage",
        "${rate} per GB - first 50 TB / month of storage used", GB_MONTH, "bucket", 5,
        tuple(_S3_STD.items())),
    Sku("AmazonS3", "Amazon Simple Storage Service", "{r}Requests-Tier1", "PutObject",
        "Requests", "0.000005", "API Request",
        "${rate_k} per 1,000 PUT, COPY, POST, or LIST requests", REQUESTS, "bucket", 5,
        (("product/group", "S3-API-Tier1"),
         ("product/groupDescription", "PUT/COPY/POST or LIST requests"))),
    Sku("AmazonS3", "Amazon Simple Storage Service", "{r}Requests-Tier2", "GetObject",
        "Requests", "0.0000004", "API Request",
        "${rate_10k} per 10,000 GET and all other requests", REQUESTS, "bucket", 6,
        (("product/group", "S3-API-Tier2"),
         ("product/groupDescription", "GET and all other requests"))),
    Sku("AmazonS3", "Amazon Simple Storage Service", "{r}TimedStorage-GlacierByteHrs",
        "GlacierObjectOverhead", "GB-Mo", "0.0036", "Storage",
        "${rate} per GB / month of storage used - Amazon Glacier", GB_MONTH, "bucket", 1,
        (("product/storageClass", "Archive"), ("product/volumeType", "Amazon Glacier"),
         ("product/availability", "N/A"), ("product/durability", "99.999999999%"))),
    Sku("AmazonS3", "Amazon Simple Storage Service", "{R}-{D}-AWS-Out-Bytes", "GetObject",
        "GB", "0.02", "Data Transfer", "${rate} per GB - {loc} data transfer to {dloc}", GB,
        "bucket", 4, (*_DT.items(), ("product/transferType", "InterRegion Outbound"))),
    Sku("AmazonRDS", "Amazon Relational Database Service", "{r}InstanceUsage:db.r5.large",
        "CreateDBInstance:0014", "Hrs", "0.25", "Database Instance",
        "${rate} per RDS db.r5.large instance hour (or partial hour) running PostgreSQL",
        HOURS, "rds", 3, (("product/instanceType", "db.r5.large"),), zonal=True, norm="4"),
    Sku("AmazonRDS", "Amazon Relational Database Service", "{r}Multi-AZUsage:db.m5.large",
        "CreateDBInstance:0002", "Hrs", "0.342", "Database Instance",
        "${rate} per RDS db.m5.large Multi-AZ instance hour (or partial hour) running MySQL",
        HOURS, "rds", 2, (("product/instanceType", "db.m5.large"),), norm="4"),
    Sku("AmazonRDS", "Amazon Relational Database Service", "{r}RDS:GP3-Storage",
        "CreateDBInstance:0014", "GB-Mo", "0.115", "Database Storage",
        "${rate} per GB-month of provisioned GP3 storage running PostgreSQL", GB_MONTH, "rds",
        2),
    Sku("AWSLambda", "AWS Lambda", "{r}Lambda-GB-Second", "Invoke", "Lambda-GB-Second",
        "0.0000166667", "Serverless", "AWS Lambda - Total Compute - {loc}", GB_SECONDS,
        "lambda", 4, sp=0.12),
    Sku("AWSLambda", "AWS Lambda", "{r}Lambda-GB-Second-ARM", "Invoke", "Lambda-GB-Second",
        "0.0000133334", "Serverless", "AWS Lambda - Total Compute (Arm) - {loc}", GB_SECONDS,
        "lambda", 2, sp=0.12),
    Sku("AWSLambda", "AWS Lambda", "{r}Request", "Invoke", "Requests", "0.0000002",
        "Serverless", "AWS Lambda - Total Requests - {loc}", REQUESTS, "lambda", 3),
    Sku("AWSLambda", "AWS Lambda", "{r}Global-Lambda-GB-Second", "Invoke", "Lambda-GB-Second",
        "0.0", "Serverless", "AWS Lambda - Compute Free Tier - 400,000 GB-Seconds - {loc}",
        GB_SECONDS, "lambda", 1),
    Sku("AmazonCloudWatch", "AmazonCloudWatch", "{r}CW:MetricMonitorUsage", "MetricStorage",
        "Metrics", "0.3", "Metric", "${rate} per metric-month - first 10,000 metrics",
        PER_MONTH, "", 3, tagged=False),
    Sku("AmazonCloudWatch", "AmazonCloudWatch", "{r}DataProcessing-Bytes", "PutLogEvents",
        "GB", "0.5", "Data Payload", "${rate} per GB - data ingested for Standard logs", GB,
        "logs", 3),
    Sku("AmazonCloudWatch", "AmazonCloudWatch", "{r}TimedStorage-ByteHrs",
        "HourlyStorageMetering", "GB-Mo", "0.03", "Storage Snapshot",
        "${rate} per GB-mo of log storage", GB_MONTH, "logs", 2),
    Sku("AmazonCloudWatch", "AmazonCloudWatch", "{r}CW:Requests", "GetMetricData", "Requests",
        "0.0", "API Request", "$0.00 per request - first 1,000,000 requests", REQUESTS, "", 2,
        tagged=False),
    Sku("AmazonCloudWatch", "AmazonCloudWatch", "DashboardsUsageHour-Basic", "DashboardHour",
        "Dashboards", "0.0", "Dashboard", "First 3 Dashboards per month are free.", PER_MONTH,
        "", 1, tagged=False, regional=False),
    Sku("AmazonDynamoDB", "Amazon DynamoDB", "{r}ReadRequestUnits", "PayPerRequestThroughput",
        "ReadRequestUnits", "0.00000025", "Amazon DynamoDB PayPerRequest Throughput",
        "${rate_m} per million read request units", REQUESTS, "ddb", 3),
    Sku("AmazonDynamoDB", "Amazon DynamoDB", "{r}WriteRequestUnits", "PayPerRequestThroughput",
        "WriteRequestUnits", "0.00000125", "Amazon DynamoDB PayPerRequest Throughput",
        "${rate_m} per million write request units", REQUESTS, "ddb", 2),
    Sku("AmazonDynamoDB", "Amazon DynamoDB", "{r}TimedStorage-ByteHrs", "StandardStorage",
        "GB-Mo", "0.25", "Database Storage",
        "${rate} per GB-Month of storage used beyond first 25 free GB-Months", GB_MONTH, "ddb",
        2),
    Sku("AmazonEKS", "Amazon Elastic Container Service for Kubernetes",
        "{r}AmazonEKS-Hours:perCluster", "CreateOperation", "Hours", "0.1", "Compute",
        "Amazon EKS cluster usage in {loc}", HOURS, "eks", 1),
    Sku("AmazonECS", "Amazon Elastic Container Service", "{r}Fargate-vCPU-Hours:perCPU",
        "FargateTask", "hours", "0.04048", "Compute", "AWS Fargate - vCPU - {loc}",
        VCPU_HOURS, "ecs", 3, sp=0.2),
    Sku("AmazonECS", "Amazon Elastic Container Service", "{r}Fargate-GB-Hours", "FargateTask",
        "hours", "0.004445", "Compute", "AWS Fargate - Memory - {loc}", VCPU_HOURS, "ecs", 3,
        sp=0.2),
    Sku("AWSQueueService", "Amazon Simple Queue Service", "{r}Requests-Tier1", "ReceiveMessage",
        "Requests", "0.0000004", "API Request", "${rate_m} per 1,000,000 Amazon SQS Requests",
        REQUESTS, "sqs", 2, tuple(_SQS.items())),
    Sku("AWSQueueService", "Amazon Simple Queue Service", "{r}Requests-Tier1", "SendMessage",
        "Requests", "0.0", "API Request",
        "First 1,000,000 Amazon SQS Requests per month are free", REQUESTS, "sqs", 1,
        tuple(_SQS.items())),
    Sku("AmazonSNS", "Amazon Simple Notification Service", "{r}Requests-Tier1", "Publish",
        "Requests", "0.0000005", "API Request",
        "${rate_m} per 1,000,000 Amazon SNS API Requests", REQUESTS, "sns", 1,
        (("product/group", "SNS-Requests-Tier1"),
         ("product/groupDescription", "Amazon SNS API Requests"))),
    Sku("awskms", "AWS Key Management Service", "{region}-KMS-Keys", "CreateKey", "Keys", "1.0",
        "Encryption Key", "${rate} per customer managed KMS key version in {loc}", PER_MONTH,
        "kms", 1),
    Sku("awskms", "AWS Key Management Service", "{region}-KMS-Requests", "GenerateDataKey",
        "Requests", "0.000003", "API Request", "${rate_k} per 1,000 requests", REQUESTS,
        "kms", 2, (("product/group", "KMS-Requests"),
                   ("product/groupDescription", "All AWS KMS API requests"))),
    Sku("AWSSecretsManager", "AWS Secrets Manager", "{r}AWSSecretsManager-Secrets",
        "StorageSecret", "Secrets", "0.4", "Secret", "${rate} per secret per month",
        PER_MONTH, "secret", 1),
    Sku("AmazonRoute53", "Amazon Route 53", "DNS-Queries", "A", "Queries", "0.0000004",
        "DNS Query", "${rate_m} per 1,000,000 queries for the first 1 Billion queries",
        REQUESTS, "r53", 1, tagged=False, regional=False),
    Sku("AWSGlue", "AWS Glue", "{R}-Crawler-DPU-Hour", "CrawlerRun", "DPU-Hour", "0.44",
        "AWS Glue", "${rate} per DPU-Hour for each AWS Glue Crawler run", VCPU_HOURS, "glue",
        1),
)


def _plain(value: Decimal) -> str:
    """A price as the price list writes it in descriptions: $0.30, $0.0044, $1.25."""
    value = value.normalize()
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


def _sku_hash(*parts: str) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=16).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest)


@dataclass(frozen=True)
class Catalog:
    """The SKUs expanded over regions: one template per (SKU, region).

    Attributes:
        static: CUR column -> per-template CSV-escaped value (product, pricing, usage type...).
        code: per-template index into ``codes`` (lineItem/ProductCode).
        codes: distinct product codes.
        region: per-template index into `REGIONS` (-1 for global templates).
        rate_units: on-demand rate per template, in units of 1e-12 USD.
        amount: per-template usage amount model.
        weight: per-template share of usage rows.
        sp_discount: per-template Compute Savings Plan discount (0 = not covered).
        resource: per-template resource id kind.
        tagged, zonal: per-template flags.
        index: (product code, usage type, operation) -> template index.
    """

    static: dict[str, list[str]]
    code: np.ndarray
    codes: tuple[str, ...]
    names: tuple[str, ...]
    region: np.ndarray
    rate_units: np.ndarray
    amount: np.ndarray
    weight: np.ndarray
    sp_discount: np.ndarray
    resource: tuple[str, ...]
    tagged: np.ndarray
    zonal: np.ndarray
    index: dict[tuple[str, str, str], int]

    def __len__(self) -> int:
        return len(self.code)


def build_catalog() -> Catalog:
    """Expand `SKUS` over `REGIONS` into a `Catalog` (deterministic, seed-independent)."""
    rows: list[dict[str, str]] = []
    meta: list[tuple[Sku, int, Decimal]] = []
    location = {r[0]: r[2] for r in REGIONS}
    prefix = {r[0]: r[1] for r in REGIONS}
    for sku in SKUS:
        regions = list(enumerate(REGIONS)) if sku.regional else [(-1, ("", "", "Any", 1, "1"))]
        for ridx, (region, pfx, loc, _share, mult) in regions:
            rate = Decimal(sku.rate) * Decimal(mult)
            dest = _TRANSFER_TO.get(region, "")
            usage_type = sku.usage_type.format(
                r="" if region in ("us-east-1", "") else f"{pfx}-", R=pfx,
                D=prefix.get(dest, ""), region=region)
            desc = sku.description.format(
                rate=_plain(rate), rate_k=_plain(rate * 1000), rate_m=_plain(rate * 10**6),
                rate_10k=_plain(rate * 10**4), loc=loc, dloc=location.get(dest, ""))
            sku_id = _sku_hash(sku.code, usage_type, sku.operation, sku.description)
            row = {
                "lineItem/ProductCode": sku.code, "lineItem/UsageType": usage_type,
                "lineItem/Operation": sku.operation, "lineItem/LineItemDescription": desc,
                "lineItem/NormalizationFactor": sku.norm,
                "lineItem/NormalizedUsageAmount": sku.norm and f"{sku.norm}.0",
                "product/ProductName": sku.name, "product/productFamily": sku.family,
                "product/region": region or "global", "product/regionCode": region,
                "product/location": loc, "product/locationType": "AWS Region" if region else "",
                "product/servicecode": sku.code, "product/servicename": sku.name,
                "product/sku": sku_id, "product/usagetype": usage_type,
                "pricing/RateCode": f"{sku_id}.JRTCKXETXF.6YS6EN2CT7",
                "pricing/RateId": str(10**10 + int(sku_id.encode().hex(), 16) % (9 * 10**10)),
                "pricing/term": "OnDemand", "pricing/unit": sku.unit,
            }
            if "AWSDataTransfer" in dict(sku.extra).values():
                row.update({"product/fromLocation": loc, "product/fromLocationType": "AWS Region",
                            "product/fromRegionCode": region})
                if dest and "{D}" in sku.usage_type:
                    row.update({"product/toLocation": location[dest],
                                "product/toLocationType": "AWS Region",
                                "product/toRegionCode": dest})
            row.update(dict(sku.extra))
            rows.append(row)
            meta.append((sku, ridx, rate))
    columns = sorted({c for row in rows for c in row})
    static = {c: [csv_escape(row.get(c, "")) for row in rows] for c in columns}
    rate_units = np.array([int(rate * 10**12) for _, _, rate in meta], dtype=np.int64)
    rate_text = java_number_strings(rate_units, 12).to_pylist()
    for column in ("lineItem/UnblendedRate", "lineItem/BlendedRate",
                   "pricing/publicOnDemandRate"):
        static[column] = rate_text
    codes = tuple(dict.fromkeys(s.code for s, _, _ in meta))
    names = tuple(next(s.name for s, _, _ in meta if s.code == c) for c in codes)
    return Catalog(
        static=static,
        code=np.array([codes.index(s.code) for s, _, _ in meta], dtype=np.int64),
        codes=codes, names=names,
        region=np.array([r for _, r, _ in meta], dtype=np.int64),
        rate_units=rate_units,
        amount=np.array([s.amount for s, _, _ in meta], dtype=np.int64),
        weight=np.array([s.weight * (REGIONS[r][3] if r >= 0 else 1.0) for s, r, _ in meta]),
        sp_discount=np.array([s.sp for s, _, _ in meta]),
        resource=tuple(s.resource for s, _, _ in meta),
        tagged=np.array([s.tagged and bool(s.resource) for s, _, _ in meta]),
        zonal=np.array([s.zonal for s, _, _ in meta]),
        index={(row["lineItem/ProductCode"], row["lineItem/UsageType"],
                row["lineItem/Operation"]): i for i, row in enumerate(rows)},
    )
