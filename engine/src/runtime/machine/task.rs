//! `human`: a task for an operator — title and description rendered, assignment, form,
//! outcomes, due time, separation of duties, escalation and notification hooks computed
//! when it is created, with an id from the caller's [`super::IdSource`]. Its completion
//! (the operator's output) completes the step.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Machine;
use super::effects::Effect;
use super::flow::{EvalFailure, eval_error, value_or_null};
use crate::clock::{Millis, to_rfc3339};
use crate::plan::{Call, HumanTask, Step, ValueTemplate};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, Waiting};

/// A human task to create, as the transition computed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub token: u32,
    pub epoch: u32,
    pub step_id: String,
    pub title: String,
    pub description: Option<String>,
    pub user: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
    pub form: Option<String>,
    pub outcomes: Vec<String>,
    pub reason_required: Vec<String>,
    pub due_at: Option<Millis>,
    /// Operators who completed the steps this one must be separated from (four-eyes).
    pub excluded_actors: Vec<String>,
    /// The task's id, chosen when it is created (notification templates see it).
    #[serde(default)]
    pub id: String,
    /// When and to whom the task escalates if it is still open then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<TaskEscalation>,
    /// The `notify: assigned` call, rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_assigned: Option<TaskNotification>,
}

/// A task's escalation, computed when the task is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEscalation {
    pub due_at: Millis,
    pub role: String,
    /// The new office; `None` keeps the task's office.
    pub office: Option<String>,
    /// The `notify: escalated` call, rendered with the escalated task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<TaskNotification>,
}

/// A notification hook's connector call, rendered: run as a durable job, retried, never
/// blocking the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskNotification {
    pub task_id: String,
    pub step_id: String,
    /// `assigned` or `escalated`.
    pub hook: String,
    pub connector: String,
    pub operation: Option<String>,
    pub input: Value,
    /// `<task id>:notify:<hook>`: the same on every attempt.
    pub idempotency_key: String,
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// A notification hook whose input could not be rendered: `(hook, error)`.
type HookError = (String, String);

impl Machine<'_> {
    pub(super) fn run_human(&mut self, token: u32, step: &Step, human: &HumanTask, data: &Value) {
        let id = self.ids.next_id();
        match self.task_request(token, step, human, data, id) {
            Ok((task, hook_errors)) => {
                self.record(HistoryKind::TaskCreated, Some(&step.id), serde_json::to_value(&task).unwrap_or(Value::Null));
                for (hook, error) in hook_errors {
                    self.record(
                        HistoryKind::TaskNotificationFailed,
                        Some(&step.id),
                        json!({"task": task.id, "hook": hook, "error": error}),
                    );
                }
                self.out.effects.push(Effect::CreateTask(Box::new(task)));
                self.wait_for(token, Waiting::Task);
            }
            Err(e) => self.fail(token, e),
        }
    }

    pub(super) fn task_completed(&mut self, token: u32, output: Value, actor: &str) {
        let step = self.step_id(token);
        self.record_by(HistoryKind::TaskCompleted, Some(&step), json!({"output": output}), actor);
        self.complete(token, output)
    }

    /// The task to create, and the notification hooks whose input could not be rendered
    /// (recorded, never failing the step).
    fn task_request(
        &self,
        token: u32,
        step: &Step,
        h: &HumanTask,
        data: &Value,
        id: String,
    ) -> Result<(TaskRequest, Vec<HookError>), StepError> {
        let err = |e: &dyn EvalFailure| eval_error(step, e);
        let excluded_actors = h
            .separate_from
            .iter()
            .filter_map(|s| self.state.steps.get(&self.plan.step(*s).id))
            .filter_map(|o| o.get("output").and_then(|o| o.get("completed_by")).and_then(Value::as_str).map(String::from))
            .collect();
        let mut request = TaskRequest {
            token,
            epoch: self.epoch(token),
            step_id: step.id.clone(),
            title: h.title.render(data).map_err(|e| err(&e))?,
            description: h.description.as_ref().map(|d| d.render(data)).transpose().map_err(|e| err(&e))?,
            user: text(&h.assign.user, step, data)?,
            role: h.assign.role.clone(),
            office: text(&h.assign.office, step, data)?,
            form: h.form.clone(),
            outcomes: h.outcomes.clone(),
            reason_required: h.reason_required.clone(),
            due_at: h.due.map(|d| self.now + d.as_millis() as i64),
            excluded_actors,
            id,
            escalation: None,
            notify_assigned: None,
        };
        let mut hook_errors = Vec::new();
        let mut render = |hook: &str, call: &Call, task: &TaskRequest| match notification(hook, call, task, step, data) {
            Ok(n) => Some(n),
            Err(e) => {
                hook_errors.push((hook.to_string(), e));
                None
            }
        };
        request.notify_assigned = h.notify_assigned.as_ref().and_then(|call| render("assigned", call, &request));
        if let Some(e) = &h.escalate {
            let office = text(&e.office, step, data)?;
            let mut escalated = request.clone();
            escalated.role = Some(e.role.clone());
            escalated.office = office.clone().or(escalated.office);
            escalated.user = None;
            let notify = h.notify_escalated.as_ref().and_then(|call| render("escalated", call, &escalated));
            request.escalation =
                Some(TaskEscalation { due_at: self.now + e.after.as_millis() as i64, role: e.role.clone(), office, notify });
        }
        Ok((request, hook_errors))
    }
}

/// An optional text field of a task (a user, an office): a string as is, null as none,
/// anything else as its JSON text.
fn text(v: &Option<ValueTemplate>, step: &Step, data: &Value) -> Result<Option<String>, StepError> {
    match v.as_ref().map(|v| v.evaluate(data)) {
        None => Ok(None),
        Some(Ok(Value::String(s))) => Ok(Some(s)),
        Some(Ok(Value::Null)) => Ok(None),
        Some(Ok(other)) => Ok(Some(other.to_string())),
        Some(Err(e)) => Err(eval_error(step, &e)),
    }
}

/// The `hook` notification call of `task`, its input rendered with the step's data and a
/// `task` view; or the rendering error.
fn notification(hook: &str, call: &Call, task: &TaskRequest, step: &Step, data: &Value) -> Result<TaskNotification, String> {
    let mut data = data.clone();
    if let Value::Object(map) = &mut data {
        let due = task.due_at.map(to_rfc3339);
        let view = json!({"id": task.id, "title": task.title, "office": task.office, "role": task.role, "assignee": task.user, "due": due});
        map.insert("task".into(), view);
    }
    let input = value_or_null(call.input.as_ref(), &data).map_err(|e| e.to_string())?;
    Ok(TaskNotification {
        task_id: task.id.clone(),
        step_id: step.id.clone(),
        hook: hook.into(),
        connector: call.connector.clone(),
        operation: call.operation.clone(),
        input,
        idempotency_key: format!("{}:notify:{hook}", task.id),
        attempt: 1,
    })
}
