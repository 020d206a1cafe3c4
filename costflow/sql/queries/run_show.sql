-- One run of the load ledger with its full report (costflow runs show RUN).
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
  heartbeat_at,
  report
FROM cost_analytics.load_runs
WHERE run_id = @run_id
