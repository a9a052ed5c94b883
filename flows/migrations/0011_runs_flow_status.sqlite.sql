-- Frozen at release: never edit; add a new migration instead.
-- The per-flow concurrency check counts a flow's active runs.
CREATE INDEX runs_flow_status ON runs (flow_id, status);
