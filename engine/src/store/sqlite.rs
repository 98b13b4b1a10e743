//! SQLite: the embedded default. WAL journal, `synchronous=FULL` unless the URL says
//! `?synchronous=normal`, a busy timeout, and exclusive write transactions, so claims need
//! no row locks.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};

shared_queries!(sqlx::Sqlite, SqliteRow, "");

pub(super) async fn connect(url: &str) -> Result<sqlx::SqlitePool, StoreError> {
    let (base, synchronous) = split_synchronous(url);
    let options = SqliteConnectOptions::from_str(&base)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(false);
    Ok(SqlitePoolOptions::new().max_connections(4).connect_with(options).await?)
}

/// Takes Pratica's own `synchronous=` parameter out of the URL.
fn split_synchronous(url: &str) -> (String, SqliteSynchronous) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = SqliteSynchronous::Full;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("synchronous=") {
            Some(v) => {
                mode = SqliteSynchronous::from_str(v).unwrap_or(SqliteSynchronous::Full);
                false
            }
            None => true,
        })
        .collect();
    let base = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
    (base, mode)
}

pub(super) async fn claim_jobs(
    pool: &sqlx::SqlitePool,
    owner: &str,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows = sqlx::query(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1 WHERE id IN ( \
            SELECT id FROM jobs WHERE topic IS NULL AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) ORDER BY due_at, id LIMIT $4) \
         RETURNING id, instance_id, token, kind, payload, due_at, fence, topic, lease_until",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut jobs: Vec<Job> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
    jobs.sort_by_key(|j| (j.due_at, j.id));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_is_ours_and_defaults_to_full() {
        assert!(matches!(split_synchronous("sqlite://a.db").1, SqliteSynchronous::Full));
        let (base, mode) = split_synchronous("sqlite://a.db?mode=rwc&synchronous=normal");
        assert_eq!(base, "sqlite://a.db?mode=rwc");
        assert!(matches!(mode, SqliteSynchronous::Normal));
    }
}

pub(super) async fn claim_external(
    pool: &sqlx::SqlitePool,
    owner: &str,
    topic: &str,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows = sqlx::query(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1 WHERE id IN ( \
            SELECT id FROM jobs WHERE topic = $5 AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) ORDER BY due_at, id LIMIT $4) \
         RETURNING id, instance_id, token, kind, payload, due_at, fence, topic, lease_until",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .bind(topic)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut jobs: Vec<Job> = rows.iter().map(job_row).collect::<Result<_, _>>()?;
    jobs.sort_by_key(|j| (j.due_at, j.id));
    Ok(jobs)
}
