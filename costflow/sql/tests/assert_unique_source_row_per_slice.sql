-- Assertion (zero rows = pass): every source row is loaded at most once per slice.
-- A source row is referenced by (x_SourceUri, x_SourceRowNumber); a rerun, a retried bundle or
-- a restated file must replace rows, never add a second copy. Scoped to the slices run @run_id
-- committed.
-- name: assert_unique_source_row_per_slice
WITH run_slices AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart
  FROM cost_analytics.load_slices
  WHERE run_id = @run_id
),

final AS (
  SELECT
    c.x_SourceProvider,
    c.BillingAccountId,
    c.BillingPeriodStart,
    c.x_SourceUri,
    c.x_SourceRowNumber,
    COUNT(*) AS copies
  FROM cost_analytics.cost_line_items AS c
  INNER JOIN run_slices AS s
    ON c.x_SourceProvider = s.x_SourceProvider
    AND c.BillingAccountId = s.BillingAccountId
    AND c.BillingPeriodStart = s.BillingPeriodStart
  GROUP BY
    c.x_SourceProvider, c.BillingAccountId, c.BillingPeriodStart, c.x_SourceUri,
    c.x_SourceRowNumber
  HAVING COUNT(*) > 1
)

SELECT * FROM final
ORDER BY x_SourceProvider, BillingAccountId, BillingPeriodStart, x_SourceUri, x_SourceRowNumber
