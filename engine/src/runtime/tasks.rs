//! Human task actions: claim, unclaim, delegate, comment (and complete, in `engine.rs`).
//!
//! Each action is one store transaction that locks the instance and then the task (the
//! order every worker uses), updates the task row and appends a history entry with the
//! actor to the instance's hash-chained history. Who may see a task is the caller's
//! business (the API's visibility rule), passed in as [`TaskActor::sees`]: a task the actor
//! may not see is reported as not found.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::engine::{Engine, EngineError};
use super::history_kind::HistoryKind;
use super::machine::{CallError, HistoryEntry, TaskEscalation, TaskNotification};
use crate::clock::Millis;
use crate::store::{NewJob, TaskRow, Tx};

/// Job kinds of human tasks.
pub(super) const ESCALATE_JOB: &str = "task_escalate";
pub(super) const NOTIFY_JOB: &str = "task_notify";

/// Attempts of a notification hook before it is recorded as failed.
pub const NOTIFY_ATTEMPTS: u32 = 5;

/// The task whose jobs are scheduled.
#[derive(Debug, Clone, Copy)]
pub(super) struct TaskJobs<'a> {
    pub instance: &'a str,
    pub task_id: &'a str,
    pub token: u32,
}

/// The payload of an escalation timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct EscalationJob {
    pub task_id: String,
    pub escalation: TaskEscalation,
}

/// Most characters of one comment.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Who acts on a task.
pub struct TaskActor<'a> {
    /// Recorded in history as the actor, and as the task's assignee when claiming.
    pub name: &'a str,
    /// May act on a task someone else holds (unclaim, delegate, complete): administrators.
    pub supervisor: bool,
    /// Whether the actor may see the (locked) task at all.
    pub sees: &'a (dyn Fn(&TaskRow) -> bool + Send + Sync),
}

impl<'a> TaskActor<'a> {
    /// An actor who sees every task (tools, tests, the engine's own callers).
    pub fn trusted(name: &'a str, supervisor: bool) -> Self {
        Self { name, supervisor, sees: &|_| true }
    }
}

/// Why a task action was refused; the API answers each with its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskRefusal {
    /// Someone else holds the task.
    #[error("task `{task}` is claimed by {holder}")]
    Claimed { task: String, holder: String },
    /// The task is completed or cancelled.
    #[error("task `{task}` is {status}")]
    Closed { task: String, status: String },
    /// The delegation target cannot take the task.
    #[error("{0}")]
    Delegation(String),
}

/// One comment on a task, from the instance history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskComment {
    pub actor: Option<String>,
    pub at: Millis,
    pub text: String,
}

impl Engine {
    /// Opens a transaction and locks the instance and then the task; a task the actor may
    /// not see is not found.
    pub(super) async fn lock_task(&self, id: &str, actor: &TaskActor<'_>) -> Result<(Tx, TaskRow), EngineError> {
        let not_found = || EngineError::NotFound { entity: "task", id: id.into() };
        let instance = match self.inner.store.task(id).await {
            Ok(t) => t.instance_id,
            Err(crate::store::StoreError::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let mut tx = self.inner.store.begin().await?;
        tx.instance_for_update(&instance).await?;
        let task = tx.task_for_update(id).await?.filter(|t| (actor.sees)(t)).ok_or_else(not_found)?;
        Ok((tx, task))
    }

    /// Assigns an open task to the actor (`task.claimed`). Claiming a task one already holds
    /// changes nothing.
    pub async fn claim_task(&self, id: &str, actor: &TaskActor<'_>) -> Result<TaskRow, EngineError> {
        let (mut tx, mut task) = self.lock_task(id, actor).await?;
        check_open(&task)?;
        match task.assignee.as_deref() {
            Some(holder) if holder == actor.name && task.status == "claimed" => return Ok(task),
            Some(holder) if holder != actor.name => return Err(claimed(&task, holder)),
            _ => {}
        }
        task.assignee = Some(actor.name.into());
        task.status = "claimed".into();
        tx.update_task(&task).await?;
        let entry = task_entry(HistoryKind::TaskClaimed, &task, actor.name, json!({}));
        self.append_history(&mut tx, &task.instance_id, vec![entry]).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// Puts a claimed task back in its queue (`task.unclaimed`): its holder, or a supervisor.
    pub async fn unclaim_task(&self, id: &str, actor: &TaskActor<'_>) -> Result<TaskRow, EngineError> {
        let (mut tx, mut task) = self.lock_task(id, actor).await?;
        check_open(&task)?;
        let Some(holder) = task.assignee.clone() else { return Ok(task) };
        if holder != actor.name && !actor.supervisor {
            return Err(claimed(&task, &holder));
        }
        task.assignee = None;
        task.status = "open".into();
        tx.update_task(&task).await?;
        let entry = task_entry(HistoryKind::TaskUnclaimed, &task, actor.name, json!({"from": holder}));
        self.append_history(&mut tx, &task.instance_id, vec![entry]).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// Hands a task to the named user (`task.delegated` with `from` and `to`). The actor must
    /// hold the task (or be a supervisor); the delegate must be an active console user or API
    /// token of the task's office (administrators of any office), and not one the task's
    /// separation of duties excludes.
    pub async fn delegate_task(&self, id: &str, actor: &TaskActor<'_>, to: &str) -> Result<TaskRow, EngineError> {
        let (mut tx, mut task) = self.lock_task(id, actor).await?;
        check_open(&task)?;
        let holder = task.assignee.clone();
        if holder.as_deref() != Some(actor.name) && !actor.supervisor {
            return Err(match holder {
                Some(h) => claimed(&task, &h),
                None => EngineError::Task(TaskRefusal::Delegation(format!("claim task `{id}` before delegating it"))),
            });
        }
        let refuse = |m: String| EngineError::Task(TaskRefusal::Delegation(m));
        if holder.as_deref() == Some(to) {
            return Err(refuse(format!("task `{id}` is already assigned to {to}")));
        }
        let Some(delegate) = tx.principal(to).await? else {
            return Err(refuse(format!("there is no active user named `{to}`")));
        };
        let offices: Vec<String> = serde_json::from_str(&delegate.offices).unwrap_or_default();
        if let Some(office) = &task.office
            && delegate.role != "admin"
            && !offices.contains(office)
        {
            return Err(refuse(format!("{to} does not work for office {office}")));
        }
        if delegate.role != "admin" && delegate.role != "operator" {
            return Err(refuse(format!("{to} has the role `{}` and cannot work tasks", delegate.role)));
        }
        let excluded: Vec<String> = serde_json::from_str(&task.excluded_actors).unwrap_or_default();
        if excluded.iter().any(|a| a == to) {
            return Err(EngineError::Forbidden(format!(
                "{to} completed an earlier step of this case; separation of duties forbids delegating this task to them"
            )));
        }
        task.assignee = Some(to.into());
        task.status = "claimed".into();
        task.delegated_by = Some(actor.name.into());
        tx.update_task(&task).await?;
        let entry = task_entry(HistoryKind::TaskDelegated, &task, actor.name, json!({"from": holder, "to": to}));
        self.append_history(&mut tx, &task.instance_id, vec![entry]).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// Adds a comment to a task (`task.commented`, in the hash-chained history).
    pub async fn comment_task(&self, id: &str, actor: &TaskActor<'_>, text: &str) -> Result<(), EngineError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EngineError::Invalid("a comment needs some text".into()));
        }
        if text.chars().count() > MAX_COMMENT_CHARS {
            return Err(EngineError::Invalid(format!("a comment has at most {MAX_COMMENT_CHARS} characters")));
        }
        let (mut tx, task) = self.lock_task(id, actor).await?;
        let entry = task_entry(HistoryKind::TaskCommented, &task, actor.name, json!({"text": text}));
        self.append_history(&mut tx, &task.instance_id, vec![entry]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The comments on a task, oldest first.
    pub async fn task_comments(&self, task: &TaskRow) -> Result<Vec<TaskComment>, EngineError> {
        let history = self.inner.store.history(&task.instance_id).await?;
        Ok(history
            .into_iter()
            .filter(|h| h.kind == HistoryKind::TaskCommented)
            .filter_map(|h| {
                let data: Value = serde_json::from_str(&h.data).ok()?;
                (data.get("task")?.as_str()? == task.id).then(|| TaskComment {
                    actor: h.actor.clone(),
                    at: h.at,
                    text: data.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    /// Appends entries to an instance's hash chain inside `tx` (the instance row is locked
    /// or cached by the transaction).
    pub(super) async fn append_history(&self, tx: &mut Tx, instance: &str, entries: Vec<HistoryEntry>) -> Result<(), EngineError> {
        let now = self.now();
        let mut row =
            tx.instance_for_update(instance).await?.ok_or_else(|| EngineError::NotFound { entity: "instance", id: instance.into() })?;
        for entry in entries {
            super::engine::chain_history(tx, &mut row, entry, now).await?;
        }
        tx.update_instance(&row).await?;
        Ok(())
    }
}

impl Engine {
    /// Inside the transaction that creates a task: its escalation timer and its `assigned`
    /// notification, as jobs of the task's token (discarded with it).
    pub(super) async fn schedule_task_jobs(
        &self,
        tx: &mut Tx,
        task: TaskJobs<'_>,
        escalation: Option<&TaskEscalation>,
        notify: Option<&TaskNotification>,
        now: Millis,
    ) -> Result<(), EngineError> {
        let TaskJobs { instance, task_id, token } = task;
        if let Some(n) = notify {
            let payload = serde_json::to_string(n).expect("notifications serialize");
            let job = NewJob {
                instance_id: instance.into(),
                token: token.into(),
                kind: NOTIFY_JOB.into(),
                payload,
                due_at: now,
                created_at: now,
                topic: None,
            };
            tx.insert_job(&job).await?;
        }
        if let Some(e) = escalation {
            let payload =
                serde_json::to_string(&EscalationJob { task_id: task_id.into(), escalation: e.clone() }).expect("escalations serialize");
            let job = NewJob {
                instance_id: instance.into(),
                token: token.into(),
                kind: ESCALATE_JOB.into(),
                payload,
                due_at: e.due_at,
                created_at: now,
                topic: None,
            };
            tx.insert_job(&job).await?;
        }
        Ok(())
    }

    /// An escalation timer fired (its job is already deleted, fenced, in `tx`): a task still
    /// open or claimed, and not escalated yet, goes to the escalation role (and office),
    /// without assignee (`task.escalated`), and its `escalated` notification is scheduled.
    /// A completed or cancelled task is left alone.
    pub(super) async fn escalate_task(&self, tx: &mut Tx, job: &EscalationJob) -> Result<bool, EngineError> {
        let now = self.now();
        let Some(mut task) = tx.task_for_update(&job.task_id).await? else { return Ok(false) };
        if !(task.status == "open" || task.status == "claimed") || task.escalated_at.is_some() {
            return Ok(false);
        }
        let e = &job.escalation;
        let from = json!({"role": task.role, "office": task.office, "assignee": task.assignee});
        task.role = Some(e.role.clone());
        if let Some(office) = &e.office {
            task.office = Some(office.clone());
        }
        task.assignee = None;
        task.status = "open".into();
        task.escalated_at = Some(now);
        tx.update_task(&task).await?;
        let data = json!({"from": from, "role": task.role, "office": task.office});
        let entry = task_entry(HistoryKind::TaskEscalated, &task, "pratica", data);
        self.append_history(tx, &task.instance_id, vec![entry]).await?;
        if let Some(n) = &e.notify {
            let jobs = TaskJobs { instance: &task.instance_id, task_id: &task.id, token: task.token as u32 };
            self.schedule_task_jobs(tx, jobs, None, Some(n), now).await?;
        }
        metrics::counter!("pratica_tasks_escalated_total").increment(1);
        Ok(true)
    }

    /// A notification hook's call returned: `task.notified`, a retry (a retryable error,
    /// attempts left), or `task.notification_failed`. Never touches the case's state.
    pub(super) async fn record_notification(
        &self,
        tx: &mut Tx,
        instance: &str,
        token: i64,
        n: &TaskNotification,
        result: Result<Value, CallError>,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let base = json!({"task": n.task_id, "hook": n.hook, "connector": n.connector, "operation": n.operation, "idempotency_key": n.idempotency_key, "attempt": n.attempt});
        let (kind, data) = match result {
            Ok(_) => (HistoryKind::TaskNotified, base),
            Err(error) if error.retryable && n.attempt < NOTIFY_ATTEMPTS => {
                let backoff = 10_000i64 << (n.attempt - 1).min(10);
                let due_at = now + error.retry_after_ms.unwrap_or(backoff).clamp(0, 3_600_000);
                let next = TaskNotification { attempt: n.attempt + 1, ..n.clone() };
                let payload = serde_json::to_string(&next).expect("notifications serialize");
                tx.insert_job(&NewJob {
                    instance_id: instance.into(),
                    token,
                    kind: NOTIFY_JOB.into(),
                    payload,
                    due_at,
                    created_at: now,
                    topic: None,
                })
                .await?;
                return Ok(());
            }
            Err(error) => {
                let mut data = base;
                data["error"] = json!({"code": error.code, "message": error.message});
                (HistoryKind::TaskNotificationFailed, data)
            }
        };
        let entry = HistoryEntry { kind, step: Some(n.step_id.clone()), data, actor: None };
        self.append_history(tx, instance, vec![entry]).await
    }
}

/// A history entry about a task: `data` gets the task's id.
pub(super) fn task_entry(kind: HistoryKind, task: &TaskRow, actor: &str, mut data: Value) -> HistoryEntry {
    if let Value::Object(map) = &mut data {
        map.insert("task".into(), Value::String(task.id.clone()));
    }
    HistoryEntry { kind, step: Some(task.step_id.clone()), data, actor: Some(actor.into()) }
}

fn check_open(task: &TaskRow) -> Result<(), EngineError> {
    if task.status == "open" || task.status == "claimed" {
        Ok(())
    } else {
        Err(EngineError::Task(TaskRefusal::Closed { task: task.id.clone(), status: task.status.clone() }))
    }
}

fn claimed(task: &TaskRow, holder: &str) -> EngineError {
    EngineError::Task(TaskRefusal::Claimed { task: task.id.clone(), holder: holder.into() })
}
