-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE sessions (
    hash character varying(64) NOT NULL PRIMARY KEY,
    user_id character varying(36) NOT NULL,
    token_id character varying(36),
    csrf character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);
CREATE INDEX idx_sessions_expires_at ON sessions USING btree (expires_at);
CREATE INDEX idx_sessions_token_id ON sessions USING btree (token_id);
CREATE INDEX idx_sessions_user_id ON sessions USING btree (user_id);
