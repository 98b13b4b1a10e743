//! `receive`: subscribe to a message by name and correlation key (with an optional
//! timeout timer); the message's payload completes the step, the timeout goes to the
//! step's timeout target.

use serde_json::{Value, json};

use super::Machine;
use super::effects::{Effect, TimerPurpose};
use super::flow::eval_error;
use crate::plan::{Action, Receive, Step};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, Waiting};

impl Machine<'_> {
    pub(super) fn run_receive(&mut self, token: u32, step: &Step, receive: &Receive, data: &Value) {
        let key = match receive.correlate.eval(data) {
            Ok(Value::String(s)) => s,
            Ok(Value::Null) => return self.fail(token, StepError::new("expression", "the correlation key is null")),
            Ok(other) => other.to_string(),
            Err(e) => return self.fail(token, eval_error(step, &e)),
        };
        let epoch = self.epoch(token);
        self.record(HistoryKind::MessageAwaited, Some(&step.id), json!({"message": receive.message, "key": key}));
        self.out.effects.push(Effect::Subscribe { token, epoch, message: receive.message.clone(), key: key.clone() });
        if let Some((after, _)) = receive.timeout {
            let due_at = self.now + after.as_millis() as i64;
            self.out.effects.push(Effect::Timer { token, epoch, due_at, purpose: TimerPurpose::ReceiveTimeout });
        }
        self.wait_for(token, Waiting::Message { message: receive.message.clone(), key });
    }

    pub(super) fn message_received(&mut self, token: u32, payload: Value) {
        let step = self.step_id(token);
        self.record(HistoryKind::MessageReceived, Some(&step), json!({"payload": payload}));
        self.complete(token, payload)
    }

    /// The timeout passed first: the subscription is dropped and the token goes to the
    /// timeout's target.
    pub(super) fn receive_timed_out(&mut self, token: u32) {
        let at = self.state.tokens[&token].at;
        if let Action::Receive(Receive { timeout: Some((_, target)), .. }) = &self.plan.step(at).action {
            let step = self.plan.step(at).id.clone();
            self.record(HistoryKind::MessageTimedOut, Some(&step), Value::Null);
            self.out.effects.push(Effect::Discard { tokens: vec![token] });
            self.move_to(token, Some(*target));
        }
    }
}
