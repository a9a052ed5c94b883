-- Frozen at release: never edit; add a new migration instead.
-- A paused flow starts no run (POST .../pause): who paused it and when,
-- and who last resumed it and when.
-- Runs' inserts check it in their own statement.
ALTER TABLE flows ADD COLUMN paused_at timestamp with time zone;
ALTER TABLE flows ADD COLUMN paused_by text DEFAULT ''::text NOT NULL;
ALTER TABLE flows ADD COLUMN resumed_at timestamp with time zone;
ALTER TABLE flows ADD COLUMN resumed_by text DEFAULT ''::text NOT NULL;
