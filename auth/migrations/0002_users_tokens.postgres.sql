-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE users (
    id character varying(36) NOT NULL PRIMARY KEY,
    name character varying(128) NOT NULL,
    admin boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone
);
CREATE UNIQUE INDEX idx_users_name ON users USING btree (name);
CREATE TABLE tokens (
    id character varying(36) NOT NULL PRIMARY KEY,
    user_id character varying(36) NOT NULL,
    name character varying(128) NOT NULL,
    hash character varying(64) NOT NULL,
    created_at timestamp with time zone,
    last_used_at timestamp with time zone,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone
);
CREATE UNIQUE INDEX idx_tokens_hash ON tokens USING btree (hash);
CREATE INDEX idx_tokens_user_id ON tokens USING btree (user_id);
