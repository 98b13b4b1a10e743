-- Triggers of the latest deployed version of each workflow (replaced when a newer version
-- is deployed). Cron schedules carry their next fire time (UTC ms); a process fires a due
-- schedule by moving `next_fire_at` with a conditional update, so each due time fires once
-- across all processes.
CREATE TABLE schedules (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    trigger_ix   BIGINT NOT NULL,
    schedule     TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    next_fire_at BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at);
CREATE INDEX schedules_workflow ON schedules (workflow);

-- Webhook and message triggers by name: `kind` is 'webhook' or 'message'.
CREATE TABLE trigger_names (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    workflow   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    trigger_ix BIGINT NOT NULL,
    PRIMARY KEY (kind, name, workflow, trigger_ix)
);
CREATE INDEX trigger_names_workflow ON trigger_names (workflow);
