-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `projects` (`id` text,`name` text NOT NULL,`created_at` datetime,`created_by` text,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_projects_name` ON `projects`(`name`);
CREATE TABLE `environments` (`id` text,`name` text NOT NULL,`created_at` datetime,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_environments_name` ON `environments`(`name`);
