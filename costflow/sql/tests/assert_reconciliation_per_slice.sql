-- Assertion (zero rows = pass): each slice run @run_id committed still reconciles in the
-- warehouse: rows and SUM(BilledCost) in cost_line_items, rows and SUM(SourceCost) in
-- dead_letters, equal what load_slices recorded, and source basis = loaded + dead-lettered.
-- name: assert_reconciliation_per_slice
WITH run_slices AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    rows_loaded,
    rows_dead_lettered,
    source_basis,
    loaded_billed_cost,
    dead_lettered_cost
  FROM cost_analytics.load_slices
  WHERE run_id = @run_id
),

loaded AS (
  SELECT
    c.x_SourceProvider,
    c.BillingAccountId,
    c.BillingPeriodStart,
    COUNT(*) AS rows_found,
    SUM(c.BilledCost) AS billed_found
  FROM cost_analytics.cost_line_items AS c
  INNER JOIN run_slices AS s
    ON c.x_SourceProvider = s.x_SourceProvider
    AND c.BillingAccountId = s.BillingAccountId
    AND c.BillingPeriodStart = s.BillingPeriodStart
  GROUP BY c.x_SourceProvider, c.BillingAccountId, c.BillingPeriodStart
),

dead AS (
  SELECT
    d.x_SourceProvider,
    d.BillingAccountId,
    d.BillingPeriodStart,
    COUNT(*) AS dead_found,
    SUM(COALESCE(d.SourceCost, 0)) AS dead_cost_found
  FROM cost_analytics.dead_letters AS d
  INNER JOIN run_slices AS s
    ON d.x_SourceProvider = s.x_SourceProvider
    AND d.BillingAccountId = s.BillingAccountId
    AND d.BillingPeriodStart = s.BillingPeriodStart
  GROUP BY d.x_SourceProvider, d.BillingAccountId, d.BillingPeriodStart
),

final AS (
  SELECT
    s.x_SourceProvider,
    s.BillingAccountId,
    s.BillingPeriodStart,
    s.rows_loaded,
    COALESCE(l.rows_found, 0) AS rows_found,
    s.loaded_billed_cost,
    COALESCE(l.billed_found, 0) AS billed_found,
    s.rows_dead_lettered,
    COALESCE(d.dead_found, 0) AS dead_found,
    s.dead_lettered_cost,
    COALESCE(d.dead_cost_found, 0) AS dead_cost_found,
    s.source_basis
  FROM run_slices AS s
  LEFT JOIN loaded AS l
    ON s.x_SourceProvider = l.x_SourceProvider
    AND s.BillingAccountId = l.BillingAccountId
    AND s.BillingPeriodStart = l.BillingPeriodStart
  LEFT JOIN dead AS d
    ON s.x_SourceProvider = d.x_SourceProvider
    AND s.BillingAccountId = d.BillingAccountId
    AND s.BillingPeriodStart = d.BillingPeriodStart
)

SELECT * FROM final
WHERE rows_loaded != rows_found
  OR loaded_billed_cost != billed_found
  OR rows_dead_lettered != dead_found
  OR dead_lettered_cost != dead_cost_found
  OR source_basis != billed_found + dead_cost_found
ORDER BY x_SourceProvider, BillingAccountId, BillingPeriodStart
