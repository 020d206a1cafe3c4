-- Reconciliation, warehouse side: per slice, what run @run_id staged.
-- One row per slice key found in the staged rows or dead letters. Dead letters whose account or
-- period could not be read group under a NULL key. Counts and sums are exact (BIGNUMERIC); the
-- engine compares them with the source's totals before anything is replaced.
-- name: reconcile_slices
WITH staged_rows AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    BilledCost
  FROM cost_analytics._staged_cost_line_items
  WHERE x_RunId = @run_id
),

staged_dead_letters AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    SourceCost
  FROM cost_analytics._staged_dead_letters
  WHERE x_RunId = @run_id
),

rows_per_slice AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    COUNT(*) AS rows_loaded,
    SUM(BilledCost) AS billed_cost
  FROM staged_rows
  GROUP BY x_SourceProvider, BillingAccountId, BillingPeriodStart
),

dead_letters_per_slice AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    COUNT(*) AS rows_dead_lettered,
    SUM(SourceCost) AS dead_lettered_cost
  FROM staged_dead_letters
  GROUP BY x_SourceProvider, BillingAccountId, BillingPeriodStart
),

final AS (
  SELECT
    COALESCE(r.x_SourceProvider, d.x_SourceProvider) AS x_SourceProvider,
    COALESCE(r.BillingAccountId, d.BillingAccountId) AS BillingAccountId,
    COALESCE(r.BillingPeriodStart, d.BillingPeriodStart) AS BillingPeriodStart,
    COALESCE(r.rows_loaded, 0) AS rows_loaded,
    COALESCE(r.billed_cost, 0) AS billed_cost,
    COALESCE(d.rows_dead_lettered, 0) AS rows_dead_lettered,
    COALESCE(d.dead_lettered_cost, 0) AS dead_lettered_cost
  FROM rows_per_slice AS r
  FULL OUTER JOIN dead_letters_per_slice AS d
    ON r.x_SourceProvider = d.x_SourceProvider
    AND r.BillingAccountId = d.BillingAccountId
    AND r.BillingPeriodStart = d.BillingPeriodStart
)

SELECT * FROM final
ORDER BY x_SourceProvider, BillingAccountId, BillingPeriodStart
