-- Frozen at release: never edit; add a new migration instead.
-- Exposure alerts: the mark on a secret whose value a run found where it
-- should never be (cleared by the next update), and the sink of an
-- exposure record, recorded once per run, block, sink and secret.
ALTER TABLE secrets ADD COLUMN exposed_at timestamp with time zone;
ALTER TABLE secrets ADD COLUMN exposed_run_id character varying(64) DEFAULT ''::character varying NOT NULL;
ALTER TABLE secrets ADD COLUMN exposed_run_project character varying(63) DEFAULT ''::character varying NOT NULL;
ALTER TABLE secrets ADD COLUMN exposed_block character varying(128) DEFAULT ''::character varying NOT NULL;
ALTER TABLE secrets ADD COLUMN exposed_sink character varying(32) DEFAULT ''::character varying NOT NULL;
ALTER TABLE secret_audit ADD COLUMN sink character varying(32) DEFAULT ''::character varying NOT NULL;
CREATE UNIQUE INDEX secret_audit_exposure ON secret_audit (run_id, block_id, sink, secret_id) WHERE action = 'exposure';
