-- Frozen at release: never edit; add a new migration instead.
-- Reruns: rerun_of names the run a run repeats; input_sealed keeps the
-- real input of an ended run whose stored input was redacted (sealed like
-- a checkpoint, bound to the run), so that a rerun gets the real values.
ALTER TABLE runs ADD COLUMN rerun_of character varying(36) DEFAULT ''::character varying NOT NULL;
ALTER TABLE runs ADD COLUMN input_sealed bytea;
-- A flow's last run (the flow list) is the first entry of its runs in
-- this index (ids are UUIDv7: they sort by creation); it replaces the
-- index on flow_id alone, whose lookups it serves as well.
DROP INDEX idx_runs_flow_id;
CREATE INDEX runs_flow_latest ON runs (flow_id, id);
