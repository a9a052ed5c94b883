-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `members` (`project_id` text,`user_id` text,`role` text NOT NULL,`updated_at` datetime,PRIMARY KEY (`project_id`,`user_id`));
CREATE INDEX `idx_members_user_id` ON `members`(`user_id`);
