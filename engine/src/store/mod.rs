//! The store: the only place with SQL.
//!
//! Two backends behind one type: SQLite (the embedded default: WAL, `synchronous=FULL`
//! unless told otherwise, one writer with `BEGIN IMMEDIATE`) and PostgreSQL (several
//! processes share the work with `FOR UPDATE SKIP LOCKED`). The backend is chosen by the
//! database URL. The SQL both dialects share is written once in [`queries`] and
//! instantiated per backend; what differs (claiming, locking, connection set-up) lives in
//! [`sqlite`] and [`postgres`].
//!
//! Everything that changes state goes through a [`Tx`], so that a transition, its history
//! and its effects are written in one transaction.

#[macro_use]
mod queries;
mod migrate;
mod postgres;
mod records;
mod sqlite;

pub use records::*;

use crate::clock::Millis;

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
}

impl StoreError {
    /// Whether the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// A connection pool to one of the backends.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A write transaction.
pub struct Tx {
    inner: TxInner,
    /// Jobs were added: wake the workers of other processes at commit (PostgreSQL).
    added_jobs: bool,
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// The PostgreSQL channel on which committed work is announced.
pub const JOBS_CHANNEL: &str = "pratica_jobs";

/// Calls the same-named function of the transaction's backend.
macro_rules! on_tx {
    ($tx:expr, $f:ident ( $($arg:expr),* )) => {
        match &mut $tx.inner {
            TxInner::Sqlite(t) => sqlite::$f(t, $($arg),*).await,
            TxInner::Postgres(t) => postgres::$f(t, $($arg),*).await,
        }
    };
}

/// Calls the same-named function of the store's backend with its pool.
macro_rules! on_pool {
    ($store:expr, $f:ident ( $($arg:expr),* )) => {
        match $store {
            Store::Sqlite(p) => sqlite::$f(p, $($arg),*).await,
            Store::Postgres(p) => postgres::$f(p, $($arg),*).await,
        }
    };
}

impl Store {
    /// Connects by URL (`sqlite://pratica.db`, `postgres://user@host/db`) and applies the
    /// backend's migrations. SQLite accepts `?synchronous=normal` (default `full`);
    /// PostgreSQL accepts `?schema=NAME` to work in (and create) a schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Store::Sqlite(sqlite::connect(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Store::Postgres(postgres::connect(url).await?)
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        match &store {
            Store::Sqlite(p) => sqlite::migrate(p, migrate::SQLITE, None).await?,
            Store::Postgres(p) => postgres::migrate(p, migrate::POSTGRES, Some(migrate::POSTGRES_GUARD)).await?,
        }
        Ok(store)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match self {
            Store::Sqlite(p) => TxInner::Sqlite(sqlite::begin_write(p).await?),
            Store::Postgres(p) => TxInner::Postgres(postgres::begin_write(p).await?),
        };
        Ok(Tx { inner, added_jobs: false })
    }

    /// A listener that receives a notification whenever a transaction that added jobs
    /// commits in any process (PostgreSQL), or `None` (SQLite: one process, woken in memory).
    pub async fn job_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(p) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(p).await?;
                listener.listen(JOBS_CHANNEL).await?;
                Ok(Some(listener))
            }
        }
    }

    /// Leases up to `limit` due jobs to `owner` until `lease_until`. Each claim bumps the
    /// job's fence, so only the latest holder can complete it.
    pub async fn claim_jobs(&self, owner: &str, now: Millis, lease_until: Millis, limit: i64) -> Result<Vec<Job>, StoreError> {
        on_pool!(self, claim(owner, None, now, lease_until, limit))
    }

    /// Leases up to `limit` due external tasks of `topic` to the external worker `owner`.
    pub async fn claim_external(
        &self,
        owner: &str,
        topic: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        on_pool!(self, claim(owner, Some(topic), now, lease_until, limit))
    }

    /// Frees every lease of internal jobs (a restarted single-process SQLite engine reclaims
    /// at once). Locks held by external workers are theirs and are kept.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        on_pool!(self, release_all_leases())
    }

    /// The earliest due time of an unleased job, or of a lease that will expire.
    pub async fn next_wakeup(&self) -> Result<Option<Millis>, StoreError> {
        on_pool!(self, next_wakeup())
    }

    pub async fn instance(&self, id: &str) -> Result<InstanceRow, StoreError> {
        on_pool!(self, get_instance(id))?.ok_or_else(|| StoreError::NotFound { entity: "instance", id: id.to_string() })
    }

    pub async fn instances(&self, filter: &InstanceFilter) -> Result<Vec<InstanceRow>, StoreError> {
        on_pool!(self, list_instances(filter))
    }

    pub async fn instance_ids(&self) -> Result<Vec<String>, StoreError> {
        on_pool!(self, all_instance_ids())
    }

    pub async fn history(&self, instance: &str) -> Result<Vec<HistoryRow>, StoreError> {
        on_pool!(self, history(instance))
    }

    pub async fn workflow(&self, name: &str, version: Option<u32>) -> Result<Option<WorkflowRow>, StoreError> {
        on_pool!(self, get_workflow(name, version.map(i64::from)))
    }

    pub async fn workflows(&self) -> Result<Vec<WorkflowRow>, StoreError> {
        on_pool!(self, list_workflows())
    }

    pub async fn task(&self, id: &str) -> Result<TaskRow, StoreError> {
        on_pool!(self, get_task(id))?.ok_or_else(|| StoreError::NotFound { entity: "task", id: id.to_string() })
    }

    pub async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        on_pool!(self, list_tasks(filter))
    }

    /// How many jobs exist (due or not), for tests and metrics.
    pub async fn job_count(&self) -> Result<i64, StoreError> {
        on_pool!(self, job_count())
    }

    /// Runs one raw statement (tests use it to tamper with history).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        on_pool!(self, execute_raw(sql))
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(mut t) => {
                if self.added_jobs {
                    // Delivered at commit, once per transaction.
                    sqlx::query("SELECT pg_notify($1, '')").bind(JOBS_CHANNEL).execute(&mut *t).await?;
                }
                t.commit().await?
            }
        }
        Ok(())
    }

    /// Loads an instance for update (row-locked on PostgreSQL).
    pub async fn instance_for_update(&mut self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        on_tx!(self, instance_for_update(id))
    }

    pub async fn insert_instance(&mut self, row: &InstanceRow) -> Result<(), StoreError> {
        on_tx!(self, insert_instance(row))
    }

    pub async fn find_by_request_id(&mut self, workflow: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        on_tx!(self, find_by_request_id(workflow, request_id))
    }

    pub async fn update_instance(&mut self, row: &InstanceRow) -> Result<(), StoreError> {
        on_tx!(self, update_instance(row))
    }

    pub async fn insert_history(&mut self, row: &HistoryRow) -> Result<(), StoreError> {
        on_tx!(self, insert_history(row))
    }

    pub async fn insert_job(&mut self, job: &NewJob) -> Result<(), StoreError> {
        self.added_jobs = true;
        on_tx!(self, insert_job(job))
    }

    /// Deletes a claimed job if the caller still holds it (its fence is unchanged).
    /// `false` means another worker took the job over: the caller must not commit its result.
    pub async fn finish_job(&mut self, id: i64, fence: i64) -> Result<bool, StoreError> {
        on_tx!(self, finish_job(id, fence))
    }

    /// Removes an external task if `owner` still holds its lock (same fence, not expired),
    /// returning it; `None` means the lock was lost and the result must be refused.
    pub async fn finish_external(&mut self, id: i64, fence: i64, owner: &str, now: Millis) -> Result<Option<Job>, StoreError> {
        on_tx!(self, finish_external(id, fence, owner, now))
    }

    /// Extends the lock `owner` holds on an external task; `false` if it was lost.
    pub async fn extend_lease(&mut self, id: i64, fence: i64, owner: &str, now: Millis, until: Millis) -> Result<bool, StoreError> {
        on_tx!(self, extend_lease(id, fence, owner, now, until))
    }

    /// Deletes pending jobs, subscriptions and open tasks of the given tokens, and returns
    /// the running child instances started by them.
    pub async fn discard_tokens(&mut self, instance: &str, tokens: &[u32], now: Millis) -> Result<Vec<String>, StoreError> {
        let mut children = Vec::new();
        for &token in tokens {
            let token = i64::from(token);
            on_tx!(self, discard_token(instance, token, now))?;
            children.extend(on_tx!(self, running_children(instance, token))?);
        }
        Ok(children)
    }

    pub async fn insert_workflow(&mut self, row: &WorkflowRow) -> Result<(), StoreError> {
        on_tx!(self, insert_workflow(row))
    }

    pub async fn workflow_versions(&mut self, name: &str) -> Result<Vec<WorkflowRow>, StoreError> {
        on_tx!(self, workflow_versions(name))
    }

    pub async fn insert_task(&mut self, row: &TaskRow) -> Result<(), StoreError> {
        on_tx!(self, insert_task(row))
    }

    pub async fn task_for_update(&mut self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        on_tx!(self, task_for_update(id))
    }

    pub async fn update_task(&mut self, row: &TaskRow) -> Result<(), StoreError> {
        on_tx!(self, update_task(row))
    }

    pub async fn insert_subscription(&mut self, s: &Subscription) -> Result<(), StoreError> {
        on_tx!(self, insert_subscription(s))
    }

    /// Removes and returns the oldest subscription waiting for `message` with `key`.
    pub async fn take_subscription(&mut self, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
        on_tx!(self, take_subscription(message, key))
    }

    pub async fn insert_message(&mut self, m: &MessageRow) -> Result<(), StoreError> {
        on_tx!(self, insert_message(m))
    }

    /// Marks consumed and returns the oldest unexpired buffered message for `name`/`key`.
    pub async fn take_message(&mut self, name: &str, key: &str, now: Millis, consumer: &str) -> Result<Option<MessageRow>, StoreError> {
        on_tx!(self, take_message(name, key, now, consumer))
    }
}
