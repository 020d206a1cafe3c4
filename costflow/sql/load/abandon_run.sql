-- Mark a running run abandoned, with the reason. Compare-and-set on its last sign of life: a run
-- that beat (or finished) since the sweep read it is left alone.
-- name: abandon_run
UPDATE cost_analytics.load_runs
SET
  status = @status,
  finished_at = CURRENT_TIMESTAMP(),
  error = @error
WHERE run_id = @run_id
  AND status = @running
  AND COALESCE(heartbeat_at, started_at) = @last_seen
