--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: app_installations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.app_installations (
    id character varying(36) NOT NULL,
    project_id character varying(36) NOT NULL,
    app character varying(63) NOT NULL,
    name character varying(63) NOT NULL,
    config text NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128),
    updated_at timestamp with time zone,
    updated_by character varying(128)
);


--
-- Name: environments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.environments (
    id character varying(36) NOT NULL,
    name character varying(63) NOT NULL,
    created_at timestamp with time zone
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id bigint NOT NULL,
    run_id character varying(36) NOT NULL,
    seq bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    type character varying(32) NOT NULL,
    block character varying(63),
    data text
);


--
-- Name: events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;


--
-- Name: flow_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.flow_versions (
    flow_id character varying(36) NOT NULL,
    version bigint NOT NULL,
    definition text NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128)
);


--
-- Name: flows; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.flows (
    id character varying(36) NOT NULL,
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


--
-- Name: members; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.members (
    project_id character varying(36) NOT NULL,
    user_id character varying(36) NOT NULL,
    role character varying(16) NOT NULL,
    updated_at timestamp with time zone
);


--
-- Name: projects; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.projects (
    id character varying(36) NOT NULL,
    name character varying(63) NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128)
);


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id character varying(36) NOT NULL,
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


--
-- Name: schedule_ticks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schedule_ticks (
    flow_id character varying(36) NOT NULL,
    tick timestamp with time zone NOT NULL,
    run_id character varying(36)
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    id character varying(128) NOT NULL,
    applied_at timestamp with time zone
);


--
-- Name: secret_audit; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secret_audit (
    id character varying(36) NOT NULL,
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


--
-- Name: secret_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secret_versions (
    secret_id character varying(36) NOT NULL,
    version bigint NOT NULL,
    ciphertext bytea,
    wrapped_key bytea,
    key_id character varying(32) DEFAULT ''::character varying NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128) DEFAULT ''::character varying NOT NULL,
    wiped boolean DEFAULT false NOT NULL
);


--
-- Name: secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secrets (
    id character varying(36) NOT NULL,
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


--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    hash character varying(64) NOT NULL,
    user_id character varying(36) NOT NULL,
    token_id character varying(36),
    csrf character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tokens (
    id character varying(36) NOT NULL,
    user_id character varying(36) NOT NULL,
    name character varying(128) NOT NULL,
    hash character varying(64) NOT NULL,
    created_at timestamp with time zone,
    last_used_at timestamp with time zone,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id character varying(36) NOT NULL,
    name character varying(128) NOT NULL,
    admin boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone
);


--
-- Name: events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ALTER COLUMN id SET DEFAULT nextval('public.events_id_seq'::regclass);


--
-- Name: app_installations app_installations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.app_installations
    ADD CONSTRAINT app_installations_pkey PRIMARY KEY (id);


--
-- Name: environments environments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.environments
    ADD CONSTRAINT environments_pkey PRIMARY KEY (id);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: flow_versions flow_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.flow_versions
    ADD CONSTRAINT flow_versions_pkey PRIMARY KEY (flow_id, version);


--
-- Name: flows flows_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.flows
    ADD CONSTRAINT flows_pkey PRIMARY KEY (id);


--
-- Name: members members_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.members
    ADD CONSTRAINT members_pkey PRIMARY KEY (project_id, user_id);


--
-- Name: projects projects_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.projects
    ADD CONSTRAINT projects_pkey PRIMARY KEY (id);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: schedule_ticks schedule_ticks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schedule_ticks
    ADD CONSTRAINT schedule_ticks_pkey PRIMARY KEY (flow_id, tick);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (id);


--
-- Name: secret_audit secret_audit_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secret_audit
    ADD CONSTRAINT secret_audit_pkey PRIMARY KEY (id);


--
-- Name: secret_versions secret_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secret_versions
    ADD CONSTRAINT secret_versions_pkey PRIMARY KEY (secret_id, version);


--
-- Name: secrets secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (id);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (hash);


--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: app_installations_project_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX app_installations_project_name ON public.app_installations USING btree (project_id, name);


--
-- Name: events_run_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_run_seq ON public.events USING btree (run_id, seq);


--
-- Name: flows_project_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX flows_project_name ON public.flows USING btree (project_id, name);


--
-- Name: idx_environments_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_environments_name ON public.environments USING btree (name);


--
-- Name: idx_flows_trigger_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_flows_trigger_type ON public.flows USING btree (trigger_type);


--
-- Name: idx_members_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_members_user_id ON public.members USING btree (user_id);


--
-- Name: idx_projects_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_projects_name ON public.projects USING btree (name);


--
-- Name: idx_runs_flow_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_runs_flow_id ON public.runs USING btree (flow_id);


--
-- Name: idx_runs_lease_expires_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_runs_lease_expires_at ON public.runs USING btree (lease_expires_at);


--
-- Name: idx_secret_audit_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_secret_audit_at ON public.secret_audit USING btree (at);


--
-- Name: idx_secret_audit_secret_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_secret_audit_secret_id ON public.secret_audit USING btree (secret_id);


--
-- Name: idx_secret_audit_secret_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_secret_audit_secret_name ON public.secret_audit USING btree (secret_name);


--
-- Name: idx_secret_versions_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_secret_versions_key_id ON public.secret_versions USING btree (key_id);


--
-- Name: idx_secrets_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_secrets_name ON public.secrets USING btree (name);


--
-- Name: idx_sessions_expires_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_sessions_expires_at ON public.sessions USING btree (expires_at);


--
-- Name: idx_sessions_token_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_sessions_token_id ON public.sessions USING btree (token_id);


--
-- Name: idx_sessions_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_sessions_user_id ON public.sessions USING btree (user_id);


--
-- Name: idx_tokens_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_tokens_hash ON public.tokens USING btree (hash);


--
-- Name: idx_tokens_user_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_tokens_user_id ON public.tokens USING btree (user_id);


--
-- Name: idx_users_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_users_name ON public.users USING btree (name);


--
-- Name: runs_claim; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX runs_claim ON public.runs USING btree (status, queued_at);


--
-- Name: runs_flow_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX runs_flow_status ON public.runs USING btree (flow_id, status);


--
-- Name: runs_project_queued; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX runs_project_queued ON public.runs USING btree (project_id, queued_at);


--
-- Name: secrets_scope_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX secrets_scope_name ON public.secrets USING btree (project, environment, name) WHERE (deleted_at IS NULL);


--
-- PostgreSQL database dump complete
--


