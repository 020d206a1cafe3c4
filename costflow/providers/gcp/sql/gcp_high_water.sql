-- Where an incremental GCP load starts looking for late rows: per billing account, the latest
-- export_time the ledger holds for it (load_slices.high_water_export_time), and of those the
-- earliest, so no account misses rows exported after its own high-water mark.
-- name: gcp_high_water
SELECT MIN(per_account.high_water) AS high_water
FROM (
  SELECT
    s.BillingAccountId,
    MAX(s.high_water_export_time) AS high_water
  FROM cost_analytics.load_slices AS s
  WHERE s.x_SourceProvider = @provider
    AND s.high_water_export_time IS NOT NULL
  GROUP BY s.BillingAccountId
) AS per_account
