//! PostgreSQL: several processes share the work. Claims use `FOR UPDATE SKIP LOCKED`;
//! transitions lock their instance row; publications and subscriptions pair up under an
//! advisory lock; committed jobs are announced with `NOTIFY`. `?schema=NAME` in the URL
//! selects (and creates) a schema, which is how each test and benchmark run gets its own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::{Dialect, StoreError};

/// PostgreSQL's side of the shared statements.
pub(super) const DIALECT: Dialect = Dialect {
    for_update: "FOR UPDATE",
    skip_locked: "FOR UPDATE SKIP LOCKED",
    input_office: "(i.input::jsonb ->> 'office')",
    begin_write: "BEGIN",
    migration_lock: "SELECT pg_advisory_xact_lock(7412001)",
    checksum_column: "SELECT COUNT(*) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'pratica_migrations' AND column_name = 'checksum'",
};

/// The PostgreSQL channel on which committed work is announced.
pub const JOBS_CHANNEL: &str = "pratica_jobs";

/// A write transaction.
pub(super) async fn begin_write(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

/// Opens the pool (eight connections), first creating the URL's `?schema=` if it names one.
pub(super) async fn connect(url: &str) -> Result<sqlx::PgPool, StoreError> {
    let (base, schema) = split_schema(url);
    let mut options = PgConnectOptions::from_str(&base)?;
    if let Some(schema) = &schema {
        check_schema_name(schema)?;
        let setup = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        // `schema` was checked above to be letters, digits and underscores.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}"))).execute(&setup).await?;
        setup.close().await;
        options = options.options([("search_path", schema.as_str())]);
    }
    Ok(PgPoolOptions::new().max_connections(8).connect_with(options).await?)
}

/// Refuses a schema name that is not letters, digits and underscores (it is formatted into
/// statements).
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Url(format!("schema `{schema}`: use letters, digits and underscores")));
    }
    Ok(())
}

/// A one-connection pool on the PostgreSQL at `base`, for administration.
async fn admin(base: &str) -> Result<sqlx::PgPool, StoreError> {
    let options = PgConnectOptions::from_str(base)?;
    Ok(PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?)
}

/// Whether the PostgreSQL at `base` accepts a connection (an error says why not).
pub async fn check_postgres(base: &str) -> Result<(), StoreError> {
    admin(base).await?.close().await;
    Ok(())
}

/// Creates schema `schema` (it must not exist) in the PostgreSQL at `base` (benchmarks'
/// scratch databases).
pub async fn create_postgres_schema(base: &str, schema: &str) -> Result<(), StoreError> {
    check_schema_name(schema)?;
    let pool = admin(base).await?;
    let done = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await;
    pool.close().await;
    done?;
    Ok(())
}

/// Drops schema `schema`, if it exists, with everything in it, from the PostgreSQL at `base`.
pub async fn drop_postgres_schema(base: &str, schema: &str) -> Result<(), StoreError> {
    check_schema_name(schema)?;
    let pool = admin(base).await?;
    let done = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await;
    pool.close().await;
    done?;
    Ok(())
}

/// A listener on [`JOBS_CHANNEL`].
pub(super) async fn job_listener(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(JOBS_CHANNEL).await?;
    Ok(listener)
}

/// Announces on [`JOBS_CHANNEL`] that the transaction added jobs (delivered at commit, once
/// per transaction).
pub(super) async fn notify_jobs(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')").bind(JOBS_CHANNEL).execute(conn).await?;
    Ok(())
}

/// Holds, until the end of the transaction, the advisory lock of `(message, key)`.
pub(super) async fn lock_correlation(conn: &mut sqlx::PgConnection, message: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7412002))").bind(format!("{message}\u{1f}{key}")).execute(conn).await?;
    Ok(())
}

/// Takes Pratica's own `schema=` parameter out of the URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("schema=") {
            Some(v) => {
                schema = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    let base = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
    (base, schema)
}
