-- Frozen at release: never edit; add a new migration instead.
ALTER TABLE `environments` ADD COLUMN `protected` numeric NOT NULL DEFAULT false;
