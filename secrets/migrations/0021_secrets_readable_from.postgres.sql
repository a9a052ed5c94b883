-- Frozen at release: never edit; add a new migration instead.
ALTER TABLE secrets ADD COLUMN readable_from text NOT NULL DEFAULT '[]'::text;
