-- Frozen at release: never edit; add a new migration instead.
-- Durable runs: a run is claimable from available_at (its queue time, or
-- the end of a durable wait); attempt counts claims, resumes counts
-- interruptions; run_checkpoints holds each finished block's output,
-- sealed, until the run ends.
ALTER TABLE `runs` ADD COLUMN `available_at` datetime NOT NULL DEFAULT '';
UPDATE `runs` SET `available_at` = `queued_at`;
ALTER TABLE `runs` ADD COLUMN `attempt` integer NOT NULL DEFAULT 0;
ALTER TABLE `runs` ADD COLUMN `resumes` integer NOT NULL DEFAULT 0;
ALTER TABLE `runs` ADD COLUMN `resume_reason` text NOT NULL DEFAULT '';
DROP INDEX `runs_claim`;
CREATE INDEX runs_ready ON runs (available_at) WHERE status IN ('queued', 'waiting');
CREATE TABLE `run_checkpoints` (`run_id` text NOT NULL,`block` text NOT NULL,`state` text NOT NULL,`detail` text NOT NULL DEFAULT '',`output` blob,`created_at` datetime NOT NULL,PRIMARY KEY (`run_id`,`block`));
