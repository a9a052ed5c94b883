-- Frozen at release: never edit; add a new migration instead.
-- Sub-flows: a run started by a flow block of another run names its
-- parent, the block and the block's attempt (one child per attempt), and
-- its depth under the first run.
ALTER TABLE runs ADD COLUMN parent_run_id character varying(36) DEFAULT ''::character varying NOT NULL;
ALTER TABLE runs ADD COLUMN parent_block character varying(63) DEFAULT ''::character varying NOT NULL;
ALTER TABLE runs ADD COLUMN parent_attempt bigint DEFAULT 0 NOT NULL;
ALTER TABLE runs ADD COLUMN depth bigint DEFAULT 0 NOT NULL;
CREATE UNIQUE INDEX runs_parent ON runs (parent_run_id, parent_block, parent_attempt) WHERE parent_run_id <> '';
