//! Failures: the `fail` step, a step's `catch` clauses, and an uncaught failure leaving
//! its block — a branch or iteration fails its parent (fail fast), a catch handler's
//! failure is its step's, and at the top level the instance fails (after compensation,
//! see [`super::compensation`]).

use serde_json::{Value, json};

use super::Machine;
use super::effects::Effect;
use crate::plan::{BlockRole, Step, StepIx};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{Phase, StepError, Waiting};
use crate::template::Template;

impl Machine<'_> {
    pub(super) fn run_fail(&mut self, token: u32, step: &Step, error: &str, message: Option<&Template>, data: &Value) {
        let message = match message.map(|m| m.render(data)) {
            None => format!("failed with {error}"),
            Some(Ok(m)) => m,
            Some(Err(e)) => e.to_string(),
        };
        self.fail(token, StepError { code: error.to_string(), message, step: Some(step.id.clone()) });
    }

    /// The token's current step failed: try its catch clauses, else propagate.
    pub(super) fn fail(&mut self, token: u32, error: StepError) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        if let Some(clause) = step.catch.iter().find(|c| c.matches(&error.code)) {
            self.record(HistoryKind::StepFailed, Some(&step.id), json!({"error": error, "caught": true}));
            let t = self.token_mut(token);
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
        self.record(HistoryKind::StepFailed, Some(&step.id), json!({"error": error, "caught": false}));
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
                self.token_mut(parent).wait = Waiting::Nothing;
                self.fail(parent, error);
            }
            BlockRole::Catch { step, .. } => {
                // A failure inside a handler is a failure of the step it handles, not caught again.
                let t = self.token_mut(token);
                t.at = step;
                t.error = None;
                self.propagate(token, error);
            }
            BlockRole::Compensation { .. } => {
                self.state.tokens.remove(&token);
                self.compensation_failed(error);
            }
        }
    }

    /// Every token under `parent`, at any depth.
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

    /// The instance failed with `error`: its remaining work is discarded and completed
    /// steps are compensated, newest first; with nothing to compensate it fails at once and
    /// can be retried from `resume_at`.
    pub(super) fn instance_failed(&mut self, error: StepError, resume_at: Option<StepIx>) {
        let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
        if !tokens.is_empty() {
            self.out.effects.push(Effect::Discard { tokens });
        }
        self.state.tokens.clear();
        let mut remaining = std::mem::take(&mut self.state.compensable);
        remaining.reverse();
        if remaining.is_empty() {
            self.record(HistoryKind::InstanceFailed, None, json!({"error": error}));
            self.state.phase = Phase::Failed { error, resume_at };
        } else {
            self.start_compensation(error, remaining);
        }
    }
}
