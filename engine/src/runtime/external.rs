//! External tasks: `call: external` steps worked by processes in any language.
//!
//! An external task is a call job with a topic. Workers fetch and lock tasks of a topic
//! (with long polling), then complete them with an output, fail them (retryable, or with a
//! business error a `catch` can match), or extend their lock. The lock is the job's lease:
//! when it expires the task is available again, and a result sent under an expired or
//! superseded lock is refused, so a worker presumed dead cannot overwrite the one that took
//! over.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::engine::{Engine, EngineError};
use super::machine::{CallError, CallRequest, Event};
use crate::clock::Millis;
use crate::store::Job;

/// A locked external task as a worker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalTask {
    pub id: i64,
    /// The lock token: pass it back with the result.
    pub lock: i64,
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

impl Engine {
    /// Locks up to `max` tasks of `topic` for `worker` for `lock`; when none is available,
    /// waits up to `wait` for one (long polling).
    pub async fn fetch_and_lock(
        &self,
        worker: &str,
        topic: &str,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<ExternalTask>, EngineError> {
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            let now = self.now();
            let jobs = self.store().claim_external(worker, topic, now, now + lock.as_millis() as i64, max.max(1) as i64).await?;
            if !jobs.is_empty() {
                return jobs.iter().map(to_task).collect();
            }
            if tokio::time::Instant::now() >= give_up {
                return Ok(Vec::new());
            }
            tokio::time::sleep(Duration::from_millis(50).min(give_up - tokio::time::Instant::now())).await;
        }
    }

    /// Completes a task with its output, if `worker` still holds the lock.
    pub async fn complete_external(&self, id: i64, lock: i64, worker: &str, output: Value) -> Result<(), EngineError> {
        self.finish_external(id, lock, worker, |call| Event::CallSucceeded { token: call.token, epoch: call.epoch, output }).await
    }

    /// Fails a task, if `worker` still holds the lock.
    pub async fn fail_external(&self, id: i64, lock: i64, worker: &str, failure: ExternalFailure) -> Result<(), EngineError> {
        self.finish_external(id, lock, worker, |call| Event::CallFailed {
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
    pub async fn extend_external_lock(&self, id: i64, lock: i64, worker: &str, by: Duration) -> Result<Millis, EngineError> {
        let now = self.now();
        let until = now + by.as_millis() as i64;
        let mut tx = self.store().begin().await?;
        if !tx.extend_lease(id, lock, worker, now, until).await? {
            return Err(lock_lost(id));
        }
        tx.commit().await?;
        Ok(until)
    }

    async fn finish_external(&self, id: i64, lock: i64, worker: &str, event: impl FnOnce(CallRequest) -> Event) -> Result<(), EngineError> {
        let mut tx = self.store().begin().await?;
        let job = tx.finish_external(id, lock, worker, self.now()).await?.ok_or_else(|| lock_lost(id))?;
        let call: CallRequest = serde_json::from_str(&job.payload).map_err(|e| EngineError::Corrupt(format!("external task {id}: {e}")))?;
        self.apply_event(&mut tx, &job.instance_id, event(call)).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }
}

fn lock_lost(id: i64) -> EngineError {
    EngineError::LockLost(format!(
        "external task {id} is not locked by this worker any more (lock expired or taken over); its result was refused"
    ))
}

fn to_task(job: &Job) -> Result<ExternalTask, EngineError> {
    let call: CallRequest =
        serde_json::from_str(&job.payload).map_err(|e| EngineError::Corrupt(format!("external task {}: {e}", job.id)))?;
    Ok(ExternalTask {
        id: job.id,
        lock: job.fence,
        lock_expires_at: job.lease_until.unwrap_or_default(),
        topic: job.topic.clone().unwrap_or_default(),
        instance_id: job.instance_id.clone(),
        step_id: call.step_id,
        input: call.input,
        idempotency_key: call.idempotency_key,
        attempt: call.attempt,
    })
}
