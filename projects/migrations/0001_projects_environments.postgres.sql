-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE projects (
    id character varying(36) NOT NULL PRIMARY KEY,
    name character varying(63) NOT NULL,
    created_at timestamp with time zone,
    created_by character varying(128)
);
CREATE UNIQUE INDEX idx_projects_name ON projects USING btree (name);
CREATE TABLE environments (
    id character varying(36) NOT NULL PRIMARY KEY,
    name character varying(63) NOT NULL,
    created_at timestamp with time zone
);
CREATE UNIQUE INDEX idx_environments_name ON environments USING btree (name);
