//! The durable state of one instance, kept as one JSON document in the store.
//!
//! Execution positions are **tokens**: the top-level flow is token 0; a parallel step forks
//! one token per branch and a foreach one per running iteration. A token waiting on the
//! outside world (a call, a timer, a message, a task, a child instance) records what it
//! waits for and an `epoch` that changes whenever it moves, so a late or repeated event for
//! an old position is recognised and ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::plan::{BlockIx, StepIx};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub vars: Map<String, Value>,
    /// Outputs of completed steps outside foreach bodies: `id → {output}`.
    pub steps: Map<String, Value>,
    pub tokens: BTreeMap<u32, Token>,
    pub next_token: u32,
    /// How many times each step (by path, e.g. `pay` or `notify[3]`) has been scheduled:
    /// the iteration part of idempotency keys.
    pub visits: BTreeMap<String, u32>,
    /// Completed steps that declared `compensate`, in completion order.
    pub compensable: Vec<Compensable>,
    pub phase: Phase,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    #[default]
    Running,
    /// Undoing completed steps after an uncaught failure; `remaining` is in undo order.
    Compensating {
        error: StepError,
        remaining: Vec<Compensable>,
    },
    Completed {
        output: Value,
    },
    /// `resume_at`: where `retry` continues — the top-level step that failed, when the
    /// failure was not compensated (after compensation a retry could repeat undone work).
    Failed {
        error: StepError,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_at: Option<StepIx>,
    },
    Cancelled,
}

impl Phase {
    pub fn is_finished(&self) -> bool {
        matches!(self, Phase::Completed { .. } | Phase::Failed { .. } | Phase::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compensable {
    pub step: StepIx,
    pub block: BlockIx,
    /// The step data at completion, so compensation sees what the step saw and produced.
    pub locals: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: u32,
    pub at: StepIx,
    pub epoch: u32,
    pub parent: Option<u32>,
    pub role: TokenRole,
    /// Foreach-scoped data: the loop variable, `index`, and `steps` completed in the body.
    pub locals: Map<String, Value>,
    /// Output of the last step this token completed (a branch's or iteration's result).
    pub last: Value,
    /// The error being handled, while in a catch handler (`.error`).
    pub error: Option<StepError>,
    pub wait: Waiting,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum TokenRole {
    Main,
    Branch { name: String },
    Iteration { index: usize },
    Compensation,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "on")]
pub enum Waiting {
    /// Runnable (only inside a transition).
    #[default]
    Nothing,
    /// A connector call is scheduled; a retry reuses the same input and idempotency key.
    Call {
        attempt: u32,
        key: String,
        input: Value,
    },
    Timer,
    Message {
        message: String,
        key: String,
    },
    Task,
    Child,
    Branches {
        pending: BTreeSet<u32>,
        outputs: Map<String, Value>,
    },
    Iterations {
        items: Vec<Value>,
        next: usize,
        running: BTreeSet<u32>,
        results: Vec<Value>,
        concurrency: usize,
    },
}

/// A failure as the workflow sees it (`.error`): a code a `catch` can match and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl StepError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), step: None }
    }
}
