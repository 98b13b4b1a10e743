//! The store: the only place with SQL.
//!
//! Two backends behind one type: SQLite (the embedded default: WAL, `synchronous=FULL`
//! unless told otherwise, one writer with `BEGIN IMMEDIATE`) and PostgreSQL (several
//! processes share the work with `FOR UPDATE SKIP LOCKED`). The backend is chosen by the
//! database URL; the pools are private to this module.
//!
//! # Layout
//!
//! One module per table or concern. Each holds its rows (`#[derive(sqlx::FromRow)]`, with
//! the column list written once next to the row as `COLUMNS`), its SQL, and its
//! `impl Store` / `impl Tx` methods:
//!
//! | module | owns |
//! |---|---|
//! | `instances` | `instances`: reads, locked loads, the write-back at commit |
//! | `history` | `history`: the hash-chained audit trail |
//! | `jobs` | `jobs`: leases, fences, claims, external-task locks |
//! | `tasks` | `tasks`: human tasks and the task-visibility rule |
//! | `messages` | `messages` and `subscriptions` |
//! | `triggers` | `schedules`, `trigger_names`, `webhook_signatures` |
//! | `workflows` | `workflows`: deployed versions |
//! | `access` | `api_tokens`, `users`, `console_sessions`, `login_throttle` |
//! | `views` | the console's cross-table reads (business keys) |
//! | `reports` | the director dashboard's figures |
//! | `migrate` | `pratica_migrations`: embedded migrations with SHA-256 checksums |
//! | [`probe`] | a scratch table for the raw-storage benchmark (none of Pratica's tables) |
//! | `sqlite`, `postgres` | what really differs: connecting, write transactions, row-lock suffixes, advisory locks, `LISTEN/NOTIFY`, schemas |
//!
//! # One statement, two executors
//!
//! SQLite accepts PostgreSQL's `$1` placeholders, so a statement both backends share is
//! written once, as a `const` or as a [`sqlx::QueryBuilder`] chain. What differs per
//! backend is only the executor, chosen by two small dispatch macros, `on_pool!` (a
//! store's pool) and `on_tx!` (a transaction's connection): their body is ordinary code,
//! written once and compiled once per backend, so the compiler points at the real line.
//! The body may also name the backend's [`Dialect`] (the row-locking suffixes and the JSON
//! extraction that differ). We chose the macro over functions generic over
//! `sqlx::Executor`: those need a trait bound per bound and decoded type, which would
//! hide the SQL behind where-clauses.
//!
//! Everything that changes state goes through a [`Tx`], so that a transition, its history
//! and its effects are written in one transaction.

/// Runs `$body` with the store's pool as `$conn` (`&SqlitePool` or `&PgPool`) and, if named,
/// the backend's [`Dialect`] as `$dialect`. The body is written once and compiled per backend.
macro_rules! on_pool {
    ($store:expr, |$conn:ident| $body:expr) => {
        on_pool!($store, |$conn, _dialect| $body)
    };
    ($store:expr, |$conn:ident, $dialect:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($conn, _) => {
                let $dialect = &$crate::store::sqlite::DIALECT;
                $body
            }
            $crate::store::Pool::Postgres($conn) => {
                let $dialect = &$crate::store::postgres::DIALECT;
                $body
            }
        }
    };
}

/// Runs `$body` with the transaction's connection as `$conn` (`&mut SqliteConnection` or
/// `&mut PgConnection`; pass it on as `&mut *$conn`) and, if named, the backend's
/// [`Dialect`] as `$dialect`.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        on_tx!($tx, |$conn, _dialect| $body)
    };
    ($tx:expr, |$conn:ident, $dialect:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                let $dialect = &$crate::store::sqlite::DIALECT;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                let $dialect = &$crate::store::postgres::DIALECT;
                $body
            }
        }
    };
}

mod access;
mod history;
mod instances;
mod jobs;
mod messages;
mod migrate;
mod postgres;
pub mod probe;
mod reports;
mod sqlite;
mod tasks;
mod triggers;
mod views;
mod workflows;

pub use access::*;
pub use history::*;
pub use instances::*;
pub use jobs::*;
pub use messages::*;
pub use migrate::MigrationError;
pub use postgres::{JOBS_CHANNEL, check_postgres, create_postgres_schema, drop_postgres_schema};
pub use reports::*;
pub use tasks::*;
pub use triggers::*;

pub use workflows::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} `{id}` not found")]
    NotFound { entity: &'static str, id: String },
    #[error("conflicting write to {entity} `{id}`")]
    Conflict { entity: &'static str, id: String },
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://...")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the operating system provided no random bytes: {0}")]
    Random(String),
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

impl StoreError {
    /// Whether the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// What differs in the text of a shared statement between the backends.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// The suffix that row-locks what a `SELECT` reads (`FOR UPDATE`; empty on SQLite,
    /// whose write transactions are exclusive).
    pub for_update: &'static str,
    /// The suffix of a claim's inner `SELECT` (`FOR UPDATE SKIP LOCKED`; empty on SQLite).
    pub skip_locked: &'static str,
    /// The SQL of `input.office` for the instance aliased `i`.
    pub input_office: &'static str,
    /// The statement that starts a write transaction (`BEGIN IMMEDIATE` on SQLite, so two
    /// writers never deadlock upgrading a read lock).
    pub begin_write: &'static str,
    /// A statement that makes processes starting together migrate one at a time (an
    /// advisory lock on PostgreSQL; empty on SQLite).
    pub migration_lock: &'static str,
    /// How many `checksum` columns `pratica_migrations` has (0 in a database migrated
    /// before checksums were recorded).
    pub checksum_column: &'static str,
}

/// Most rows per multi-row statement (SQLite allows 32,766 parameters).
pub(crate) const ROWS_PER_STATEMENT: usize = 400;

/// A connection pool to one of the backends.
///
/// SQLite has one writer at a time. Its writers queue on the [`WriteGate`] *before* taking a
/// pool connection, so that waiting writers never hold every connection while the writer
/// that has the lock needs one more (for a read outside its transaction).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// The pool of a [`Store`] (private to the store).
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(sqlx::SqlitePool, WriteGate),
    Postgres(sqlx::PgPool),
}

/// The queue of a process's SQLite writers (see [`Store`]).
pub type WriteGate = std::sync::Arc<tokio::sync::Mutex<()>>;

/// A write transaction.
///
/// Writes that nothing in the transaction reads back are buffered and written as multi-row
/// statements when the transaction commits (or before a statement that could depend on
/// them): new history entries, new jobs, and instance updates (loaded instances are cached,
/// so a second event for the same instance sees the first one's state). A batch of
/// transitions thus costs a few statements instead of several per transition.
pub struct Tx {
    inner: TxInner,
    /// Jobs were added: wake the workers of other processes at commit (PostgreSQL).
    added_jobs: bool,
    history: Vec<HistoryRow>,
    jobs: Vec<NewJob>,
    instances: std::collections::HashMap<String, InstanceRow>,
    dirty: std::collections::BTreeSet<String>,
    /// SQLite: this process's turn to write, released after the commit or rollback (last
    /// field, so it is dropped after the transaction).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The open transaction of a [`Tx`].
enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Store {
    /// Connects by URL (`sqlite://pratica.db`, `postgres://user@host/db`) and applies the
    /// backend's migrations (refusing to start if an applied migration has changed). SQLite
    /// accepts `?synchronous=normal` (default `full`); PostgreSQL accepts `?schema=NAME` to
    /// work in (and create) a schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(sqlite::connect(url).await?, WriteGate::default())
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Pool::Postgres(postgres::connect(url).await?)
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(..) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Whether this is the embedded SQLite backend (one process owns the database).
    pub fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(..))
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let (inner, turn) = match &self.pool {
            Pool::Sqlite(p, gate) => {
                let turn = gate.clone().lock_owned().await;
                (TxInner::Sqlite(sqlite::begin_write(p).await?), Some(turn))
            }
            Pool::Postgres(p) => (TxInner::Postgres(postgres::begin_write(p).await?), None),
        };
        Ok(Tx {
            inner,
            added_jobs: false,
            history: Vec::new(),
            jobs: Vec::new(),
            instances: Default::default(),
            dirty: Default::default(),
            _turn: turn,
        })
    }

    /// Runs one raw statement (tests use it to tamper with history).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        Ok(on_pool!(self, |conn| sqlx::query(sql).execute(conn).await?.rows_affected()))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(self, |conn| conn.close().await)
    }
}

impl Tx {
    /// Writes the buffered rows.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.history.is_empty() {
            let rows = std::mem::take(&mut self.history);
            self.write_history(&rows).await?;
        }
        if !self.jobs.is_empty() {
            let jobs = std::mem::take(&mut self.jobs);
            self.write_jobs(&jobs).await?;
        }
        for id in std::mem::take(&mut self.dirty) {
            let row = self.instances[&id].clone();
            self.write_instance(&row).await?;
        }
        Ok(())
    }

    /// Writes the buffered rows and commits; on PostgreSQL, a transaction that added jobs
    /// wakes the workers of every process.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(mut t) => {
                if self.added_jobs {
                    postgres::notify_jobs(&mut t).await?;
                }
                t.commit().await?
            }
        }
        Ok(())
    }
}
