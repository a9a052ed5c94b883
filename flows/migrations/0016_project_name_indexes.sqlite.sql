-- Frozen at release: never edit; add a new migration instead.
-- A webhook, an API call and a schedule find a flow by its project's name
-- and its own, and the run history lists a project's runs newest first:
-- without these indexes each of them read every flow, or every run until
-- it had a page. runs_project_queued served no query.
CREATE INDEX flows_project_flow ON flows (project, name);
CREATE INDEX runs_project ON runs (project, id);
DROP INDEX runs_project_queued;
