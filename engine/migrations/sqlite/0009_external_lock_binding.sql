-- External-task locks bound to the API token that fetched them: `lock_id` is the lock a
-- worker sends back (random, 128 bits, hex), `locked_by` the name of the API token that
-- fetched the task. Only that token, with that lock, may complete, fail or extend the task.
ALTER TABLE jobs ADD COLUMN lock_id TEXT;
ALTER TABLE jobs ADD COLUMN locked_by TEXT;

-- The external-task topics a worker token may fetch and complete (a JSON array; empty: any).
ALTER TABLE api_tokens ADD COLUMN topics TEXT NOT NULL DEFAULT '[]';
