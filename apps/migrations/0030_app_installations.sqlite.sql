-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `app_installations` (`id` text,`project_id` text NOT NULL,`app` text NOT NULL,`name` text NOT NULL,`config` text NOT NULL,`created_at` datetime,`created_by` text,`updated_at` datetime,`updated_by` text,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `app_installations_project_name` ON `app_installations`(`project_id`,`name`);
