//! The execution plan: what the runtime executes.
//!
//! A plan is produced by compiling a validated definition (today from YAML; another front-end
//! could produce the same plan). It is immutable and identified by `(workflow, version)` and a
//! content hash over its canonical JSON form, so formatting or comment changes in the YAML do
//! not change the hash, while any change of behaviour does.
//!
//! Steps live in one flat list addressed by [`StepIx`]; nested step lists (parallel branches,
//! foreach bodies, catch handlers, compensations) are [`Block`]s addressed by [`BlockIx`].
//! Block 0 is the workflow's top-level list.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::expr::Expr;
use crate::template::Template;

/// Index of a step in [`Plan::steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepIx(pub u32);

/// Index of a block in [`Plan::blocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockIx(pub u32);

impl BlockIx {
    pub const ROOT: BlockIx = BlockIx(0);
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub workflow: String,
    pub version: u32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_key: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<ValueTemplate>,
    pub triggers: Vec<Trigger>,
    pub blocks: Vec<Block>,
    pub steps: Vec<Step>,
    /// SHA-256 of the canonical JSON of everything above, hex encoded.
    #[serde(skip)]
    pub hash: String,
}

/// An ordered list of steps; execution starts at the first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    pub role: BlockRole,
    pub steps: Vec<StepIx>,
}

/// Why a block exists, and which step owns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BlockRole {
    Root,
    Branch { step: StepIx, name: String },
    ForeachBody { step: StepIx },
    Catch { step: StepIx, clause: usize },
    Compensation { step: StepIx },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub block: BlockIx,
    pub action: Action,
    /// The step that runs after this one completes normally; `None` ends the block.
    pub next: Option<StepIx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensate: Option<BlockIx>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Call(Call),
    Switch(Switch),
    Parallel {
        branches: Vec<Branch>,
    },
    Foreach(Foreach),
    Wait(Wait),
    Receive(Receive),
    Human(Box<HumanTask>),
    Subworkflow(Subworkflow),
    Set {
        #[serde(serialize_with = "as_map")]
        vars: Vec<(String, ValueTemplate)>,
    },
    Fail {
        error: String,
        message: Option<Template>,
    },
    End {
        output: Option<ValueTemplate>,
    },
}

impl Action {
    /// The construct's name as written in YAML (`call`, `switch`, ...).
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Call(_) => "call",
            Action::Switch(_) => "switch",
            Action::Parallel { .. } => "parallel",
            Action::Foreach(_) => "foreach",
            Action::Wait(_) => "wait",
            Action::Receive(_) => "receive",
            Action::Human(_) => "human",
            Action::Subworkflow(_) => "workflow",
            Action::Set { .. } => "set",
            Action::Fail { .. } => "fail",
            Action::End { .. } => "end",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub connector: String,
    pub operation: Option<String>,
    pub input: Option<ValueTemplate>,
    pub topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Switch {
    pub cases: Vec<(Expr, StepIx)>,
    pub default: Option<StepIx>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub name: String,
    pub block: BlockIx,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Foreach {
    pub over: Expr,
    pub item: String,
    pub concurrency: u32,
    pub body: BlockIx,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    For(Duration),
    Until(Expr),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receive {
    pub message: String,
    pub correlate: Expr,
    pub timeout: Option<(Duration, StepIx)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HumanTask {
    pub title: Template,
    pub description: Option<Template>,
    pub assign: Assignment,
    pub form: Option<String>,
    pub outcomes: Vec<String>,
    pub reason_required: Vec<String>,
    pub due: Option<Duration>,
    pub escalate: Option<Escalation>,
    pub separate_from: Vec<StepIx>,
    /// Connector call when the task is created (assigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_assigned: Option<Call>,
    /// Connector call when the task escalates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_escalated: Option<Call>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub user: Option<ValueTemplate>,
    pub role: Option<String>,
    pub office: Option<ValueTemplate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub after: Duration,
    pub role: String,
    pub office: Option<ValueTemplate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subworkflow {
    pub workflow: String,
    pub version: Option<u32>,
    pub input: Option<ValueTemplate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Backoff,
    pub delay: Duration,
    pub max_delay: Duration,
    /// Fraction (0–1) by which each delay is randomised.
    pub jitter: f64,
    /// Error codes retried; empty means every retryable error.
    pub on: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Constant,
    Exponential,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catch {
    /// Patterns: an exact code, a prefix ending in `*`, or `*`.
    pub errors: Vec<String>,
    pub handler: Option<BlockIx>,
    pub goto: Option<StepIx>,
}

impl Catch {
    pub fn matches(&self, code: &str) -> bool {
        self.errors.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => code.starts_with(prefix),
            None => p == code,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trigger {
    Cron { schedule: String, timezone: String, input: Option<ValueTemplate> },
    Webhook { name: String, secret: Option<String>, input: Option<ValueTemplate> },
    Message { name: String, input: Option<ValueTemplate> },
}

/// A value whose strings may be expressions or templates, compiled once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ValueTemplate {
    Literal(Value),
    Expr(Expr),
    Text(Template),
    Array(Vec<ValueTemplate>),
    Object(#[serde(serialize_with = "as_map")] Vec<(String, ValueTemplate)>),
}

/// Why a value could not be produced at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(transparent)]
    Expr(#[from] crate::expr::ExprError),
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
}

impl ValueTemplate {
    /// Produces the value for the step data `data`: expressions are evaluated, templates
    /// rendered, literals copied.
    pub fn evaluate(&self, data: &Value) -> Result<Value, ValueError> {
        Ok(match self {
            ValueTemplate::Literal(v) => v.clone(),
            ValueTemplate::Expr(e) => e.eval(data)?,
            ValueTemplate::Text(t) => Value::String(t.render(data)?),
            ValueTemplate::Array(items) => Value::Array(items.iter().map(|i| i.evaluate(data)).collect::<Result<_, _>>()?),
            ValueTemplate::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| Ok((k.clone(), v.evaluate(data)?))).collect::<Result<_, ValueError>>()?)
            }
        })
    }
}

fn as_map<S: serde::Serializer>(pairs: &[(String, ValueTemplate)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl Plan {
    pub fn step(&self, ix: StepIx) -> &Step {
        &self.steps[ix.0 as usize]
    }

    pub fn block(&self, ix: BlockIx) -> &Block {
        &self.blocks[ix.0 as usize]
    }

    pub fn step_by_id(&self, id: &str) -> Option<StepIx> {
        self.steps.iter().position(|s| s.id == id).map(|i| StepIx(i as u32))
    }

    /// Computes the content hash over the canonical JSON of the plan.
    pub fn compute_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a plan always serializes to JSON");
        hex::encode(Sha256::digest(json))
    }
}
