-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE secrets (
    id character varying(36) NOT NULL PRIMARY KEY,
    name character varying(128) NOT NULL,
    project_id character varying(36) DEFAULT ''::character varying NOT NULL,
    project character varying(63) DEFAULT ''::character varying NOT NULL,
    environment_id character varying(36) DEFAULT ''::character varying NOT NULL,
    environment character varying(63) DEFAULT ''::character varying NOT NULL,
    kind character varying(8) NOT NULL,
    description character varying(1024) DEFAULT ''::character varying NOT NULL,
    allowed_hosts text DEFAULT '[]'::text NOT NULL,
    weak boolean DEFAULT false NOT NULL,
    current_version bigint NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128) DEFAULT ''::character varying NOT NULL,
    updated_at timestamp with time zone,
    updated_by character varying(128) DEFAULT ''::character varying NOT NULL,
    deleted_at timestamp with time zone,
    deleted_by character varying(128) DEFAULT ''::character varying NOT NULL
);
CREATE INDEX idx_secrets_name ON secrets USING btree (name);
CREATE TABLE secret_versions (
    secret_id character varying(36) NOT NULL,
    version bigint NOT NULL,
    ciphertext bytea,
    wrapped_key bytea,
    key_id character varying(32) DEFAULT ''::character varying NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128) DEFAULT ''::character varying NOT NULL,
    wiped boolean DEFAULT false NOT NULL,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX idx_secret_versions_key_id ON secret_versions USING btree (key_id);
CREATE TABLE secret_audit (
    id character varying(36) NOT NULL PRIMARY KEY,
    at timestamp with time zone NOT NULL,
    actor character varying(128) DEFAULT ''::character varying NOT NULL,
    action character varying(32) NOT NULL,
    secret_id character varying(36) DEFAULT ''::character varying NOT NULL,
    secret_name character varying(128) DEFAULT ''::character varying NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    project character varying(63) DEFAULT ''::character varying NOT NULL,
    environment character varying(63) DEFAULT ''::character varying NOT NULL,
    scope_label character varying(24) DEFAULT ''::character varying NOT NULL,
    run_project character varying(63) DEFAULT ''::character varying NOT NULL,
    run_environment character varying(63) DEFAULT ''::character varying NOT NULL,
    run_id character varying(64) DEFAULT ''::character varying NOT NULL,
    block_id character varying(128) DEFAULT ''::character varying NOT NULL,
    detail character varying(512) DEFAULT ''::character varying NOT NULL
);
CREATE INDEX idx_secret_audit_at ON secret_audit USING btree (at);
CREATE INDEX idx_secret_audit_secret_id ON secret_audit USING btree (secret_id);
CREATE INDEX idx_secret_audit_secret_name ON secret_audit USING btree (secret_name);
CREATE UNIQUE INDEX secrets_scope_name ON secrets (project, environment, name) WHERE deleted_at IS NULL;
