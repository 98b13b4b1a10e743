//! Sub-workflow: start a child instance with the step's input; the child's end completes
//! (its output) or fails (its error) the step.

use serde_json::{Value, json};

use super::Machine;
use super::effects::Effect;
use super::flow::{eval_error, value_or_null};
use crate::plan::{Step, Subworkflow};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, Waiting};

impl Machine<'_> {
    pub(super) fn run_subworkflow(&mut self, token: u32, step: &Step, sub: &Subworkflow, data: &Value) {
        let input = match value_or_null(sub.input.as_ref(), data) {
            Ok(v) => v,
            Err(e) => return self.fail(token, eval_error(step, &e)),
        };
        let epoch = self.epoch(token);
        self.record(HistoryKind::ChildStarted, Some(&step.id), json!({"workflow": sub.workflow, "input": input}));
        self.out.effects.push(Effect::StartChild { token, epoch, workflow: sub.workflow.clone(), version: sub.version, input });
        self.wait_for(token, Waiting::Child);
    }

    pub(super) fn child_finished(&mut self, token: u32, result: Result<Value, StepError>) {
        match result {
            Ok(output) => self.complete(token, output),
            Err(error) => self.fail(token, error),
        }
    }
}
