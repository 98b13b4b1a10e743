//! Schema migrations, embedded and applied at start-up: one folder per backend with the
//! same version numbers. Applied versions are recorded in `pratica_migrations`.

use super::StoreError;

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_external_tasks.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_external_tasks.sql")),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS pratica_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

pub(super) async fn run_sqlite(pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
    for (version, sql) in SQLITE {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM pratica_migrations WHERE version = $1").bind(version).fetch_optional(&mut *tx).await?;
        if done.is_none() {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO pratica_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(chrono::Utc::now().timestamp_millis())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn run_postgres(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // Several processes may start together: one migrates, the others wait.
    sqlx::query("SELECT pg_advisory_xact_lock(7412001)").execute(&mut *tx).await?;
    sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
    for (version, sql) in POSTGRES {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM pratica_migrations WHERE version = $1").bind(version).fetch_optional(&mut *tx).await?;
        if done.is_none() {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO pratica_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(chrono::Utc::now().timestamp_millis())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
