-- A running run says it is alive. Only while it is running: a finished or abandoned run's row is
-- never rewritten by a late heartbeat.
-- name: heartbeat_run
UPDATE cost_analytics.load_runs
SET heartbeat_at = CURRENT_TIMESTAMP()
WHERE run_id = @run_id
  AND status = @status
