-- Runs the ledger shows running, with their owner and the seconds since their last sign of life
-- (heartbeat, else start) on the warehouse's own clock. costflow.warehouse.ledger decides which
-- of them are abandoned.
-- name: running_runs
SELECT
  run_id,
  owner_host,
  owner_pid,
  started_at,
  COALESCE(heartbeat_at, started_at) AS last_seen,
  TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), COALESCE(heartbeat_at, started_at), SECOND) AS silent_seconds
FROM cost_analytics.load_runs
WHERE status = @status
ORDER BY started_at
