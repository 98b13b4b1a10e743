//! Schema migrations, embedded and applied at start-up: one folder per backend
//! (`engine/migrations/{sqlite,postgres}`) with the same version numbers.
//!
//! Applied versions are recorded in `pratica_migrations` with the SHA-256 of the file's
//! text, the guarantee sqlx's migrator gives: a migration whose file changed after it was
//! applied is refused at start-up with [`MigrationError::Changed`], naming it. Databases
//! created before checksums were recorded get theirs filled in on the first start.
//! Everything runs in one transaction; on PostgreSQL an advisory lock makes processes that
//! start together migrate one at a time.

use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migration {
    pub version: i64,
    /// The file name, for error messages.
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// The SHA-256 of the migration's text, hex encoded.
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// Why the embedded migrations could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "migration {version} (`{name}`) was changed after it was applied to this database \
         (checksum {applied}, now {embedded}); restore the original file or add a new migration"
    )]
    Changed { version: i64, name: &'static str, applied: String, embedded: String },
}

/// `(version, file)` of a backend's migration, embedded.
macro_rules! migration {
    ($backend:literal, $version:literal, $file:literal) => {
        Migration { version: $version, name: $file, sql: include_str!(concat!("../../migrations/", $backend, "/", $file)) }
    };
}

pub(super) const SQLITE: &[Migration] = &[
    migration!("sqlite", 1, "0001_init.sql"),
    migration!("sqlite", 2, "0002_external_tasks.sql"),
    migration!("sqlite", 3, "0003_schedules.sql"),
    migration!("sqlite", 4, "0004_tokens.sql"),
    migration!("sqlite", 5, "0005_human_tasks.sql"),
    migration!("sqlite", 6, "0006_console_sessions.sql"),
    migration!("sqlite", 7, "0007_dashboard_indexes.sql"),
    migration!("sqlite", 8, "0008_webhook_replay_and_login_throttle.sql"),
    migration!("sqlite", 9, "0009_external_lock_binding.sql"),
    migration!("sqlite", 10, "0010_job_claims.sql"),
];

pub(super) const POSTGRES: &[Migration] = &[
    migration!("postgres", 1, "0001_init.sql"),
    migration!("postgres", 2, "0002_external_tasks.sql"),
    migration!("postgres", 3, "0003_schedules.sql"),
    migration!("postgres", 4, "0004_tokens.sql"),
    migration!("postgres", 5, "0005_human_tasks.sql"),
    migration!("postgres", 6, "0006_console_sessions.sql"),
    migration!("postgres", 7, "0007_dashboard_indexes.sql"),
    migration!("postgres", 8, "0008_webhook_replay_and_login_throttle.sql"),
    migration!("postgres", 9, "0009_external_lock_binding.sql"),
    migration!("postgres", 10, "0010_job_claims.sql"),
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS pratica_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, checksum TEXT)";
const APPLIED: &str = "SELECT version, checksum FROM pratica_migrations";
const RECORD: &str = "INSERT INTO pratica_migrations (version, applied_at, checksum) VALUES ($1, $2, $3)";
const FILL_CHECKSUM: &str = "UPDATE pratica_migrations SET checksum = $2 WHERE version = $1";

/// What a migration found recorded: its checksum, `None` when it was applied before
/// checksums were recorded.
type Applied = std::collections::HashMap<i64, Option<String>>;

impl Store {
    /// This backend's embedded migrations.
    fn migrations(&self) -> &'static [Migration] {
        if self.is_sqlite() { SQLITE } else { POSTGRES }
    }

    /// Applies the embedded migrations not applied yet (see the module docs).
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        self.apply(self.migrations()).await
    }

    /// Applies `migrations` in one transaction, checking the checksums of those applied.
    async fn apply(&self, migrations: &[Migration]) -> Result<(), StoreError> {
        on_pool!(self, |conn, dialect| {
            let mut tx = conn.begin_with(dialect.begin_write).await?;
            if !dialect.migration_lock.is_empty() {
                sqlx::query(dialect.migration_lock).execute(&mut *tx).await?;
            }
            sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
            // A table from before checksums has no such column yet.
            let columns: i64 = sqlx::query_scalar(dialect.checksum_column).fetch_one(&mut *tx).await?;
            if columns == 0 {
                sqlx::query("ALTER TABLE pratica_migrations ADD COLUMN checksum TEXT").execute(&mut *tx).await?;
            }
            let applied: Applied = sqlx::query_as::<_, (i64, Option<String>)>(APPLIED).fetch_all(&mut *tx).await?.into_iter().collect();
            for m in migrations {
                let embedded = m.checksum();
                match applied.get(&m.version) {
                    Some(Some(recorded)) if *recorded != embedded => {
                        return Err(
                            MigrationError::Changed { version: m.version, name: m.name, applied: recorded.clone(), embedded }.into()
                        );
                    }
                    Some(Some(_)) => {}
                    Some(None) => {
                        sqlx::query(FILL_CHECKSUM).bind(m.version).bind(&embedded).execute(&mut *tx).await?;
                    }
                    None => {
                        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
                        sqlx::query(RECORD)
                            .bind(m.version)
                            .bind(chrono::Utc::now().timestamp_millis())
                            .bind(&embedded)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Whether the database answers and every embedded migration is applied.
    pub async fn is_ready(&self) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT version FROM pratica_migrations ORDER BY version";
        let applied: Vec<i64> = on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_all(conn).await?);
        Ok(self.migrations().iter().all(|m| applied.contains(&m.version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn scratch_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("pratica-migrate-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let store = Store::connect(&format!("sqlite://{}", dir.join("pratica.db").display())).await.expect("connect");
        (store, dir)
    }

    async fn checksums(store: &Store) -> Vec<Option<String>> {
        on_pool!(store, |conn| sqlx::query_scalar("SELECT checksum FROM pratica_migrations ORDER BY version")
            .fetch_all(conn)
            .await
            .expect("checksums"))
    }

    #[tokio::test]
    async fn a_changed_migration_is_refused_by_name() {
        let (store, dir) = scratch_store().await;
        assert!(store.is_ready().await.expect("ready"));
        let mut changed = SQLITE.to_vec();
        changed[2].sql = "CREATE TABLE sneaky (x INTEGER);";
        let err = store.apply(&changed).await.expect_err("a changed migration must be refused");
        assert!(matches!(err, StoreError::Migration(MigrationError::Changed { version: 3, .. })), "{err}");
        assert!(err.to_string().contains("0003_schedules.sql"), "{err}");
        // Unchanged, it applies again (nothing to do).
        store.apply(SQLITE).await.expect("unchanged migrations");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn databases_from_before_checksums_get_them_on_first_start() {
        let (store, dir) = scratch_store().await;
        // The migrations table as the code before checksums made it.
        store.execute_raw("ALTER TABLE pratica_migrations DROP COLUMN checksum").await.expect("drop checksum");
        store.migrate().await.expect("upgrade");
        let sums = checksums(&store).await;
        assert_eq!(sums.len(), SQLITE.len());
        assert_eq!(sums, SQLITE.iter().map(|m| Some(m.checksum())).collect::<Vec<_>>());
        // From now on a change is detected.
        let mut changed = SQLITE.to_vec();
        changed[0].sql = "-- edited\n";
        assert!(store.apply(&changed).await.is_err());
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
