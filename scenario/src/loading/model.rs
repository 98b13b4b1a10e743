//! What a test file says: scenarios, their mocks, operator decisions, messages and
//! expectations. Built by [`super::parse`]; every item remembers its JSON pointer so a later
//! check (against the workflow) can point at the line that is wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use pratica_engine::clock::Millis;

/// A test file: the scenarios of one workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct TestFile {
    /// In the order of the file.
    pub scenarios: Vec<Scenario>,
}

/// One scenario: a start input, the world's answers, and what must be true at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Line of the scenario in the test file.
    pub line: usize,
    /// JSON pointer of the scenario (`/scenarios/3`).
    pub pointer: String,
    /// The simulated time at which the instance starts.
    pub start_at: Millis,
    /// The start input (the file's base `input` with the scenario's merged into it).
    pub input: Value,
    /// Results of connector calls by step id (the file's `mocks` overridden by the scenario's).
    pub mocks: BTreeMap<String, Located<Mock>>,
    pub tasks: Vec<Located<TaskAction>>,
    pub messages: Vec<Located<MessageAction>>,
    pub expect: Expect,
}

/// A value with the JSON pointer it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub pointer: String,
    pub value: T,
}

/// What a mocked step returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Mock {
    /// The same result for every call, attempt and iteration.
    One(MockResult),
    /// Outside a foreach: one result per attempt. Inside a foreach: one entry per
    /// iteration (which may itself be a list, one result per attempt).
    List(Vec<MockItem>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MockItem {
    One(MockResult),
    /// `null` in a per-iteration list: this iteration is not expected to call the step.
    Nothing,
    /// Per attempt, for one foreach iteration.
    Attempts(Vec<MockResult>),
}

/// One answer of a connector.
#[derive(Debug, Clone, PartialEq)]
pub enum MockResult {
    Output(Value),
    Error(MockError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MockError {
    pub code: String,
    pub message: String,
    /// Retryable errors follow the step's `retry` (timeouts, unavailable services); others
    /// are business errors, retried only when `retry.on` lists them.
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

/// An operator's decision on a human task, taken when a task of `step` is open.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAction {
    pub step: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub by: String,
    pub form: Value,
    /// How long after the task appears the operator acts.
    pub after: Duration,
    /// The completion must be refused with a message containing this text (four-eyes, a
    /// missing reason); the task stays open for the next entry.
    pub refused: Option<String>,
}

/// A message published while an instance waits for it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageAction {
    pub name: String,
    /// The correlation key; by default the key the waiting instance expects.
    pub key: Option<String>,
    pub payload: Value,
    /// How long after the instance starts waiting the message arrives.
    pub after: Duration,
}

/// The final status of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Completed,
    Failed,
    /// Still waiting for a task, a message or a timer that nothing in the scenario brings.
    Waiting,
    Cancelled,
}

impl Status {
    /// The names an analyst writes, in the order of the enum.
    pub const NAMES: &'static [&'static str] = &["completed", "failed", "waiting", "cancelled"];

    /// The status named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "completed" => Some(Status::Completed),
            "failed" => Some(Status::Failed),
            "waiting" => Some(Status::Waiting),
            "cancelled" => Some(Status::Cancelled),
            _ => None,
        }
    }

    /// The name an analyst writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Waiting => "waiting",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What must be true when the scenario has run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub status: Option<Status>,
    /// The exact list of steps passed, in order.
    pub path: Option<Located<Vec<String>>>,
    /// Steps that must appear in the path in this order (others may come between).
    pub path_includes: Option<Located<Vec<String>>>,
    pub output: Option<Value>,
    pub output_includes: Option<Value>,
    pub error: Option<ErrorExpect>,
    /// Every task created (in the instance and its sub-workflows), in order.
    pub tasks: Option<Vec<Located<TaskExpect>>>,
    /// What the workflow sent to connectors, by step id.
    pub calls: BTreeMap<String, Located<CallsExpect>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorExpect {
    pub code: Option<String>,
    /// Text the error message must contain.
    pub message: Option<String>,
    pub step: Option<String>,
}

/// The fields of a created task to check; fields not given are not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskExpect {
    pub step: String,
    pub title: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallsExpect {
    /// Checks that apply to every call of the step.
    Every(CallExpect),
    /// One entry per call (retries of one call are one call), in order.
    Each(Vec<CallExpect>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallExpect {
    /// How many times the step was called (retries not counted). Only in the mapping form.
    pub count: Option<usize>,
    /// How many attempts were made (retries included).
    pub attempts: Option<u32>,
    /// The exact input sent.
    pub input: Option<Value>,
    /// Fields the input must contain (a subset match).
    pub input_includes: Option<Value>,
}
