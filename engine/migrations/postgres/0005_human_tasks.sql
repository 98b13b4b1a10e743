-- Human tasks, complete: candidate roles of tokens and users (JSON array of role names, e.g.
-- ["naspi-operator"]); per task, who delegated it last, when it escalated, and the plan's
-- escalation and notification settings frozen at creation (JSON text).
ALTER TABLE api_tokens ADD COLUMN task_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN task_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN delegated_by TEXT;
ALTER TABLE tasks ADD COLUMN escalated_at BIGINT;
