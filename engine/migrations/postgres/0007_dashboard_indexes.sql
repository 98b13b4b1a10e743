-- The director dashboard reads cases by when they started and ended, and tasks by due date
-- (engine/src/store/reports.rs): without these, every dashboard view scans the tables.
CREATE INDEX instances_started ON instances (started_at);
CREATE INDEX instances_ended ON instances (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL;
