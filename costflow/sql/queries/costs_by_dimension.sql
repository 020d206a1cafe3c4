-- Costs between two dates, per requested dimension and per currency.
-- A trusted template: costflow.services.costs injects the requested dimensions (allow-listed
-- expressions under quoted aliases) into `dimensioned` and `final`, the metric column into
-- `dimensioned`, and one `<dimension> IN UNNEST(@filter_<n>)` condition per filter. Values are
-- always bound parameters. BillingCurrency is always a group key: amounts in different
-- currencies are never added together. The scope (tenant accounts, provider) is part of the
-- template, always bound (costflow.services.tenancy): no query reads outside it.
WITH in_period AS (
  SELECT *
  FROM cost_analytics.cost_line_items
  WHERE ChargePeriodStart >= TIMESTAMP(@start)
    AND ChargePeriodStart < TIMESTAMP(@end)
    AND (@tenant_all
         OR BillingAccountId IN UNNEST(@tenant_billing_accounts)
         OR SubAccountId IN UNNEST(@tenant_sub_accounts))
    AND (@provider = 'all' OR x_SourceProvider = @provider)
),

dimensioned AS (
  SELECT
    BillingCurrency,
    BilledCost AS cost,
    ConsumedQuantity AS usage_quantity,
    ConsumedUnit AS usage_unit
  FROM in_period
  WHERE TRUE
),

final AS (
  SELECT
    BillingCurrency,
    SUM(cost) AS cost,
    COUNT(*) AS `rows`
  FROM dimensioned
  GROUP BY BillingCurrency
)

SELECT * FROM final
ORDER BY BillingCurrency
