-- Frozen at release: never edit; add a new migration instead.
-- Durable runs: a run is claimable from available_at (its queue time, or
-- the end of a durable wait); attempt counts claims, resumes counts
-- interruptions; run_checkpoints holds each finished block's output,
-- sealed, until the run ends.
ALTER TABLE runs ADD COLUMN available_at timestamp with time zone;
UPDATE runs SET available_at = queued_at;
ALTER TABLE runs ALTER COLUMN available_at SET NOT NULL;
ALTER TABLE runs ADD COLUMN attempt bigint DEFAULT 0 NOT NULL;
ALTER TABLE runs ADD COLUMN resumes bigint DEFAULT 0 NOT NULL;
ALTER TABLE runs ADD COLUMN resume_reason text DEFAULT ''::text NOT NULL;
DROP INDEX runs_claim;
CREATE INDEX runs_ready ON runs (available_at) WHERE status IN ('queued', 'waiting');
CREATE TABLE run_checkpoints (
    run_id character varying(36) NOT NULL,
    block character varying(63) NOT NULL,
    state character varying(16) NOT NULL,
    detail text DEFAULT ''::text NOT NULL,
    output bytea,
    created_at timestamp with time zone NOT NULL,
    PRIMARY KEY (run_id, block)
);
