-- The last day with charges the scope (tenant accounts, provider) can see: the default end of
-- "recent" periods (resources) when the caller names none.
SELECT DATE(MAX(ChargePeriodStart)) AS latest_day
FROM cost_analytics.cost_line_items
WHERE (@tenant_all
       OR BillingAccountId IN UNNEST(@tenant_billing_accounts)
       OR SubAccountId IN UNNEST(@tenant_sub_accounts))
  AND (@provider = 'all' OR x_SourceProvider = @provider)
