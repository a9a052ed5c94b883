-- Frozen at release: never edit; add a new migration instead.
ALTER TABLE environments ADD COLUMN protected boolean NOT NULL DEFAULT false;
