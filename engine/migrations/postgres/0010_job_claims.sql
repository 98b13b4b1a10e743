-- How many times a worker has claimed each job. A job claimed again and again without
-- finishing (its process crashed, or it overran its lease) is quarantined: its instance
-- fails with `job.quarantined` instead of taking the server down at every restart.
ALTER TABLE jobs ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
