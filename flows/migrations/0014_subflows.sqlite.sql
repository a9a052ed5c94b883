-- Frozen at release: never edit; add a new migration instead.
-- Sub-flows: a run started by a flow block of another run names its
-- parent, the block and the block's attempt (one child per attempt), and
-- its depth under the first run.
ALTER TABLE `runs` ADD COLUMN `parent_run_id` text NOT NULL DEFAULT '';
ALTER TABLE `runs` ADD COLUMN `parent_block` text NOT NULL DEFAULT '';
ALTER TABLE `runs` ADD COLUMN `parent_attempt` integer NOT NULL DEFAULT 0;
ALTER TABLE `runs` ADD COLUMN `depth` integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX runs_parent ON runs (parent_run_id, parent_block, parent_attempt) WHERE parent_run_id <> '';
