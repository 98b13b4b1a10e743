//! S: the raw storage limit of the database, measured with sqlx alone (no Pratica code): a
//! scratch table, single-row insert transactions with 1 and with 8 clients, and 100-row
//! transactions, written both as one multi-row `INSERT` (the storage limit) and as 100
//! prepared single-row `INSERT`s (how the engine writes its rows today: each statement is a
//! round trip through the driver). The statements are `engine::store::probe`'s; this file
//! only measures.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use pratica_engine::store::probe::ScratchTable;
use serde_json::{Map, Value, json};

use super::{Ctx, Synchronous, Target, emit, round};

/// A scratch database with the scratch table (the SQL lives in `engine::store::probe`).
type RawDb = ScratchTable;

/// Roughly the size of a history row's content.
fn payload() -> String {
    "{\"output\":{\"case\":\"RSSMRA80A01H501U\",\"step\":\"check\",\"result\":\"ok\"},\"note\":\"".to_string() + &"x".repeat(140) + "\"}"
}

/// Opens a fresh scratch database on the context's target with room for `clients`.
pub(crate) async fn open(ctx: &Ctx<'_>, label: &str, clients: u32) -> anyhow::Result<RawDb> {
    let fresh = ctx.scratch.fresh(ctx.target, label);
    Ok(match ctx.target {
        Target::Sqlite { synchronous, .. } => {
            let path = fresh.sqlite_path.context("sqlite scratch has a path")?;
            ScratchTable::open_sqlite(&path, matches!(synchronous, Synchronous::Full), clients).await?
        }
        Target::Postgres { base } => {
            let schema = fresh.pg_schema.context("postgres scratch has a schema")?;
            ScratchTable::open_postgres(base, &schema, clients).await?
        }
    })
}

/// The durability settings in effect, as the database reports them.
async fn settings(db: &RawDb) -> Map<String, Value> {
    db.settings().await.into_iter().map(|(k, v)| (k, json!(v))).collect()
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
            Ok::<u64, pratica_engine::store::StoreError>(n)
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
    let db = open(ctx, label, 1).await?;
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
    let db = open(ctx, "s", 8).await?;
    let result = async {
        let settings = settings(&db).await;
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
