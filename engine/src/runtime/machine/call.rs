//! `call`: a connector call is scheduled as a job with a stable idempotency key; success
//! completes the step; a failure is retried by the step's policy (same input and key,
//! the next attempt due after a deterministic backoff) or fails the step.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Machine;
use super::effects::Effect;
use super::flow::{eval_error, value_or_null};
use crate::clock::{Millis, to_rfc3339};
use crate::plan::{Action, Backoff, Call, RetryPolicy, Step};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, Waiting};

/// A failed connector call: retryable (timeouts, unavailable services) or a business error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default)]
    pub retry_after_ms: Option<i64>,
}

/// One attempt of a connector call, as the job that runs it carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    pub token: u32,
    pub epoch: u32,
    pub step_id: String,
    pub connector: String,
    pub operation: Option<String>,
    pub topic: Option<String>,
    pub input: Value,
    /// Stable across re-executions of the same step iteration: `instance:step:visit`.
    pub idempotency_key: String,
    pub attempt: u32,
    pub due_at: Millis,
    pub timeout_ms: Option<i64>,
}

/// What changes from one attempt of a call to the next (only `number` and `due_at`).
struct Attempt {
    input: Value,
    key: String,
    number: u32,
    due_at: Millis,
}

impl Machine<'_> {
    pub(super) fn run_call(&mut self, token: u32, step: &Step, call: &Call, data: &Value) {
        let input = match value_or_null(call.input.as_ref(), data) {
            Ok(v) => v,
            Err(e) => return self.fail(token, eval_error(step, &e)),
        };
        let key = self.visit_key(token, step);
        self.schedule_call(token, step, call, Attempt { input, key, number: 1, due_at: self.now });
    }

    fn schedule_call(&mut self, token: u32, step: &Step, call: &Call, attempt: Attempt) {
        let request = CallRequest {
            token,
            epoch: self.epoch(token),
            step_id: step.id.clone(),
            connector: call.connector.clone(),
            operation: call.operation.clone(),
            topic: call.topic.clone(),
            input: attempt.input,
            idempotency_key: attempt.key,
            attempt: attempt.number,
            due_at: attempt.due_at,
            timeout_ms: step.timeout.map(|d| d.as_millis() as i64),
        };
        if attempt.number == 1 {
            self.record(HistoryKind::CallScheduled, Some(&step.id), json!({"connector": request.connector, "operation": request.operation, "input": request.input, "idempotency_key": request.idempotency_key}));
        }
        let wait = Waiting::Call { attempt: attempt.number, key: request.idempotency_key.clone(), input: request.input.clone() };
        self.out.effects.push(Effect::Call(request));
        self.wait_for(token, wait);
    }

    /// Attempt `attempt` of the token's call failed: retry it if the policy allows, else
    /// the step fails with the call's error.
    pub(super) fn call_failed(&mut self, token: u32, attempt: u32, error: CallError) {
        let at = self.state.tokens[&token].at;
        let step = self.plan.step(at);
        let Action::Call(call) = &step.action else { return };
        let policy = step.retry.clone();
        let retry = policy
            .as_ref()
            .filter(|p| attempt < p.attempts)
            .filter(|p| if p.on.is_empty() { error.retryable } else { p.on.iter().any(|pat| pattern_matches(pat, &error.code)) });
        self.record(
            HistoryKind::CallFailed,
            Some(&step.id),
            json!({"attempt": attempt, "code": error.code, "message": error.message, "retryable": error.retryable}),
        );
        match retry {
            Some(policy) => {
                let delay = backoff(policy, attempt, &self.info.id, &step.id).max(error.retry_after_ms.unwrap_or(0));
                let due_at = self.now + delay;
                // The input and key of the original call are kept: same iteration, next attempt.
                let (key, input) = match &self.state.tokens[&token].wait {
                    Waiting::Call { key, input, .. } => (key.clone(), input.clone()),
                    _ => return,
                };
                self.record(HistoryKind::CallRetryScheduled, Some(&step.id), json!({"attempt": attempt + 1, "due_at": to_rfc3339(due_at)}));
                self.schedule_call(token, step, call, Attempt { input, key, number: attempt + 1, due_at });
            }
            None => self.fail(token, StepError { code: error.code, message: error.message, step: Some(step.id.clone()) }),
        }
    }
}

/// Whether an error code matches a pattern: exact, `prefix*`, or `*`.
pub fn pattern_matches(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => pattern == code,
    }
}

/// The wait before attempt `attempt + 1`, with deterministic jitter (a hash of the instance,
/// step and attempt), so replays compute the same time.
pub fn backoff(policy: &RetryPolicy, attempt: u32, instance: &str, step: &str) -> Millis {
    let base = policy.delay.as_millis() as f64;
    let raw = match policy.backoff {
        Backoff::Constant => base,
        Backoff::Exponential => base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32),
    };
    let capped = raw.min(policy.max_delay.as_millis() as f64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in instance.bytes().chain(step.bytes()).chain(attempt.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let unit = (h % 10_000) as f64 / 10_000.0; // [0, 1)
    let factor = 1.0 + policy.jitter * (2.0 * unit - 1.0);
    (capped * factor).max(0.0) as Millis
}
