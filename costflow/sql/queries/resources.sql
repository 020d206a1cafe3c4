-- Cost attributed to each resource over [@start, @end), per currency, most expensive first.
-- A trusted template: costflow.services.providers sets the metric column of `cost`; every value
-- is a bound parameter. The scope (tenant accounts, provider) is always part of the query.
-- Rows without a ResourceId (taxes, support, account-wide fees) are not about a resource.
WITH in_period AS (
  SELECT *
  FROM cost_analytics.cost_line_items
  WHERE ChargePeriodStart >= TIMESTAMP(@start)
    AND ChargePeriodStart < TIMESTAMP(@end)
    AND ResourceId IS NOT NULL
    AND (@resource_type IS NULL OR ResourceType = @resource_type)
    AND (@tenant_all
         OR BillingAccountId IN UNNEST(@tenant_billing_accounts)
         OR SubAccountId IN UNNEST(@tenant_sub_accounts))
    AND (@provider = 'all' OR x_SourceProvider = @provider)
),

per_resource AS (
  SELECT
    ResourceId,
    x_SourceProvider,
    BillingCurrency,
    MAX(ResourceName) AS ResourceName,
    MAX(ResourceType) AS ResourceType,
    MAX(ServiceName) AS ServiceName,
    MAX(SubAccountId) AS SubAccountId,
    MAX(RegionId) AS RegionId,
    SUM(BilledCost) AS cost,
    COUNT(*) AS `rows`
  FROM in_period
  GROUP BY ResourceId, x_SourceProvider, BillingCurrency
),

ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (ORDER BY cost DESC, ResourceId, BillingCurrency) AS cost_rank
  FROM per_resource
)

SELECT
  ResourceId,
  ResourceName,
  ResourceType,
  x_SourceProvider,
  ServiceName,
  SubAccountId,
  RegionId,
  BillingCurrency,
  cost,
  `rows`
FROM ranked
WHERE cost_rank <= @limit
ORDER BY cost_rank
