-- Pratica schema, PostgreSQL dialect. Times are milliseconds since the Unix epoch (UTC);
-- JSON is stored as TEXT.
CREATE TABLE workflows (
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    source      TEXT NOT NULL,
    deployed_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    business_key TEXT,
    request_id   TEXT,
    input        TEXT NOT NULL,
    state        TEXT NOT NULL,
    output       TEXT,
    error        TEXT,
    parent_id    TEXT,
    parent_token BIGINT,
    parent_epoch BIGINT,
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    history_seq  BIGINT NOT NULL DEFAULT 0,
    history_head TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX instances_request ON instances (workflow, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX instances_business_key ON instances (business_key);
CREATE INDEX instances_status ON instances (workflow, status);
CREATE INDEX instances_parent ON instances (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    token       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    fence       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (due_at);
CREATE INDEX jobs_instance ON jobs (instance_id, token);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    token           BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    step_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT,
    assignee        TEXT,
    role            TEXT,
    office          TEXT,
    form            TEXT,
    outcomes        TEXT NOT NULL,
    reason_required TEXT NOT NULL,
    excluded_actors TEXT NOT NULL,
    due_at          BIGINT,
    created_at      BIGINT NOT NULL,
    completed_by    TEXT,
    completed_at    BIGINT,
    result          TEXT
);
CREATE INDEX tasks_queue ON tasks (status, office, role, due_at);
CREATE INDEX tasks_instance ON tasks (instance_id);

CREATE TABLE subscriptions (
    instance_id TEXT NOT NULL,
    token       BIGINT NOT NULL,
    epoch       BIGINT NOT NULL,
    message     TEXT NOT NULL,
    key         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, token)
);
CREATE INDEX subscriptions_lookup ON subscriptions (message, key);

CREATE TABLE messages (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    consumed_by  TEXT
);
CREATE INDEX messages_lookup ON messages (name, key, published_at);

CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    step        TEXT,
    data        TEXT NOT NULL,
    actor       TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
