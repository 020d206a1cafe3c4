-- Record a run in the load ledger before anything is staged.
-- name: begin_run
INSERT INTO cost_analytics.load_runs (
  run_id,
  status,
  provider,
  source_format,
  sources,
  started_at
)
VALUES (
  @run_id,
  @status,
  @provider,
  @source_format,
  PARSE_JSON(@sources),
  @started_at
)
