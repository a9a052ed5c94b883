-- Frozen at release: never edit; add a new migration instead.
CREATE TABLE `flows` (`id` text,`project_id` text NOT NULL,`project` text NOT NULL,`name` text NOT NULL,`version` integer NOT NULL,`trigger_type` text NOT NULL,`definition` text NOT NULL,`created_at` datetime,`created_by` text,`updated_at` datetime,`updated_by` text,PRIMARY KEY (`id`));
CREATE INDEX `idx_flows_trigger_type` ON `flows`(`trigger_type`);
CREATE UNIQUE INDEX `flows_project_name` ON `flows`(`project_id`,`name`);
CREATE TABLE `flow_versions` (`flow_id` text,`version` integer,`definition` text NOT NULL,`created_at` datetime,`created_by` text,PRIMARY KEY (`flow_id`,`version`));
CREATE TABLE `runs` (`id` text,`project_id` text NOT NULL,`project` text NOT NULL,`flow_id` text NOT NULL,`flow` text NOT NULL,`flow_version` integer NOT NULL,`environment` text NOT NULL,`trigger` text NOT NULL,`status` text NOT NULL,`input` text,`output` text,`error` text,`cancel_req` numeric NOT NULL DEFAULT false,`lease_owner` text,`lease_expires_at` datetime,`queued_at` datetime NOT NULL,`started_at` datetime,`finished_at` datetime,`created_by` text,PRIMARY KEY (`id`));
CREATE INDEX `idx_runs_lease_expires_at` ON `runs`(`lease_expires_at`);
CREATE INDEX `runs_claim` ON `runs`(`status`,`queued_at`);
CREATE INDEX `idx_runs_flow_id` ON `runs`(`flow_id`);
CREATE INDEX `runs_project_queued` ON `runs`(`project_id`,`queued_at`);
CREATE TABLE `events` (`id` integer PRIMARY KEY AUTOINCREMENT,`run_id` text NOT NULL,`seq` integer NOT NULL,`at` datetime NOT NULL,`type` text NOT NULL,`block` text,`data` text);
CREATE UNIQUE INDEX `events_run_seq` ON `events`(`run_id`,`seq`);
CREATE TABLE `schedule_ticks` (`flow_id` text,`tick` datetime,`run_id` text,PRIMARY KEY (`flow_id`,`tick`));
