-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `secrets` (`id` text,`name` text NOT NULL,`project_id` text NOT NULL DEFAULT "",`project` text NOT NULL DEFAULT "",`environment_id` text NOT NULL DEFAULT "",`environment` text NOT NULL DEFAULT "",`kind` text NOT NULL,`description` text NOT NULL DEFAULT "",`allowed_hosts` text NOT NULL DEFAULT "[]",`weak` numeric NOT NULL DEFAULT false,`current_version` integer NOT NULL,`created_at` datetime,`created_by` text NOT NULL DEFAULT "",`updated_at` datetime,`updated_by` text NOT NULL DEFAULT "",`deleted_at` datetime,`deleted_by` text NOT NULL DEFAULT "",PRIMARY KEY (`id`));
CREATE INDEX `idx_secrets_name` ON `secrets`(`name`);
CREATE TABLE `secret_versions` (`secret_id` text,`version` integer,`ciphertext` blob,`wrapped_key` blob,`key_id` text NOT NULL DEFAULT "",`created_at` datetime,`created_by` text NOT NULL DEFAULT "",`wiped` numeric NOT NULL DEFAULT false,PRIMARY KEY (`secret_id`,`version`));
CREATE INDEX `idx_secret_versions_key_id` ON `secret_versions`(`key_id`);
CREATE TABLE `secret_audit` (`id` text,`at` datetime NOT NULL,`actor` text NOT NULL DEFAULT "",`action` text NOT NULL,`secret_id` text NOT NULL DEFAULT "",`secret_name` text NOT NULL DEFAULT "",`version` integer NOT NULL DEFAULT 0,`project` text NOT NULL DEFAULT "",`environment` text NOT NULL DEFAULT "",`scope_label` text NOT NULL DEFAULT "",`run_project` text NOT NULL DEFAULT "",`run_environment` text NOT NULL DEFAULT "",`run_id` text NOT NULL DEFAULT "",`block_id` text NOT NULL DEFAULT "",`detail` text NOT NULL DEFAULT "",PRIMARY KEY (`id`));
CREATE INDEX `idx_secret_audit_secret_name` ON `secret_audit`(`secret_name`);
CREATE INDEX `idx_secret_audit_secret_id` ON `secret_audit`(`secret_id`);
CREATE INDEX `idx_secret_audit_at` ON `secret_audit`(`at`);
CREATE UNIQUE INDEX secrets_scope_name ON secrets (project, environment, name) WHERE deleted_at IS NULL;
