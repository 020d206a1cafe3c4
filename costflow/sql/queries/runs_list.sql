-- The load ledger, newest run first (costflow runs list). @status: only runs in that status,
-- or NULL for every run.
SELECT
  run_id,
  status,
  provider,
  source_format,
  sources,
  started_at,
  finished_at,
  rows_read,
  rows_loaded,
  rows_dead_lettered,
  source_basis_total,
  billed_cost_total,
  dead_lettered_cost_total,
  error,
  owner_host,
  owner_pid,
  heartbeat_at
FROM cost_analytics.load_runs
WHERE @status IS NULL OR status = @status
ORDER BY started_at DESC, run_id
LIMIT @limit
