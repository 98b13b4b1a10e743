//! Moving tokens: a step completes (its output stored and recorded, its compensation
//! remembered), the token goes to the next step, runs off the end of its block (a catch
//! handler's end resumes after the step it handled) or ends its unit of work (the instance,
//! a branch, an iteration, a compensation). Also the visit keys that make idempotency keys,
//! and the errors of user-written code.

use serde_json::{Map, Value, json};

use super::Machine;
use crate::plan::{BlockIx, BlockRole, Step, StepIx, ValueError, ValueTemplate};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{Compensable, StepError, TokenRole, Waiting};

impl Machine<'_> {
    /// The token's current step finished with `output`: record it and move on.
    pub(super) fn complete(&mut self, token: u32, output: Value) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        if let Some(error) = too_large(&output, &step.id) {
            return self.fail(token, error);
        }
        let entry = json!({"output": output});
        let t = self.token_mut(token);
        t.last = output.clone();
        t.wait = Waiting::Nothing;
        self.store_output(token, at, entry);
        if let Some(block) = step.compensate {
            let locals = self.state.tokens[&token].locals.clone();
            self.state.compensable.push(Compensable { step: at, block, locals });
        }
        self.record(HistoryKind::StepCompleted, Some(&step.id), json!({"output": output}));
        self.move_to(token, step.next);
    }

    /// Records `.steps.<id>` for a step: per iteration inside foreach bodies, else instance-wide.
    pub(super) fn store_output(&mut self, token: u32, step: StepIx, entry: Value) {
        let step = self.plan.step(step);
        if self.in_foreach(step.block) {
            let t = self.token_mut(token);
            if let Value::Object(map) = t.locals.entry("steps").or_insert_with(|| Value::Object(Map::new())) {
                map.insert(step.id.clone(), entry);
            }
        } else {
            self.state.steps.insert(step.id.clone(), entry);
        }
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

    /// The token goes to `next` (a new epoch: events for where it was are now stale), or
    /// leaves its block when there is no next step.
    pub(super) fn move_to(&mut self, token: u32, next: Option<StepIx>) {
        match next {
            Some(s) => {
                let t = self.token_mut(token);
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
                let t = self.token_mut(token);
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
    pub(super) fn end_unit(&mut self, token: u32) {
        let Some(t) = self.state.tokens.remove(&token) else { return };
        match (&t.role, t.parent) {
            (TokenRole::Main, _) => self.instance_completed(t),
            (TokenRole::Branch { name }, Some(parent)) => self.branch_ended(parent, token, name, t.last.clone()),
            (TokenRole::Iteration { index }, Some(parent)) => self.iteration_ended(parent, token, *index, t.last.clone()),
            (TokenRole::Compensation, _) => self.compensate_next(),
            _ => {}
        }
    }

    /// The idempotency key of visiting `step` once more: `instance:path:visit`, where the
    /// path names the foreach iterations the token is in (`notify[3]`).
    pub(super) fn visit_key(&mut self, token: u32, step: &Step) -> String {
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
}

/// A failure of user-written code, with the step error code it gives.
pub(super) trait EvalFailure: std::fmt::Display {
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

/// An optional value of a step (a call's `with`, a child's `input`): `null` when absent.
pub(super) fn value_or_null(value: Option<&ValueTemplate>, data: &Value) -> Result<Value, ValueError> {
    value.map_or(Ok(Value::Null), |v| v.evaluate(data))
}

/// The error of `step` when an expression or template in it fails.
pub(super) fn eval_error(step: &Step, e: &dyn EvalFailure) -> StepError {
    StepError { code: e.code().into(), message: e.to_string(), step: Some(step.id.clone()) }
}

/// The error of a step whose output (or variables) is larger than the limit in force
/// (`state.too_large`), if it is.
pub(super) fn too_large(value: &Value, step: &str) -> Option<StepError> {
    let limit = crate::budget::limits().value;
    crate::budget::json_size_exceeds(value, limit).then(|| StepError {
        code: "state.too_large".into(),
        message: format!("the output of step `{step}` is larger than the limit of {} KiB for one value", limit >> 10),
        step: Some(step.to_string()),
    })
}
