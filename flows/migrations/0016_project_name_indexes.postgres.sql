-- Frozen at release: never edit; add a new migration instead.
-- A webhook, the API and a sub-flow block find a flow by its project's name
-- and its own, and the run history lists a project's runs newest first:
-- without these indexes each of them read every flow, or every run until
-- it had a page. runs_project_queued served no query.
CREATE INDEX IF NOT EXISTS flows_project_flow ON flows (project, name);
CREATE INDEX IF NOT EXISTS runs_project ON runs (project, id);
DROP INDEX IF EXISTS runs_project_queued;
