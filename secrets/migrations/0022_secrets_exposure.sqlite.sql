-- Frozen at release: never edit; add a new migration instead.
-- Exposure alerts: the mark on a secret whose value a run found where it
-- should never be (cleared by the next update), and the sink of an
-- exposure record, recorded once per run, block, sink and secret.
ALTER TABLE `secrets` ADD COLUMN `exposed_at` datetime;
ALTER TABLE `secrets` ADD COLUMN `exposed_run_id` text NOT NULL DEFAULT "";
ALTER TABLE `secrets` ADD COLUMN `exposed_run_project` text NOT NULL DEFAULT "";
ALTER TABLE `secrets` ADD COLUMN `exposed_block` text NOT NULL DEFAULT "";
ALTER TABLE `secrets` ADD COLUMN `exposed_sink` text NOT NULL DEFAULT "";
ALTER TABLE `secret_audit` ADD COLUMN `sink` text NOT NULL DEFAULT "";
CREATE UNIQUE INDEX secret_audit_exposure ON secret_audit (run_id, block_id, sink, secret_id) WHERE action = 'exposure';
