-- Frozen at release: never edit; add a new migration instead.
-- The audit records that name no secret (a run's redaction_load) leave
-- the indexes on secret_id and secret_name, which only a search for a
-- secret by id or name uses: a run's records then change one page of
-- each index, not two.
DROP INDEX idx_secret_audit_secret_id;
CREATE INDEX secret_audit_secret_id ON secret_audit (secret_id) WHERE secret_id <> '';
DROP INDEX idx_secret_audit_secret_name;
CREATE INDEX secret_audit_secret_name ON secret_audit (secret_name) WHERE secret_name <> '';
