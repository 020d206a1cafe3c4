-- Replace exchange rates of one source, key by key: a load deletes the rows of its
-- (date, from_currency, to_currency) keys for its source and inserts the new ones, so loading
-- the same file again leaves the table as it was and a corrected rate replaces the old one.
-- Rows arrive as parallel arrays of text (dates ISO, rates as exact decimal text) joined by
-- position; costflow.services.rates wraps both statements in one transaction.

-- name: delete_exchange_rates
DELETE FROM cost_analytics.exchange_rates
WHERE source = @source
  AND CONCAT(CAST(date AS STRING), '|', from_currency, '|', to_currency) IN (
    SELECT CONCAT(rate_day, '|', from_code, '|', to_code)
    FROM UNNEST(@rate_days) AS rate_day WITH OFFSET AS i
    JOIN UNNEST(@rate_froms) AS from_code WITH OFFSET AS j ON i = j
    JOIN UNNEST(@rate_tos) AS to_code WITH OFFSET AS k ON i = k
  );

-- name: insert_exchange_rates
INSERT INTO cost_analytics.exchange_rates (date, from_currency, to_currency, rate, source, loaded_at)
SELECT
  CAST(rate_day AS DATE),
  from_code,
  to_code,
  CAST(rate_text AS BIGNUMERIC),
  @source,
  CURRENT_TIMESTAMP()
FROM UNNEST(@rate_days) AS rate_day WITH OFFSET AS i
JOIN UNNEST(@rate_froms) AS from_code WITH OFFSET AS j ON i = j
JOIN UNNEST(@rate_tos) AS to_code WITH OFFSET AS k ON i = k
JOIN UNNEST(@rate_values) AS rate_text WITH OFFSET AS m ON i = m;
