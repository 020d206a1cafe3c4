-- The pricing-to-billing rates the bills carry (GCP currency_conversion_rate, Azure
-- ExchangeRatePricingToBilling, kept by the normalizers as x_PricingToBillingRate), one group per
-- charge day, provider and currency pair. `rates` counts distinct values: a day whose rows state
-- different rates for one pair is reported, never averaged (costflow.services.rates_bills).
SELECT
  DATE(ChargePeriodStart) AS day,
  x_SourceProvider AS provider,
  PricingCurrency AS from_currency,
  BillingCurrency AS to_currency,
  MIN(x_PricingToBillingRate) AS rate,
  COUNT(DISTINCT x_PricingToBillingRate) AS rates
FROM cost_analytics.cost_line_items
WHERE x_PricingToBillingRate IS NOT NULL
  AND x_PricingToBillingRate > 0
  AND PricingCurrency IS NOT NULL
  AND BillingCurrency IS NOT NULL
  AND PricingCurrency != BillingCurrency
  AND (@provider = 'all' OR x_SourceProvider = @provider)
GROUP BY day, provider, from_currency, to_currency
ORDER BY day, provider, from_currency, to_currency
