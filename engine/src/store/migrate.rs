//! Schema migrations, embedded and applied at start-up: one folder per backend with the
//! same version numbers. Applied versions are recorded in `pratica_migrations`.

pub(super) const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_external_tasks.sql")),
    (3, include_str!("../../migrations/sqlite/0003_schedules.sql")),
    (4, include_str!("../../migrations/sqlite/0004_tokens.sql")),
    (5, include_str!("../../migrations/sqlite/0005_human_tasks.sql")),
    (6, include_str!("../../migrations/sqlite/0006_console_sessions.sql")),
    (7, include_str!("../../migrations/sqlite/0007_dashboard_indexes.sql")),
    (8, include_str!("../../migrations/sqlite/0008_webhook_replay_and_login_throttle.sql")),
    (9, include_str!("../../migrations/sqlite/0009_external_lock_binding.sql")),
    (10, include_str!("../../migrations/sqlite/0010_job_claims.sql")),
];

pub(super) const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_external_tasks.sql")),
    (3, include_str!("../../migrations/postgres/0003_schedules.sql")),
    (4, include_str!("../../migrations/postgres/0004_tokens.sql")),
    (5, include_str!("../../migrations/postgres/0005_human_tasks.sql")),
    (6, include_str!("../../migrations/postgres/0006_console_sessions.sql")),
    (7, include_str!("../../migrations/postgres/0007_dashboard_indexes.sql")),
    (8, include_str!("../../migrations/postgres/0008_webhook_replay_and_login_throttle.sql")),
    (9, include_str!("../../migrations/postgres/0009_external_lock_binding.sql")),
    (10, include_str!("../../migrations/postgres/0010_job_claims.sql")),
];

/// Processes that start together on one PostgreSQL migrate one at a time.
pub(super) const POSTGRES_GUARD: &str = "SELECT pg_advisory_xact_lock(7412001)";
