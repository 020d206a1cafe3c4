-- Recommendations of the provider-neutral table, largest estimated saving first.
-- Every value is a bound parameter; the scope (tenant accounts, provider) is always part of the
-- query, so a recommendation without a known account is visible only to unrestricted tenants.
SELECT
  recommendation_id,
  x_SourceProvider,
  source,
  category,
  BillingAccountId,
  SubAccountId,
  RegionId,
  ResourceId,
  ResourceName,
  ResourceType,
  description,
  current_configuration,
  recommended_configuration,
  estimated_monthly_savings,
  savings_currency,
  state,
  priority,
  last_refreshed_at
FROM cost_analytics.recommendations
WHERE (@category IS NULL OR category = @category)
  AND state IN UNNEST(@states)
  AND (@tenant_all
       OR BillingAccountId IN UNNEST(@tenant_billing_accounts)
       OR SubAccountId IN UNNEST(@tenant_sub_accounts))
  AND (@provider = 'all' OR x_SourceProvider = @provider)
ORDER BY estimated_monthly_savings DESC NULLS LAST, recommendation_id
