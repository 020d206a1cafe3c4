-- Costs between two dates, per requested dimension and per currency.
-- A trusted template: costflow.services.costs injects the requested dimensions (allow-listed
-- expressions under quoted aliases) into `dimensioned` and `final`, the metric column into
-- `dimensioned`, and one `<dimension> IN UNNEST(@filter_<n>)` condition per filter. Values are
-- always bound parameters. BillingCurrency is always a group key: amounts in different
-- currencies are never added together.
WITH in_period AS (
  SELECT *
  FROM cost_analytics.cost_line_items
  WHERE ChargePeriodStart >= TIMESTAMP(@start)
    AND ChargePeriodStart < TIMESTAMP(@end)
),

dimensioned AS (
  SELECT
    BillingCurrency,
    BilledCost AS cost
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
