//! The worker: claim due jobs in a batch, run their connector calls concurrently (outside
//! any transaction), then commit all their transitions in one transaction (group commit).
//! A job's result is committed only if its lease is still held (fencing).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::engine::{Computed, Engine, EngineError, compute_transition};
use super::machine::{CallError, CallRequest, Event, TaskNotification};
use super::state::StepError;
use super::tasks::{ESCALATE_JOB, EscalationJob, NOTIFY_JOB};
use crate::budget::Evaluator;
use crate::clock::Millis;
use crate::connector::{ConnectorError, Invocation};
use crate::plan::Plan;
use crate::store::{InstanceRow, Job};

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub committed: usize,
    /// Jobs whose lease was lost before their result could be committed.
    pub fenced: usize,
}

impl Engine {
    /// Claims a batch of due jobs, runs them and commits their transitions.
    pub async fn run_once(&self) -> Result<Pass, EngineError> {
        let inner = &self.inner;
        let now = self.now();
        let lease_until = now + inner.config.lease.as_millis() as i64;
        let jobs = inner.store.claim_jobs(&inner.config.worker_id, now, lease_until, inner.config.batch as i64).await?;
        if jobs.is_empty() {
            return Ok(Pass::default());
        }
        let claimed = jobs.len();
        tracing::debug!(worker = %inner.config.worker_id, claimed, "jobs claimed");
        metrics::histogram!("pratica_worker_batch_size").record(claimed as f64);
        // A job claimed too often without finishing is a poison pill: quarantine it.
        let max_claims = i64::from(inner.config.max_job_claims.max(1));
        let (poisoned, mut jobs): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.claims > max_claims);
        // A job claimed before that never finished (its process died, or its lease ran out)
        // is a suspect: it runs alone, so that if it is the poison, the next crash counts
        // against it and not against the innocent jobs of its batch.
        if jobs.len() > 1
            && let Some(at) = jobs.iter().position(|j| j.claims > 1)
        {
            let suspect = jobs.swap_remove(at);
            let others: Vec<(i64, i64)> = jobs.iter().map(|j| (j.id, j.fence)).collect();
            inner.store.release_jobs(&others).await?;
            tracing::info!(job = suspect.id, instance = %suspect.instance_id, claims = suspect.claims, released = others.len(), "a job that never finished runs alone");
            jobs = vec![suspect];
        }
        let mut results = self.execute_all(jobs).await;
        for job in poisoned {
            tracing::error!(job = job.id, instance = %job.instance_id, kind = %job.kind, claims = job.claims, "job quarantined: claimed too often without finishing");
            let error = StepError::new(
                "job.quarantined",
                format!(
                    "the engine stopped this case: its `{}` job was started {} times and never finished (the server crashed or ran out of time each time)",
                    job.kind,
                    job.claims - 1
                ),
            );
            results.push((job, Some(Outcome::Event(Event::Abort { error })), None));
        }
        // A stable lock order across workers (PostgreSQL locks instance rows).
        results.sort_by(|a, b| (&a.0.instance_id, a.0.id).cmp(&(&b.0.instance_id, b.0.id)));
        // Transitions are computed before the transaction opens (user-written expressions
        // never run while it holds the database), and checked against the rows inside it.
        let mut precomputed = self.precompute_batch(&results).await;
        let mut tx = inner.store.begin().await?;
        // Fencing for the whole batch in one statement: results of jobs another worker took
        // over are dropped.
        let claims: Vec<(i64, i64)> = results.iter().map(|(job, ..)| (job.id, job.fence)).collect();
        let held = tx.finish_jobs(&claims).await?;
        let ids: Vec<String> = results.iter().filter(|(job, ..)| held.contains(&job.id)).map(|(job, ..)| job.instance_id.clone()).collect();
        tx.prefetch_instances(&ids).await?;
        let (mut committed, mut fenced) = (0, 0);
        // Connector call durations, recorded once the batch is committed.
        let mut timings = Vec::new();
        for (job, event, timing) in results {
            if !held.contains(&job.id) {
                fenced += 1;
                continue;
            }
            if let Some(timing) = timing {
                // The instance row is already cached by the prefetch above.
                let workflow = tx.instance_for_update(&job.instance_id).await?.map(|row| row.workflow).unwrap_or_default();
                timings.push((workflow, timing));
            }
            let applied = match event {
                None => continue,
                Some(Outcome::Event(event)) => match precomputed.remove(&job.id) {
                    Some(computed) => match tx.instance_for_update(&job.instance_id).await? {
                        // Nothing changed the instance since: commit what was computed.
                        Some(row) if row.state == computed.from_state => self.persist_transition(&mut tx, row, computed).await,
                        // Another transition came first (a message, a task): compute again.
                        _ => self.apply_event(&mut tx, &job.instance_id, event).await,
                    },
                    None => self.apply_event(&mut tx, &job.instance_id, event).await,
                },
                Some(Outcome::Escalate(escalation)) => self.escalate_task(&mut tx, &escalation).await.map(|_| ()),
                Some(Outcome::Notified(n, result)) => self.record_notification(&mut tx, &job.instance_id, job.token, &n, result).await,
            };
            match applied {
                Ok(()) => committed += 1,
                Err(EngineError::NotFound { .. }) => {
                    tracing::warn!(job = job.id, instance = %job.instance_id, "job for a missing instance dropped")
                }
                Err(e @ (EngineError::Corrupt(_) | EngineError::UnknownWorkflow(_))) => {
                    tracing::error!(job = job.id, instance = %job.instance_id, error = %e, "job cannot be applied; dropped")
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        for (workflow, t) in timings {
            metrics::histogram!("pratica_step_duration_seconds", "workflow" => workflow, "step" => t.step, "kind" => t.connector)
                .record(t.seconds);
        }
        inner.wake.notify_one();
        tracing::debug!(worker = %inner.config.worker_id, claimed, committed, fenced, "worker pass");
        Ok(Pass { claimed, committed, fenced })
    }

    /// Computes the transitions of a batch's events from the instances as they are now, in
    /// commit order (several events of one instance are chained), in one trip to an
    /// evaluator thread. What cannot be computed here is computed in the transaction.
    async fn precompute_batch(&self, results: &[(Job, Option<Outcome>, Option<CallTiming>)]) -> HashMap<i64, Computed> {
        let events: Vec<(i64, String, Event)> = results
            .iter()
            .filter_map(|(job, outcome, _)| match outcome {
                Some(Outcome::Event(e)) => Some((job.id, job.instance_id.clone(), e.clone())),
                _ => None,
            })
            .collect();
        if events.is_empty() {
            return HashMap::new();
        }
        let mut ids: Vec<String> = events.iter().map(|(_, id, _)| id.clone()).collect();
        ids.dedup();
        let Ok(rows) = self.inner.store.instances_by_id(&ids).await else { return HashMap::new() };
        let mut instances: HashMap<String, (InstanceRow, Arc<Plan>)> = HashMap::new();
        for row in rows {
            if let Ok(plan) = self.plan_in_tx(&row.workflow, row.version).await {
                instances.insert(row.id.clone(), (row, plan));
            }
        }
        // One evaluation per instance (its events in order, each on the state the previous
        // one left), the instances side by side on the evaluator threads: an instance that
        // uses its whole budget holds one thread, not the batch.
        let mut per_instance: Vec<InstanceEvents> = Vec::new();
        for (job, instance, event) in events {
            if let Some(group) = per_instance.iter_mut().find(|(row, _, _)| row.id == instance) {
                group.2.push((job, event));
            } else if let Some((row, plan)) = instances.remove(&instance) {
                per_instance.push((row, plan, vec![(job, event)]));
            }
        }
        let (now, limits) = (self.now(), self.inner.config.limits);
        let mut set = JoinSet::new();
        for (mut row, plan, events) in per_instance {
            let evaluation = Evaluator::shared().run(move || {
                let mut out = Vec::with_capacity(events.len());
                for (job, event) in events {
                    let Ok(c) = compute_transition(&plan, &row, event, now, limits) else { break };
                    row.state = c.state_json.clone();
                    out.push((job, c));
                }
                out
            });
            set.spawn(evaluation);
        }
        let mut computed = HashMap::new();
        while let Some(done) = set.join_next().await {
            if let Ok(Ok(out)) = done {
                computed.extend(out);
            }
        }
        computed
    }

    /// Turns each job into what it produces, running connector calls concurrently.
    async fn execute_all(&self, jobs: Vec<Job>) -> Vec<(Job, Option<Outcome>, Option<CallTiming>)> {
        let mut set = JoinSet::new();
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job.kind.as_str() {
                "call" => {
                    let engine = self.clone();
                    set.spawn(async move {
                        let (event, timing) = engine.execute_call(&job).await;
                        (job, Some(Outcome::Event(event)), timing)
                    });
                }
                NOTIFY_JOB => match serde_json::from_str::<TaskNotification>(&job.payload) {
                    Ok(n) => {
                        let engine = self.clone();
                        set.spawn(async move {
                            let (result, timing) = engine.execute_notification(&job, &n).await;
                            (job, Some(Outcome::Notified(n, result)), timing)
                        });
                    }
                    Err(e) => {
                        tracing::error!(job = job.id, error = %e, "unreadable notification payload; dropped");
                        out.push((job, None, None));
                    }
                },
                ESCALATE_JOB => {
                    let escalation = serde_json::from_str::<EscalationJob>(&job.payload);
                    if let Err(e) = &escalation {
                        tracing::error!(job = job.id, error = %e, "unreadable escalation payload; dropped");
                    }
                    out.push((job, escalation.ok().map(Outcome::Escalate), None));
                }
                _ => {
                    let event = serde_json::from_str::<Event>(&job.payload);
                    if let Err(e) = &event {
                        tracing::error!(job = job.id, error = %e, "unreadable job payload; dropped");
                    }
                    out.push((job, event.ok().map(Outcome::Event), None));
                }
            }
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok(done) => out.push(done),
                Err(e) => tracing::error!(error = %e, "connector task panicked; its job will be retried after the lease"),
            }
        }
        out
    }

    /// Runs one connector call; its duration too, when the connector was invoked.
    async fn execute_call(&self, job: &Job) -> (Event, Option<CallTiming>) {
        let call: CallRequest = match serde_json::from_str(&job.payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(job = job.id, instance = %job.instance_id, error = %e, "unreadable call payload");
                let event = Event::CallFailed {
                    token: job.token as u32,
                    epoch: u32::MAX,
                    attempt: 1,
                    error: CallError { code: "pratica.corrupt_job".into(), message: e.to_string(), retryable: false, retry_after_ms: None },
                };
                return (event, None);
            }
        };
        let event = self.invoke_connector(job, &call).await;
        let (outcome, code) = match &event.0 {
            Event::CallFailed { error, .. } => {
                metrics::counter!("pratica_connector_errors_total", "connector" => call.connector.clone(), "code" => error.code.clone(), "retryable" => error.retryable.to_string())
                    .increment(1);
                ("failed", error.code.as_str())
            }
            _ => ("succeeded", ""),
        };
        let duration_ms = event.1.as_ref().map(|t| (t.seconds * 1000.0) as u64);
        // Trace, not debug: one line per call.
        tracing::trace!(instance = %job.instance_id, step = %call.step_id, connector = %call.connector, attempt = call.attempt, outcome, code, duration_ms, "connector call");
        event
    }

    /// Runs a task's notification hook like a step call (same key on every attempt, one
    /// minute at most).
    async fn execute_notification(&self, job: &Job, n: &TaskNotification) -> (Result<Value, CallError>, Option<CallTiming>) {
        let call = CallRequest {
            token: job.token as u32,
            epoch: 0,
            step_id: n.step_id.clone(),
            connector: n.connector.clone(),
            operation: n.operation.clone(),
            topic: None,
            input: n.input.clone(),
            idempotency_key: n.idempotency_key.clone(),
            attempt: n.attempt,
            due_at: job.due_at,
            timeout_ms: Some(60_000),
        };
        let (event, timing) = self.invoke_connector(job, &call).await;
        let result = match event {
            Event::CallSucceeded { output, .. } => Ok(output),
            Event::CallFailed { error, .. } => Err(error),
            _ => Err(CallError {
                code: "pratica.unexpected".into(),
                message: "the notification call ended without a result or an error".into(),
                retryable: false,
                retry_after_ms: None,
            }),
        };
        (result, timing)
    }

    async fn invoke_connector(&self, job: &Job, call: &CallRequest) -> (Event, Option<CallTiming>) {
        let (token, epoch, attempt) = (call.token, call.epoch, call.attempt);
        let fail = |code: &str, message: String, retryable: bool, retry_after_ms: Option<i64>| Event::CallFailed {
            token,
            epoch,
            attempt,
            error: CallError { code: code.into(), message, retryable, retry_after_ms },
        };
        let Some(connector) = self.inner.registry.get(&call.connector).cloned() else {
            return (fail("connector.unknown", format!("no connector `{}` is configured", call.connector), false, None), None);
        };
        let invocation = Invocation {
            connector: call.connector.clone(),
            operation: call.operation.clone(),
            input: call.input.clone(),
            idempotency_key: call.idempotency_key.clone(),
            attempt,
            // The timeout is waited for on the monotonic clock (below); connectors compare the
            // deadline with the engine's clock, which they get with the call.
            deadline: call.timeout_ms.map(|t| self.inner.clock.now() + t),
            instance_id: job.instance_id.clone(),
            step_id: call.step_id.clone(),
            secrets: self.inner.registry.secrets().clone(),
            clock: crate::clock::SharedClock::new(self.inner.clock.clone()),
        };
        // Connectors' own log lines carry the instance and the step.
        let span = tracing::info_span!("connector", instance = %job.instance_id, step = %call.step_id, connector = %call.connector);
        let started = std::time::Instant::now();
        let result = match call.timeout_ms {
            Some(ms) => {
                match tokio::time::timeout(Duration::from_millis(ms.max(0) as u64), connector.invoke(&invocation).instrument(span.clone()))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(ConnectorError::retryable("timeout", format!("no answer within {ms} ms"))),
                }
            }
            None => connector.invoke(&invocation).instrument(span.clone()).await,
        };
        let timing = CallTiming { step: call.step_id.clone(), connector: call.connector.clone(), seconds: started.elapsed().as_secs_f64() };
        // Nothing a connector returns may carry a secret into history or logs.
        let secrets = self.inner.registry.secrets();
        let result = result.map(|mut output| {
            secrets.redact_json(&mut output);
            output
        });
        let fail = |code: &str, message: String, retryable: bool, retry_after_ms: Option<i64>| {
            fail(code, secrets.redact(&message), retryable, retry_after_ms)
        };
        let event = match result {
            Ok(output) => Event::CallSucceeded { token, epoch, output },
            Err(ConnectorError::Retryable { code, message, retry_after }) => {
                fail(&code, message, true, retry_after.map(|d| d.as_millis() as i64))
            }
            Err(ConnectorError::Fatal { code, message }) => fail(&code, message, false, None),
        };
        (event, Some(timing))
    }

    /// Runs passes until no job is due now (timers in the future stay pending). With a
    /// manual clock this is how tests step through time.
    pub async fn run_until_idle(&self) -> Result<usize, EngineError> {
        let mut total = 0;
        loop {
            let pass = self.run_once().await?;
            total += pass.committed;
            if pass.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Works until `shutdown` resolves: runs passes while there is work, otherwise sleeps
    /// until the next due job, a local wake-up, or a short poll (other processes may add
    /// work). In-flight work is finished before returning.
    pub async fn run_until_stopped(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        // Other processes' commits wake us through PostgreSQL LISTEN/NOTIFY.
        let listener = match self.inner.store.job_listener().await? {
            Some(mut listener) => {
                let engine = self.clone();
                Some(tokio::spawn(async move {
                    while listener.recv().await.is_ok() {
                        engine.inner.wake.notify_one();
                    }
                }))
            }
            None => None,
        };
        let _stop_listener = AbortOnDrop(listener);
        // Cron triggers (crate::trigger): the earliest next fire time, checked at once.
        // After a failure, not before `schedule_retry_at`.
        let (mut next_schedule, mut schedule_retry_at): (Option<Millis>, Millis) = (Some(Millis::MIN), Millis::MIN);
        loop {
            let now = self.now();
            if next_schedule.is_some_and(|t| t <= now) && schedule_retry_at <= now {
                if let Err(e) = self.fire_due_schedules().await {
                    tracing::error!(error = %e, "firing cron schedules failed; retrying shortly");
                    schedule_retry_at = now + 1_000;
                }
                next_schedule = self.inner.store.next_schedule_at().await.unwrap_or(Some(now + 1_000));
            }
            let pass = tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                pass = self.run_once() => pass,
            };
            match pass {
                Ok(p) if p.claimed > 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "worker pass failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let now = self.now();
            let next_job = self.inner.store.next_wakeup().await.ok().flatten();
            // Other processes may deploy schedules: re-read, and wake for the earliest.
            if let Ok(t) = self.inner.store.next_schedule_at().await {
                next_schedule = t;
            }
            let next = next_job.into_iter().chain(next_schedule.map(|t| t.max(schedule_retry_at))).min();
            // Without a listener (or if a notification is missed) poll at least every second.
            let wait_ms = next.map_or(1_000, |t| (t - now).clamp(1, 1_000));
            let wake = self.inner.wake.notified();
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = wake => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            }
        }
    }
}

/// What a claimed job produced.
enum Outcome {
    /// An event for the instance's state machine.
    Event(Event),
    /// A task's escalation timer fired.
    Escalate(EscalationJob),
    /// A task's notification hook returned.
    Notified(TaskNotification, Result<Value, CallError>),
}

/// How long one connector call took (`pratica_step_duration_seconds`).
struct CallTiming {
    step: String,
    connector: String,
    seconds: f64,
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// A payload for tests and tools: the value a finished instance produced.
pub fn output_of(row: &crate::store::InstanceRow) -> Value {
    row.output.as_deref().and_then(|o| serde_json::from_str(o).ok()).unwrap_or(Value::Null)
}

#[allow(dead_code)]
fn assert_engine_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
    check::<Arc<Engine>>();
}

/// An instance, its plan and the events of a batch for it (job id, event), in order.
type InstanceEvents = (InstanceRow, Arc<Plan>, Vec<(i64, Event)>);
