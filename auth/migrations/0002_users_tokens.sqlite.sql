-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `users` (`id` text,`name` text NOT NULL,`admin` numeric NOT NULL DEFAULT false,`created_at` datetime,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_users_name` ON `users`(`name`);
CREATE TABLE `tokens` (`id` text,`user_id` text NOT NULL,`name` text NOT NULL,`hash` text NOT NULL,`created_at` datetime,`last_used_at` datetime,`expires_at` datetime,`revoked_at` datetime,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_tokens_hash` ON `tokens`(`hash`);
CREATE INDEX `idx_tokens_user_id` ON `tokens`(`user_id`);
