-- Assertion (zero rows = pass): no orphan dead letters. A dead letter is an orphan when the run
-- that wrote it did not succeed, or when its slice is known but no load_slices row of that run
-- names the slice (a later run replaced the slice but left the old dead letter behind).
-- name: assert_no_orphan_dead_letters
WITH succeeded_runs AS (
  SELECT run_id
  FROM cost_analytics.load_runs
  WHERE status = 'succeeded'
),

final AS (
  SELECT
    d.x_RunId,
    d.x_SourceProvider,
    d.BillingAccountId,
    d.BillingPeriodStart,
    d.x_SourceUri,
    d.x_SourceRowNumber,
    d.ErrorReason
  FROM cost_analytics.dead_letters AS d
  WHERE d.x_RunId NOT IN (SELECT run_id FROM succeeded_runs)
    OR (
      d.BillingAccountId IS NOT NULL
      AND d.BillingPeriodStart IS NOT NULL
      AND NOT EXISTS (
        SELECT 1
        FROM cost_analytics.load_slices AS s
        WHERE s.run_id = d.x_RunId
          AND s.x_SourceProvider = d.x_SourceProvider
          AND s.BillingAccountId = d.BillingAccountId
          AND s.BillingPeriodStart = d.BillingPeriodStart
      )
    )
)

SELECT * FROM final
ORDER BY x_RunId, x_SourceUri, x_SourceRowNumber
