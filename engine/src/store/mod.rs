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
mod access;
mod migrate;
mod postgres;
mod records;
mod reports;
mod sqlite;
mod views;

pub use access::*;
pub use records::*;
pub use reports::*;
pub use views::*;

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
    #[error("the operating system provided no random bytes: {0}")]
    Random(String),
}

/// A new external-task lock id: 128 random bits from the operating system, hex encoded
/// (neither sequential nor time-based, so nobody can guess another worker's lock).
pub(crate) fn new_lock_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

impl StoreError {
    /// Whether the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// A connection pool to one of the backends.
///
/// SQLite has one writer at a time. Its writers queue on the [`WriteGate`] *before* taking a
/// pool connection, so that waiting writers never hold every connection while the writer
/// that has the lock needs one more (for a read outside its transaction).
#[derive(Clone, Debug)]
pub enum Store {
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
            Store::Sqlite(p, _) => sqlite::$f(p, $($arg),*).await,
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
            Store::Sqlite(sqlite::connect(url).await?, WriteGate::default())
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Store::Postgres(postgres::connect(url).await?)
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        match &store {
            Store::Sqlite(p, _) => sqlite::migrate(p, migrate::SQLITE, None).await?,
            Store::Postgres(p) => postgres::migrate(p, migrate::POSTGRES, Some(migrate::POSTGRES_GUARD)).await?,
        }
        Ok(store)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(..) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let (inner, turn) = match self {
            Store::Sqlite(p, gate) => {
                let turn = gate.clone().lock_owned().await;
                (TxInner::Sqlite(sqlite::begin_write(p).await?), Some(turn))
            }
            Store::Postgres(p) => (TxInner::Postgres(postgres::begin_write(p).await?), None),
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

    /// A listener that receives a notification whenever a transaction that added jobs
    /// commits in any process (PostgreSQL), or `None` (SQLite: one process, woken in memory).
    pub async fn job_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self {
            Store::Sqlite(..) => Ok(None),
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

    /// Locks up to `limit` due external tasks of `topic` for `holder` until `lease_until`,
    /// each under a new random lock id.
    pub async fn claim_external(
        &self,
        holder: LockHolder<'_>,
        topic: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<LockedJob>, StoreError> {
        on_pool!(self, claim_external(holder, topic, now, lease_until, limit))
    }

    /// Who holds an external task's lock now; `None` when there is no such (unfinished) task.
    pub async fn external_lock(&self, id: i64) -> Result<Option<ExternalLock>, StoreError> {
        on_pool!(self, external_lock(id))
    }

    /// Frees every lease of internal jobs (a restarted single-process SQLite engine reclaims
    /// at once). Locks held by external workers are theirs and are kept.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        on_pool!(self, release_all_leases())
    }

    /// The subscription a message `(message, key)` would be delivered to now; the delivery
    /// itself takes it inside a transaction ([`Tx::take_subscription`]).
    pub async fn subscription(&self, message: &str, key: &str) -> Result<Option<Subscription>, StoreError> {
        on_pool!(self, subscription(message, key))
    }

    /// Gives claimed internal jobs back before working on them (`(id, fence)` of each claim):
    /// they are due again at once and their claim is not counted.
    pub async fn release_jobs(&self, claims: &[(i64, i64)]) -> Result<u64, StoreError> {
        on_pool!(self, release_jobs(claims))
    }

    /// The earliest due time of an unleased job, or of a lease that will expire.
    pub async fn next_wakeup(&self) -> Result<Option<Millis>, StoreError> {
        on_pool!(self, next_wakeup())
    }

    pub async fn instance(&self, id: &str) -> Result<InstanceRow, StoreError> {
        on_pool!(self, get_instance(id))?.ok_or_else(|| StoreError::NotFound { entity: "instance", id: id.to_string() })
    }

    /// Several instances by id (unlocked reads; missing ids are left out).
    pub async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRow>, StoreError> {
        on_pool!(self, get_instances(ids))
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

    // ---- API tokens, console users, readiness, paged listings (the HTTP API) ----

    /// Stores a new API token; a name already used is a [`StoreError::Conflict`].
    pub async fn insert_token(&self, row: &TokenRow) -> Result<(), StoreError> {
        match on_pool!(self, insert_token(row)) {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict { entity: "token", id: row.name.clone() }),
            other => other,
        }
    }

    /// The token whose text hashes to `hash` (revoked or not).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        on_pool!(self, token_by_hash(hash))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        on_pool!(self, list_tokens())
    }

    /// Revokes a token by name; `false` if there is no such active token.
    pub async fn revoke_token(&self, name: &str, now: Millis) -> Result<bool, StoreError> {
        on_pool!(self, revoke_token(name, now))
    }

    /// Stores a new console user; a name already used is a [`StoreError::Conflict`].
    pub async fn insert_user(&self, row: &UserRow) -> Result<(), StoreError> {
        match on_pool!(self, insert_user(row)) {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict { entity: "user", id: row.username.clone() }),
            other => other,
        }
    }

    pub async fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        on_pool!(self, get_user(username))
    }

    /// Whether the database answers and every embedded migration is applied.
    pub async fn is_ready(&self) -> Result<bool, StoreError> {
        let applied = on_pool!(self, applied_migrations())?;
        let expected = match self {
            Store::Sqlite(..) => migrate::SQLITE,
            Store::Postgres(_) => migrate::POSTGRES,
        };
        Ok(expected.iter().all(|(v, _)| applied.contains(v)))
    }

    /// One page of instances in `(started_at, id)` order.
    pub async fn instances_page(&self, query: &InstanceQuery) -> Result<Vec<InstanceRow>, StoreError> {
        on_pool!(self, page_instances(query))
    }

    /// Tasks matching `query` (offices: any of a list).
    pub async fn tasks_matching(&self, query: &TaskQuery) -> Result<Vec<TaskRow>, StoreError> {
        on_pool!(self, query_tasks(query, None))
    }

    /// Tasks matching `query` that an operator may see: assigned to them, or of one of their
    /// offices with one of their task roles (or no role).
    pub async fn tasks_visible(&self, query: &TaskQuery, to: &TaskVisibility) -> Result<Vec<TaskRow>, StoreError> {
        on_pool!(self, query_tasks(query, Some(to)))
    }

    /// Which of the instances `ids` an operator may read: those with a task (any status)
    /// visible to them by the task-visibility rule (the office scope of case data).
    pub async fn visible_instances(&self, ids: &[String], to: &TaskVisibility) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut visible = std::collections::HashSet::new();
        for chunk in ids.chunks(400) {
            visible.extend(on_pool!(self, visible_instance_ids(chunk, to))?);
        }
        Ok(visible)
    }

    // ---- end of the HTTP API block ----

    // ---- triggers: cron schedules (crate::trigger) ----

    /// Schedules whose next fire time is at or before `now`, earliest first.
    pub async fn due_schedules(&self, now: Millis, limit: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        on_pool!(self, due_schedules(now, limit))
    }

    /// Every cron schedule, by workflow and trigger.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        on_pool!(self, list_schedules())
    }

    /// The webhook or message triggers (`kind`) called `name`.
    pub async fn triggers_named(&self, kind: &str, name: &str) -> Result<Vec<TriggerName>, StoreError> {
        on_pool!(self, list_triggers_named(kind, name))
    }

    /// Forgets the webhook signatures whose tolerance window ended at or before `now`.
    pub async fn purge_webhook_signatures(&self, now: Millis) -> Result<u64, StoreError> {
        on_pool!(self, purge_webhook_signatures(now))
    }

    /// The earliest next fire time of any schedule.
    pub async fn next_schedule_at(&self) -> Result<Option<Millis>, StoreError> {
        on_pool!(self, next_schedule_at())
    }

    // ---- end of the triggers block ----

    // ---- metrics block: read-only gauges computed at scrape time ----

    /// Internal jobs due at `now` and not leased: how many, and the earliest due time.
    pub async fn job_stats(&self, now: Millis) -> Result<(i64, Option<Millis>), StoreError> {
        on_pool!(self, job_stats(now))
    }

    /// Open or claimed human tasks per office (`""` for tasks without an office).
    pub async fn open_tasks_by_office(&self) -> Result<Vec<(String, i64)>, StoreError> {
        on_pool!(self, open_tasks_by_office())
    }

    // ---- end of the metrics block ----

    pub async fn close(&self) {
        match self {
            Store::Sqlite(p, _) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    /// Writes the buffered rows.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.history.is_empty() {
            let rows = std::mem::take(&mut self.history);
            on_tx!(self, insert_history_rows(&rows))?;
        }
        if !self.jobs.is_empty() {
            let jobs = std::mem::take(&mut self.jobs);
            on_tx!(self, insert_job_rows(&jobs))?;
        }
        for id in std::mem::take(&mut self.dirty) {
            let row = self.instances[&id].clone();
            on_tx!(self, update_instance(&row))?;
        }
        Ok(())
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
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

    /// Loads an instance for update (row-locked on PostgreSQL); within the transaction, the
    /// latest version written by [`Tx::update_instance`].
    pub async fn instance_for_update(&mut self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        if let Some(row) = self.instances.get(id) {
            return Ok(Some(row.clone()));
        }
        let row = on_tx!(self, instance_for_update(id))?;
        if let Some(row) = &row {
            self.instances.insert(id.to_string(), row.clone());
        }
        Ok(row)
    }

    /// Loads and locks several instances in one statement (in id order, the lock order every
    /// worker uses), so that the transitions of a batch need no further reads.
    pub async fn prefetch_instances(&mut self, ids: &[String]) -> Result<(), StoreError> {
        let mut wanted: Vec<String> = ids.iter().filter(|id| !self.instances.contains_key(*id)).cloned().collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        for row in on_tx!(self, instances_for_update(&wanted))? {
            self.instances.insert(row.id.clone(), row);
        }
        Ok(())
    }

    pub async fn insert_instance(&mut self, row: &InstanceRow) -> Result<(), StoreError> {
        on_tx!(self, insert_instance(row))
    }

    pub async fn find_by_request_id(&mut self, workflow: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        on_tx!(self, find_by_request_id(workflow, request_id))
    }

    /// Records a new state of an instance (written at commit).
    pub async fn update_instance(&mut self, row: &InstanceRow) -> Result<(), StoreError> {
        self.instances.insert(row.id.clone(), row.clone());
        self.dirty.insert(row.id.clone());
        Ok(())
    }

    /// Appends a history entry (written at commit).
    pub async fn insert_history(&mut self, row: &HistoryRow) -> Result<(), StoreError> {
        self.history.push(row.clone());
        Ok(())
    }

    /// Adds a job (written at commit).
    pub async fn insert_job(&mut self, job: &NewJob) -> Result<(), StoreError> {
        self.added_jobs = true;
        self.jobs.push(job.clone());
        Ok(())
    }

    /// Deletes the claimed jobs the caller still holds (fence unchanged), in one statement;
    /// returns the ids deleted. A job missing from the answer was taken over by another
    /// worker: its result must not be committed.
    pub async fn finish_jobs(&mut self, claims: &[(i64, i64)]) -> Result<std::collections::HashSet<i64>, StoreError> {
        if claims.is_empty() {
            return Ok(Default::default());
        }
        Ok(on_tx!(self, finish_jobs(claims))?.into_iter().collect())
    }

    /// Deletes a claimed job if the caller still holds it (its fence is unchanged).
    /// `false` means another worker took the job over: the caller must not commit its result.
    pub async fn finish_job(&mut self, id: i64, fence: i64) -> Result<bool, StoreError> {
        on_tx!(self, finish_job(id, fence))
    }

    /// Removes an external task if `holder` still holds it under `lock` (not expired),
    /// returning it; `None` means the lock was lost (or is not the holder's) and the result
    /// must be refused.
    pub async fn finish_external(&mut self, id: i64, lock: &str, holder: LockHolder<'_>, now: Millis) -> Result<Option<Job>, StoreError> {
        on_tx!(self, finish_external(id, lock, holder, now))
    }

    /// Extends the lock `holder` holds on an external task; returns the task's topic, or
    /// `None` if the lock was lost (or is not the holder's).
    pub async fn extend_external_lock(
        &mut self,
        id: i64,
        lock: &str,
        holder: LockHolder<'_>,
        now: Millis,
        until: Millis,
    ) -> Result<Option<String>, StoreError> {
        on_tx!(self, extend_external_lock(id, lock, holder, now, until))
    }

    /// Deletes pending jobs, subscriptions and open tasks of the given tokens, and returns
    /// the running child instances started by them.
    pub async fn discard_tokens(&mut self, instance: &str, tokens: &[u32], now: Millis) -> Result<Vec<String>, StoreError> {
        // Buffered jobs of these tokens must exist before they can be deleted.
        self.flush().await?;
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

    /// The active console user or API token named `name` (a user first, if both exist).
    pub async fn principal(&mut self, name: &str) -> Result<Option<Principal>, StoreError> {
        on_tx!(self, principal(name))
    }

    pub async fn insert_subscription(&mut self, s: &Subscription) -> Result<(), StoreError> {
        on_tx!(self, insert_subscription(s))
    }

    /// Serialises, until the end of the transaction, everything that pairs messages named
    /// `message` and keyed `key` with their subscriptions, so that a publication and an
    /// instance starting to wait cannot miss each other (PostgreSQL; SQLite write
    /// transactions are exclusive already).
    pub async fn lock_correlation(&mut self, message: &str, key: &str) -> Result<(), StoreError> {
        if let TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7412002))")
                .bind(format!("{message}\u{1f}{key}"))
                .execute(&mut **t)
                .await?;
        }
        Ok(())
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

    // ---- triggers: cron schedules and webhook/message names (crate::trigger) ----

    /// Replaces the triggers of `workflow` (its latest version's).
    pub async fn replace_triggers(&mut self, workflow: &str, schedules: &[ScheduleRow], names: &[TriggerName]) -> Result<(), StoreError> {
        on_tx!(self, replace_triggers(workflow, schedules, names))
    }

    /// The webhook or message triggers (`kind`) called `name`.
    pub async fn triggers_named(&mut self, kind: &str, name: &str) -> Result<Vec<TriggerName>, StoreError> {
        on_tx!(self, triggers_named(kind, name))
    }

    /// Moves schedule `id` from `due` to `next` if it is still due at `due`; `false` means
    /// another process fired it first.
    pub async fn claim_schedule(&mut self, id: &str, due: Millis, next: Millis) -> Result<bool, StoreError> {
        on_tx!(self, claim_schedule(id, due, next))
    }

    /// Removes schedule `id` if it is still due at `due` (a schedule that never fires again).
    pub async fn delete_schedule(&mut self, id: &str, due: Millis) -> Result<bool, StoreError> {
        on_tx!(self, delete_schedule(id, due))
    }

    /// Records the signature of an accepted webhook delivery until `expires_at`; `false` if
    /// it was recorded already (the delivery is a replay).
    pub async fn remember_webhook_signature(&mut self, webhook: &str, signature: &str, expires_at: Millis) -> Result<bool, StoreError> {
        on_tx!(self, remember_webhook_signature(webhook, signature, expires_at))
    }

    // ---- end of the triggers block ----
}

// ---- triggers: rows (crate::trigger) ----

/// A cron trigger of the latest version of a workflow, with its next fire time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// `<workflow>#<trigger index>`.
    pub id: String,
    pub workflow: String,
    pub version: i64,
    /// The trigger's position in the workflow's `triggers:`.
    pub trigger_ix: i64,
    pub schedule: String,
    pub timezone: String,
    /// UTC milliseconds.
    pub next_fire_at: Millis,
    pub created_at: Millis,
}

/// A webhook or message trigger of the latest version of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerName {
    /// `webhook` or `message`.
    pub kind: String,
    pub name: String,
    pub workflow: String,
    pub version: i64,
    pub trigger_ix: i64,
}

// ---- end of the triggers rows ----
