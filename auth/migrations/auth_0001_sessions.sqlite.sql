-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `sessions` (`hash` text,`user_id` text NOT NULL,`token_id` text,`csrf` text NOT NULL,`created_at` datetime NOT NULL,`expires_at` datetime NOT NULL,PRIMARY KEY (`hash`));
CREATE INDEX `idx_sessions_expires_at` ON `sessions`(`expires_at`);
CREATE INDEX `idx_sessions_token_id` ON `sessions`(`token_id`);
CREATE INDEX `idx_sessions_user_id` ON `sessions`(`user_id`);
