//! The state machine: given an instance's state and one event, move its tokens forward and
//! say what must happen outside (effects) and what to record (history). No I/O, no clock
//! reads, no randomness: `apply` is a function of its arguments, which is what makes replay,
//! property tests and group commit safe.
//!
//! Pure steps (`set`, `switch`, `end`, `fail`, forks) are run inside the same transition as
//! the event that led to them; a token stops only where it must wait for the outside world.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::state::*;
use crate::clock::{Millis, to_rfc3339};
use crate::plan::*;

/// What the machine needs to know about the instance besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    pub business_key: Option<String>,
    pub input: Value,
    pub started_at: Millis,
}

/// Something that happened to an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    Start,
    CallSucceeded {
        token: u32,
        epoch: u32,
        output: Value,
    },
    CallFailed {
        token: u32,
        epoch: u32,
        attempt: u32,
        error: CallError,
    },
    TimerFired {
        token: u32,
        epoch: u32,
    },
    MessageReceived {
        token: u32,
        epoch: u32,
        payload: Value,
    },
    ReceiveTimedOut {
        token: u32,
        epoch: u32,
    },
    TaskCompleted {
        token: u32,
        epoch: u32,
        output: Value,
        actor: String,
    },
    ChildFinished {
        token: u32,
        epoch: u32,
        result: Result<Value, StepError>,
    },
    Cancel {
        actor: String,
        reason: String,
    },
    /// Run a failed instance again from the top-level step that failed.
    Retry {
        actor: String,
    },
    /// End the instance failed at once, without compensation: its job was quarantined (it
    /// crashed or overran its lease too often) or its state outgrew its limit.
    Abort {
        error: StepError,
    },
}

/// A failed connector call: retryable (timeouts, unavailable services) or a business error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default)]
    pub retry_after_ms: Option<i64>,
}

/// Work for the outside world, persisted in the same transaction as the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    Call(CallRequest),
    Timer {
        token: u32,
        epoch: u32,
        due_at: Millis,
        purpose: TimerPurpose,
    },
    Subscribe {
        token: u32,
        epoch: u32,
        message: String,
        key: String,
    },
    CreateTask(Box<TaskRequest>),
    StartChild {
        token: u32,
        epoch: u32,
        workflow: String,
        version: Option<u32>,
        input: Value,
    },
    /// Drop the pending jobs, timers, subscriptions, tasks and child instances of tokens
    /// that no longer exist (cancelled siblings, a cancelled instance).
    Discard {
        tokens: Vec<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerPurpose {
    Wait,
    ReceiveTimeout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    pub token: u32,
    pub epoch: u32,
    pub step_id: String,
    pub connector: String,
    pub operation: Option<String>,
    pub topic: Option<String>,
    pub input: Value,
    /// Stable across re-executions of the same step iteration: `instance:step:visit`.
    pub idempotency_key: String,
    pub attempt: u32,
    pub due_at: Millis,
    pub timeout_ms: Option<i64>,
}

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

/// One line of the instance's audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
    pub actor: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transition {
    pub effects: Vec<Effect>,
    pub history: Vec<HistoryEntry>,
}

/// Applies `event` to `state` at time `now`.
pub fn apply(plan: &Plan, info: &InstanceInfo, state: &mut InstanceState, event: Event, now: Millis) -> Transition {
    let mut m = Machine { plan, info, state, now, out: Transition::default(), ready: VecDeque::new() };
    m.handle(event);
    m.drain();
    m.out
}

struct Machine<'a> {
    plan: &'a Plan,
    info: &'a InstanceInfo,
    state: &'a mut InstanceState,
    now: Millis,
    out: Transition,
    ready: VecDeque<u32>,
}

impl Machine<'_> {
    fn record(&mut self, kind: &str, step: Option<&str>, data: Value) {
        self.out.history.push(HistoryEntry { kind: kind.into(), step: step.map(String::from), data, actor: None });
    }

    fn record_by(&mut self, kind: &str, step: Option<&str>, data: Value, actor: &str) {
        self.out.history.push(HistoryEntry { kind: kind.into(), step: step.map(String::from), data, actor: Some(actor.into()) });
    }

    /// The token if it exists and is still at `epoch`.
    fn current(&self, token: u32, epoch: u32) -> bool {
        !self.state.phase.is_finished() && self.state.tokens.get(&token).is_some_and(|t| t.epoch == epoch)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Start if self.state.tokens.is_empty() && matches!(self.state.phase, Phase::Running) => {
                self.record("instance.started", None, json!({"input": self.info.input, "business_key": self.info.business_key}));
                let root = self.plan.block(BlockIx::ROOT).steps[0];
                self.spawn(root, None, TokenRole::Main, Map::new());
            }
            Event::CallSucceeded { token, epoch, output } if self.current(token, epoch) => self.complete(token, output),
            Event::CallFailed { token, epoch, attempt, error } if self.current(token, epoch) => self.call_failed(token, attempt, error),
            Event::TimerFired { token, epoch } if self.current(token, epoch) => {
                let step = self.step_id(token);
                self.record("timer.fired", Some(&step), Value::Null);
                self.complete(token, Value::Null)
            }
            Event::MessageReceived { token, epoch, payload } if self.current(token, epoch) => {
                let step = self.step_id(token);
                self.record("message.received", Some(&step), json!({"payload": payload}));
                self.complete(token, payload)
            }
            Event::ReceiveTimedOut { token, epoch } if self.current(token, epoch) => {
                let at = self.state.tokens[&token].at;
                if let Action::Receive(Receive { timeout: Some((_, target)), .. }) = &self.plan.step(at).action {
                    let step = self.plan.step(at).id.clone();
                    self.record("message.timed_out", Some(&step), Value::Null);
                    self.out.effects.push(Effect::Discard { tokens: vec![token] });
                    self.move_to(token, Some(*target));
                }
            }
            Event::TaskCompleted { token, epoch, output, actor } if self.current(token, epoch) => {
                let step = self.step_id(token);
                self.record_by("task.completed", Some(&step), json!({"output": output}), &actor);
                self.complete(token, output)
            }
            Event::ChildFinished { token, epoch, result } if self.current(token, epoch) => match result {
                Ok(output) => self.complete(token, output),
                Err(error) => self.fail(token, error),
            },
            Event::Cancel { actor, reason } if !self.state.phase.is_finished() => {
                let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
                self.state.tokens.clear();
                self.out.effects.push(Effect::Discard { tokens });
                self.state.phase = Phase::Cancelled;
                self.record_by("instance.cancelled", None, json!({"reason": reason}), &actor);
            }
            Event::Abort { error } if !self.state.phase.is_finished() => {
                let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
                if !tokens.is_empty() {
                    self.out.effects.push(Effect::Discard { tokens });
                }
                self.state.tokens.clear();
                self.state.compensable.clear();
                self.record("instance.failed", error.step.as_deref(), json!({"error": error}));
                self.state.phase = Phase::Failed { error, resume_at: None };
            }
            Event::Retry { actor } => {
                if let Phase::Failed { resume_at: Some(at), error } = &self.state.phase {
                    let (at, error) = (*at, error.clone());
                    self.state.phase = Phase::Running;
                    let step = self.plan.step(at).id.clone();
                    self.record_by("instance.retried", Some(&step), json!({"previous_error": error}), &actor);
                    self.spawn(at, None, TokenRole::Main, Map::new());
                }
            }
            // A late or repeated event for a position the token has left.
            _ => {}
        }
    }

    fn drain(&mut self) {
        while let Some(token) = self.ready.pop_front() {
            self.run(token);
        }
    }

    fn step_id(&self, token: u32) -> String {
        self.plan.step(self.state.tokens[&token].at).id.clone()
    }

    fn spawn(&mut self, at: StepIx, parent: Option<u32>, role: TokenRole, locals: Map<String, Value>) -> u32 {
        let id = self.state.next_token;
        self.state.next_token += 1;
        self.state
            .tokens
            .insert(id, Token { id, at, epoch: 0, parent, role, locals, last: Value::Null, error: None, wait: Waiting::Nothing });
        self.ready.push_back(id);
        id
    }

    /// The data a step sees: `{input, steps, vars, business_key, instance, ...locals, error}`.
    fn data(&self, token: u32) -> Value {
        let t = &self.state.tokens[&token];
        let mut steps = self.state.steps.clone();
        if let Some(Value::Object(local)) = t.locals.get("steps") {
            steps.extend(local.clone());
        }
        let mut data = json!({
            "input": self.info.input,
            "steps": steps,
            "vars": self.state.vars,
            "business_key": self.info.business_key,
            "instance": {
                "id": self.info.id,
                "workflow": self.info.workflow,
                "version": self.info.version,
                "started_at": to_rfc3339(self.info.started_at),
                "now": to_rfc3339(self.now),
            },
        });
        let obj = data.as_object_mut().expect("data is an object");
        for (k, v) in &t.locals {
            if k != "steps" {
                obj.insert(k.clone(), v.clone());
            }
        }
        if let Some(e) = &t.error {
            obj.insert("error".into(), serde_json::to_value(e).unwrap_or(Value::Null));
        }
        data
    }

    /// Whether outputs of steps in `block` are scoped to a foreach iteration.
    fn in_foreach(&self, block: BlockIx) -> bool {
        match &self.plan.block(block).role {
            BlockRole::Root => false,
            BlockRole::ForeachBody { .. } => true,
            BlockRole::Branch { step, .. } | BlockRole::Catch { step, .. } | BlockRole::Compensation { step } => {
                self.in_foreach(self.plan.step(*step).block)
            }
        }
    }

    fn visit_key(&mut self, token: u32, step: &Step) -> String {
        let mut path = step.id.clone();
        let mut t = Some(token);
        while let Some(id) = t {
            let tok = &self.state.tokens[&id];
            if let TokenRole::Iteration { index } = tok.role {
                path = format!("{path}[{index}]");
            }
            t = tok.parent;
        }
        let visit = self.state.visits.entry(path.clone()).or_insert(0);
        *visit += 1;
        format!("{}:{path}:{visit}", self.info.id)
    }

    // ---- moving tokens ----

    fn run(&mut self, token: u32) {
        let Some(t) = self.state.tokens.get(&token) else { return };
        if t.wait != Waiting::Nothing {
            return;
        }
        let step = self.plan.step(t.at);
        let data = self.data(token);
        let fail_expr = |e: &dyn EvalFailure| StepError { code: e.code().into(), message: e.to_string(), step: Some(step.id.clone()) };
        match &step.action {
            Action::Set { vars } => {
                let mut set = Map::new();
                for (name, value) in vars {
                    match value.evaluate(&data) {
                        Ok(v) => {
                            set.insert(name.clone(), v);
                        }
                        Err(e) => return self.fail(token, fail_expr(&e)),
                    }
                }
                let set = Value::Object(set);
                if let Some(error) = too_large(&set, &step.id) {
                    return self.fail(token, error);
                }
                if let Value::Object(vars) = &set {
                    self.state.vars.extend(vars.clone());
                }
                self.complete(token, set);
            }
            Action::Switch(switch) => {
                let mut target = None;
                for (cond, goto) in &switch.cases {
                    match cond.test(&data) {
                        Ok(true) => {
                            target = Some(*goto);
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => return self.fail(token, fail_expr(&e)),
                    }
                }
                let chosen = target.or(switch.default).or(step.next);
                self.record("switch.chose", Some(&step.id), json!({"next": chosen.map(|s| self.plan.step(s).id.clone())}));
                self.move_to(token, chosen);
            }
            Action::End { output } => {
                let output = match output.as_ref().map(|o| o.evaluate(&data)) {
                    None => self.state.tokens[&token].last.clone(),
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return self.fail(token, fail_expr(&e)),
                };
                self.state.tokens.get_mut(&token).expect("token exists").last = output;
                self.end_unit(token);
            }
            Action::Fail { error, message } => {
                let message = match message.as_ref().map(|m| m.render(&data)) {
                    None => format!("failed with {error}"),
                    Some(Ok(m)) => m,
                    Some(Err(e)) => e.to_string(),
                };
                self.fail(token, StepError { code: error.clone(), message, step: Some(step.id.clone()) });
            }
            Action::Parallel { branches } => {
                let locals = self.state.tokens[&token].locals.clone();
                let mut pending = BTreeSet::new();
                for b in branches {
                    let first = self.plan.block(b.block).steps[0];
                    pending.insert(self.spawn(first, Some(token), TokenRole::Branch { name: b.name.clone() }, locals.clone()));
                }
                self.record("parallel.started", Some(&step.id), json!({"branches": branches.iter().map(|b| &b.name).collect::<Vec<_>>()}));
                self.state.tokens.get_mut(&token).expect("token exists").wait = Waiting::Branches { pending, outputs: Map::new() };
            }
            Action::Foreach(f) => {
                let items = match f.over.eval(&data) {
                    Ok(Value::Array(items)) => items,
                    Ok(Value::Null) => Vec::new(),
                    Ok(other) => {
                        return self.fail(token, StepError::new("expression", format!("foreach `over` must be a list, got {other}")));
                    }
                    Err(e) => return self.fail(token, fail_expr(&e)),
                };
                self.record("foreach.started", Some(&step.id), json!({"items": items.len(), "concurrency": f.concurrency}));
                let results = vec![Value::Null; items.len()];
                self.state.tokens.get_mut(&token).expect("token exists").wait =
                    Waiting::Iterations { items, next: 0, running: BTreeSet::new(), results, concurrency: f.concurrency.max(1) as usize };
                self.start_iterations(token);
            }
            Action::Call(call) => {
                let input = match call.input.as_ref().map(|i| i.evaluate(&data)) {
                    None => Value::Null,
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return self.fail(token, fail_expr(&e)),
                };
                let key = self.visit_key(token, step);
                self.schedule_call(token, step, call, input, key, 1, self.now);
            }
            Action::Wait(wait) => {
                let due = match wait {
                    Wait::For(d) => Ok(self.now + d.as_millis() as i64),
                    Wait::Until(expr) => expr.eval(&data).map_err(|e| e.to_string()).and_then(|v| parse_date(&v)),
                };
                match due {
                    Err(e) => self.fail(token, StepError { code: "expression".into(), message: e, step: Some(step.id.clone()) }),
                    Ok(due) if due <= self.now => self.complete(token, Value::Null),
                    Ok(due) => {
                        let epoch = self.state.tokens[&token].epoch;
                        self.record("timer.armed", Some(&step.id), json!({"due_at": to_rfc3339(due)}));
                        self.out.effects.push(Effect::Timer { token, epoch, due_at: due, purpose: TimerPurpose::Wait });
                        self.state.tokens.get_mut(&token).expect("token exists").wait = Waiting::Timer;
                    }
                }
            }
            Action::Receive(r) => {
                let key = match r.correlate.eval(&data) {
                    Ok(Value::String(s)) => s,
                    Ok(Value::Null) => return self.fail(token, StepError::new("expression", "the correlation key is null")),
                    Ok(other) => other.to_string(),
                    Err(e) => return self.fail(token, fail_expr(&e)),
                };
                let epoch = self.state.tokens[&token].epoch;
                self.record("message.awaited", Some(&step.id), json!({"message": r.message, "key": key}));
                self.out.effects.push(Effect::Subscribe { token, epoch, message: r.message.clone(), key: key.clone() });
                if let Some((after, _)) = r.timeout {
                    let due_at = self.now + after.as_millis() as i64;
                    self.out.effects.push(Effect::Timer { token, epoch, due_at, purpose: TimerPurpose::ReceiveTimeout });
                }
                self.state.tokens.get_mut(&token).expect("token exists").wait = Waiting::Message { message: r.message.clone(), key };
            }
            Action::Human(h) => match self.task_request(token, step, h, &data) {
                Ok((task, hook_errors)) => {
                    self.record("task.created", Some(&step.id), serde_json::to_value(&task).unwrap_or(Value::Null));
                    for (hook, error) in hook_errors {
                        self.record("task.notification_failed", Some(&step.id), json!({"task": task.id, "hook": hook, "error": error}));
                    }
                    self.out.effects.push(Effect::CreateTask(Box::new(task)));
                    self.state.tokens.get_mut(&token).expect("token exists").wait = Waiting::Task;
                }
                Err(e) => self.fail(token, e),
            },
            Action::Subworkflow(sub) => {
                let input = match sub.input.as_ref().map(|i| i.evaluate(&data)) {
                    None => Value::Null,
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return self.fail(token, fail_expr(&e)),
                };
                let epoch = self.state.tokens[&token].epoch;
                self.record("child.started", Some(&step.id), json!({"workflow": sub.workflow, "input": input}));
                self.out.effects.push(Effect::StartChild { token, epoch, workflow: sub.workflow.clone(), version: sub.version, input });
                self.state.tokens.get_mut(&token).expect("token exists").wait = Waiting::Child;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn schedule_call(&mut self, token: u32, step: &Step, call: &Call, input: Value, key: String, attempt: u32, due_at: Millis) {
        let epoch = self.state.tokens[&token].epoch;
        let request = CallRequest {
            token,
            epoch,
            step_id: step.id.clone(),
            connector: call.connector.clone(),
            operation: call.operation.clone(),
            topic: call.topic.clone(),
            input,
            idempotency_key: key,
            attempt,
            due_at,
            timeout_ms: step.timeout.map(|d| d.as_millis() as i64),
        };
        if attempt == 1 {
            self.record("call.scheduled", Some(&step.id), json!({"connector": request.connector, "operation": request.operation, "input": request.input, "idempotency_key": request.idempotency_key}));
        }
        let wait = Waiting::Call { attempt, key: request.idempotency_key.clone(), input: request.input.clone() };
        self.out.effects.push(Effect::Call(request));
        self.state.tokens.get_mut(&token).expect("token exists").wait = wait;
    }

    fn call_failed(&mut self, token: u32, attempt: u32, error: CallError) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        let Action::Call(call) = &step.action else { return };
        let policy = step.retry.clone();
        let retry = policy
            .as_ref()
            .filter(|p| attempt < p.attempts)
            .filter(|p| if p.on.is_empty() { error.retryable } else { p.on.iter().any(|pat| pattern_matches(pat, &error.code)) });
        self.record(
            "call.failed",
            Some(&step.id),
            json!({"attempt": attempt, "code": error.code, "message": error.message, "retryable": error.retryable}),
        );
        match retry {
            Some(policy) => {
                let delay = backoff(policy, attempt, &self.info.id, &step.id).max(error.retry_after_ms.unwrap_or(0));
                let due_at = self.now + delay;
                // The input and key of the original call are kept: same iteration, next attempt.
                let (key, input) = match &self.state.tokens[&token].wait {
                    Waiting::Call { key, input, .. } => (key.clone(), input.clone()),
                    _ => return,
                };
                self.record("call.retry_scheduled", Some(&step.id), json!({"attempt": attempt + 1, "due_at": to_rfc3339(due_at)}));
                self.schedule_call(token, step, call, input, key, attempt + 1, due_at);
            }
            None => self.fail(token, StepError { code: error.code, message: error.message, step: Some(step.id.clone()) }),
        }
    }

    /// The task to create, and the notification hooks whose input could not be rendered
    /// (recorded, never failing the step).
    fn task_request(
        &self,
        token: u32,
        step: &Step,
        h: &HumanTask,
        data: &Value,
    ) -> Result<(TaskRequest, Vec<(String, String)>), StepError> {
        let err = |e: &dyn EvalFailure| StepError { code: e.code().into(), message: e.to_string(), step: Some(step.id.clone()) };
        let text = |v: &Option<ValueTemplate>| -> Result<Option<String>, StepError> {
            match v.as_ref().map(|v| v.evaluate(data)) {
                None => Ok(None),
                Some(Ok(Value::String(s))) => Ok(Some(s)),
                Some(Ok(Value::Null)) => Ok(None),
                Some(Ok(other)) => Ok(Some(other.to_string())),
                Some(Err(e)) => Err(err(&e)),
            }
        };
        let excluded_actors = h
            .separate_from
            .iter()
            .filter_map(|s| self.state.steps.get(&self.plan.step(*s).id))
            .filter_map(|o| o.get("output").and_then(|o| o.get("completed_by")).and_then(Value::as_str).map(String::from))
            .collect();
        let mut request = TaskRequest {
            token,
            epoch: self.state.tokens[&token].epoch,
            step_id: step.id.clone(),
            title: h.title.render(data).map_err(|e| err(&e))?,
            description: h.description.as_ref().map(|d| d.render(data)).transpose().map_err(|e| err(&e))?,
            user: text(&h.assign.user)?,
            role: h.assign.role.clone(),
            office: text(&h.assign.office)?,
            form: h.form.clone(),
            outcomes: h.outcomes.clone(),
            reason_required: h.reason_required.clone(),
            due_at: h.due.map(|d| self.now + d.as_millis() as i64),
            excluded_actors,
            id: uuid::Uuid::now_v7().to_string(),
            escalation: None,
            notify_assigned: None,
        };
        let mut hook_errors = Vec::new();
        let mut render = |hook: &str, call: &Call, task: &TaskRequest| -> Option<TaskNotification> {
            let mut data = data.clone();
            if let Value::Object(map) = &mut data {
                let due = task.due_at.map(to_rfc3339);
                let view = json!({"id": task.id, "title": task.title, "office": task.office, "role": task.role, "assignee": task.user, "due": due});
                map.insert("task".into(), view);
            }
            let input = match call.input.as_ref().map(|i| i.evaluate(&data)) {
                None => Value::Null,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    hook_errors.push((hook.to_string(), e.to_string()));
                    return None;
                }
            };
            Some(TaskNotification {
                task_id: task.id.clone(),
                step_id: step.id.clone(),
                hook: hook.into(),
                connector: call.connector.clone(),
                operation: call.operation.clone(),
                input,
                idempotency_key: format!("{}:notify:{hook}", task.id),
                attempt: 1,
            })
        };
        request.notify_assigned = h.notify_assigned.as_ref().and_then(|call| render("assigned", call, &request));
        if let Some(e) = &h.escalate {
            let office = text(&e.office)?;
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

    /// The token's current step finished with `output`: record it and move on.
    fn complete(&mut self, token: u32, output: Value) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        if let Some(error) = too_large(&output, &step.id) {
            return self.fail(token, error);
        }
        let entry = json!({"output": output});
        let t = self.state.tokens.get_mut(&token).expect("token exists");
        t.last = output.clone();
        t.wait = Waiting::Nothing;
        self.store_output(token, at, entry);
        if let Some(block) = step.compensate {
            let locals = self.state.tokens[&token].locals.clone();
            self.state.compensable.push(Compensable { step: at, block, locals });
        }
        self.record("step.completed", Some(&step.id), json!({"output": output}));
        self.move_to(token, step.next);
    }

    /// Records `.steps.<id>` for a step: per iteration inside foreach bodies, else instance-wide.
    fn store_output(&mut self, token: u32, step: StepIx, entry: Value) {
        let step = self.plan.step(step);
        if self.in_foreach(step.block) {
            let t = self.state.tokens.get_mut(&token).expect("token exists");
            if let Value::Object(map) = t.locals.entry("steps").or_insert_with(|| Value::Object(Map::new())) {
                map.insert(step.id.clone(), entry);
            }
        } else {
            self.state.steps.insert(step.id.clone(), entry);
        }
    }

    fn move_to(&mut self, token: u32, next: Option<StepIx>) {
        match next {
            Some(s) => {
                let t = self.state.tokens.get_mut(&token).expect("token exists");
                t.at = s;
                t.epoch += 1;
                t.wait = Waiting::Nothing;
                self.ready.push_back(token);
            }
            None => self.block_end(token),
        }
    }

    /// The token ran off the end of its block.
    fn block_end(&mut self, token: u32) {
        let at = self.state.tokens[&token].at;
        let block = self.plan.step(at).block;
        match self.plan.block(block).role.clone() {
            BlockRole::Catch { step, .. } => {
                let clause_goto = self.plan.step(step).catch.iter().find(|c| c.handler == Some(block)).and_then(|c| c.goto);
                let t = self.state.tokens.get_mut(&token).expect("token exists");
                t.at = step;
                let error = t.error.take();
                // The handler's result stands in for the failed step's output (a fallback).
                let entry = json!({"output": t.last, "error": error});
                self.store_output(token, step, entry);
                let next = clause_goto.or(self.plan.step(step).next);
                self.move_to(token, next);
            }
            _ => self.end_unit(token),
        }
    }

    /// The token's unit of work ended (an `end` step, or the end of its block): finish the
    /// branch, iteration, compensation or instance it belongs to.
    fn end_unit(&mut self, token: u32) {
        let Some(t) = self.state.tokens.remove(&token) else { return };
        match (&t.role, t.parent) {
            (TokenRole::Main, _) => {
                self.out.effects.push(Effect::Discard { tokens: self.state.tokens.keys().copied().collect() });
                self.state.tokens.clear();
                let output = match &self.plan.output {
                    None => t.last.clone(),
                    Some(o) => {
                        self.state.tokens.insert(token, t.clone());
                        let data = self.data(token);
                        self.state.tokens.remove(&token);
                        match o.evaluate(&data) {
                            Ok(v) => v,
                            Err(e) => {
                                let error = StepError::new("expression", format!("workflow output: {e}"));
                                return self.instance_failed(error, None);
                            }
                        }
                    }
                };
                self.record("instance.completed", None, json!({"output": output}));
                self.state.phase = Phase::Completed { output };
            }
            (TokenRole::Branch { name }, Some(parent)) => {
                if let Some(Waiting::Branches { pending, outputs }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
                    pending.remove(&token);
                    outputs.insert(name.clone(), t.last.clone());
                    if pending.is_empty() {
                        let outputs = std::mem::take(outputs);
                        self.complete(parent, Value::Object(outputs));
                    }
                }
            }
            (TokenRole::Iteration { index }, Some(parent)) => {
                if let Some(Waiting::Iterations { running, results, .. }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
                    running.remove(&token);
                    if let Some(slot) = results.get_mut(*index) {
                        *slot = t.last.clone();
                    }
                    self.start_iterations(parent);
                }
            }
            (TokenRole::Compensation, _) => self.compensate_next(),
            _ => {}
        }
    }

    fn start_iterations(&mut self, parent: u32) {
        let foreach = match &self.plan.step(self.state.tokens[&parent].at).action {
            Action::Foreach(f) => f.clone(),
            _ => return,
        };
        loop {
            let Some(Waiting::Iterations { items, next, running, results, concurrency }) =
                self.state.tokens.get_mut(&parent).map(|p| &mut p.wait)
            else {
                return;
            };
            if *next >= items.len() {
                if running.is_empty() {
                    let results = std::mem::take(results);
                    self.complete(parent, Value::Array(results));
                }
                return;
            }
            if running.len() >= *concurrency {
                return;
            }
            let index = *next;
            *next += 1;
            let item = items[index].clone();
            let mut locals = self.state.tokens[&parent].locals.clone();
            locals.insert(foreach.item.clone(), item);
            locals.insert("index".into(), json!(index));
            locals.insert("steps".into(), Value::Object(Map::new()));
            let first = self.plan.block(foreach.body).steps[0];
            let child = self.spawn(first, Some(parent), TokenRole::Iteration { index }, locals);
            if let Some(Waiting::Iterations { running, .. }) = self.state.tokens.get_mut(&parent).map(|p| &mut p.wait) {
                running.insert(child);
            }
        }
    }

    // ---- failures ----

    /// The token's current step failed: try its catch clauses, else propagate.
    fn fail(&mut self, token: u32, error: StepError) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        if let Some(clause) = step.catch.iter().find(|c| c.matches(&error.code)) {
            self.record("step.failed", Some(&step.id), json!({"error": error, "caught": true}));
            let t = self.state.tokens.get_mut(&token).expect("token exists");
            t.error = Some(error.clone());
            t.wait = Waiting::Nothing;
            self.store_output(token, at, json!({"output": null, "error": error}));
            match clause.handler {
                Some(block) => {
                    let first = self.plan.block(block).steps[0];
                    self.move_to(token, Some(first));
                }
                None => self.move_to(token, clause.goto),
            }
            return;
        }
        self.record("step.failed", Some(&step.id), json!({"error": error, "caught": false}));
        self.propagate(token, error);
    }

    /// An uncaught failure leaves the token's block.
    fn propagate(&mut self, token: u32, error: StepError) {
        let at = self.state.tokens[&token].at;
        let block = self.plan.step(at).block;
        match self.plan.block(block).role.clone() {
            BlockRole::Root => {
                self.state.tokens.remove(&token);
                self.instance_failed(error, Some(at));
            }
            BlockRole::Branch { .. } | BlockRole::ForeachBody { .. } => {
                let Some(parent) = self.state.tokens[&token].parent else { return };
                // Fail fast: the siblings (and everything under them) stop.
                let doomed = self.descendants(parent);
                for id in &doomed {
                    self.state.tokens.remove(id);
                }
                self.out.effects.push(Effect::Discard { tokens: doomed });
                let p = self.state.tokens.get_mut(&parent).expect("parent token exists");
                p.wait = Waiting::Nothing;
                self.fail(parent, error);
            }
            BlockRole::Catch { step, .. } => {
                // A failure inside a handler is a failure of the step it handles, not caught again.
                let t = self.state.tokens.get_mut(&token).expect("token exists");
                t.at = step;
                t.error = None;
                self.propagate(token, error);
            }
            BlockRole::Compensation { .. } => {
                self.state.tokens.remove(&token);
                let original = match &self.state.phase {
                    Phase::Compensating { error: e, .. } => e.message.clone(),
                    _ => String::new(),
                };
                let error = StepError::new("compensation.failed", format!("{} (while compensating: {original})", error.message));
                self.record("instance.failed", None, json!({"error": error}));
                self.state.phase = Phase::Failed { error, resume_at: None };
            }
        }
    }

    fn descendants(&self, parent: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![parent];
        while let Some(p) = stack.pop() {
            for t in self.state.tokens.values().filter(|t| t.parent == Some(p)) {
                out.push(t.id);
                stack.push(t.id);
            }
        }
        out
    }

    fn instance_failed(&mut self, error: StepError, resume_at: Option<StepIx>) {
        let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
        if !tokens.is_empty() {
            self.out.effects.push(Effect::Discard { tokens });
        }
        self.state.tokens.clear();
        let mut remaining = std::mem::take(&mut self.state.compensable);
        remaining.reverse();
        if remaining.is_empty() {
            self.record("instance.failed", None, json!({"error": error}));
            self.state.phase = Phase::Failed { error, resume_at };
        } else {
            self.record("compensation.started", None, json!({"error": error, "steps": remaining.len()}));
            self.state.phase = Phase::Compensating { error, remaining };
            self.compensate_next();
        }
    }

    fn compensate_next(&mut self) {
        let Phase::Compensating { error, remaining } = &mut self.state.phase else { return };
        if remaining.is_empty() {
            let error = error.clone();
            self.record("instance.failed", None, json!({"error": error}));
            self.state.phase = Phase::Failed { error, resume_at: None };
            return;
        }
        let next = remaining.remove(0);
        let error = error.clone();
        let step_id = self.plan.step(next.step).id.clone();
        self.record("compensation.step", Some(&step_id), Value::Null);
        let first = self.plan.block(next.block).steps[0];
        let id = self.spawn(first, None, TokenRole::Compensation, next.locals);
        self.state.tokens.get_mut(&id).expect("token exists").error = Some(error);
    }
}

/// A failure of user-written code, with the step error code it gives.
trait EvalFailure: std::fmt::Display {
    fn code(&self) -> &'static str;
}

impl EvalFailure for crate::expr::ExprError {
    fn code(&self) -> &'static str {
        crate::expr::ExprError::code(self)
    }
}

impl EvalFailure for crate::template::TemplateError {
    fn code(&self) -> &'static str {
        crate::template::TemplateError::code(self)
    }
}

impl EvalFailure for crate::plan::ValueError {
    fn code(&self) -> &'static str {
        match self {
            crate::plan::ValueError::Expr(e) => e.code(),
            crate::plan::ValueError::Template(e) => e.code(),
        }
    }
}

/// The error of a step whose output (or variables) is larger than the limit in force
/// (`state.too_large`), if it is.
fn too_large(value: &Value, step: &str) -> Option<StepError> {
    let limit = crate::budget::limits().value;
    crate::budget::json_size_exceeds(value, limit).then(|| StepError {
        code: "state.too_large".into(),
        message: format!("the output of step `{step}` is larger than the limit of {} KiB for one value", limit >> 10),
        step: Some(step.to_string()),
    })
}

/// Whether an error code matches a pattern: exact, `prefix*`, or `*`.
pub fn pattern_matches(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => pattern == code,
    }
}

/// The wait before attempt `attempt + 1`, with deterministic jitter (a hash of the instance,
/// step and attempt), so replays compute the same time.
pub fn backoff(policy: &RetryPolicy, attempt: u32, instance: &str, step: &str) -> Millis {
    let base = policy.delay.as_millis() as f64;
    let raw = match policy.backoff {
        Backoff::Constant => base,
        Backoff::Exponential => base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32),
    };
    let capped = raw.min(policy.max_delay.as_millis() as f64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in instance.bytes().chain(step.bytes()).chain(attempt.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let unit = (h % 10_000) as f64 / 10_000.0; // [0, 1)
    let factor = 1.0 + policy.jitter * (2.0 * unit - 1.0);
    (capped * factor).max(0.0) as Millis
}

/// A date from an expression: RFC 3339, or `YYYY-MM-DD` (midnight Europe/Rome).
fn parse_date(v: &Value) -> Result<Millis, String> {
    let text = v.as_str().ok_or_else(|| format!("`until` must be a date string, got {v}"))?;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not an RFC 3339 date-time or YYYY-MM-DD date"))?;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    use chrono::TimeZone;
    chrono_tz::Europe::Rome
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("`{text}` has no midnight in Europe/Rome"))
}
