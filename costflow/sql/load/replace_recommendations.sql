-- Replace one provider's recommendations from the given sources with a new fetch, atomically
-- (the engine wraps both statements in one transaction). A fetch is a full snapshot of what the
-- provider currently recommends, so what it no longer lists disappears.

-- name: delete_recommendations
DELETE FROM cost_analytics.recommendations
WHERE x_SourceProvider = @provider
  AND source IN UNNEST(@sources);

-- name: insert_recommendations
INSERT INTO cost_analytics.recommendations
SELECT *
FROM cost_analytics._staged_recommendations
WHERE x_RunId = @run_id;
