-- Staging tables of the embedded engine: the shape of their targets, no data, no constraints.
-- Rows are keyed by x_RunId and only live inside a commit transaction. (BigQuery stages each run
-- in its own table, created by the load job from the same schema declaration.)

-- name: create_staged_rows
CREATE TABLE IF NOT EXISTS cost_analytics._staged_cost_line_items AS
SELECT * FROM cost_analytics.cost_line_items
LIMIT 0;

-- name: create_staged_dead_letters
CREATE TABLE IF NOT EXISTS cost_analytics._staged_dead_letters AS
SELECT * FROM cost_analytics.dead_letters
LIMIT 0;
