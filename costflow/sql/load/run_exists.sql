-- The ledger row of a run id, if there is one: begin_run refuses an id that is taken, and the
-- abandonment sweep reads back what it wrote.
-- name: run_exists
SELECT
  run_id,
  status,
  started_at,
  error
FROM cost_analytics.load_runs
WHERE run_id = @run_id
