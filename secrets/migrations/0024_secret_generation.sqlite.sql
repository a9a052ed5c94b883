-- Frozen at release: never edit; add a new migration instead.
-- secret_generation holds one row whose gen changes (to a random value)
-- with every change to secrets or secret_versions, made by any process:
-- the secrets store keeps the rows a run's load reads in memory (their
-- ciphertext, never a value) until gen changes, so that a run reads one
-- integer instead of its scope's secrets joined with their versions.
CREATE TABLE secret_generation (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
INSERT INTO secret_generation (id, gen) VALUES (1, random());
CREATE TRIGGER secrets_generation_insert AFTER INSERT ON secrets
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
CREATE TRIGGER secrets_generation_update AFTER UPDATE ON secrets
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
CREATE TRIGGER secrets_generation_delete AFTER DELETE ON secrets
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
CREATE TRIGGER secret_versions_generation_insert AFTER INSERT ON secret_versions
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
CREATE TRIGGER secret_versions_generation_update AFTER UPDATE ON secret_versions
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
CREATE TRIGGER secret_versions_generation_delete AFTER DELETE ON secret_versions
BEGIN UPDATE secret_generation SET gen = random() WHERE id = 1; END;
