-- Replace every slice of run @run_id: the body of the commit transaction.
-- The engine runs these statements in order inside ONE transaction, after the reconciliation
-- query has matched the source's totals; any error rolls all of them back. The load_slices rows
-- written first are the driver: every later statement replaces exactly the slices listed there,
-- including a slice whose rows were all dead-lettered (its previous rows are still deleted).

-- name: clear_load_slices
-- A retried commit of the same run (a Beam bundle retry) rewrites its slices, never duplicates.
DELETE FROM cost_analytics.load_slices
WHERE run_id = @run_id;

-- name: write_load_slices
INSERT INTO cost_analytics.load_slices (
  run_id,
  x_SourceProvider,
  BillingAccountId,
  BillingPeriodStart,
  rows_read,
  rows_loaded,
  rows_dead_lettered,
  source_basis,
  loaded_billed_cost,
  dead_lettered_cost,
  committed_at,
  high_water_export_time
)
WITH expected AS (
  SELECT
    s.x_SourceProvider AS x_SourceProvider,
    s.BillingAccountId AS BillingAccountId,
    s.BillingPeriodStart AS BillingPeriodStart,
    s.rows_read AS rows_read,
    s.rows_loaded AS rows_loaded,
    s.rows_dead_lettered AS rows_dead_lettered,
    s.source_basis AS source_basis,
    s.loaded_billed_cost AS loaded_billed_cost,
    s.dead_lettered_cost AS dead_lettered_cost
  FROM UNNEST(@slices) AS s
),

-- The latest provider export each slice includes (incremental loads re-read from it).
high_water AS (
  SELECT
    x_SourceProvider,
    BillingAccountId,
    BillingPeriodStart,
    MAX(x_ExportTime) AS high_water_export_time
  FROM cost_analytics._staged_cost_line_items
  WHERE x_RunId = @run_id
  GROUP BY x_SourceProvider, BillingAccountId, BillingPeriodStart
),

final AS (
  SELECT
    @run_id AS run_id,
    x.x_SourceProvider,
    x.BillingAccountId,
    x.BillingPeriodStart,
    x.rows_read,
    x.rows_loaded,
    x.rows_dead_lettered,
    x.source_basis,
    x.loaded_billed_cost,
    x.dead_lettered_cost,
    CURRENT_TIMESTAMP() AS committed_at,
    h.high_water_export_time
  FROM expected AS x
  LEFT JOIN high_water AS h
    ON x.x_SourceProvider = h.x_SourceProvider
    AND x.BillingAccountId = h.BillingAccountId
    AND x.BillingPeriodStart = h.BillingPeriodStart
)

SELECT * FROM final;

-- name: delete_slice_rows
DELETE FROM cost_analytics.cost_line_items AS existing
WHERE EXISTS (
  SELECT 1
  FROM cost_analytics.load_slices AS replaced
  WHERE replaced.run_id = @run_id
    AND replaced.x_SourceProvider = existing.x_SourceProvider
    AND replaced.BillingAccountId = existing.BillingAccountId
    AND replaced.BillingPeriodStart = existing.BillingPeriodStart
);

-- name: insert_rows
INSERT INTO cost_analytics.cost_line_items
SELECT * FROM cost_analytics._staged_cost_line_items
WHERE x_RunId = @run_id;

-- name: delete_dead_letters
-- Dead letters of the replaced slices, and of the run's sources: a dead letter whose slice could
-- not be read is replaced when its source file is read again.
DELETE FROM cost_analytics.dead_letters AS existing
WHERE existing.x_SourceUri IN UNNEST(@source_uris)
  OR EXISTS (
    SELECT 1
    FROM cost_analytics.load_slices AS replaced
    WHERE replaced.run_id = @run_id
      AND replaced.x_SourceProvider = existing.x_SourceProvider
      AND replaced.BillingAccountId = existing.BillingAccountId
      AND replaced.BillingPeriodStart = existing.BillingPeriodStart
  );

-- name: insert_dead_letters
INSERT INTO cost_analytics.dead_letters
SELECT * FROM cost_analytics._staged_dead_letters
WHERE x_RunId = @run_id;

-- name: clean_staged_rows
DELETE FROM cost_analytics._staged_cost_line_items
WHERE x_RunId = @run_id;

-- name: clean_staged_dead_letters
DELETE FROM cost_analytics._staged_dead_letters
WHERE x_RunId = @run_id;

-- name: mark_run_succeeded
UPDATE cost_analytics.load_runs
SET
  status = @status,
  finished_at = CURRENT_TIMESTAMP(),
  rows_read = @rows_read,
  rows_loaded = @rows_loaded,
  rows_dead_lettered = @rows_dead_lettered,
  source_basis_total = @source_basis_total,
  billed_cost_total = @billed_cost_total,
  dead_lettered_cost_total = @dead_lettered_cost_total,
  error = NULL,
  report = PARSE_JSON(@report)
WHERE run_id = @run_id;
