//! The engine: the public API to deploy workflows, start instances, publish messages,
//! complete tasks and cancel, and the one place where an event becomes a committed
//! transition (state, history, effects — one transaction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::machine::{self, Effect, Event, InstanceInfo, TimerPurpose, UuidV7Ids};
use super::state::{InstanceState, Phase, StepError};
use super::tasks::{TaskActor, TaskJobs, TaskRefusal};
use crate::audit;
use crate::budget::{self, Evaluator, Limits};
use crate::clock::{Clock, Millis};
use crate::connector::Registry;
use crate::definition::{self, Catalog, Diagnostic};
use crate::plan::Plan;
use crate::schemas::{SchemaError, SchemaSet};
use crate::store::*;

/// Tunables of an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Identifies this process's leases.
    pub worker_id: String,
    /// How long a claimed job stays ours before another worker may take it over.
    pub lease: Duration,
    /// Jobs claimed, run and committed together (group commit).
    pub batch: usize,
    /// How long a published message nobody waits for yet is kept.
    pub message_retention: Duration,
    /// Schemas that start inputs (the workflow's `input:`) are checked against.
    pub schemas: SchemaSet,
    /// The budget of every expression and template, and the size limits of values and state.
    pub limits: Limits,
    /// Claims of one job after which it is quarantined instead of run again: a job whose
    /// process crashed (or whose lease ran out) this many times fails its instance with
    /// `job.quarantined`, so a poison pill cannot keep a server down.
    pub max_job_claims: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::now_v7()),
            lease: Duration::from_secs(30),
            batch: 256,
            message_retention: Duration::from_secs(7 * 86_400),
            schemas: SchemaSet::none(),
            limits: Limits::default(),
            max_job_claims: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the workflow is not valid ({} problem(s))", .0.len())]
    Definition(Vec<Diagnostic>),
    #[error("workflow `{0}` is not deployed")]
    UnknownWorkflow(String),
    #[error("workflow `{name}` version {version} is already deployed with different content; raise `version`")]
    VersionConflict { name: String, version: u32 },
    #[error("{entity} `{id}` not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    LockLost(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A human task action was refused (claimed by someone else, closed, a bad delegation).
    #[error(transparent)]
    Task(#[from] super::tasks::TaskRefusal),
    /// An external-task request was refused (a lock of another API token, a topic the token
    /// may not work).
    #[error(transparent)]
    External(#[from] super::external::ExternalRefusal),
}

/// The result of deploying a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub workflow: String,
    pub version: u32,
    pub hash: String,
    /// False when the same content was already deployed.
    pub created: bool,
}

#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub workflow: String,
    pub version: Option<u32>,
    pub input: Value,
    /// A client's id for this start: repeating a start with the same id returns the first
    /// instance instead of creating a second case.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub id: String,
    pub created: bool,
}

/// What an operator submits to complete a task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskCompletion {
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub form: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "delivery")]
pub enum Delivery {
    /// A waiting instance received it.
    Delivered { instance: String },
    /// Nobody waits yet; it is kept until someone does or it expires.
    Buffered { message: String },
}

/// What publishing a message did: its delivery to a waiting instance (or buffering), and
/// the instances its message triggers started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub message: String,
    pub delivery: Delivery,
    pub started: Vec<Started>,
}

/// The engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) registry: Registry,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: EngineConfig,
    plans: Mutex<HashMap<(String, i64), Arc<Plan>>>,
    pub(super) wake: Notify,
}

impl Engine {
    pub fn new(store: Store, registry: Registry, clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        Self { inner: Arc::new(Inner { store, registry, clock, config, plans: Mutex::new(HashMap::new()), wake: Notify::new() }) }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Wakes this process's worker loop (new work was committed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The catalog deployed workflows are checked against: the registered connectors.
    pub fn catalog(&self) -> Catalog {
        let mut catalog = Catalog::builtin();
        catalog.connectors = self.inner.registry.names().map(String::from).collect();
        catalog.connectors.insert("external".into());
        catalog
    }

    /// Validates and stores a definition. The same content deployed again is a no-op; a
    /// changed definition needs a new `version`.
    pub async fn deploy(&self, source: &str) -> Result<Deployment, EngineError> {
        let plan = definition::compile_source(source, &self.catalog()).map_err(EngineError::Definition)?;
        let mut tx = self.inner.store.begin().await?;
        let versions = tx.workflow_versions(&plan.workflow).await?;
        if let Some(same) = versions.iter().find(|w| w.hash == plan.hash) {
            return Ok(Deployment { workflow: plan.workflow, version: same.version as u32, hash: same.hash.clone(), created: false });
        }
        if versions.iter().any(|w| w.version == i64::from(plan.version)) {
            return Err(EngineError::VersionConflict { name: plan.workflow, version: plan.version });
        }
        tx.insert_workflow(&WorkflowRow {
            name: plan.workflow.clone(),
            version: plan.version.into(),
            hash: plan.hash.clone(),
            source: source.to_string(),
            deployed_at: self.now(),
        })
        .await?;
        // Triggers: the newest version's cron schedules, webhooks and messages replace the old.
        if versions.iter().all(|w| w.version < i64::from(plan.version)) {
            crate::trigger::register(&mut tx, &plan, self.now()).await?;
        }
        tx.commit().await?;
        Ok(Deployment { workflow: plan.workflow, version: plan.version, hash: plan.hash, created: true })
    }

    /// The compiled plan of a deployed version (compiled once per process).
    pub async fn plan(&self, workflow: &str, version: Option<u32>) -> Result<Arc<Plan>, EngineError> {
        if let Some(v) = version
            && let Some(plan) = self.cached_plan(workflow, v.into())
        {
            return Ok(plan);
        }
        let row = self.inner.store.workflow(workflow, version).await?.ok_or_else(|| EngineError::UnknownWorkflow(workflow.into()))?;
        self.compile_row(&row)
    }

    fn cached_plan(&self, workflow: &str, version: i64) -> Option<Arc<Plan>> {
        self.inner.plans.lock().expect("plan cache lock").get(&(workflow.to_string(), version)).cloned()
    }

    fn compile_row(&self, row: &WorkflowRow) -> Result<Arc<Plan>, EngineError> {
        if let Some(plan) = self.cached_plan(&row.name, row.version) {
            return Ok(plan);
        }
        // Deployed definitions were valid; do not re-check connectors, which may have been
        // configured differently then (a missing one fails its step at run time), nor webhook
        // secrets (a webhook bound to a secret not declared for webhooks is refused when called).
        let catalog = Catalog { any_connector: true, any_webhook_secret: true, ..Catalog::builtin() };
        let plan = Arc::new(definition::compile_source(&row.source, &catalog).map_err(|d| {
            let first = d.first().map(|d| format!("{} {}", d.code, d.message)).unwrap_or_default();
            EngineError::Corrupt(format!("stored workflow {} v{} no longer compiles: {first}", row.name, row.version))
        })?);
        self.inner.plans.lock().expect("plan cache lock").insert((row.name.clone(), row.version), plan.clone());
        Ok(plan)
    }

    pub(super) async fn plan_in_tx(&self, workflow: &str, version: i64) -> Result<Arc<Plan>, EngineError> {
        match self.cached_plan(workflow, version) {
            Some(p) => Ok(p),
            None => self.plan(workflow, Some(version as u32)).await,
        }
    }

    /// Starts an instance (idempotently, when a request id is given).
    pub async fn start(&self, req: StartRequest) -> Result<Started, EngineError> {
        let plan = self.plan(&req.workflow, req.version).await?;
        if let Some(schema) = &plan.input_schema {
            self.inner.config.schemas.validate(schema, &req.input)?;
        }
        // The business key is evaluated before the write transaction opens.
        let business_key = self.business_key(&plan, &req.input).await?;
        let mut tx = self.inner.store.begin().await?;
        if let Some(rid) = &req.request_id
            && let Some(id) = tx.find_by_request_id(&plan.workflow, rid).await?
        {
            return Ok(Started { id, created: false });
        }
        let id = self.create_instance(&mut tx, &plan, req.input, business_key, req.request_id, None).await?;
        tx.commit().await?;
        self.inner.wake.notify_one();
        Ok(Started { id, created: true })
    }

    /// Evaluates the workflow's `business_key` for `input` on an evaluator thread, under the
    /// budget, and checks it: at most [`MAX_BUSINESS_KEY`] characters, no control or
    /// bidirectional-override characters (which would disguise one key as another).
    pub(crate) async fn business_key(&self, plan: &Plan, input: &Value) -> Result<Option<String>, EngineError> {
        let Some(expr) = plan.business_key.clone() else { return Ok(None) };
        let (data, limits, now) = (json!({ "input": input }), self.inner.config.limits, self.now());
        let value = Evaluator::shared()
            .run(move || budget::in_scope(limits, now, || expr.eval(&data)))
            .await
            .map_err(|e| EngineError::Invalid(format!("business_key: {e}")))?
            .map_err(|e| EngineError::Invalid(format!("business_key: {e}")))?;
        let key = match value {
            Value::String(s) => s,
            Value::Null => return Ok(None),
            other => other.to_string(),
        };
        check_business_key(&key).map_err(|why| EngineError::Invalid(format!("business_key: {why}")))?;
        Ok(Some(key))
    }

    async fn create_instance(
        &self,
        tx: &mut Tx,
        plan: &Plan,
        input: Value,
        business_key: Option<String>,
        request_id: Option<String>,
        parent: Option<(String, u32, u32)>,
    ) -> Result<String, EngineError> {
        let now = self.now();
        let id = uuid::Uuid::now_v7().to_string();
        let row = InstanceRow {
            id: id.clone(),
            workflow: plan.workflow.clone(),
            version: plan.version.into(),
            status: "running".into(),
            business_key,
            request_id,
            input: input.to_string(),
            state: serde_json::to_string(&InstanceState::default()).expect("state serializes"),
            output: None,
            error: None,
            parent_id: parent.as_ref().map(|p| p.0.clone()),
            parent_token: parent.as_ref().map(|p| i64::from(p.1)),
            parent_epoch: parent.as_ref().map(|p| i64::from(p.2)),
            started_at: now,
            updated_at: now,
            ended_at: None,
            history_seq: 0,
            history_head: String::new(),
        };
        match tx.insert_instance(&row).await {
            Err(e) if e.is_unique_violation() => {
                return Err(EngineError::Invalid("an instance with this request id already exists".into()));
            }
            other => other?,
        }
        self.insert_event_job(tx, &id, 0, &Event::Start, now).await?;
        Ok(id)
    }

    async fn insert_event_job(&self, tx: &mut Tx, instance: &str, token: u32, event: &Event, due_at: Millis) -> Result<(), EngineError> {
        let payload = serde_json::to_string(event).expect("events serialize");
        tx.insert_job(&NewJob {
            instance_id: instance.into(),
            token: token.into(),
            kind: "event".into(),
            payload,
            due_at,
            created_at: self.now(),
            topic: None,
        })
        .await?;
        Ok(())
    }

    /// Publishes a message: the instance waiting for `name` with this correlation `key`
    /// receives it now; otherwise it is kept (for `message_retention`) for the first
    /// instance that starts waiting. It also starts the workflows triggered by `name`
    /// ([`Engine::publish_message`] says which).
    pub async fn publish(&self, name: &str, key: &str, payload: Value) -> Result<Delivery, EngineError> {
        Ok(self.publish_message(name, key, payload).await?.delivery)
    }

    /// Publishes a message (see [`Engine::publish`]) and, in the same transaction, starts an
    /// instance of every workflow whose latest version has a `message: name` trigger, with
    /// the payload as input, once per message (request id `msg:<message id>`).
    pub async fn publish_message(&self, name: &str, key: &str, payload: Value) -> Result<Published, EngineError> {
        let now = self.now();
        let message_id = uuid::Uuid::now_v7().to_string();
        // User-written expressions (trigger mappings, business keys, the waiting instance's
        // next steps) are evaluated before the transaction opens.
        let prepared = crate::trigger::prepare_for_message(self, name, &payload).await?;
        let pre = match self.inner.store.subscription(name, key).await? {
            Some(sub) => {
                let event = Event::MessageReceived { token: sub.token as u32, epoch: sub.epoch as u32, payload: payload.clone() };
                self.precompute(&sub.instance_id, event, now).await
            }
            None => None,
        };
        let mut tx = self.inner.store.begin().await?;
        let started = crate::trigger::start_for_message(self, &mut tx, name, &message_id, prepared).await?;
        tx.lock_correlation(name, key).await?;
        let delivery = match tx.take_subscription(name, key).await? {
            Some(sub) => {
                let event = Event::MessageReceived { token: sub.token as u32, epoch: sub.epoch as u32, payload };
                self.apply_event_computed(&mut tx, &sub.instance_id, event, pre).await?;
                Delivery::Delivered { instance: sub.instance_id }
            }
            None => {
                tx.insert_message(&MessageRow {
                    id: message_id.clone(),
                    name: name.into(),
                    key: key.into(),
                    payload: payload.to_string(),
                    published_at: now,
                    expires_at: now + self.inner.config.message_retention.as_millis() as i64,
                    consumed_by: None,
                })
                .await?;
                Delivery::Buffered { message: message_id.clone() }
            }
        };
        tx.commit().await?;
        self.inner.wake.notify_one();
        Ok(Published { message: message_id, delivery, started })
    }

    /// The installation's secrets (webhook triggers check signatures with them).
    pub fn secrets(&self) -> &Arc<crate::connector::Secrets> {
        self.inner.registry.secrets()
    }

    /// Creates an instance inside `tx` for a trigger (see [`crate::trigger`]), with the input
    /// and business key prepared before the transaction by [`crate::trigger::prepare`].
    pub(crate) async fn create_instance_in(
        &self,
        tx: &mut Tx,
        plan: &Plan,
        prepared: crate::trigger::Prepared,
        request_id: String,
    ) -> Result<String, EngineError> {
        self.create_instance(tx, plan, prepared.input, prepared.business_key, Some(request_id), None).await
    }

    /// Checks `input` against the workflow's input schema, if it declares one.
    pub(crate) fn check_input(&self, plan: &Plan, input: &Value) -> Result<(), EngineError> {
        match &plan.input_schema {
            Some(schema) => Ok(self.inner.config.schemas.validate(schema, input)?),
            None => Ok(()),
        }
    }

    /// Evaluates `template` against `data` on an evaluator thread, under the budget.
    pub(crate) async fn evaluate(&self, template: crate::plan::ValueTemplate, data: Value) -> Result<Value, String> {
        let (limits, now) = (self.inner.config.limits, self.now());
        Evaluator::shared()
            .run(move || budget::in_scope(limits, now, || template.evaluate(&data)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Completes a human task on behalf of `actor`, checking outcomes, mandatory reasons and
    /// separation of duties, and resumes the instance in the same transaction.
    pub async fn complete_task(&self, task_id: &str, actor: &str, completion: TaskCompletion) -> Result<(), EngineError> {
        match self.complete_task_as(task_id, &TaskActor::trusted(actor, true), completion).await {
            Err(EngineError::Task(refusal)) => Err(EngineError::Invalid(refusal.to_string())),
            other => other,
        }
    }

    /// Completes a task as `actor`: refused when someone else holds it (unless the actor is
    /// a supervisor), when it is closed, or by its separation of duties.
    pub async fn complete_task_as(&self, task_id: &str, who: &TaskActor<'_>, completion: TaskCompletion) -> Result<(), EngineError> {
        let now = self.now();
        // The instance's transition is computed before the transaction opens, from the task
        // as it is now; inside, it is used if neither the task nor the instance changed.
        let pre = match self.inner.store.task(task_id).await {
            Ok(task) if (who.sees)(&task) => match completion_of(&task, who, &completion, now) {
                Ok((_, event)) => self.precompute(&task.instance_id, event, now).await,
                Err(_) => None,
            },
            _ => None,
        };
        let (mut tx, mut task) = self.lock_task(task_id, who).await?;
        let (output, event) = completion_of(&task, who, &completion, now)?;
        task.status = "completed".into();
        task.completed_by = Some(who.name.into());
        task.completed_at = Some(now);
        task.result = Some(output.to_string());
        tx.update_task(&task).await?;
        self.apply_event_computed(&mut tx, &task.instance_id, event, pre).await?;
        tx.commit().await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Runs a failed instance again from the top-level step that failed (with a new
    /// idempotency visit for it). Refused when the failure was compensated, or when the
    /// instance is not failed.
    pub async fn retry(&self, instance: &str, actor: &str) -> Result<(), EngineError> {
        let now = self.now();
        let pre = self.precompute(instance, Event::Retry { actor: actor.into() }, now).await;
        let mut tx = self.inner.store.begin().await?;
        let row =
            tx.instance_for_update(instance).await?.ok_or_else(|| EngineError::NotFound { entity: "instance", id: instance.into() })?;
        let state: InstanceState =
            serde_json::from_str(&row.state).map_err(|e| EngineError::Corrupt(format!("instance {instance}: {e}")))?;
        match state.phase {
            Phase::Failed { resume_at: Some(_), .. } => {}
            Phase::Failed { .. } => {
                return Err(EngineError::Invalid(
                    "this failure cannot be retried: its completed steps were compensated (or it failed outside a step); start a new instance"
                        .into(),
                ));
            }
            _ => return Err(EngineError::Invalid(format!("instance `{instance}` is {}, not failed", row.status))),
        }
        self.apply_event_computed(&mut tx, instance, Event::Retry { actor: actor.into() }, pre).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Cancels an instance: pending work is dropped, tasks are withdrawn, children cancelled.
    pub async fn cancel(&self, instance: &str, actor: &str, reason: &str) -> Result<(), EngineError> {
        let event = Event::Cancel { actor: actor.into(), reason: reason.into() };
        let pre = self.precompute(instance, event.clone(), self.now()).await;
        let mut tx = self.inner.store.begin().await?;
        self.apply_event_computed(&mut tx, instance, event, pre).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The heart of durability: inside `tx`, load the instance, apply the event, and write
    /// the new state, its history and its effects.
    pub(super) async fn apply_event(&self, tx: &mut Tx, instance_id: &str, event: Event) -> Result<(), EngineError> {
        self.apply_event_computed(tx, instance_id, event, None).await
    }

    /// Computes `event` on the instance as it is now, read without a transaction, on an
    /// evaluator thread: user-written expressions then run while no transaction is open.
    /// `None` when it cannot be computed ahead (the transaction computes it then).
    pub(super) async fn precompute(&self, instance_id: &str, event: Event, now: Millis) -> Option<Precomputed> {
        let row = self.inner.store.instance(instance_id).await.ok()?;
        let plan = self.plan_in_tx(&row.workflow, row.version).await.ok()?;
        let limits = self.inner.config.limits;
        let for_event = event.clone();
        let computed = Evaluator::shared().run(move || compute_transition(&plan, &row, for_event, now, limits)).await.ok()?.ok()?;
        Some(Precomputed { event, computed })
    }

    /// [`Engine::apply_event`], committing `pre` instead of computing again when it was
    /// computed for the same event from the instance's state as it is in `tx`.
    pub(super) async fn apply_event_computed(
        &self,
        tx: &mut Tx,
        instance_id: &str,
        event: Event,
        pre: Option<Precomputed>,
    ) -> Result<(), EngineError> {
        let row = tx
            .instance_for_update(instance_id)
            .await?
            .ok_or_else(|| EngineError::NotFound { entity: "instance", id: instance_id.into() })?;
        if let Some(pre) = pre
            && pre.event == event
            && pre.computed.from_state == row.state
        {
            return self.persist_transition(tx, row, pre.computed).await;
        }
        let plan = self.plan_in_tx(&row.workflow, row.version).await?;
        let now = self.now();
        let limits = self.inner.config.limits;
        let base = row.clone();
        let computed = Evaluator::shared()
            .run(move || compute_transition(&plan, &base, event, now, limits))
            .await
            .map_err(|e| EngineError::Corrupt(format!("instance {instance_id}: {e}")))??;
        self.persist_transition(tx, row, computed).await
    }

    /// Commits a transition computed by [`compute_transition`] from `row` (as it is in this
    /// transaction): effects, history, the instance row.
    pub(super) async fn persist_transition(&self, tx: &mut Tx, mut row: InstanceRow, computed: Computed) -> Result<(), EngineError> {
        let Computed { state, state_json, transition, was_finished, started, now, .. } = computed;
        if started {
            metrics::counter!("pratica_instances_started_total", "workflow" => row.workflow.clone()).increment(1);
        }
        for effect in transition.effects {
            self.persist_effect(tx, &row, effect, now).await?;
        }
        for entry in transition.history {
            chain_history(tx, &mut row, entry, now).await?;
        }
        row.status = status_of(&state.phase).into();
        match &state.phase {
            Phase::Completed { output } => row.output = Some(output.to_string()),
            Phase::Failed { error, .. } => row.error = Some(serde_json::to_string(error).expect("errors serialize")),
            _ => {}
        }
        if state.phase.is_finished() && !was_finished {
            row.ended_at = Some(now);
            metrics::counter!("pratica_instances_finished_total", "workflow" => row.workflow.clone(), "status" => row.status.clone())
                .increment(1);
            if let (Some(parent), Some(token), Some(epoch)) = (&row.parent_id, row.parent_token, row.parent_epoch) {
                let result = match &state.phase {
                    Phase::Completed { output } => Ok(output.clone()),
                    Phase::Failed { error, .. } => Err(error.clone()),
                    _ => Err(StepError::new("child.cancelled", format!("child instance {} was cancelled", row.id))),
                };
                let event = Event::ChildFinished { token: token as u32, epoch: epoch as u32, result };
                let payload = serde_json::to_string(&event).expect("events serialize");
                tx.insert_job(&NewJob {
                    instance_id: parent.clone(),
                    token,
                    kind: "notify_parent".into(),
                    payload,
                    due_at: now,
                    created_at: now,
                    topic: None,
                })
                .await?;
            }
        }
        if !state.phase.is_finished() {
            // A retried instance is running again.
            row.ended_at = None;
            row.error = None;
        }
        row.state = state_json;
        row.updated_at = now;
        tx.update_instance(&row).await?;
        Ok(())
    }

    async fn persist_effect(&self, tx: &mut Tx, row: &InstanceRow, effect: Effect, now: Millis) -> Result<(), EngineError> {
        match effect {
            Effect::Call(call) => {
                // `call: external` waits for an external worker instead of a connector.
                let topic = (call.connector == "external").then(|| call.topic.clone().unwrap_or_default());
                let kind = if topic.is_some() { "external" } else { "call" };
                let payload = serde_json::to_string(&call).expect("calls serialize");
                tx.insert_job(&NewJob {
                    instance_id: row.id.clone(),
                    token: call.token.into(),
                    kind: kind.into(),
                    payload,
                    due_at: call.due_at,
                    created_at: now,
                    topic,
                })
                .await?;
            }
            Effect::Timer { token, epoch, due_at, purpose } => {
                let event = match purpose {
                    TimerPurpose::Wait => Event::TimerFired { token, epoch },
                    TimerPurpose::ReceiveTimeout => Event::ReceiveTimedOut { token, epoch },
                };
                self.insert_event_job(tx, &row.id, token, &event, due_at).await?;
            }
            Effect::Subscribe { token, epoch, message, key } => {
                tx.lock_correlation(&message, &key).await?;
                match tx.take_message(&message, &key, now, &row.id).await? {
                    Some(m) => {
                        let payload = serde_json::from_str(&m.payload).unwrap_or(Value::Null);
                        self.insert_event_job(tx, &row.id, token, &Event::MessageReceived { token, epoch, payload }, now).await?;
                    }
                    None => {
                        tx.insert_subscription(&Subscription {
                            instance_id: row.id.clone(),
                            token: token.into(),
                            epoch: epoch.into(),
                            message,
                            key,
                            created_at: now,
                        })
                        .await?;
                    }
                }
            }
            Effect::CreateTask(t) => {
                let id = if t.id.is_empty() { uuid::Uuid::now_v7().to_string() } else { t.id.clone() };
                let jobs = TaskJobs { instance: &row.id, task_id: &id, token: t.token };
                self.schedule_task_jobs(tx, jobs, t.escalation.as_ref(), t.notify_assigned.as_ref(), now).await?;
                tx.insert_task(&TaskRow {
                    id,
                    instance_id: row.id.clone(),
                    token: t.token.into(),
                    epoch: t.epoch.into(),
                    step_id: t.step_id,
                    status: "open".into(),
                    title: t.title,
                    description: t.description,
                    assignee: t.user,
                    role: t.role,
                    office: t.office,
                    form: t.form,
                    outcomes: json!(t.outcomes).to_string(),
                    reason_required: json!(t.reason_required).to_string(),
                    excluded_actors: json!(t.excluded_actors).to_string(),
                    due_at: t.due_at,
                    created_at: now,
                    completed_by: None,
                    completed_at: None,
                    result: None,
                    delegated_by: None,
                    escalated_at: None,
                })
                .await?;
            }
            Effect::StartChild { token, epoch, workflow, version, input } => {
                let child_plan = match version {
                    Some(v) => self.plan(&workflow, Some(v)).await,
                    None => self.plan(&workflow, None).await,
                };
                let checked = child_plan.and_then(|plan| match &plan.input_schema {
                    Some(schema) => self.inner.config.schemas.validate(schema, &input).map(|()| plan).map_err(EngineError::from),
                    None => Ok(plan),
                });
                match checked {
                    Ok(plan) => match self.business_key(&plan, &input).await {
                        Ok(key) => {
                            self.create_instance(tx, &plan, input, key, None, Some((row.id.clone(), token, epoch))).await?;
                        }
                        Err(e) => {
                            let error = StepError::new("input.invalid", e.to_string());
                            self.insert_event_job(tx, &row.id, token, &Event::ChildFinished { token, epoch, result: Err(error) }, now)
                                .await?;
                        }
                    },
                    Err(EngineError::Schema(e)) => {
                        let error = StepError::new("input.invalid", e.to_string());
                        self.insert_event_job(tx, &row.id, token, &Event::ChildFinished { token, epoch, result: Err(error) }, now).await?;
                    }
                    Err(EngineError::UnknownWorkflow(name)) => {
                        let error = StepError::new("workflow.unknown", format!("workflow `{name}` is not deployed"));
                        self.insert_event_job(tx, &row.id, token, &Event::ChildFinished { token, epoch, result: Err(error) }, now).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Effect::Discard { tokens } => {
                for child in tx.discard_tokens(&row.id, &tokens, now).await? {
                    let cancel =
                        Event::Cancel { actor: "pratica".into(), reason: format!("parent instance {} no longer needs it", row.id) };
                    self.insert_event_job(tx, &child, 0, &cancel, now).await?;
                }
            }
        }
        Ok(())
    }
}

/// The stored status of an instance in a phase.
pub fn status_of(phase: &Phase) -> &'static str {
    match phase {
        Phase::Running => "running",
        Phase::Compensating { .. } => "compensating",
        Phase::Completed { .. } => "completed",
        Phase::Failed { .. } => "failed",
        Phase::Cancelled => "cancelled",
    }
}

/// Appends `entry` to the instance's hash-chained history inside `tx`, advancing the chain
/// head kept on `row` (which the caller writes back with the rest of the transition).
pub(super) async fn chain_history(
    tx: &mut Tx,
    row: &mut InstanceRow,
    entry: machine::HistoryEntry,
    now: Millis,
) -> Result<(), EngineError> {
    let mut history = HistoryRow {
        instance_id: row.id.clone(),
        seq: row.history_seq + 1,
        at: now,
        kind: entry.kind.into(),
        step: entry.step,
        data: entry.data.to_string(),
        actor: entry.actor,
        prev_hash: row.history_head.clone(),
        hash: String::new(),
    };
    history.hash = audit::hash_of(&history);
    tx.insert_history(&history).await?;
    row.history_seq = history.seq;
    row.history_head = history.hash;
    Ok(())
}

/// A transition computed before its transaction, and the event it was computed for.
pub(super) struct Precomputed {
    event: Event,
    computed: Computed,
}

/// The output and the event of completing `task` as `who`, or why it is refused (a holder
/// other than the actor, a closed task, separation of duties, an outcome or reason missing).
fn completion_of(task: &TaskRow, who: &TaskActor<'_>, completion: &TaskCompletion, now: Millis) -> Result<(Value, Event), EngineError> {
    let actor = who.name;
    if task.status != "open" && task.status != "claimed" {
        return Err(EngineError::Task(TaskRefusal::Closed { task: task.id.clone(), status: task.status.clone() }));
    }
    if let Some(holder) = task.assignee.as_deref().filter(|h| *h != actor && !who.supervisor) {
        return Err(EngineError::Task(TaskRefusal::Claimed { task: task.id.clone(), holder: holder.into() }));
    }
    let excluded: Vec<String> = serde_json::from_str(&task.excluded_actors).unwrap_or_default();
    if excluded.iter().any(|a| a == actor) {
        return Err(EngineError::Forbidden(format!(
            "{actor} completed an earlier step of this case; another operator must complete this task"
        )));
    }
    let outcomes: Vec<String> = serde_json::from_str(&task.outcomes).unwrap_or_default();
    let reason_required: Vec<String> = serde_json::from_str(&task.reason_required).unwrap_or_default();
    let outcome = match (&completion.outcome, outcomes.is_empty()) {
        (None, true) => "done".to_string(),
        (Some(o), true) if o == "done" => o.clone(),
        (Some(o), false) if outcomes.contains(o) => o.clone(),
        (o, _) => {
            let allowed = if outcomes.is_empty() { vec!["done".to_string()] } else { outcomes.clone() };
            return Err(EngineError::Invalid(match o {
                Some(o) => format!("outcome `{o}` is not one of {}", allowed.join(", ")),
                None => format!("an outcome is required: one of {}", allowed.join(", ")),
            }));
        }
    };
    let reason = completion.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(String::from);
    if reason_required.contains(&outcome) && reason.is_none() {
        return Err(EngineError::Invalid(format!("outcome `{outcome}` needs a reason")));
    }
    let output = json!({
        "outcome": outcome,
        "reason": reason,
        "form": completion.form,
        "completed_by": actor,
        "completed_at": crate::clock::to_rfc3339(now),
    });
    let event = Event::TaskCompleted { token: task.token as u32, epoch: task.epoch as u32, output: output.clone(), actor: actor.into() };
    Ok((output, event))
}

/// A transition computed from an instance row, not yet committed.
pub(super) struct Computed {
    state: InstanceState,
    /// `state` as stored.
    pub(super) state_json: String,
    transition: machine::Transition,
    was_finished: bool,
    started: bool,
    now: Millis,
    /// The instance's state document the transition was computed from.
    pub(super) from_state: String,
}

fn state_json(state: &InstanceState) -> String {
    serde_json::to_string(state).expect("state serializes")
}

/// Applies `event` to the instance `row` under the budget `limits` and the engine's clock
/// `now`: the only place the state machine runs, always on an evaluator thread (see
/// [`crate::budget`]). A state that would outgrow `limits.state` ends the instance failed
/// (`state.too_large`) instead.
pub(super) fn compute_transition(
    plan: &Plan,
    row: &InstanceRow,
    event: Event,
    now: Millis,
    limits: Limits,
) -> Result<Computed, EngineError> {
    let corrupt = |what: &str, e: serde_json::Error| EngineError::Corrupt(format!("instance {}{what}: {e}", row.id));
    let before: InstanceState = serde_json::from_str(&row.state).map_err(|e| corrupt("", e))?;
    let info = InstanceInfo {
        id: row.id.clone(),
        workflow: row.workflow.clone(),
        version: row.version as u32,
        business_key: row.business_key.clone(),
        input: serde_json::from_str(&row.input).map_err(|e| corrupt(" input", e))?,
        started_at: row.started_at,
    };
    let started = matches!(event, Event::Start);
    let mut state = before.clone();
    let transition = budget::in_scope(limits, now, || machine::apply(plan, &info, &mut state, event, now, &mut UuidV7Ids));
    let mut json = state_json(&state);
    let transition = if json.len() > limits.state {
        state = before.clone();
        let error = StepError::new(
            "state.too_large",
            format!("the case's state would grow beyond its limit of {} MiB; the instance is stopped", limits.state >> 20),
        );
        let transition =
            budget::in_scope(limits, now, || machine::apply(plan, &info, &mut state, Event::Abort { error }, now, &mut UuidV7Ids));
        json = state_json(&state);
        transition
    } else {
        transition
    };
    Ok(Computed {
        was_finished: before.phase.is_finished(),
        state,
        state_json: json,
        transition,
        started,
        now,
        from_state: row.state.clone(),
    })
}

/// The longest business key accepted, in characters.
pub const MAX_BUSINESS_KEY: usize = 200;

/// Why `key` cannot be a business key, if it cannot.
fn check_business_key(key: &str) -> Result<(), String> {
    if key.chars().count() > MAX_BUSINESS_KEY {
        return Err(format!("it is longer than {MAX_BUSINESS_KEY} characters"));
    }
    let disguising =
        |c: char| c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    match key.chars().find(|c| disguising(*c)) {
        Some(c) => Err(format!("it contains the control or bidirectional character U+{:04X}", c as u32)),
        None => Ok(()),
    }
}
