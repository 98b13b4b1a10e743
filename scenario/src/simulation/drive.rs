//! Driving one instance as the world would: run the due work, answer external tasks from
//! the mocks, complete open tasks and publish awaited messages as the scenario says, and
//! move the simulated clock to the next thing that is due.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use pratica_engine::clock::{Clock, ManualClock, Millis};
use pratica_engine::connector::ConnectorError;
use pratica_engine::plan::Action;
use pratica_engine::runtime::state::{InstanceState, Waiting};
use pratica_engine::runtime::{Engine, EngineError, ExternalFailure, ExternalWorker, StartRequest, TaskCompletion};
use pratica_engine::store::{InstanceFilter, TaskFilter, TaskRow, WorkflowRow};
use serde_json::Value;

use super::mock::MockConnector;
use super::{Abort, MAX_ROUNDS, MAX_SIMULATED, WORKER, finished, ms};
use crate::loading::Suite;
use crate::loading::model::{Located, Scenario, TaskAction};
use crate::loading::parse;
use crate::report::{Failure, format_elapsed};

/// The state of one scenario while it is driven.
pub(crate) struct Run<'a> {
    pub(crate) suite: &'a Suite,
    pub(crate) scenario: &'a Scenario,
    pub(crate) engine: &'a Engine,
    pub(crate) clock: &'a ManualClock,
    pub(crate) mock: &'a MockConnector,
    pub(crate) used_tasks: Vec<bool>,
    pub(crate) used_messages: Vec<bool>,
    /// Problems found while driving that do not stop the run.
    pub(crate) failures: Vec<Failure>,
}

/// A token waiting for a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MessageWait {
    instance: String,
    token: u32,
    epoch: u32,
    message: String,
    key: String,
}

impl Run<'_> {
    /// Starts the instance and drives it until it finishes or waits for nothing the
    /// scenario brings. Returns the instance id.
    pub(crate) async fn drive(&mut self) -> Result<String, Abort> {
        // The workflows were compiled when the file was loaded: store them as deployed
        // without compiling them again (the engine compiles each once when it first runs it).
        let mut tx = self.engine.store().begin().await?;
        for w in &self.suite.workflows {
            let row = WorkflowRow {
                name: w.name.clone(),
                version: w.plan.version.into(),
                hash: w.plan.hash.clone(),
                source: w.source.clone(),
                deployed_at: self.clock.now(),
            };
            tx.insert_workflow(&row).await?;
        }
        tx.commit().await?;
        let main = &self.suite.main().name;
        let id = self
            .engine
            .start(StartRequest { workflow: main.clone(), version: None, input: self.scenario.input.clone(), request_id: None })
            .await
            .map_err(|e| Abort(Failure::text("the instance could not start", e.to_string())))?
            .id;
        let limit = self.scenario.start_at + ms(MAX_SIMULATED);
        let topics = self.suite.topics();
        let mut first_seen: HashMap<MessageWait, Millis> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            self.engine.run_until_idle().await?;
            let row = self.engine.store().instance(&id).await?;
            if finished(&row.status) {
                return Ok(id);
            }
            let now = self.clock.now();
            if self.answer_external(&topics).await? {
                continue;
            }
            let mut next_action: Option<Millis> = None;
            if self.act_on_tasks(now, &mut next_action).await? {
                continue;
            }
            if self.deliver_messages(now, &mut first_seen, &mut next_action).await? {
                continue;
            }
            let next_job = self.engine.store().next_wakeup().await?;
            let next_external = if topics.is_empty() { None } else { self.next_external_retry(now).await? };
            let next = [next_job, next_action, next_external].into_iter().flatten().min();
            match next {
                Some(t) if t > now => {
                    if t > limit {
                        self.failures.push(Failure::new(format!(
                            "the instance still had work after {} of simulated time; stopped (a loop?)",
                            format_elapsed(MAX_SIMULATED)
                        )));
                        return Ok(id);
                    }
                    self.clock.set(t);
                }
                // Nothing can happen any more: the instance waits for something the scenario
                // does not bring.
                _ => return Ok(id),
            }
        }
        self.failures.push(Failure::new(format!("the instance did not settle after {MAX_ROUNDS} rounds of work; stopped (a loop?)")));
        Ok(id)
    }

    /// When the next retry of an external task is due. `Store::next_wakeup` leaves external
    /// tasks out (workers fetch them), so it is read from the history: the latest
    /// `call.retry_scheduled` of each external step a token is waiting on.
    async fn next_external_retry(&self, now: Millis) -> Result<Option<Millis>, Abort> {
        let mut next: Option<Millis> = None;
        let running = self
            .engine
            .store()
            .instances(&InstanceFilter { status: Some("running".into()), limit: Some(10_000), ..Default::default() })
            .await?;
        for row in running {
            let Some(w) = self.suite.workflows.iter().find(|w| w.name == row.workflow) else { continue };
            let Ok(state) = serde_json::from_str::<InstanceState>(&row.state) else { continue };
            let waiting: BTreeSet<&str> = state
                .tokens
                .values()
                .filter(|t| matches!(t.wait, Waiting::Call { .. }))
                .map(|t| w.plan.step(t.at))
                .filter(|s| matches!(&s.action, Action::Call(c) if c.connector == "external"))
                .map(|s| s.id.as_str())
                .collect();
            if waiting.is_empty() {
                continue;
            }
            for h in self.engine.store().history(&row.id).await? {
                if h.kind != "call.retry_scheduled" || !h.step.as_deref().is_some_and(|s| waiting.contains(s)) {
                    continue;
                }
                let data: Value = serde_json::from_str(&h.data).unwrap_or(Value::Null);
                if let Some(due) = data.get("due_at").and_then(Value::as_str).and_then(parse::parse_time)
                    && due > now
                {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        Ok(next)
    }

    /// Answers due external tasks from the mocks. True if any was answered.
    async fn answer_external(&mut self, topics: &BTreeSet<String>) -> Result<bool, Abort> {
        let mut acted = false;
        let worker = ExternalWorker { token: WORKER, name: WORKER, topics: &[] };
        for topic in topics {
            let tasks = self.engine.fetch_and_lock(&worker, topic, 100, Duration::from_secs(3600), Duration::ZERO).await?;
            for t in tasks {
                acted = true;
                let connector = format!("external (topic {topic})");
                match self.mock.answer(&t.instance_id, &t.step_id, &connector, &t.input, &t.idempotency_key, t.attempt) {
                    Ok(output) => self.engine.complete_external(t.id, &t.lock, &worker, output).await?,
                    Err(e) => {
                        let failure = match e {
                            ConnectorError::Retryable { code, message, retry_after } => {
                                ExternalFailure { code, message, retryable: true, retry_after_ms: retry_after.map(ms) }
                            }
                            ConnectorError::Fatal { code, message } => {
                                ExternalFailure { code, message, retryable: false, retry_after_ms: None }
                            }
                        };
                        self.engine.fail_external(t.id, &t.lock, &worker, failure).await?
                    }
                }
            }
        }
        Ok(acted)
    }

    /// Completes the first open task that has an entry whose time has come. True if it did.
    async fn act_on_tasks(&mut self, now: Millis, next_action: &mut Option<Millis>) -> Result<bool, Abort> {
        let mut open =
            self.engine.store().tasks(&TaskFilter { status: Some("open".into()), limit: Some(10_000), ..Default::default() }).await?;
        open.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for task in &open {
            let Some(i) =
                (0..self.scenario.tasks.len()).find(|&i| !self.used_tasks[i] && self.scenario.tasks[i].value.step == task.step_id)
            else {
                continue;
            };
            let entry = &self.scenario.tasks[i];
            let due = task.created_at + ms(entry.value.after);
            if due > now {
                *next_action = Some(next_action.map_or(due, |n| n.min(due)));
                continue;
            }
            self.used_tasks[i] = true;
            self.complete(task, entry).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn complete(&mut self, task: &TaskRow, entry: &Located<TaskAction>) -> Result<(), Abort> {
        let a = &entry.value;
        let line = self.suite.line_of(&entry.pointer);
        if let Some(form) = &task.form
            && let Some(errors) = self.suite.schema_errors(form, &a.form)
            && !errors.is_empty()
        {
            self.failures.push(Failure::text(
                format!("the form of the task entry for `{}` (line {line}) does not satisfy the schema `{form}`", a.step),
                errors.join("\n"),
            ));
        }
        let completion = TaskCompletion { outcome: a.outcome.clone(), reason: a.reason.clone(), form: a.form.clone() };
        let result = self.engine.complete_task(&task.id, &a.by, completion).await;
        match (result, &a.refused) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(text)) => {
                self.failures.push(Failure::new(format!(
                    "the task entry for `{}` (line {line}) expected the completion by {} to be refused ({text}), but it was accepted",
                    a.step, a.by
                )));
                Ok(())
            }
            (Err(e @ (EngineError::Invalid(_) | EngineError::Forbidden(_))), refused) => {
                let message = e.to_string();
                match refused {
                    Some(text) if message.contains(text.as_str()) => Ok(()),
                    Some(text) => Err(Abort(Failure::text(
                        format!("the task entry for `{}` (line {line}) was refused, but not with the expected text `{text}`", a.step),
                        message,
                    ))),
                    None => Err(Abort(Failure::text(
                        format!("the task entry for `{}` (line {line}) was refused by the engine", a.step),
                        message,
                    ))),
                }
            }
            (Err(e), _) => Err(e.into()),
        }
    }

    /// Publishes the first message a waiting instance expects, once its time has come.
    async fn deliver_messages(
        &mut self,
        now: Millis,
        first_seen: &mut HashMap<MessageWait, Millis>,
        next_action: &mut Option<Millis>,
    ) -> Result<bool, Abort> {
        let mut waits = Vec::new();
        for row in self
            .engine
            .store()
            .instances(&InstanceFilter { status: Some("running".into()), limit: Some(10_000), ..Default::default() })
            .await?
        {
            let Ok(state) = serde_json::from_str::<InstanceState>(&row.state) else { continue };
            for t in state.tokens.values() {
                if let Waiting::Message { message, key } = &t.wait {
                    let w =
                        MessageWait { instance: row.id.clone(), token: t.id, epoch: t.epoch, message: message.clone(), key: key.clone() };
                    let seen = *first_seen.entry(w.clone()).or_insert(now);
                    waits.push((seen, row.started_at, w));
                }
            }
        }
        waits.sort_by(|a, b| (a.0, a.1, &a.2.instance, a.2.token).cmp(&(b.0, b.1, &b.2.instance, b.2.token)));
        for (seen, _, w) in waits {
            let Some(i) = (0..self.scenario.messages.len()).find(|&i| {
                let m = &self.scenario.messages[i].value;
                !self.used_messages[i] && m.name == w.message && m.key.as_ref().is_none_or(|k| *k == w.key)
            }) else {
                continue;
            };
            let m = &self.scenario.messages[i].value;
            let due = seen + ms(m.after);
            if due > now {
                *next_action = Some(next_action.map_or(due, |n| n.min(due)));
                continue;
            }
            self.used_messages[i] = true;
            self.engine.publish(&m.name, &w.key, m.payload.clone()).await?;
            return Ok(true);
        }
        Ok(false)
    }
}
