//! SQLite: the embedded default. WAL journal, `synchronous=FULL` unless the URL says
//! `?synchronous=normal`, a busy timeout, and exclusive write transactions (`BEGIN
//! IMMEDIATE`), so claims and locked loads need no row-lock suffix.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Dialect, StoreError};

/// SQLite's side of the shared statements.
pub(super) const DIALECT: Dialect = Dialect {
    for_update: "",
    skip_locked: "",
    input_office: "json_extract(i.input, '$.office')",
    begin_write: "BEGIN IMMEDIATE",
    migration_lock: "",
    checksum_column: "SELECT COUNT(*) FROM pragma_table_info('pratica_migrations') WHERE name = 'checksum'",
};

/// A write transaction: `BEGIN IMMEDIATE` takes the write lock at once, so two writers
/// never deadlock upgrading a read lock.
pub(super) async fn begin_write(pool: &sqlx::SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with(DIALECT.begin_write).await
}

/// Opens the pool (four connections) on the file of `url`, creating it if missing.
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
