//! Unit tests of the state machine, with no database: small workflows compiled from YAML
//! with the engine's own compiler, events applied one by one, effects and history asserted.
//! One file per group of constructs; the harness is here.

mod calls;
mod flow;
mod lifecycle;
mod parallel;
mod tasks;
mod waits;

use serde_json::{Value, json};

use super::{CallError, CallRequest, Effect, Event, HistoryEntry, IdSource, InstanceInfo, Transition, apply};
use crate::clock::Millis;
use crate::definition::{Catalog, compile_source};
use crate::plan::Plan;
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{InstanceState, Waiting};

/// 2025-04-07T08:00:00Z: when every test case starts.
const T0: Millis = 1_744_012_800_000;

/// Ids counted from 1, shaped like the UUIDv7 strings the engine stores.
#[derive(Debug, Default, Clone)]
struct CountingIds {
    issued: u64,
}

impl IdSource for CountingIds {
    fn next_id(&mut self) -> String {
        self.issued += 1;
        format!("00000000-0000-7000-8000-{:012}", self.issued)
    }
}

/// One instance of a workflow, driven event by event.
#[derive(Clone)]
struct Case {
    plan: Plan,
    info: InstanceInfo,
    state: InstanceState,
    now: Millis,
    ids: CountingIds,
}

impl Case {
    /// An instance `inst-1` of the workflow `yaml` with `input`, not started yet.
    fn new(yaml: &str, input: Value) -> Self {
        let catalog = Catalog::builtin().with_connectors(["inps", "bank"]);
        let plan = compile_source(yaml, &catalog).unwrap_or_else(|d| panic!("the workflow compiles: {d:#?}"));
        let business_key = input.get("fiscal_code").and_then(Value::as_str).map(String::from);
        let info = InstanceInfo {
            id: "inst-1".into(),
            workflow: plan.workflow.clone(),
            version: plan.version,
            business_key,
            input,
            started_at: T0,
        };
        Self { plan, info, state: InstanceState::default(), now: T0, ids: CountingIds::default() }
    }

    fn apply(&mut self, event: Event) -> Transition {
        apply(&self.plan, &self.info, &mut self.state, event, self.now, &mut self.ids)
    }

    fn start(&mut self) -> Transition {
        self.apply(Event::Start)
    }

    fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// The token at step `step` and its epoch (the position an event must name).
    fn at(&self, step: &str) -> (u32, u32) {
        self.state
            .tokens
            .values()
            .find(|t| self.plan.step(t.at).id == step)
            .map(|t| (t.id, t.epoch))
            .unwrap_or_else(|| panic!("a token is at `{step}`: {:#?}", self.state.tokens))
    }

    /// The call at `step` returned `output`.
    fn succeed(&mut self, step: &str, output: Value) -> Transition {
        let (token, epoch) = self.at(step);
        self.apply(Event::CallSucceeded { token, epoch, output })
    }

    /// The call at `step` failed (attempt 1) with the error `code`, retryable or not.
    fn fail_call(&mut self, step: &str, code: &str, retryable: bool) -> Transition {
        let (token, epoch) = self.at(step);
        self.apply(Event::CallFailed { token, epoch, attempt: 1, error: call_error(code, retryable) })
    }

    /// What the token at `step` waits for.
    fn waiting(&self, step: &str) -> &Waiting {
        let (token, _) = self.at(step);
        &self.state.tokens[&token].wait
    }
}

/// A connector's error `code`, with the message "`code` happened".
fn call_error(code: &str, retryable: bool) -> CallError {
    CallError { code: code.into(), message: format!("{code} happened"), retryable, retry_after_ms: None }
}

/// The kinds of the history entries, in order.
fn kinds(t: &Transition) -> Vec<&'static str> {
    t.history.iter().map(|h| h.kind.as_str()).collect()
}

/// The first entry of `kind`.
fn entry(t: &Transition, kind: HistoryKind) -> &HistoryEntry {
    t.history.iter().find(|h| h.kind == kind).unwrap_or_else(|| panic!("a `{kind}` entry in {:#?}", t.history))
}

/// The connector calls the transition schedules.
fn calls(t: &Transition) -> Vec<&CallRequest> {
    t.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The instance's output, if it completed.
fn completed_output(case: &Case) -> Option<&Value> {
    match &case.state.phase {
        crate::runtime::state::Phase::Completed { output } => Some(output),
        _ => None,
    }
}

/// A workflow whose first step creates a task (for tests outside `tasks`).
fn tasks_yaml() -> &'static str {
    r#"
workflow: one-task
version: 1
title: One task
steps:
  - id: review
    human:
      title: "Review {{ input.name }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      escalate: { after: 3d, to: { role: naspi-supervisor } }
"#
}

#[test]
fn the_harness_ids_look_like_uuid_v7() {
    let mut ids = CountingIds::default();
    let id = ids.next_id();
    let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 7);
    assert_ne!(ids.next_id(), id);
    assert_eq!(json!(id), json!("00000000-0000-7000-8000-000000000001"));
}
