//! The events that reach an instance, and how each is applied: [`Machine::handle`] checks
//! that the event is for the token's current position (its `epoch`) and hands it to the
//! construct it belongs to. Starting, cancelling, aborting and retrying the instance are
//! here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Machine;
use super::call::CallError;
use crate::plan::BlockIx;
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{Phase, StepError, TokenRole};

/// Something that happened to an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The instance was created: its first step runs.
    Start,
    /// The call the token waits for returned `output`.
    CallSucceeded { token: u32, epoch: u32, output: Value },
    /// Attempt `attempt` of the token's call failed.
    CallFailed { token: u32, epoch: u32, attempt: u32, error: CallError },
    /// A `wait` step's timer came due.
    TimerFired { token: u32, epoch: u32 },
    /// The message a `receive` step waits for arrived.
    MessageReceived { token: u32, epoch: u32, payload: Value },
    /// A `receive` step's timeout passed.
    ReceiveTimedOut { token: u32, epoch: u32 },
    /// An operator (`actor`) completed the token's human task.
    TaskCompleted { token: u32, epoch: u32, output: Value, actor: String },
    /// The token's child instance ended: its output, or its error.
    ChildFinished { token: u32, epoch: u32, result: Result<Value, StepError> },
    /// An operator cancelled the instance.
    Cancel { actor: String, reason: String },
    /// Run a failed instance again from the top-level step that failed.
    Retry { actor: String },
    /// End the instance failed at once, without compensation: its job was quarantined (it
    /// crashed or overran its lease too often) or its state outgrew its limit.
    Abort { error: StepError },
}

impl Machine<'_> {
    /// Applies one event. A late or repeated event for a position the token has left (an
    /// old epoch), or for a finished instance, changes nothing.
    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Start if self.state.tokens.is_empty() && matches!(self.state.phase, Phase::Running) => self.start(),
            Event::CallSucceeded { token, epoch, output } if self.current(token, epoch) => self.complete(token, output),
            Event::CallFailed { token, epoch, attempt, error } if self.current(token, epoch) => self.call_failed(token, attempt, error),
            Event::TimerFired { token, epoch } if self.current(token, epoch) => self.timer_fired(token),
            Event::MessageReceived { token, epoch, payload } if self.current(token, epoch) => self.message_received(token, payload),
            Event::ReceiveTimedOut { token, epoch } if self.current(token, epoch) => self.receive_timed_out(token),
            Event::TaskCompleted { token, epoch, output, actor } if self.current(token, epoch) => {
                self.task_completed(token, output, &actor)
            }
            Event::ChildFinished { token, epoch, result } if self.current(token, epoch) => self.child_finished(token, result),
            Event::Cancel { actor, reason } if !self.state.phase.is_finished() => self.cancel(&actor, &reason),
            Event::Abort { error } if !self.state.phase.is_finished() => self.abort(error),
            Event::Retry { actor } => self.retry(&actor),
            _ => {}
        }
    }

    fn start(&mut self) {
        self.record(HistoryKind::InstanceStarted, None, json!({"input": self.info.input, "business_key": self.info.business_key}));
        let root = self.plan.block(BlockIx::ROOT).steps[0];
        self.spawn(root, None, TokenRole::Main, Map::new());
    }

    fn cancel(&mut self, actor: &str, reason: &str) {
        let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
        self.state.tokens.clear();
        self.out.effects.push(super::Effect::Discard { tokens });
        self.state.phase = Phase::Cancelled;
        self.record_by(HistoryKind::InstanceCancelled, None, json!({"reason": reason}), actor);
    }

    fn abort(&mut self, error: StepError) {
        let tokens: Vec<u32> = self.state.tokens.keys().copied().collect();
        if !tokens.is_empty() {
            self.out.effects.push(super::Effect::Discard { tokens });
        }
        self.state.tokens.clear();
        self.state.compensable.clear();
        self.record(HistoryKind::InstanceFailed, error.step.as_deref(), json!({"error": error}));
        self.state.phase = Phase::Failed { error, resume_at: None };
    }

    /// A failed instance that can resume (its failure was not compensated) restarts the
    /// top-level step that failed, as a new visit.
    fn retry(&mut self, actor: &str) {
        if let Phase::Failed { resume_at: Some(at), error } = &self.state.phase {
            let (at, error) = (*at, error.clone());
            self.state.phase = Phase::Running;
            let step = self.plan.step(at).id.clone();
            self.record_by(HistoryKind::InstanceRetried, Some(&step), json!({"previous_error": error}), actor);
            self.spawn(at, None, TokenRole::Main, Map::new());
        }
    }
}
