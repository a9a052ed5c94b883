-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE app_installations (
    id character varying(36) NOT NULL PRIMARY KEY,
    project_id character varying(36) NOT NULL,
    app character varying(63) NOT NULL,
    name character varying(63) NOT NULL,
    config text NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128),
    updated_at timestamp with time zone,
    updated_by character varying(128)
);
CREATE UNIQUE INDEX app_installations_project_name ON app_installations USING btree (project_id, name);
