//! External tasks: `call: external` steps worked by processes in any language.
//!
//! An external task is a call job with a topic. Workers fetch and lock tasks of a topic
//! (with long polling), then complete them with an output, fail them (retryable, or with a
//! business error a `catch` can match), or extend their lock. The lock is the job's lease:
//! when it expires the task is available again, and a result sent under an expired or
//! superseded lock is refused, so a worker presumed dead cannot overwrite the one that took
//! over.
//!
//! A lock is bound to who fetched it ([`ExternalWorker`]): the API token (its name, the
//! identity the server authenticated) and the worker name it declared. Lock ids are 128
//! random bits, so they cannot be guessed; a lock presented by another token is refused
//! ([`ExternalRefusal::NotOwned`]), even with a forged worker name. A worker whose token is
//! limited to some topics may only fetch, complete, fail or extend tasks of those topics
//! ([`ExternalRefusal::TopicForbidden`]). Completions and failures are recorded in the
//! instance's history as `external.completed` / `external.failed`, with the token as actor
//! and the declared worker name in the data.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::engine::{Engine, EngineError};
use super::history_kind::HistoryKind;
use super::machine::{CallError, CallRequest, Event, HistoryEntry};
use crate::clock::Millis;
use crate::store::{Job, LockHolder, LockedJob};

/// A locked external task as a worker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalTask {
    pub id: i64,
    /// The lock id (128 random bits, hex): pass it back with the result.
    pub lock: String,
    pub lock_expires_at: Millis,
    pub topic: String,
    pub instance_id: String,
    pub step_id: String,
    pub input: Value,
    pub idempotency_key: String,
    pub attempt: u32,
}

/// A worker's failure report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalFailure {
    pub code: String,
    pub message: String,
    /// Retryable failures follow the step's retry policy; others are business errors.
    #[serde(default)]
    pub retryable: bool,
    #[serde(default)]
    pub retry_after_ms: Option<i64>,
}

/// Who works external tasks: the authenticated API token, the worker name it declares, and
/// the topics the token is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalWorker<'a> {
    /// The API token's name (the server's authenticated identity).
    pub token: &'a str,
    /// The name the worker gives itself (`worker` in requests): a label, not an identity.
    pub name: &'a str,
    /// The topics the token may work; empty: any.
    pub topics: &'a [String],
}

impl ExternalWorker<'_> {
    fn holder(&self) -> LockHolder<'_> {
        LockHolder { token: self.token, worker: self.name }
    }

    /// Whether the token may work tasks of `topic`.
    pub fn may_work(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }

    fn check_topic(&self, topic: &str) -> Result<(), ExternalRefusal> {
        if self.may_work(topic) {
            return Ok(());
        }
        Err(ExternalRefusal::TopicForbidden(format!(
            "API token `{}` may only work the topics {}, not `{topic}`",
            self.token,
            self.topics.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Why an external-task request was refused (besides a lost lock, [`EngineError::LockLost`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalRefusal {
    /// The lock was fetched by another API token.
    #[error("{0}")]
    NotOwned(String),
    /// The API token is not allowed this topic.
    #[error("{0}")]
    TopicForbidden(String),
}

impl ExternalRefusal {
    /// The stable code: `lock_not_owned` or `topic_forbidden`.
    pub fn code(&self) -> &'static str {
        match self {
            ExternalRefusal::NotOwned(_) => "lock_not_owned",
            ExternalRefusal::TopicForbidden(_) => "topic_forbidden",
        }
    }
}

impl Engine {
    /// Locks up to `max` tasks of `topic` for `worker` for `lock`; when none is available,
    /// waits up to `wait` for one (long polling).
    pub async fn fetch_and_lock(
        &self,
        worker: &ExternalWorker<'_>,
        topic: &str,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<ExternalTask>, EngineError> {
        worker.check_topic(topic)?;
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            let now = self.now();
            let jobs = self.store().claim_external(worker.holder(), topic, now, now + lock.as_millis() as i64, max.max(1) as i64).await?;
            if !jobs.is_empty() {
                return jobs.iter().map(to_task).collect();
            }
            if tokio::time::Instant::now() >= give_up {
                return Ok(Vec::new());
            }
            tokio::time::sleep(Duration::from_millis(50).min(give_up - tokio::time::Instant::now())).await;
        }
    }

    /// Completes a task with its output, if `worker` holds its lock.
    pub async fn complete_external(&self, id: i64, lock: &str, worker: &ExternalWorker<'_>, output: Value) -> Result<(), EngineError> {
        let record = |job: &Job, call: &CallRequest| worker_entry(HistoryKind::ExternalCompleted, job, call, worker, json!({}));
        self.finish_external(id, lock, worker, record, |call| Event::CallSucceeded { token: call.token, epoch: call.epoch, output }).await
    }

    /// Fails a task, if `worker` holds its lock.
    pub async fn fail_external(
        &self,
        id: i64,
        lock: &str,
        worker: &ExternalWorker<'_>,
        failure: ExternalFailure,
    ) -> Result<(), EngineError> {
        let extra = json!({"code": failure.code, "retryable": failure.retryable});
        let record = |job: &Job, call: &CallRequest| worker_entry(HistoryKind::ExternalFailed, job, call, worker, extra);
        self.finish_external(id, lock, worker, record, |call| Event::CallFailed {
            token: call.token,
            epoch: call.epoch,
            attempt: call.attempt,
            error: CallError {
                code: failure.code,
                message: failure.message,
                retryable: failure.retryable,
                retry_after_ms: failure.retry_after_ms,
            },
        })
        .await
    }

    /// Extends the lock by `by` from now; returns the new expiry.
    pub async fn extend_external_lock(
        &self,
        id: i64,
        lock: &str,
        worker: &ExternalWorker<'_>,
        by: Duration,
    ) -> Result<Millis, EngineError> {
        let now = self.now();
        let until = now + by.as_millis() as i64;
        let mut tx = self.store().begin().await?;
        let Some(topic) = tx.extend_external_lock(id, lock, worker.holder(), now, until).await? else {
            drop(tx);
            return Err(self.refusal(id, lock, worker).await);
        };
        worker.check_topic(&topic)?;
        tx.commit().await?;
        Ok(until)
    }

    async fn finish_external(
        &self,
        id: i64,
        lock: &str,
        worker: &ExternalWorker<'_>,
        record: impl FnOnce(&Job, &CallRequest) -> HistoryEntry,
        event: impl FnOnce(CallRequest) -> Event,
    ) -> Result<(), EngineError> {
        let mut tx = self.store().begin().await?;
        let Some(job) = tx.finish_external(id, lock, worker.holder(), self.now()).await? else {
            drop(tx);
            return Err(self.refusal(id, lock, worker).await);
        };
        // Dropping the transaction on a refusal leaves the task as it was.
        worker.check_topic(job.topic.as_deref().unwrap_or_default())?;
        let call: CallRequest = serde_json::from_str(&job.payload).map_err(|e| EngineError::Corrupt(format!("external task {id}: {e}")))?;
        self.append_history(&mut tx, &job.instance_id, vec![record(&job, &call)]).await?;
        self.apply_event(&mut tx, &job.instance_id, event(call)).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Why `worker` could not use `lock` on task `id`: the current lock presented by another
    /// token, or a lock that is no longer current (expired, taken over, task finished).
    async fn refusal(&self, id: i64, lock: &str, worker: &ExternalWorker<'_>) -> EngineError {
        match self.store().external_lock(id).await {
            Ok(Some(current)) if current.lock_id.as_deref() == Some(lock) && current.locked_by.as_deref() != Some(worker.token) => {
                ExternalRefusal::NotOwned(format!(
                    "external task {id} is locked by another API token; only the token that fetched it may complete, fail or extend it"
                ))
                .into()
            }
            Ok(_) => lock_lost(id),
            Err(e) => e.into(),
        }
    }
}

/// The history entry naming who reported a task's result: the token as actor, the task, its
/// topic, the attempt and the worker's declared name as data.
fn worker_entry(kind: HistoryKind, job: &Job, call: &CallRequest, worker: &ExternalWorker<'_>, extra: Value) -> HistoryEntry {
    let mut data = json!({
        "task": job.id,
        "topic": job.topic,
        "attempt": call.attempt,
        "token": worker.token,
        "worker": worker.name,
    });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    HistoryEntry { kind, step: Some(call.step_id.clone()), data, actor: Some(worker.token.to_string()) }
}

fn lock_lost(id: i64) -> EngineError {
    EngineError::LockLost(format!(
        "external task {id} is not locked by this worker any more (lock expired or taken over, or the task is finished); its result was refused"
    ))
}

fn to_task(locked: &LockedJob) -> Result<ExternalTask, EngineError> {
    let job = &locked.job;
    let call: CallRequest =
        serde_json::from_str(&job.payload).map_err(|e| EngineError::Corrupt(format!("external task {}: {e}", job.id)))?;
    Ok(ExternalTask {
        id: job.id,
        lock: locked.lock_id.clone(),
        lock_expires_at: job.lease_until.unwrap_or_default(),
        topic: job.topic.clone().unwrap_or_default(),
        instance_id: job.instance_id.clone(),
        step_id: call.step_id,
        input: call.input,
        idempotency_key: call.idempotency_key,
        attempt: call.attempt,
    })
}
