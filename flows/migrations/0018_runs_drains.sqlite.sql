-- Frozen at release: never edit; add a new migration instead.
-- How many of a run's resumes were planned drains (its worker shut down
-- and released it): they do not count toward HUSHFLOW_MAX_RESUMES.
ALTER TABLE `runs` ADD COLUMN `drains` integer NOT NULL DEFAULT 0;
