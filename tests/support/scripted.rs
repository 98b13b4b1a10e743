//! A connector whose behaviour the workflow's input decides, recording every invocation:
//! `with: { fail: CODE }` fails fatally, `{ fail_calls: N, code: CODE }` fails the first N
//! calls of the step, `{ retryable: CODE, until_attempt: N }` fails
//! retryably before attempt N, `{ sleep_ms: N }` sleeps first, `{ output: V }` returns V,
//! otherwise the input is returned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation, Registry};
use serde_json::Value;

use crate::app::{TestEngine, test_engine};
use crate::backend::Backend;

/// An engine on a manual clock ([`test_engine`]) with a [`Scripted`] connector registered as
/// `test`, and that connector (to read its calls).
pub async fn scripted_engine(backend: Backend) -> Option<(TestEngine, Scripted)> {
    let scripted = Scripted::default();
    let t = test_engine(backend, Registry::builtin().with("test", scripted.clone())).await?;
    Some((t, scripted))
}

#[derive(Clone, Default)]
pub struct Scripted {
    pub calls: Arc<Mutex<Vec<Invocation>>>,
}

impl Scripted {
    pub fn calls(&self) -> Vec<Invocation> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_to(&self, step: &str) -> Vec<Invocation> {
        self.calls().into_iter().filter(|c| c.step_id == step).collect()
    }
}

impl Connector for Scripted {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(call.clone());
            let input = &call.input;
            if let Some(ms) = input.get("sleep_ms").and_then(Value::as_u64) {
                // Real time: a slow call, to exercise the step timeout enforced around it.
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            // `{ fail_calls: N, code: C }`: the first N calls of this step fail fatally.
            if let Some(n) = input.get("fail_calls").and_then(Value::as_u64) {
                let calls =
                    self.calls.lock().unwrap().iter().filter(|c| c.instance_id == call.instance_id && c.step_id == call.step_id).count();
                if calls as u64 <= n {
                    let code = input.get("code").and_then(Value::as_str).unwrap_or("scripted.failure");
                    return Err(ConnectorError::fatal(code, format!("scripted failure {code} on call {calls}")));
                }
            }
            if let Some(code) = input.get("fail").and_then(Value::as_str) {
                return Err(ConnectorError::fatal(code, format!("scripted failure {code}")));
            }
            if let Some(code) = input.get("retryable").and_then(Value::as_str) {
                let until = input.get("until_attempt").and_then(Value::as_u64).unwrap_or(u64::MAX);
                if u64::from(call.attempt) < until {
                    return Err(ConnectorError::retryable(code, format!("scripted retryable failure on attempt {}", call.attempt)));
                }
            }
            Ok(input.get("output").cloned().unwrap_or_else(|| input.clone()))
        })
    }
}
