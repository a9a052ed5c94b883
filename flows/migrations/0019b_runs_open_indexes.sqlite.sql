-- Frozen at release: never edit; add a new migration instead.
-- The indexes on a run's lease and on its flow and status hold open runs
-- only: the rescuer looks for expired leases and the concurrency limit
-- counts a flow's open runs, and nothing else reads them. A finished run
-- then leaves them, and its outcome changes one page of each, not two
-- (its entry moved to the NULL lease, or to its flow's finished status,
-- far from the open ones); and they stay the size of the open runs, not
-- of every run ever made.
DROP INDEX idx_runs_lease_expires_at;
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX runs_flow_status;
CREATE INDEX runs_flow_open ON runs (flow_id, status) WHERE status IN ('queued', 'running', 'waiting');
