-- The GCP Cloud Billing export table (BigQuery) as a costflow source, in WHOLE invoice months.
--
-- A slice is (billing account, invoice month) and a run replaces it whole, so both statements
-- select every row of each (billing_account_id, invoice.month) that the run's window touches,
-- not only the rows of the requested days. A row touches its slice when its usage starts before
-- @end_time and either starts at/after @start_time or was exported at/after @exported_since (the
-- ledger's high-water export_time minus the lookback; NULL on a first load), so late rows and
-- corrections appended after the last load bring their month back in [PF §1.3].
-- @authorized_projects restricts to those projects (rows without a project, such as support or
-- account-level tax, then drop out); an empty array means no project filter. The table name
-- `billing_export.gcp_billing_export` is a placeholder the planner replaces with the validated
-- --source table; values are always bound parameters.

-- name: touched_slices
SELECT
  e.billing_account_id AS billing_account_id,
  e.invoice.month AS invoice_month,
  COUNT(*) AS row_count,
  MAX(e.export_time) AS max_export_time
FROM billing_export.gcp_billing_export AS e
INNER JOIN (
  -- The slices the window touches.
  SELECT DISTINCT
    w.billing_account_id AS billing_account_id,
    w.invoice.month AS invoice_month
  FROM billing_export.gcp_billing_export AS w
  WHERE w.usage_start_time < @end_time
    AND (w.usage_start_time >= @start_time OR w.export_time >= @exported_since)
    AND (ARRAY_LENGTH(@authorized_projects) = 0 OR w.project.id IN UNNEST(@authorized_projects))
) AS t
  ON e.billing_account_id = t.billing_account_id
  AND e.invoice.month = t.invoice_month
WHERE ARRAY_LENGTH(@authorized_projects) = 0 OR e.project.id IN UNNEST(@authorized_projects)
GROUP BY e.billing_account_id, e.invoice.month
ORDER BY billing_account_id, invoice_month;

-- name: export_rows
-- Every row of the touched slices, numbered 1..n within its slice (there is no row ID in the
-- export, and identical rows may legitimately repeat, so the number is only lineage).
SELECT
  e.*,
  ROW_NUMBER() OVER (
    PARTITION BY e.billing_account_id, e.invoice.month
    ORDER BY e.export_time, e.usage_start_time, e.cost
  ) AS costflow_row_number
FROM billing_export.gcp_billing_export AS e
INNER JOIN (
  -- The slices the window touches.
  SELECT DISTINCT
    w.billing_account_id AS billing_account_id,
    w.invoice.month AS invoice_month
  FROM billing_export.gcp_billing_export AS w
  WHERE w.usage_start_time < @end_time
    AND (w.usage_start_time >= @start_time OR w.export_time >= @exported_since)
    AND (ARRAY_LENGTH(@authorized_projects) = 0 OR w.project.id IN UNNEST(@authorized_projects))
) AS t
  ON e.billing_account_id = t.billing_account_id
  AND e.invoice.month = t.invoice_month
WHERE ARRAY_LENGTH(@authorized_projects) = 0 OR e.project.id IN UNNEST(@authorized_projects);
