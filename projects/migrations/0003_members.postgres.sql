-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE members (
    project_id character varying(36) NOT NULL,
    user_id character varying(36) NOT NULL,
    role character varying(16) NOT NULL,
    updated_at timestamp with time zone,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX idx_members_user_id ON members USING btree (user_id);
