-- Store sub-account display names of one provider and source, key by key: a load deletes the
-- rows of its account ids for its (provider, source) and inserts the new ones, so loading the
-- same names again leaves the table as it was and a renamed account takes its new name. Names
-- of accounts not in the load stay (a closed account's old rows still need a name). Rows arrive
-- as two parallel arrays joined by position; costflow.services.account_names wraps both
-- statements in one transaction.

-- name: delete_account_names
DELETE FROM cost_analytics.account_names
WHERE provider = @provider
  AND source = @source
  AND account_id IN UNNEST(@account_ids);

-- name: insert_account_names
INSERT INTO cost_analytics.account_names (provider, account_id, account_name, source, loaded_at)
SELECT
  @provider,
  account_id,
  account_name,
  @source,
  CURRENT_TIMESTAMP()
FROM UNNEST(@account_ids) AS account_id WITH OFFSET AS i
JOIN UNNEST(@account_names) AS account_name WITH OFFSET AS j ON i = j;
