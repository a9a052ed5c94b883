-- Frozen at release: never edit; add a new migration instead.
-- Who asked a run to stop ("canceled by ana"): a run canceled while a
-- worker runs it ends with the same reason as one canceled while queued.
ALTER TABLE `runs` ADD COLUMN `cancel_reason` text NOT NULL DEFAULT '';
