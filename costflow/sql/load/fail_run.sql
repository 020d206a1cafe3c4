-- Mark a run failed. Runs on its own, after the commit transaction rolled back: it never touches
-- cost data, so the ledger tells the truth even when nothing was committed.
-- name: fail_run
UPDATE cost_analytics.load_runs
SET
  status = @status,
  finished_at = CURRENT_TIMESTAMP(),
  error = @error,
  report = PARSE_JSON(@report)
WHERE run_id = @run_id
