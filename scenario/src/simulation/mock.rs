//! The mock connector: answers every connector call of a scenario from its `mocks`, by the
//! calling step's id, and records what was sent.
//!
//! Which result a call gets:
//! - a single result answers every call, attempt and iteration;
//! - a list outside a foreach gives one result per attempt (`[error, output]`: the first
//!   attempt fails, the retry succeeds);
//! - a list inside a foreach gives one entry per iteration (of the innermost foreach), and an
//!   entry may itself be a list, one result per attempt of that iteration, or `null` for an
//!   iteration that must not call the step.
//!
//! The attempt comes with the invocation; the iteration is read from the idempotency key
//! (`instance:step[iteration…]:visit`). A call of a step without a mock fails with
//! `scenario.unmocked` and fails the scenario, naming the step and the connector; the
//! built-ins that need nothing outside the process run for real unless mocked: `noop`, `log`,
//! `identity` (the check characters) and `settings` (with no configured values, so a call
//! answers its `default`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::loading::model::{Mock, MockItem, MockResult};
use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation};

/// Where a call sits: the foreach iterations (innermost first) and the visit of the step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct CallPosition {
    pub iterations: Vec<usize>,
    pub visit: u32,
}

/// Reads the position from an idempotency key `instance:step[i][j]:visit`.
pub fn position_of(key: &str) -> CallPosition {
    let Some((rest, visit)) = key.rsplit_once(':') else { return CallPosition::default() };
    let visit = visit.parse().unwrap_or(1);
    let path = rest.split_once(':').map_or(rest, |(_, p)| p);
    let iterations = path
        .split('[')
        .skip(1)
        .filter_map(|part| part.strip_suffix(']').or_else(|| part.split(']').next()))
        .filter_map(|n| n.parse().ok())
        .collect();
    CallPosition { iterations, visit }
}

/// The result for attempt `attempt` (from 1) of a call in foreach iteration `iteration`
/// (`None` outside a foreach), or why there is none.
pub fn select(mock: &Mock, iteration: Option<usize>, attempt: u32) -> Result<&MockResult, String> {
    let per_attempt = |results: &'_ [MockResult]| -> Result<usize, String> {
        let i = attempt.saturating_sub(1) as usize;
        if i < results.len() {
            Ok(i)
        } else {
            Err(format!("the mock gives results for {} attempt(s), but attempt {attempt} was made", results.len()))
        }
    };
    match (mock, iteration) {
        (Mock::One(r), _) => Ok(r),
        (Mock::List(items), None) => {
            let results: Vec<&MockResult> = items
                .iter()
                .map(|i| match i {
                    MockItem::One(r) => Ok(r),
                    MockItem::Attempts(_) => Err("a list of lists is only for steps inside a foreach (one list per iteration)".to_string()),
                    MockItem::Nothing => Err(format!("the mock has no result (null) for attempt {attempt}")),
                })
                .collect::<Result<_, _>>()?;
            let i = attempt.saturating_sub(1) as usize;
            results
                .get(i)
                .copied()
                .ok_or_else(|| format!("the mock gives results for {} attempt(s), but attempt {attempt} was made", results.len()))
        }
        (Mock::List(items), Some(it)) => match items.get(it) {
            None => Err(format!(
                "the mock gives results for {} iteration(s), but iteration {} (index {it}) called the step",
                items.len(),
                it + 1
            )),
            Some(MockItem::One(r)) => Ok(r),
            Some(MockItem::Nothing) => Err(format!("the mock has no result (null) for iteration {} (index {it})", it + 1)),
            Some(MockItem::Attempts(results)) => per_attempt(results).map(|i| &results[i]),
        },
    }
}

/// One connector call as the mock saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// Order in which the calls reached the mock.
    pub seq: usize,
    pub instance_id: String,
    pub step_id: String,
    /// `connector` or `connector.operation`.
    pub connector: String,
    pub input: Value,
    pub idempotency_key: String,
    pub attempt: u32,
    pub position: CallPosition,
    /// The mock's answer: the output, or the error code.
    pub result: Result<Value, String>,
}

#[derive(Debug, Default)]
struct State {
    mocks: BTreeMap<String, Mock>,
    calls: Vec<RecordedCall>,
    /// Problems that fail the scenario whatever the workflow does with the error.
    problems: Vec<String>,
}

/// The connector registered under every connector name a scenario's workflows use.
/// Clones share their state.
#[derive(Debug, Clone, Default)]
pub struct MockConnector {
    state: Arc<Mutex<State>>,
}

impl MockConnector {
    /// A mock answering from `mocks`, by step id.
    pub fn new(mocks: BTreeMap<String, Mock>) -> Self {
        Self { state: Arc::new(Mutex::new(State { mocks, ..Default::default() })) }
    }

    /// Every call made so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.lock().expect("mock state lock").calls.clone()
    }

    /// Calls without a mock, results missing from a list.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().expect("mock state lock").problems.clone()
    }

    /// Answers one call (a connector invocation or an external task).
    pub fn answer(
        &self,
        instance_id: &str,
        step_id: &str,
        connector: &str,
        input: &Value,
        key: &str,
        attempt: u32,
    ) -> Result<Value, ConnectorError> {
        let mut state = self.state.lock().expect("mock state lock");
        let position = position_of(key);
        let builtin = connector.split('.').next().unwrap_or(connector);
        let result = match state.mocks.get(step_id) {
            Some(mock) => match select(mock, position.iterations.first().copied(), attempt) {
                Ok(MockResult::Output(v)) => Ok(v.clone()),
                Ok(MockResult::Error(e)) => Err(match (e.retryable, e.retry_after) {
                    (true, retry_after) => ConnectorError::Retryable { code: e.code.clone(), message: e.message.clone(), retry_after },
                    (false, _) => ConnectorError::fatal(e.code.clone(), e.message.clone()),
                }),
                Err(why) => {
                    let msg = format!("mock of step `{step_id}` ({connector}): {why}");
                    state.problems.push(msg.clone());
                    Err(ConnectorError::fatal("scenario.mock_exhausted", msg))
                }
            },
            None if builtin == "noop" => Ok(input.clone()),
            None if builtin == "log" => Ok(Value::Null),
            None if builtin == "identity" => pratica_engine::connector::identity::check(input),
            None if builtin == "settings" => pratica_engine::connector::settings::SettingsConnector::default().get(input),
            None => {
                let msg = format!("step `{step_id}` called `{connector}`, but the scenario has no mock for `{step_id}`");
                if !state.problems.contains(&msg) {
                    state.problems.push(msg.clone());
                }
                Err(ConnectorError::fatal("scenario.unmocked", msg))
            }
        };
        let seq = state.calls.len();
        state.calls.push(RecordedCall {
            seq,
            instance_id: instance_id.to_string(),
            step_id: step_id.to_string(),
            connector: connector.to_string(),
            input: input.clone(),
            idempotency_key: key.to_string(),
            attempt,
            position,
            result: result.clone().map_err(|e| match e {
                ConnectorError::Retryable { code, .. } | ConnectorError::Fatal { code, .. } => code,
            }),
        });
        result
    }
}

impl Connector for MockConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            let connector = match &call.operation {
                Some(op) => format!("{}.{op}", call.connector),
                None => call.connector.clone(),
            };
            self.answer(&call.instance_id, &call.step_id, &connector, &call.input, &call.idempotency_key, call.attempt)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::loading::model::MockError;

    fn out(v: i64) -> MockResult {
        MockResult::Output(json!(v))
    }

    fn err(code: &str) -> MockResult {
        MockResult::Error(MockError { code: code.into(), message: "down".into(), retryable: true, retry_after: None })
    }

    #[test]
    fn reads_iterations_and_visit_from_the_key() {
        assert_eq!(position_of("0199-abc:pay:1"), CallPosition { iterations: vec![], visit: 1 });
        assert_eq!(position_of("0199-abc:fetch_employment[1]:1"), CallPosition { iterations: vec![1], visit: 1 });
        assert_eq!(position_of("0199-abc:send[3][12]:2"), CallPosition { iterations: vec![3, 12], visit: 2 });
    }

    #[test]
    fn a_single_result_answers_everything() {
        let m = Mock::One(out(7));
        assert_eq!(select(&m, None, 1), Ok(&out(7)));
        assert_eq!(select(&m, None, 9), Ok(&out(7)));
        assert_eq!(select(&m, Some(4), 2), Ok(&out(7)));
    }

    #[test]
    fn a_list_outside_a_foreach_is_per_attempt() {
        let m = Mock::List(vec![MockItem::One(err("x")), MockItem::One(out(1))]);
        assert_eq!(select(&m, None, 1), Ok(&err("x")));
        assert_eq!(select(&m, None, 2), Ok(&out(1)));
        assert!(select(&m, None, 3).unwrap_err().contains("results for 2 attempt(s), but attempt 3"));
        let nested = Mock::List(vec![MockItem::Attempts(vec![out(1)])]);
        assert!(select(&nested, None, 1).unwrap_err().contains("only for steps inside a foreach"));
    }

    #[test]
    fn a_list_inside_a_foreach_is_per_iteration_then_per_attempt() {
        let m = Mock::List(vec![MockItem::One(out(10)), MockItem::Attempts(vec![err("x"), out(11)])]);
        assert_eq!(select(&m, Some(0), 1), Ok(&out(10)));
        assert_eq!(select(&m, Some(0), 3), Ok(&out(10)));
        assert_eq!(select(&m, Some(1), 1), Ok(&err("x")));
        assert_eq!(select(&m, Some(1), 2), Ok(&out(11)));
        assert!(select(&m, Some(1), 3).is_err());
        assert!(select(&m, Some(2), 1).unwrap_err().contains("2 iteration(s), but iteration 3"));
        let gap = Mock::List(vec![MockItem::One(out(1)), MockItem::Nothing]);
        assert!(select(&gap, Some(1), 1).unwrap_err().contains("no result (null) for iteration 2"));
    }

    #[test]
    fn unmocked_calls_fail_and_are_reported_by_step_and_connector() {
        let mock = MockConnector::new(BTreeMap::from([("pay".to_string(), Mock::One(out(1)))]));
        assert_eq!(mock.answer("i", "pay", "payments.pay", &json!({}), "i:pay:1", 1), Ok(json!(1)));
        assert_eq!(mock.answer("i", "dates", "noop", &json!({"a": 1}), "i:dates[0]:1", 1), Ok(json!({"a": 1})));
        let e = mock.answer("i", "fetch", "inps.contributions", &json!({}), "i:fetch:1", 1).unwrap_err();
        assert!(matches!(e, ConnectorError::Fatal { ref code, .. } if code == "scenario.unmocked"));
        assert_eq!(mock.problems(), vec!["step `fetch` called `inps.contributions`, but the scenario has no mock for `fetch`".to_string()]);
        assert_eq!(mock.calls().len(), 3);
    }

    #[test]
    fn identity_and_settings_run_for_real_unless_mocked() {
        let mock = MockConnector::new(BTreeMap::new());
        let checked = mock.answer("i", "formal", "identity.check", &json!({"fiscal_code": "RSSMRA80A01H501X"}), "i:formal:1", 1).unwrap();
        assert_eq!(checked["fiscal_code"]["valid"], json!(false));
        let setting = mock.answer("i", "limits", "settings.get", &json!({"name": "x", "default": 5000}), "i:limits:1", 1).unwrap();
        assert_eq!(setting["value"], json!(5000));
        assert!(mock.problems().is_empty());
    }
}
