//! The raw-storage probe of the benchmarks (workload S): plain sqlx on a scratch table,
//! deliberately independent of Pratica's schema and code paths, to measure what the
//! database itself can commit. Single-row insert transactions, and 100-row transactions
//! written both as one multi-row `INSERT` (the storage limit) and as one prepared `INSERT`
//! per row (each statement a round trip through the driver).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Row as _};

use super::{Pool, StoreError, WriteGate, create_postgres_schema};

const CREATE_SQLITE: &str =
    "CREATE TABLE bench_scratch (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL, v BIGINT NOT NULL, payload TEXT NOT NULL)";
const CREATE_POSTGRES: &str =
    "CREATE TABLE bench_scratch (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL, v BIGINT NOT NULL, payload TEXT NOT NULL)";
const INSERT: &str = "INSERT INTO bench_scratch (k, v, payload) VALUES ($1, $2, $3)";
const INSERT_MANY: &str = "INSERT INTO bench_scratch (k, v, payload) ";

/// A scratch database with the scratch table `bench_scratch`.
#[derive(Clone, Debug)]
pub struct ScratchTable {
    pool: Pool,
}

impl ScratchTable {
    /// Creates the scratch table in a new SQLite file at `path` (WAL; `synchronous=FULL`
    /// when `full_sync`, else `NORMAL`), with room for `clients` connections.
    pub async fn open_sqlite(path: &Path, full_sync: bool, clients: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if full_sync { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(clients).connect_with(options).await?;
        sqlx::query(CREATE_SQLITE).execute(&pool).await?;
        Ok(Self { pool: Pool::Sqlite(pool, WriteGate::default()) })
    }

    /// Creates schema `schema` in the PostgreSQL at `base` and the scratch table in it
    /// (`synchronous_commit=on`), with room for `clients` connections.
    pub async fn open_postgres(base: &str, schema: &str, clients: u32) -> Result<Self, StoreError> {
        create_postgres_schema(base, schema).await?;
        let options = PgConnectOptions::from_str(base)?.options([("search_path", schema), ("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new().max_connections(clients).connect_with(options).await?;
        sqlx::query(CREATE_POSTGRES).execute(&pool).await?;
        Ok(Self { pool: Pool::Postgres(pool) })
    }

    /// One transaction inserting `rows` rows keyed by `client`, one statement per row or
    /// (`multi_row`) all in one `INSERT ... VALUES (...), (...), ...`.
    pub async fn transaction(&self, rows: usize, multi_row: bool, client: i64, payload: &str) -> Result<(), StoreError> {
        let key = format!("c{client}");
        on_pool!(self, |conn, dialect| {
            let mut tx = conn.begin_with(dialect.begin_write).await?;
            if multi_row {
                let mut q = QueryBuilder::new(INSERT_MANY);
                q.push_values(0..rows, |mut b, i| {
                    b.push_bind(key.clone()).push_bind(i as i64).push_bind(payload.to_string());
                });
                q.build().execute(&mut *tx).await?;
            } else {
                for i in 0..rows {
                    sqlx::query(INSERT).bind(&key).bind(i as i64).bind(payload).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The durability settings in effect, as the database reports them (`(name, value)`).
    pub async fn settings(&self) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        match &self.pool {
            Pool::Sqlite(pool, _) => {
                for pragma in ["journal_mode", "synchronous"] {
                    if let Ok(row) = sqlx::query(AssertSqlSafe(format!("PRAGMA {pragma}"))).fetch_one(pool).await {
                        let v: Result<String, _> = row.try_get(0);
                        let v = v.or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string())).unwrap_or_default();
                        settings.push((pragma.to_string(), v));
                    }
                }
            }
            Pool::Postgres(pool) => {
                for setting in ["synchronous_commit", "fsync", "wal_sync_method", "server_version"] {
                    if let Ok(row) = sqlx::query(AssertSqlSafe(format!("SHOW {setting}"))).fetch_one(pool).await {
                        settings.push((setting.to_string(), row.try_get(0).unwrap_or_default()));
                    }
                }
            }
        }
        settings
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(self, |conn| conn.close().await)
    }
}
