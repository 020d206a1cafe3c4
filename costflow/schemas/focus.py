"""The unified cost schema: FOCUS 1.2 Cost and Usage columns, the 1.3 additions, and `x_` columns.

This is the one declaration of the `cost_line_items` table. Column facts (type, nullability,
allowed values, feature level, version introduced) follow `../shared/reference/focus_columns.md`,
which was parsed from the FOCUS_Spec repository (`specification/columns/*.md`, tag v1.2, plus the
1.3 column files). Everything else — pyarrow schema, BigQuery JSON schema, DDL for both engines,
the docs table, validation rules — is rendered from here.
"""

from __future__ import annotations

from costflow.schemas.columns import Column, LogicalType, TableSpec

S, D, T, J, INT = (
    LogicalType.STRING,
    LogicalType.DECIMAL,
    LogicalType.TIMESTAMP,
    LogicalType.JSON,
    LogicalType.INTEGER,
)
M, C, R = "Mandatory", "Conditional", "Recommended"

# Allowed values, declared once (FOCUS 1.2 spec column files).
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_CLASSES = ("Correction",)
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
COMMITMENT_DISCOUNT_CATEGORIES = ("Spend", "Usage")
USAGE_STATUSES = ("Used", "Unused")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")

# ServiceCategory -> its allowed ServiceSubcategory values (FOCUS 1.2 servicesubcategory.md).
SERVICE_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": ("AI Platforms", "Bots", "Generative AI", "Machine Learning",
                                "Natural Language Processing", "Other (AI and Machine Learning)"),
    "Analytics": ("Analytics Platforms", "Business Intelligence", "Data Processing", "Search",
                  "Streaming Analytics", "Other (Analytics)"),
    "Business Applications": ("Productivity and Collaboration", "Other (Business Applications)"),
    "Compute": ("Containers", "End User Computing", "Quantum Compute", "Serverless Compute",
                "Virtual Machines", "Other (Compute)"),
    "Databases": ("Caching", "Data Warehouses", "Ledger Databases", "NoSQL Databases",
                  "Relational Databases", "Time Series Databases", "Other (Databases)"),
    "Developer Tools": ("Developer Platforms", "Continuous Integration and Deployment",
                        "Development Environments", "Source Code Management", "Quality Assurance",
                        "Other (Developer Tools)"),
    "Identity": ("Identity and Access Management", "Other (Identity)"),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration", "Other (Integration)"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms", "Other (Internet of Things)"),
    "Management and Governance": ("Architecture", "Compliance", "Cost Management",
                                  "Data Governance", "Disaster Recovery", "Endpoint Management",
                                  "Observability", "Support", "Other (Management and Governance)"),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality", "Other (Media)"),
    "Migration": ("Data Migration", "Resource Migration", "Other (Migration)"),
    "Mobile": ("Other (Mobile)",),
    "Multicloud": ("Multicloud Integration", "Other (Multicloud)"),
    "Networking": ("Application Networking", "Content Delivery", "Network Connectivity",
                   "Network Infrastructure", "Network Routing", "Network Security",
                   "Other (Networking)"),
    "Security": ("Secret Management", "Security Posture Management",
                 "Threat Detection and Response", "Other (Security)"),
    "Storage": ("Backup Storage", "Block Storage", "File Storage", "Object Storage",
                "Storage Platforms", "Other (Storage)"),
    "Web": ("Application Platforms", "Other (Web)"),
    "Other": ("Other (Other)",),
}
SERVICE_CATEGORIES = tuple(SERVICE_SUBCATEGORIES)
ALL_SERVICE_SUBCATEGORIES = tuple(s for subs in SERVICE_SUBCATEGORIES.values() for s in subs)


def _f(name, type_, level, nullable, intro, desc, allowed=(), deprecated=None) -> Column:
    return Column(name=name, type=type_, nullable=nullable, description=desc, introduced=intro,
                  feature_level=level, allowed_values=tuple(allowed), deprecated_in=deprecated)


FOCUS_COLUMNS: tuple[Column, ...] = (
    _f("AvailabilityZone", S, R, True, "0.5", "Provider-assigned ID of an isolated location within a Region."),
    _f("BilledCost", D, M, False, "0.5", "Cost that is the basis for invoicing, after discounts and excluding amortization of upfront purchases, in BillingCurrency."),
    _f("BillingAccountId", S, M, False, "0.5", "ID of the billing account, the scope at which invoices are generated."),
    _f("BillingAccountName", S, M, True, "0.5", "Display name of the billing account."),
    _f("BillingAccountType", S, C, False, "1.2", "Provider label for the kind of entity BillingAccountId represents."),
    _f("BillingCurrency", S, M, False, "0.5", "ISO 4217 currency the charge was billed in."),
    _f("BillingPeriodEnd", T, M, False, "0.5", "Exclusive end of the billing period (UTC)."),
    _f("BillingPeriodStart", T, M, False, "0.5", "Inclusive start of the billing period (UTC)."),
    _f("CapacityReservationId", S, C, True, "1.1", "ID of the capacity reservation the charge relates to."),
    _f("CapacityReservationStatus", S, C, True, "1.1", "Whether the charge is the used or unused portion of a capacity reservation.", USAGE_STATUSES),
    _f("ChargeCategory", S, M, False, "0.5", "Highest-level classification of the charge by how it is billed.", CHARGE_CATEGORIES),
    _f("ChargeClass", S, M, True, "1.0", "'Correction' when the row corrects a previously invoiced billing period; else null.", CHARGE_CLASSES),
    _f("ChargeDescription", S, M, True, "1.0-preview", "Provider description of what the charge is for."),
    _f("ChargeFrequency", S, R, False, "1.0-preview", "How often the charge occurs.", CHARGE_FREQUENCIES),
    _f("ChargePeriodEnd", T, M, False, "0.5", "Exclusive end of the period the charge applies to (UTC)."),
    _f("ChargePeriodStart", T, M, False, "0.5", "Inclusive start of the period the charge applies to (UTC)."),
    _f("CommitmentDiscountCategory", S, C, True, "1.0-preview", "Whether a commitment discount is spend- or usage-based.", COMMITMENT_DISCOUNT_CATEGORIES),
    _f("CommitmentDiscountId", S, C, True, "1.0-preview", "Provider-unique ID of the commitment discount (RI, Savings Plan, CUD)."),
    _f("CommitmentDiscountName", S, C, True, "1.0-preview", "Display name of the commitment discount."),
    _f("CommitmentDiscountQuantity", D, C, True, "1.1", "Quantity of CommitmentDiscountUnit purchased, consumed or unused for the charge."),
    _f("CommitmentDiscountStatus", S, C, True, "1.0", "Whether the charge is the used or unused portion of a commitment discount.", USAGE_STATUSES),
    _f("CommitmentDiscountType", S, C, True, "1.0-preview", "Provider label for the kind of commitment discount."),
    _f("CommitmentDiscountUnit", S, C, True, "1.1", "Unit of CommitmentDiscountQuantity."),
    _f("ConsumedQuantity", D, C, True, "1.0", "Volume of a metered SKU consumed, in ConsumedUnit."),
    _f("ConsumedUnit", S, C, True, "1.0", "Provider-specified unit of ConsumedQuantity."),
    _f("ContractedCost", D, M, False, "1.0", "ContractedUnitPrice x PricingQuantity: cost at negotiated rates, before commitment discounts."),
    _f("ContractedUnitPrice", D, C, True, "1.0", "Unit price including negotiated discounts, excluding commitment discounts, in BillingCurrency."),
    _f("EffectiveCost", D, M, False, "0.5", "Amortized cost after all discounts and prepaid purchases are spread over the charges they apply to."),
    _f("InvoiceId", S, R, True, "1.2", "ID of the invoice the charge is (or will be) billed on."),
    _f("InvoiceIssuerName", S, M, False, "0.5", "Name of the entity responsible for invoicing."),
    _f("ListCost", D, M, False, "1.0-preview", "ListUnitPrice x PricingQuantity: the public list cost."),
    _f("ListUnitPrice", D, C, True, "1.0-preview", "Public list unit price, without discounts, in BillingCurrency."),
    _f("PricingCategory", S, C, True, "1.0-preview", "Pricing model applied to the charge.", PRICING_CATEGORIES),
    _f("PricingCurrency", S, C, True, "1.2", "Currency the SKU is priced in when it differs from BillingCurrency."),
    _f("PricingCurrencyContractedUnitPrice", D, C, True, "1.2", "ContractedUnitPrice expressed in PricingCurrency."),
    _f("PricingCurrencyEffectiveCost", D, C, True, "1.2", "EffectiveCost expressed in PricingCurrency."),
    _f("PricingCurrencyListUnitPrice", D, C, True, "1.2", "ListUnitPrice expressed in PricingCurrency."),
    _f("PricingQuantity", D, M, True, "1.0-preview", "Volume of the SKU used or purchased, in PricingUnit."),
    _f("PricingUnit", S, M, True, "1.0-preview", "Provider unit in which the SKU is priced."),
    _f("ProviderName", S, M, False, "0.5", "Entity that made the resources or services available for purchase.", deprecated="1.3"),
    _f("PublisherName", S, M, False, "0.5", "Entity that produced the resources or services.", deprecated="1.3"),
    _f("RegionId", S, C, True, "1.0", "Provider-assigned region ID (e.g. us-east-1)."),
    _f("RegionName", S, C, True, "1.0", "Display name of the region."),
    _f("ResourceId", S, C, True, "0.5", "Provider-unique ID of the billed resource."),
    _f("ResourceName", S, C, True, "0.5", "Display name of the resource."),
    _f("ResourceType", S, C, True, "1.0-preview", "Kind of resource (e.g. 'Virtual Machine')."),
    _f("ServiceCategory", S, M, False, "0.5", "Highest-level normalized service classification.", SERVICE_CATEGORIES),
    _f("ServiceName", S, M, False, "0.5", "Provider name of the service or offering."),
    _f("ServiceSubcategory", S, R, False, "1.1", "Normalized second-level service classification; belongs to its ServiceCategory.", ALL_SERVICE_SUBCATEGORIES),
    _f("SkuId", S, C, True, "1.0-preview", "Stable provider ID of the SKU purchased or used."),
    _f("SkuMeter", S, C, True, "1.1", "Functionality being metered for the SKU."),
    _f("SkuPriceDetails", J, C, True, "1.1", "JSON key-value properties of the SKU price."),
    _f("SkuPriceId", S, C, True, "1.0-preview", "ID of the specific SKU price applied."),
    _f("SubAccountId", S, C, True, "0.5", "ID of the sub account (AWS member account, Azure subscription, GCP project)."),
    _f("SubAccountName", S, C, True, "0.5", "Display name of the sub account."),
    _f("SubAccountType", S, C, True, "1.2", "Provider label for the kind of entity SubAccountId represents."),
    _f("Tags", J, C, True, "1.0-preview", "JSON object of user- and provider-defined tags."),
    # FOCUS 1.3 additions (draft column files; see focus_columns.md).
    _f("AllocatedMethodDetails", J, R, True, "1.3", "JSON object describing how a split cost allocation was computed."),
    _f("AllocatedMethodId", S, C, True, "1.3", "ID of the split cost allocation method used."),
    _f("AllocatedResourceId", S, C, True, "1.3", "ID of the object (pod, namespace) the cost is allocated to."),
    _f("AllocatedResourceName", S, C, True, "1.3", "Display name of the allocated-to object."),
    _f("AllocatedTags", J, C, True, "1.3", "Tags applicable only to the allocated charge."),
    _f("ContractApplied", J, C, True, "1.3", "JSON linking the charge to contract commitments."),
    _f("HostProviderName", S, M, False, "1.3", "Entity whose infrastructure hosts the service ('Not Applicable' when none)."),
    _f("ServiceProviderName", S, M, False, "1.3", "Entity that makes the resources or services available; replaces ProviderName."),
)


def _x(name, type_, nullable, desc) -> Column:
    return Column(name=name, type=type_, nullable=nullable, description=desc)


# Lineage, stamped on every row in one place (costflow.transforms.lineage).
LINEAGE_COLUMNS: tuple[Column, ...] = (
    _x("x_SourceProvider", S, False, "Provider the row came from, one of costflow.providers.NAMES (aws, gcp, azure, opencost, focus); a row of a FOCUS export is the provider it names (focus when costflow has no folder for it). With BillingAccountId and BillingPeriodStart it keys the slice a load replaces."),
    _x("x_SourceFormat", S, False, "Source export format, e.g. aws_cur_legacy_csv."),
    _x("x_SourceUri", S, False, "URI of the source file or API the row was read from."),
    _x("x_SourceRowNumber", INT, False, "1-based data row number within x_SourceUri (header excluded)."),
    _x("x_RunId", S, False, "ID of the ingest run that loaded the row (see load_runs)."),
    _x("x_IngestedAt", T, False, "When the run that loaded the row started (UTC)."),
)

# Provider detail kept beside FOCUS, spelled like AWS's own FOCUS export where one exists.
EXTENSION_COLUMNS: tuple[Column, ...] = (
    _x("x_ServiceCode", S, True, "Provider service code (AWS lineItem/ProductCode)."),
    _x("x_UsageType", S, True, "Provider usage type (AWS lineItem/UsageType)."),
    _x("x_Operation", S, True, "Provider operation (AWS lineItem/Operation)."),
    _x("x_LineItemType", S, True, "Provider line item type before mapping (AWS lineItem/LineItemType, GCP cost_type, Azure ChargeType)."),
    _x("x_InvoicingEntity", S, True, "Legal entity that issues the invoice (AWS bill/InvoicingEntity); InvoiceIssuerName keeps the provider's common name so it matches ProviderName."),
    _x("x_BillingEntity", S, True, "Seller of record as the provider names it (AWS bill/BillingEntity: AWS or AWS Marketplace)."),
    _x("x_CostCategories", J, True, "Cost categories of the row as a JSON object of category to value (AWS costCategory/* columns, CUR 2.0 cost_category map, FOCUS export x_CostCategories)."),
    _x("x_Discounts", J, True, "Discounts applied to the row as a JSON object of discount to amount text (AWS CUR 2.0 discount map, FOCUS export x_Discounts)."),
    _x("x_ResourceGroupName", S, True, "Azure resource group of the resource (as in Microsoft's FOCUS export)."),
    _x("x_DataQualityFlags", J, True, "JSON array of the fixes and gaps applied to this row, e.g. derived columns the source did not carry."),
    _x("x_GrossCost", D, True, "Cost before credits in BillingCurrency (GCP cost); BilledCost is net of every credit."),
    _x("x_Credits", J, True, "JSON array of the credits netted into BilledCost, as the provider lists them: type, name, amount (exact decimal text), id, full_name (GCP credits)."),
    _x("x_ExportTime", T, True, "When the provider appended the row to its export (GCP export_time, UTC); the high-water mark of incremental loads."),
    _x("x_AdjustmentInfo", J, True, "JSON object describing a provider correction or adjustment (GCP adjustment_info: id, description, mode, type)."),
    _x("x_ProviderMetrics", J, True, "Provider metrics without a FOCUS column as a JSON object of metric to exact amount text, with <metric>Unit (AWS Cost Explorer BlendedCost, NetUnblendedCost, NetAmortizedCost, UsageQuantity, NormalizedUsageAmount; GCP CurrencyConversionRate, CostAtEffectivePriceDefault, CostAtListConsumptionModel and price details)."),
    # Appended last: an existing warehouse gains them with ALTER TABLE ADD COLUMN, in order.
    _x("x_CommitmentPool", S, True, "Commitment-fee amortization pool of the row (GCP: 'Usage/<region>' for resource-based CUDs, 'Spend' for spend-based ones): the load spreads the recurring commitment fees of a pool over the usage its commitment covered in the same billing account and period (see costflow.transforms.commitment_amortization)."),
    _x("x_CommitmentCoveredCost", D, True, "On-demand value of the usage a commitment discount covered on this row, in BillingCurrency (GCP: the negated committed-use-discount credits); the weight the pool's fees are amortized by."),
    _x("x_ProjectAncestors", J, True, "GCP project's resource hierarchy as exported (project.ancestors: the project, its folders and the organization), a JSON array of {resource_name, display_name}."),
    _x("x_PricingUnitDescription", S, True, "The provider's pricing unit as exported, before PricingUnit was mapped to the FOCUS UnitFormat (GCP usage.pricing_unit, e.g. 'gibibyte month' for GiB-Months); the name Microsoft's FOCUS export uses."),
    _x("x_ConsumedUnitDescription", S, True, "The provider's usage unit as exported, before ConsumedUnit was mapped to the FOCUS UnitFormat (GCP usage.unit, e.g. 'byte-seconds' for B-Seconds)."),
    _x("x_PricingToBillingRate", D, True, "BillingCurrency units per one PricingCurrency unit as the source states it (GCP currency_conversion_rate, Azure ExchangeRatePricingToBilling); 1 where the two currencies are the same; null where the source does not say. The PricingCurrency amounts are the billing amounts divided by it (costflow.transforms.pricing_currency)."),
    _x("x_ProviderColumns", J, True, "The source's own x_ columns that no declared column holds, as a JSON object of column name to value text, as the file wrote them (a FOCUS export's provider extensions: Microsoft's x_BillingProfileId, x_SkuMeterCategory, ...; costflow.transforms.from_focus)."),
)

COST_LINE_ITEMS = TableSpec(
    name="cost_line_items",
    description="Every normalized cost row: FOCUS 1.2 columns, the FOCUS 1.3 additions, and x_ columns.",
    columns=FOCUS_COLUMNS + LINEAGE_COLUMNS + EXTENSION_COLUMNS,
    partition_by_day="ChargePeriodStart",
    cluster_by=("x_SourceProvider", "BillingAccountId"),
)

# The key of the unit of replacement: one provider's billing account for one billing period.
SLICE_KEY = ("x_SourceProvider", "BillingAccountId", "BillingPeriodStart")


# Cross-column rules of FOCUS 1.2, declared once as data (rule ids of the FinOps validator's
# model-1.2.0.1.json). Row-level validation (costflow.transforms.validate) and the slice-level
# data-quality suite (costflow.quality.expectations) both read them from here.
# [start, end) pairs: the end MUST be after the start (ChargePeriodEnd-C-*, BillingPeriodEnd-C-*).
PERIOD_PAIRS: tuple[tuple[str, str], ...] = (
    ("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd"))
# Columns that MUST be null when CommitmentDiscountId is null (CommitmentDiscountCategory-C-*,
# -Name-, -Status-, -Type-, -Quantity-, -Unit-).
COMMITMENT_DISCOUNT_ID = "CommitmentDiscountId"
COMMITMENT_DISCOUNT_DEPENDENTS = (
    "CommitmentDiscountCategory", "CommitmentDiscountName", "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit")
# ... and that MUST NOT be null when it is not (CommitmentDiscountCategory-C-004-C,
# CommitmentDiscountType-C-004-C).
COMMITMENT_DISCOUNT_REQUIRED_WITH_ID = ("CommitmentDiscountCategory", "CommitmentDiscountType")
# Prices that MUST be non-negative decimals (ListUnitPrice-C-008-M, ContractedUnitPrice-C-009-C,
# PricingCurrencyListUnitPrice-C-008-M, PricingCurrencyContractedUnitPrice-C-008-C).
NON_NEGATIVE_COLUMNS = ("ListUnitPrice", "ContractedUnitPrice", "PricingCurrencyListUnitPrice",
                        "PricingCurrencyContractedUnitPrice")
# Columns that MUST be null when ChargeCategory is "Tax" (PricingQuantity-C-004-C,
# PricingCategory-C-003-C, SkuId-C-004-C, SkuPriceId-C-004-C, ListUnitPrice-C-004-C,
# ContractedUnitPrice-C-005-C).
NULL_WHEN_TAX = ("PricingQuantity", "PricingCategory", "SkuId", "SkuPriceId", "ListUnitPrice",
                 "ContractedUnitPrice")
# ChargeFrequency MUST NOT be "Usage-Based" when ChargeCategory is "Purchase" (ChargeFrequency-C-004-C).
FORBIDDEN_FREQUENCY = {"Purchase": "Usage-Based"}


def focus_columns(version: str) -> list[Column]:
    """The FOCUS columns of ``version`` ("1.2" or "1.3"), in declaration order."""
    return [c for c in FOCUS_COLUMNS if c.in_focus(version)]
