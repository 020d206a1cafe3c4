-- Stored sub-account names, with the one the FOCUS views use first per account (a name from
-- the user's mapping wins over one from the provider's directory).

-- name: account_names
SELECT provider, account_id, account_name, source, loaded_at
FROM cost_analytics.account_names
WHERE (@provider IS NULL OR provider = @provider)
ORDER BY provider, account_id, CASE WHEN source = 'mapping' THEN 0 ELSE 1 END, source;
