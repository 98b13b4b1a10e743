//! The state machine: given an instance's state and one event, move its tokens forward and
//! say what must happen outside (effects) and what to record (history). No I/O, no clock
//! reads, no randomness: [`apply`] is a function of its arguments — ids it needs come from
//! the caller's [`IdSource`] —, which is what makes replay, unit tests and group commit safe.
//!
//! Pure steps (`set`, `switch`, `end`, `fail`, forks) are run inside the same transition as
//! the event that led to them; a token stops only where it must wait for the outside world.
//!
//! # Layout
//!
//! - this file: [`apply`], the [`Machine`] of one transition, and the dispatch of a runnable
//!   token to the function of its step's construct;
//! - [`events`]: the [`Event`]s that reach an instance and how each is applied (start,
//!   cancel, abort and retry of the instance are here; construct events call into their
//!   construct's file);
//! - [`effects`]: what a transition produces: [`Effect`]s, [`HistoryEntry`]s, [`Transition`];
//! - [`ids`]: the [`IdSource`] the caller supplies (UUIDv7 in production);
//! - [`flow`]: moving tokens: completing a step, storing its output, going to the next
//!   step, leaving a block, visit keys, evaluation errors;
//! - one file per construct: [`call`], [`set`], [`switch`], [`parallel`], [`foreach`],
//!   [`timer`] (`wait`), [`message`] (`receive`), [`task`] (`human`), [`child`]
//!   (sub-workflow), [`end`], [`fail`] (the step and failure propagation), [`compensation`].

mod call;
mod child;
mod compensation;
mod effects;
mod end;
mod events;
mod fail;
mod flow;
mod foreach;
mod ids;
mod message;
mod parallel;
mod set;
mod switch;
mod task;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::history_kind::HistoryKind;
use super::state::*;
use crate::clock::{Millis, to_rfc3339};
use crate::plan::*;

pub use call::{CallError, CallRequest, backoff, pattern_matches};
pub use effects::{Effect, HistoryEntry, TimerPurpose, Transition};
pub use events::Event;
pub use ids::{IdSource, UuidV7Ids};
pub use task::{TaskEscalation, TaskNotification, TaskRequest};

/// What the machine needs to know about the instance besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The instance's id: the first part of every idempotency key.
    pub id: String,
    pub workflow: String,
    pub version: u32,
    pub business_key: Option<String>,
    /// The start input (`.input`).
    pub input: Value,
    pub started_at: Millis,
}

/// Applies `event` to `state` at time `now`; new ids (a human task's) come from `ids`.
///
/// The same plan, info, state, event, time and ids give the same transition and the same
/// new state.
pub fn apply(plan: &Plan, info: &InstanceInfo, state: &mut InstanceState, event: Event, now: Millis, ids: &mut dyn IdSource) -> Transition {
    let mut m = Machine { plan, info, state, now, ids, out: Transition::default(), ready: VecDeque::new() };
    m.handle(event);
    m.drain();
    m.out
}

/// One transition in progress: the instance's state being changed, the tokens that can
/// run, and what the transition has produced so far.
struct Machine<'a> {
    plan: &'a Plan,
    info: &'a InstanceInfo,
    state: &'a mut InstanceState,
    now: Millis,
    ids: &'a mut dyn IdSource,
    out: Transition,
    /// Tokens that can run (their wait is `Nothing`), in the order they became runnable.
    ready: VecDeque<u32>,
}

impl<'a> Machine<'a> {
    fn record(&mut self, kind: HistoryKind, step: Option<&str>, data: Value) {
        self.out.history.push(HistoryEntry { kind, step: step.map(String::from), data, actor: None });
    }

    fn record_by(&mut self, kind: HistoryKind, step: Option<&str>, data: Value, actor: &str) {
        self.out.history.push(HistoryEntry { kind, step: step.map(String::from), data, actor: Some(actor.into()) });
    }

    /// The token if it exists and is still at `epoch`.
    fn current(&self, token: u32, epoch: u32) -> bool {
        !self.state.phase.is_finished() && self.state.tokens.get(&token).is_some_and(|t| t.epoch == epoch)
    }

    fn drain(&mut self) {
        while let Some(token) = self.ready.pop_front() {
            self.run(token);
        }
    }

    fn step_id(&self, token: u32) -> String {
        self.plan.step(self.state.tokens[&token].at).id.clone()
    }

    /// The token, which must exist (every caller holds an id it just looked up or created).
    fn token_mut(&mut self, token: u32) -> &mut Token {
        self.state.tokens.get_mut(&token).expect("token exists")
    }

    /// The token's epoch: what its effects carry so a late reply is recognised.
    fn epoch(&self, token: u32) -> u32 {
        self.state.tokens[&token].epoch
    }

    /// Makes `token` wait for `wait`; it runs again only when an event completes the wait.
    fn wait_for(&mut self, token: u32, wait: Waiting) {
        self.token_mut(token).wait = wait;
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

    /// Runs a runnable token's current step: one function per construct.
    fn run(&mut self, token: u32) {
        let Some(t) = self.state.tokens.get(&token) else { return };
        if t.wait != Waiting::Nothing {
            return;
        }
        let plan = self.plan;
        let step = plan.step(t.at);
        let data = self.data(token);
        match &step.action {
            Action::Set { vars } => self.run_set(token, step, vars, &data),
            Action::Switch(switch) => self.run_switch(token, step, switch, &data),
            Action::End { output } => self.run_end(token, step, output.as_ref(), &data),
            Action::Fail { error, message } => self.run_fail(token, step, error, message.as_ref(), &data),
            Action::Parallel { branches } => self.run_parallel(token, step, branches),
            Action::Foreach(foreach) => self.run_foreach(token, step, foreach, &data),
            Action::Call(call) => self.run_call(token, step, call, &data),
            Action::Wait(wait) => self.run_wait(token, step, wait, &data),
            Action::Receive(receive) => self.run_receive(token, step, receive, &data),
            Action::Human(human) => self.run_human(token, step, human, &data),
            Action::Subworkflow(sub) => self.run_subworkflow(token, step, sub, &data),
        }
    }
}
