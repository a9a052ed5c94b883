-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE flows (
    id character varying(36) NOT NULL PRIMARY KEY,
    project_id character varying(36) NOT NULL,
    project character varying(63) NOT NULL,
    name character varying(63) NOT NULL,
    version bigint NOT NULL,
    trigger_type character varying(16) NOT NULL,
    definition text NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128),
    updated_at timestamp with time zone,
    updated_by character varying(128)
);
CREATE INDEX idx_flows_trigger_type ON flows USING btree (trigger_type);
CREATE UNIQUE INDEX flows_project_name ON flows USING btree (project_id, name);
CREATE TABLE flow_versions (
    flow_id character varying(36) NOT NULL,
    version bigint NOT NULL,
    definition text NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128),
    PRIMARY KEY (flow_id, version)
);
CREATE TABLE runs (
    id character varying(36) NOT NULL PRIMARY KEY,
    project_id character varying(36) NOT NULL,
    project character varying(63) NOT NULL,
    flow_id character varying(36) NOT NULL,
    flow character varying(63) NOT NULL,
    flow_version bigint NOT NULL,
    environment character varying(63) NOT NULL,
    trigger character varying(16) NOT NULL,
    status character varying(16) NOT NULL,
    input text,
    output text,
    error text,
    cancel_req boolean DEFAULT false NOT NULL,
    lease_owner character varying(64),
    lease_expires_at timestamp with time zone,
    queued_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    created_by character varying(128)
);
CREATE INDEX idx_runs_lease_expires_at ON runs USING btree (lease_expires_at);
CREATE INDEX runs_claim ON runs USING btree (status, queued_at);
CREATE INDEX idx_runs_flow_id ON runs USING btree (flow_id);
CREATE INDEX runs_project_queued ON runs USING btree (project_id, queued_at);
CREATE TABLE events (
    id bigserial NOT NULL PRIMARY KEY,
    run_id character varying(36) NOT NULL,
    seq bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    type character varying(32) NOT NULL,
    block character varying(63),
    data text
);
CREATE UNIQUE INDEX events_run_seq ON events USING btree (run_id, seq);
CREATE TABLE schedule_ticks (
    flow_id character varying(36) NOT NULL,
    tick timestamp with time zone NOT NULL,
    run_id character varying(36),
    PRIMARY KEY (flow_id, tick)
);
