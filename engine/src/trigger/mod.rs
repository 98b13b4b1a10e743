//! Triggers: ways an instance starts besides the API (`triggers:` in a workflow).
//!
//! - **cron** ([`cron`], [`scheduler`]): deploying the latest version of a workflow stores one
//!   row per cron trigger in `schedules` with its next fire time (UTC ms, computed in the
//!   trigger's zone); a newer version replaces the rows. [`Engine::fire_due_schedules`] fires
//!   what is due: it moves `next_fire_at` with a conditional update (`... WHERE id = ? AND
//!   next_fire_at = <due>`) and starts the instance in the same transaction with the
//!   request id `cron:<workflow>:<trigger index>:<due time, RFC 3339>`, so each due time
//!   fires once even with several processes on one database. After a pause covering several
//!   due times, it fires **once**, for the most recent one, and records how many were missed.
//! - **webhook** ([`webhook`]): `POST /hooks/<name>` starts the workflow whose latest
//!   version has `webhook: <name>` (a name belongs to one workflow); with `secret` (a secret
//!   named `webhook-…`), the timestamp and the body are signed together with HMAC-SHA256
//!   (`X-Pratica-Timestamp`, `X-Pratica-Signature: sha256=<hex>`), the timestamp must be
//!   recent, and each signed request is accepted once.
//! - **message**: [`Engine::publish_message`] also starts every workflow whose latest
//!   version has `message: <name>`, once per published message (request id `msg:<id>`).
//!
//! Every triggered instance's history begins with an `instance.triggered` event saying
//! which trigger started it (and, for cron, the due time and the missed count).

pub mod cron;
mod scheduler;
pub mod webhook;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit;
use crate::clock::{Millis, to_rfc3339};
use crate::plan::{Plan, Trigger, ValueTemplate};
use crate::runtime::{Engine, EngineError, HistoryKind, Started};
use crate::store::{HistoryRow, ScheduleRow, TriggerName, Tx};

pub use scheduler::Fired;
pub use webhook::{DEFAULT_TOLERANCE, Delivery, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookError};

/// The trigger rows of a plan: its cron schedules (with their first fire time after `now`)
/// and its webhook and message names.
pub(crate) fn rows_of(plan: &Plan, now: Millis) -> (Vec<ScheduleRow>, Vec<TriggerName>) {
    let (mut schedules, mut names) = (Vec::new(), Vec::new());
    let version = i64::from(plan.version);
    for (ix, trigger) in plan.triggers.iter().enumerate() {
        let trigger_ix = ix as i64;
        match trigger {
            Trigger::Cron { schedule, timezone, .. } => {
                // Compilation checked the schedule and zone; one that never fires has no row.
                let Some(next) = cron::CronSchedule::parse(schedule, timezone).ok().and_then(|s| s.next_after(now)) else {
                    tracing::warn!(workflow = %plan.workflow, schedule, "cron trigger never fires; not scheduled");
                    continue;
                };
                schedules.push(ScheduleRow {
                    id: format!("{}#{ix}", plan.workflow),
                    workflow: plan.workflow.clone(),
                    version,
                    trigger_ix,
                    schedule: schedule.clone(),
                    timezone: timezone.clone(),
                    next_fire_at: next,
                    created_at: now,
                });
            }
            Trigger::Webhook { name, .. } | Trigger::Message { name, .. } => {
                let kind = if matches!(trigger, Trigger::Webhook { .. }) { "webhook" } else { "message" };
                names.push(TriggerName { kind: kind.into(), name: name.clone(), workflow: plan.workflow.clone(), version, trigger_ix });
            }
        }
    }
    (schedules, names)
}

/// Registers the triggers of `plan`, the newest version of its workflow, replacing those of
/// older versions. A webhook name already used by another workflow is refused.
pub(crate) async fn register(tx: &mut Tx, plan: &Plan, now: Millis) -> Result<(), EngineError> {
    let (schedules, names) = rows_of(plan, now);
    for n in names.iter().filter(|n| n.kind == "webhook") {
        if let Some(other) = tx.triggers_named("webhook", &n.name).await?.into_iter().find(|o| o.workflow != plan.workflow) {
            return Err(EngineError::Invalid(format!("webhook `{}` is already used by workflow `{}`", n.name, other.workflow)));
        }
    }
    tx.replace_triggers(&plan.workflow, &schedules, &names).await?;
    Ok(())
}

/// What a trigger starts an instance with, computed before any transaction opens: the input
/// (the trigger's `input` mapping evaluated) and the business key.
pub(crate) struct Prepared {
    pub input: Value,
    pub business_key: Option<String>,
}

/// Evaluates the trigger's `input` mapping against `data` (or takes `default` when it has
/// none), checks the input schema and evaluates the business key: user-written expressions,
/// run on an evaluator thread under the budget, never inside a transaction.
pub(crate) async fn prepare(
    engine: &Engine,
    plan: &Plan,
    template: Option<&ValueTemplate>,
    data: Value,
    default: Value,
) -> Result<Prepared, EngineError> {
    let input = match template {
        None => default,
        Some(t) => engine.evaluate(t.clone(), data).await.map_err(|e| EngineError::Invalid(format!("trigger input: {e}")))?,
    };
    engine.check_input(plan, &input)?;
    let business_key = engine.business_key(plan, &input).await?;
    Ok(Prepared { input, business_key })
}

/// The `input` template of trigger `ix` of `plan`.
pub(crate) fn template_of(plan: &Plan, ix: i64) -> Option<&ValueTemplate> {
    match plan.triggers.get(usize::try_from(ix).ok()?)? {
        Trigger::Cron { input, .. } | Trigger::Webhook { input, .. } | Trigger::Message { input, .. } => input.as_ref(),
    }
}

/// Starts an instance of `plan` inside `tx`, once per `request_id`, and records `record`
/// (what started it) as its first history event.
pub(crate) async fn start_in_tx(
    engine: &Engine,
    tx: &mut Tx,
    plan: &Plan,
    prepared: Prepared,
    request_id: String,
    record: Value,
) -> Result<Started, EngineError> {
    if let Some(id) = tx.find_by_request_id(&plan.workflow, &request_id).await? {
        return Ok(Started { id, created: false });
    }
    let id = engine.create_instance_in(tx, plan, prepared, request_id).await?;
    let mut row = tx.instance_for_update(&id).await?.ok_or_else(|| EngineError::Corrupt(format!("instance {id} vanished")))?;
    let mut history = HistoryRow {
        instance_id: id.clone(),
        seq: row.history_seq + 1,
        at: engine.now(),
        kind: HistoryKind::InstanceTriggered.into(),
        step: None,
        data: record.to_string(),
        actor: Some("pratica".into()),
        prev_hash: row.history_head.clone(),
        hash: String::new(),
    };
    history.hash = audit::hash_of(&history);
    tx.insert_history(&history).await?;
    row.history_seq = history.seq;
    row.history_head = history.hash;
    tx.update_instance(&row).await?;
    Ok(Started { id, created: true })
}

/// Prepares (before any transaction) an instance of every workflow whose latest version has a
/// `message: name` trigger, with the payload as input (through the trigger's `input`
/// mapping, which sees it as `.input`).
pub(crate) async fn prepare_for_message(engine: &Engine, name: &str, payload: &Value) -> Result<Vec<(Arc<Plan>, Prepared)>, EngineError> {
    let mut prepared = Vec::new();
    for t in engine.store().triggers_named("message", name).await? {
        let plan = engine.plan(&t.workflow, Some(t.version as u32)).await?;
        match prepare(engine, &plan, template_of(&plan, t.trigger_ix), json!({ "input": payload }), payload.clone()).await {
            Ok(p) => prepared.push((plan, p)),
            // One workflow's mapping or schema failing must not stop the message for the others.
            Err(e @ (EngineError::Invalid(_) | EngineError::Schema(_))) => {
                tracing::warn!(workflow = %t.workflow, message = name, error = %e, "message trigger could not prepare an instance; none started");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(prepared)
}

/// Starts, inside `tx`, the instances [`prepare_for_message`] prepared for message `name`,
/// once per message (request id `msg:<message id>`).
pub(crate) async fn start_for_message(
    engine: &Engine,
    tx: &mut Tx,
    name: &str,
    message_id: &str,
    prepared: Vec<(Arc<Plan>, Prepared)>,
) -> Result<Vec<Started>, EngineError> {
    let mut started = Vec::new();
    for (plan, p) in prepared {
        let record = json!({ "trigger": "message", "message": name, "message_id": message_id, "at": to_rfc3339(engine.now()) });
        started.push(start_in_tx(engine, tx, &plan, p, format!("msg:{message_id}"), record).await?);
    }
    Ok(started)
}
