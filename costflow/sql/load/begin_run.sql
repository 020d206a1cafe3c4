-- Record a run in the load ledger before anything is staged, with its owner (host, pid) and a
-- first heartbeat. The engine has checked that no run with this id exists: a run id names one run.
-- name: begin_run
INSERT INTO cost_analytics.load_runs (
  run_id,
  status,
  provider,
  source_format,
  sources,
  started_at,
  owner_host,
  owner_pid,
  heartbeat_at
)
VALUES (
  @run_id,
  @status,
  @provider,
  @source_format,
  PARSE_JSON(@sources),
  @started_at,
  @owner_host,
  @owner_pid,
  CURRENT_TIMESTAMP()
)
