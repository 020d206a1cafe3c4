-- The slices a run committed, with their reconciliation (costflow runs show RUN).
SELECT
  x_SourceProvider,
  BillingAccountId,
  BillingPeriodStart,
  rows_read,
  rows_loaded,
  rows_dead_lettered,
  source_basis,
  loaded_billed_cost,
  dead_lettered_cost,
  committed_at
FROM cost_analytics.load_slices
WHERE run_id = @run_id
ORDER BY x_SourceProvider, BillingAccountId, BillingPeriodStart
