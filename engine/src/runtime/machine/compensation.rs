//! Compensation: after an uncaught failure, the `compensate` blocks of completed steps run
//! one at a time, newest first, each seeing the data its step saw; then the instance
//! fails with the original error. A failure while compensating stops compensation
//! (`compensation.failed`).

use serde_json::{Value, json};

use super::Machine;
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{Compensable, Phase, StepError, TokenRole};

impl Machine<'_> {
    /// Begins undoing `remaining` (in undo order) for the failure `error`.
    pub(super) fn start_compensation(&mut self, error: StepError, remaining: Vec<Compensable>) {
        self.record(HistoryKind::CompensationStarted, None, json!({"error": error, "steps": remaining.len()}));
        self.state.phase = Phase::Compensating { error, remaining };
        self.compensate_next();
    }

    /// Runs the next compensation block, or fails the instance when none is left.
    pub(super) fn compensate_next(&mut self) {
        let Phase::Compensating { error, remaining } = &mut self.state.phase else { return };
        if remaining.is_empty() {
            let error = error.clone();
            self.record(HistoryKind::InstanceFailed, None, json!({"error": error}));
            self.state.phase = Phase::Failed { error, resume_at: None };
            return;
        }
        let next = remaining.remove(0);
        let error = error.clone();
        let step_id = self.plan.step(next.step).id.clone();
        self.record(HistoryKind::CompensationStep, Some(&step_id), Value::Null);
        let first = self.plan.block(next.block).steps[0];
        let id = self.spawn(first, None, TokenRole::Compensation, next.locals);
        self.token_mut(id).error = Some(error);
    }

    /// A compensation block failed with `error`: the instance fails with
    /// `compensation.failed`, naming the failure it was compensating.
    pub(super) fn compensation_failed(&mut self, error: StepError) {
        let original = match &self.state.phase {
            Phase::Compensating { error: e, .. } => e.message.clone(),
            _ => String::new(),
        };
        let error = StepError::new("compensation.failed", format!("{} (while compensating: {original})", error.message));
        self.record(HistoryKind::InstanceFailed, None, json!({"error": error}));
        self.state.phase = Phase::Failed { error, resume_at: None };
    }
}
