//! The `jobs` table: the work queue. Internal jobs are leased to a worker with a fence that
//! every claim bumps (only the latest holder can finish a job); external tasks (`topic` set)
//! are locked to an API token and worker under a random lock id. Claims run in their own
//! short transaction, with `FOR UPDATE SKIP LOCKED` on PostgreSQL and the exclusive
//! `BEGIN IMMEDIATE` transaction on SQLite ([`super::Dialect::skip_locked`]).

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{ROWS_PER_STATEMENT, Store, StoreError, Tx, postgres};
use crate::clock::Millis;

/// A job to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub instance_id: String,
    pub token: i64,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    pub due_at: Millis,
    pub created_at: Millis,
    /// Set for external tasks: the topic external workers fetch from.
    pub topic: Option<String>,
}

impl NewJob {
    /// The columns a new job is inserted with, in field order.
    const COLUMNS: &'static str = "instance_id, token, kind, payload, due_at, created_at, topic";
}

/// Who holds an external task's lock: the API token that fetched it (by name) and the
/// worker name it declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder<'a> {
    pub token: &'a str,
    pub worker: &'a str,
}

/// An external task just locked, with its lock id.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedJob {
    pub job: Job,
    pub lock_id: String,
}

/// Who holds an external task's lock now (to explain why a result was refused).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExternalLock {
    pub lock_id: Option<String>,
    pub locked_by: Option<String>,
    pub topic: String,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub instance_id: String,
    pub token: i64,
    pub kind: String,
    pub payload: String,
    pub due_at: Millis,
    pub fence: i64,
    pub topic: Option<String>,
    pub lease_until: Option<Millis>,
    /// How many times a worker has claimed this job (this claim included); only the
    /// internal claim reads it, elsewhere it is 0.
    #[sqlx(default)]
    pub claims: i64,
}

impl Job {
    /// The columns of a [`Job`] (without `claims`), in field order.
    const COLUMNS: &'static str = "id, instance_id, token, kind, payload, due_at, fence, topic, lease_until";
}

/// A new external-task lock id: 128 random bits from the operating system, hex encoded
/// (neither sequential nor time-based, so nobody can guess another worker's lock).
fn new_lock_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// `(id, fence) IN ((…, …), …)` over `claims`, pushed onto `q` after its text.
fn push_claims<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, claims: &[(i64, i64)])
where
    i64: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push("(id, fence) IN (");
    for (n, (id, fence)) in claims.iter().enumerate() {
        q.push(if n == 0 { "(" } else { ", (" }).push_bind(*id).push(", ").push_bind(*fence).push(")");
    }
    q.push(")");
}

impl Store {
    /// Leases up to `limit` due internal jobs to `owner` until `lease_until`. Each claim bumps
    /// the job's fence, so only the latest holder can complete it.
    pub async fn claim_jobs(&self, owner: &str, now: Millis, lease_until: Millis, limit: i64) -> Result<Vec<Job>, StoreError> {
        let mut jobs = on_pool!(self, |conn, dialect| {
            let sql = AssertSqlSafe(format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1, claims = claims + 1 WHERE id IN ( \
                    SELECT id FROM jobs WHERE topic IS NULL AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                    ORDER BY due_at, id LIMIT $4 {}) \
                 RETURNING {}, claims",
                dialect.skip_locked,
                Job::COLUMNS
            ));
            let mut tx = conn.begin_with(dialect.begin_write).await?;
            let jobs = sqlx::query_as::<_, Job>(sql).bind(owner).bind(lease_until).bind(now).bind(limit).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            jobs
        });
        jobs.sort_by_key(|j| (j.due_at, j.id));
        Ok(jobs)
    }

    /// Locks up to `limit` due external tasks of `topic` for `holder` until `lease_until`,
    /// each under a new random lock id, in one transaction (nobody sees a task leased
    /// without its new id).
    pub async fn claim_external(
        &self,
        holder: LockHolder<'_>,
        topic: &str,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<LockedJob>, StoreError> {
        Ok(on_pool!(self, |conn, dialect| {
            let sql = AssertSqlSafe(format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, fence = fence + 1, locked_by = $5, lock_id = NULL WHERE id IN ( \
                    SELECT id FROM jobs WHERE topic = $6 AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                    ORDER BY due_at, id LIMIT $4 {}) \
                 RETURNING {}",
                dialect.skip_locked,
                Job::COLUMNS
            ));
            let mut tx = conn.begin_with(dialect.begin_write).await?;
            let mut jobs = sqlx::query_as::<_, Job>(sql)
                .bind(holder.worker)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .bind(holder.token)
                .bind(topic)
                .fetch_all(&mut *tx)
                .await?;
            jobs.sort_by_key(|j| (j.due_at, j.id));
            let mut locked = Vec::with_capacity(jobs.len());
            for job in jobs {
                let lock_id = new_lock_id()?;
                sqlx::query("UPDATE jobs SET lock_id = $1 WHERE id = $2").bind(&lock_id).bind(job.id).execute(&mut *tx).await?;
                locked.push(LockedJob { job, lock_id });
            }
            tx.commit().await?;
            locked
        }))
    }

    /// Who holds an external task's lock now; `None` when there is no such (unfinished) task.
    pub async fn external_lock(&self, id: i64) -> Result<Option<ExternalLock>, StoreError> {
        const SQL: &str = "SELECT lock_id, locked_by, topic FROM jobs WHERE id = $1 AND topic IS NOT NULL";
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, ExternalLock>(SQL).bind(id).fetch_optional(conn).await?))
    }

    /// Frees every lease of internal jobs (a restarted single-process SQLite engine reclaims
    /// at once). Locks held by external workers are theirs and are kept.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        const SQL: &str =
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, fence = fence + 1 WHERE lease_owner IS NOT NULL AND topic IS NULL";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).execute(conn).await?.rows_affected()))
    }

    /// Gives claimed internal jobs back before working on them (`(id, fence)` of each claim):
    /// they are due again at once and their claim is not counted.
    pub async fn release_jobs(&self, claims: &[(i64, i64)]) -> Result<u64, StoreError> {
        let mut released = 0;
        for chunk in claims.chunks(ROWS_PER_STATEMENT) {
            released += on_pool!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, fence = fence + 1, claims = claims - 1 WHERE ",
                );
                push_claims(&mut q, chunk);
                q.build().execute(conn).await?.rows_affected()
            });
        }
        Ok(released)
    }

    /// The earliest due time of an unleased job, or of a lease that will expire.
    pub async fn next_wakeup(&self) -> Result<Option<Millis>, StoreError> {
        const SQL: &str = "SELECT MIN(CASE WHEN lease_until IS NULL THEN due_at ELSE lease_until END) FROM jobs WHERE topic IS NULL";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_one(conn).await?))
    }

    /// How many jobs exist (due or not), for tests and metrics.
    pub async fn job_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM jobs";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_one(conn).await?))
    }

    /// Internal jobs due at `now` and not leased: how many, and the earliest due time.
    pub async fn job_stats(&self, now: Millis) -> Result<(i64, Option<Millis>), StoreError> {
        const SQL: &str = "SELECT COUNT(*), MIN(due_at) FROM jobs \
             WHERE topic IS NULL AND due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)";
        Ok(on_pool!(self, |conn| sqlx::query_as(SQL).bind(now).fetch_one(conn).await?))
    }

    /// A listener that receives a notification whenever a transaction that added jobs
    /// commits in any process (PostgreSQL), or `None` (SQLite: one process, woken in memory).
    pub async fn job_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match &self.pool {
            super::Pool::Sqlite(..) => Ok(None),
            super::Pool::Postgres(p) => Ok(Some(postgres::job_listener(p).await?)),
        }
    }
}

impl Tx {
    /// Adds a job (written at commit).
    pub async fn insert_job(&mut self, job: &NewJob) -> Result<(), StoreError> {
        self.added_jobs = true;
        self.jobs.push(job.clone());
        Ok(())
    }

    /// Writes buffered jobs, a multi-row statement per [`ROWS_PER_STATEMENT`].
    pub(super) async fn write_jobs(&mut self, jobs: &[NewJob]) -> Result<(), StoreError> {
        for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(format!("INSERT INTO jobs ({}) ", NewJob::COLUMNS));
                q.push_values(chunk, |mut b, j| {
                    b.push_bind(j.instance_id.clone())
                        .push_bind(j.token)
                        .push_bind(j.kind.clone())
                        .push_bind(j.payload.clone())
                        .push_bind(j.due_at)
                        .push_bind(j.created_at)
                        .push_bind(j.topic.clone());
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// Deletes the claimed jobs the caller still holds (fence unchanged), in one statement;
    /// returns the ids deleted. A job missing from the answer was taken over by another
    /// worker: its result must not be committed.
    pub async fn finish_jobs(&mut self, claims: &[(i64, i64)]) -> Result<HashSet<i64>, StoreError> {
        let mut done = HashSet::with_capacity(claims.len());
        for chunk in claims.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new("DELETE FROM jobs WHERE ");
                push_claims(&mut q, chunk);
                q.push(" RETURNING id");
                done.extend(q.build_query_scalar::<i64>().fetch_all(&mut *conn).await?);
            });
        }
        Ok(done)
    }

    /// Deletes a claimed job if the caller still holds it (its fence is unchanged).
    /// `false` means another worker took the job over: the caller must not commit its result.
    pub async fn finish_job(&mut self, id: i64, fence: i64) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM jobs WHERE id = $1 AND fence = $2";
        Ok(on_tx!(self, |conn| sqlx::query(SQL).bind(id).bind(fence).execute(&mut *conn).await?.rows_affected() == 1))
    }

    /// Removes an external task if `holder` still holds it under `lock` (not expired),
    /// returning it; `None` means the lock was lost (or is not the holder's) and the result
    /// must be refused.
    pub async fn finish_external(&mut self, id: i64, lock: &str, holder: LockHolder<'_>, now: Millis) -> Result<Option<Job>, StoreError> {
        let sql = AssertSqlSafe(format!(
            "DELETE FROM jobs WHERE id = $1 AND lock_id = $2 AND locked_by = $3 AND lease_owner = $4 AND lease_until >= $5 \
             AND topic IS NOT NULL RETURNING {}",
            Job::COLUMNS
        ));
        Ok(on_tx!(self, |conn| {
            sqlx::query_as::<_, Job>(sql)
                .bind(id)
                .bind(lock)
                .bind(holder.token)
                .bind(holder.worker)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?
        }))
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
        const SQL: &str = "UPDATE jobs SET lease_until = $6 WHERE id = $1 AND lock_id = $2 AND locked_by = $3 AND lease_owner = $4 \
             AND lease_until >= $5 AND topic IS NOT NULL RETURNING topic";
        Ok(on_tx!(self, |conn| {
            sqlx::query_scalar(SQL)
                .bind(id)
                .bind(lock)
                .bind(holder.token)
                .bind(holder.worker)
                .bind(now)
                .bind(until)
                .fetch_optional(&mut *conn)
                .await?
        }))
    }

    /// Deletes pending jobs, subscriptions and open tasks of the given tokens, and returns
    /// the running child instances started by them.
    pub async fn discard_tokens(&mut self, instance: &str, tokens: &[u32], now: Millis) -> Result<Vec<String>, StoreError> {
        const JOBS: &str = "DELETE FROM jobs WHERE instance_id = $1 AND token = $2 AND kind <> 'notify_parent'";
        const SUBSCRIPTIONS: &str = "DELETE FROM subscriptions WHERE instance_id = $1 AND token = $2";
        const TASKS: &str = "UPDATE tasks SET status = 'cancelled', completed_at = $3 WHERE instance_id = $1 AND token = $2 AND status IN ('open', 'claimed')";
        // Buffered jobs of these tokens must exist before they can be deleted.
        self.flush().await?;
        let mut children = Vec::new();
        for &token in tokens {
            let token = i64::from(token);
            on_tx!(self, |conn| {
                sqlx::query(JOBS).bind(instance).bind(token).execute(&mut *conn).await?;
                sqlx::query(SUBSCRIPTIONS).bind(instance).bind(token).execute(&mut *conn).await?;
                sqlx::query(TASKS).bind(instance).bind(token).bind(now).execute(&mut *conn).await?;
            });
            children.extend(self.running_children(instance, token).await?);
        }
        Ok(children)
    }
}
