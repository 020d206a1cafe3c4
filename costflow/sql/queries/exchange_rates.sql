-- Exchange rates on days in [@first_day, @last_day] touching the given currencies (as from or
-- to currency), for converting costs at query time (costflow.services.rates). The policy —
-- which rate of which day and source applies — is applied in Python over these rows.
SELECT date, from_currency, to_currency, rate, source
FROM cost_analytics.exchange_rates
WHERE date >= @first_day
  AND date <= @last_day
  AND (from_currency IN UNNEST(@currencies) OR to_currency IN UNNEST(@currencies))
ORDER BY date, from_currency, to_currency, source
