//! S: the raw storage limit of the database, measured with sqlx alone (no Pratica code): a
//! scratch table, single-row insert transactions with 1 and with 8 clients, and 100-row
//! transactions, written both as one multi-row `INSERT` (the storage limit) and as 100
//! prepared single-row `INSERT`s (how the engine writes its rows today: each statement is a
//! round trip through the driver).

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row as _};

use super::{Ctx, Synchronous, Target, emit, pg_admin, round};

const CREATE_SQLITE: &str =
    "CREATE TABLE bench_scratch (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL, v BIGINT NOT NULL, payload TEXT NOT NULL)";
const CREATE_POSTGRES: &str =
    "CREATE TABLE bench_scratch (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL, v BIGINT NOT NULL, payload TEXT NOT NULL)";
const INSERT: &str = "INSERT INTO bench_scratch (k, v, payload) VALUES ($1, $2, $3)";
const INSERT_MANY: &str = "INSERT INTO bench_scratch (k, v, payload) ";

/// A scratch database with the scratch table.
#[derive(Clone)]
pub(crate) enum RawDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Roughly the size of a history row's content.
fn payload() -> String {
    "{\"output\":{\"case\":\"RSSMRA80A01H501U\",\"step\":\"check\",\"result\":\"ok\"},\"note\":\"".to_string() + &"x".repeat(140) + "\"}"
}

impl RawDb {
    /// Opens a fresh scratch database on the context's target with room for `clients`.
    pub(crate) async fn open(ctx: &Ctx<'_>, label: &str, clients: u32) -> anyhow::Result<RawDb> {
        let fresh = ctx.scratch.fresh(ctx.target, label);
        match ctx.target {
            Target::Sqlite { synchronous, .. } => {
                let path = fresh.sqlite_path.expect("sqlite scratch has a path");
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match synchronous {
                        Synchronous::Full => SqliteSynchronous::Full,
                        Synchronous::Normal => SqliteSynchronous::Normal,
                    })
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new().max_connections(clients).connect_with(options).await?;
                sqlx::query(CREATE_SQLITE).execute(&pool).await?;
                Ok(RawDb::Sqlite(pool))
            }
            Target::Postgres { base } => {
                let schema = fresh.pg_schema.expect("postgres scratch has a schema");
                let admin = pg_admin(base).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await?;
                admin.close().await;
                let options = PgConnectOptions::from_str(base)?.options([("search_path", schema.as_str()), ("synchronous_commit", "on")]);
                let pool = PgPoolOptions::new().max_connections(clients).connect_with(options).await?;
                sqlx::query(CREATE_POSTGRES).execute(&pool).await?;
                Ok(RawDb::Postgres(pool))
            }
        }
    }

    /// One transaction inserting `rows` rows, one statement per row or (`multi_row`) all in one
    /// `INSERT ... VALUES (...), (...), ...`.
    async fn transaction(&self, rows: usize, multi_row: bool, client: i64, payload: &str) -> Result<(), sqlx::Error> {
        let key = format!("c{client}");
        match self {
            RawDb::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                if multi_row {
                    let mut q = QueryBuilder::<sqlx::Sqlite>::new(INSERT_MANY);
                    q.push_values(0..rows, |mut b, i| {
                        b.push_bind(key.clone()).push_bind(i as i64).push_bind(payload.to_string());
                    });
                    q.build().execute(&mut *tx).await?;
                } else {
                    for i in 0..rows {
                        sqlx::query(INSERT).bind(&key).bind(i as i64).bind(payload).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await
            }
            RawDb::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if multi_row {
                    let mut q = QueryBuilder::<sqlx::Postgres>::new(INSERT_MANY);
                    q.push_values(0..rows, |mut b, i| {
                        b.push_bind(key.clone()).push_bind(i as i64).push_bind(payload.to_string());
                    });
                    q.build().execute(&mut *tx).await?;
                } else {
                    for i in 0..rows {
                        sqlx::query(INSERT).bind(&key).bind(i as i64).bind(payload).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await
            }
        }
    }

    /// The durability settings in effect, as the database reports them.
    async fn settings(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            RawDb::Sqlite(pool) => {
                for pragma in ["journal_mode", "synchronous"] {
                    if let Ok(row) = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}"))).fetch_one(pool).await {
                        let v: Result<String, _> = row.try_get(0);
                        let v = v.or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string())).unwrap_or_default();
                        m.insert(pragma.into(), json!(v));
                    }
                }
            }
            RawDb::Postgres(pool) => {
                for setting in ["synchronous_commit", "fsync", "wal_sync_method", "server_version"] {
                    if let Ok(row) = sqlx::query(sqlx::AssertSqlSafe(format!("SHOW {setting}"))).fetch_one(pool).await {
                        let v: String = row.try_get(0).unwrap_or_default();
                        m.insert(setting.into(), json!(v));
                    }
                }
            }
        }
        m
    }

    pub(crate) async fn close(&self) {
        match self {
            RawDb::Sqlite(p) => p.close().await,
            RawDb::Postgres(p) => p.close().await,
        }
    }
}

/// Transactions of `rows` rows committed by `clients` concurrent clients during `duration`:
/// (transactions, seconds).
pub(crate) async fn measure(db: &RawDb, clients: usize, rows: usize, multi_row: bool, duration: Duration) -> anyhow::Result<(u64, f64)> {
    let payload = payload();
    // Warm up: open the connections, prepare the statements.
    for c in 0..clients {
        db.transaction(rows, multi_row, c as i64, &payload).await?;
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let db = db.clone();
        let payload = payload.clone();
        set.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                db.transaction(rows, multi_row, c as i64, &payload).await?;
                n += 1;
            }
            Ok::<u64, sqlx::Error>(n)
        });
    }
    let mut total = 0;
    while let Some(done) = set.join_next().await {
        total += done.context("client task")??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

/// Rows/s at 100 rows per transaction, one client, on a fresh scratch database of the
/// context's target (W1 reports its ratio to this): (one multi-row statement per
/// transaction, 100 single-row statements per transaction).
pub(crate) async fn batched_rows_per_sec(ctx: &Ctx<'_>, label: &str, duration: Duration) -> anyhow::Result<(f64, f64)> {
    let db = RawDb::open(ctx, label, 1).await?;
    let result = async {
        let (tm, sm) = measure(&db, 1, 100, true, duration).await?;
        let (ts, ss) = measure(&db, 1, 100, false, duration).await?;
        Ok::<_, anyhow::Error>((tm as f64 * 100.0 / sm, ts as f64 * 100.0 / ss))
    }
    .await;
    db.close().await;
    result
}

/// S.
pub(crate) async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let duration = ctx.duration(3.0);
    let db = RawDb::open(ctx, "s", 8).await?;
    let result = async {
        let settings = db.settings().await;
        let (t1, s1) = measure(&db, 1, 1, false, duration).await?;
        let (t8, s8) = measure(&db, 8, 1, false, duration).await?;
        let (tm, sm) = measure(&db, 1, 100, true, duration).await?;
        let (ts, ss) = measure(&db, 1, 100, false, duration).await?;
        Ok::<_, anyhow::Error>((settings, t1 as f64 / s1, t8 as f64 / s8, tm as f64 / sm, ts as f64 / ss))
    }
    .await;
    db.close().await;
    let (settings, single1, single8, multi_tx, statements_tx) = result?;
    let mut line = ctx.head("S");
    line.insert("single_row_tx_per_sec_1_client".into(), json!(round(single1, 0)));
    line.insert("single_row_tx_per_sec_8_clients".into(), json!(round(single8, 0)));
    line.insert("rows_per_sec_100_per_tx".into(), json!(round(multi_tx * 100.0, 0)));
    line.insert("rows_per_sec_100_per_tx_row_statements".into(), json!(round(statements_tx * 100.0, 0)));
    line.insert("seconds_per_measurement".into(), json!(round(duration.as_secs_f64(), 2)));
    line.insert("settings".into(), Value::Object(settings));
    emit(line);
    eprintln!(
        "S  {:8} {:6}  single-row tx/s: {:.0} (1 client), {:.0} (8 clients); 100 rows/tx: {:.0} rows/s (one statement), {:.0} rows/s (a statement per row)",
        ctx.target.backend(),
        ctx.target.synchronous(),
        single1,
        single8,
        multi_tx * 100.0,
        statements_tx * 100.0
    );
    Ok(())
}
