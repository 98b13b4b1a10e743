-- External tasks: call jobs for `call: external` carry the topic external workers fetch from.
-- Internal workers never claim them.
ALTER TABLE jobs ADD COLUMN topic TEXT;
CREATE INDEX jobs_topic ON jobs (topic, due_at);
