-- Frozen at release: never edit; add a new migration instead.
-- Each project's due runs in order, for a claim that lets projects take
-- turns (a burst of one project does not hold back another's runs).
CREATE INDEX runs_ready_project ON runs (project_id, available_at) WHERE status IN ('queued', 'waiting');
