//! The YAML workflow language: what an analyst writes, and how it becomes a [`Plan`].
//!
//! Loading goes in three passes, each collecting every problem it finds:
//! 1. [`load`]: parse the YAML with serde-saphyr (bounded aliases, depth and size; duplicate
//!    keys are errors) and validate it against `schemas/workflow.schema.json`;
//! 2. deserialize into [`WorkflowDef`] (the plain model of what was written);
//! 3. [`compile`]: semantic checks (step ids, `goto` targets, reachability, connectors,
//!    expressions, templates, schema names, durations, cron) while building the plan.
//!
//! [`compile_source`] runs all three. Every [`Diagnostic`] carries a stable code, a position
//! and, where it helps, a hint.

mod compile;
pub mod diagnostic;
mod load;
mod source;

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use diagnostic::{Diagnostic, Location, code};
pub use load::{MAX_SOURCE_BYTES, load};
pub use source::SourceMap;

use crate::plan::Plan;

/// The JSON Schema of the workflow language (the file in `schemas/`), embedded.
pub const WORKFLOW_SCHEMA: &str = include_str!("../../../schemas/workflow.schema.json");

/// Connectors every installation has, without configuration.
pub const BUILTIN_CONNECTORS: &[&str] = &["http", "email", "appio", "noop", "log", "identity", "settings", "external"];

/// What a workflow may refer to outside itself: connector names, schema names and other
/// workflows. `None` for schemas or workflows means "not known here, do not check".
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub connectors: BTreeSet<String>,
    /// Accept any connector name (drawing a draft, recompiling a deployed definition).
    pub any_connector: bool,
    /// Accept a webhook bound to any secret, not only to one declared for webhooks
    /// (`webhook-…`): recompiling a definition deployed before the rule, whose webhook the
    /// engine refuses at delivery time instead.
    pub any_webhook_secret: bool,
    pub schemas: Option<BTreeSet<String>>,
    pub workflows: Option<BTreeSet<String>>,
}

impl Catalog {
    /// A catalog with the built-in connectors and nothing else checked.
    pub fn builtin() -> Self {
        Self {
            connectors: BUILTIN_CONNECTORS.iter().map(|s| s.to_string()).collect(),
            any_connector: false,
            any_webhook_secret: false,
            schemas: None,
            workflows: None,
        }
    }

    pub fn with_connectors<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.connectors.extend(names.into_iter().map(Into::into));
        self
    }

    pub fn with_schemas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.schemas = Some(names.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_workflows<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.workflows = Some(names.into_iter().map(Into::into).collect());
        self
    }
}

/// Loads, validates and compiles a workflow file's text into a plan.
pub fn compile_source(source: &str, catalog: &Catalog) -> Result<Plan, Vec<Diagnostic>> {
    let (loaded, mut diagnostics) = load::load_partial(source);
    let Some((def, map)) = loaded else { return Err(diagnostics) };
    match compile::compile(&def, source, &map, catalog) {
        Ok(plan) if diagnostics.is_empty() => Ok(plan),
        Ok(_) => Err(diagnostics),
        Err(more) => {
            // A problem both passes see (e.g. a bad duration) is reported once.
            for d in more {
                if !diagnostics.iter().any(|seen| seen.code == d.code && seen.pointer == d.pointer) {
                    diagnostics.push(d);
                }
            }
            diagnostics.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
            Err(diagnostics)
        }
    }
}

/// Like [`compile_source`] for raw bytes: input that is not UTF-8 is a diagnostic, not a panic.
pub fn compile_bytes(bytes: &[u8], catalog: &Catalog) -> Result<Plan, Vec<Diagnostic>> {
    let source = std::str::from_utf8(bytes).map_err(|e| {
        vec![
            Diagnostic::new(code::FILE_UNREADABLE, format!("the file is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
                .hint("save the workflow as UTF-8"),
        ]
    })?;
    compile_source(source, catalog)
}

// ---- The model of what was written (shape guaranteed by the JSON Schema) ----

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    pub workflow: String,
    pub version: u32,
    pub title: String,
    pub description: Option<String>,
    pub input: Option<String>,
    pub business_key: Option<String>,
    pub output: Option<Value>,
    #[serde(default)]
    pub triggers: Vec<TriggerDef>,
    pub steps: Vec<StepDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub webhook: Option<String>,
    pub secret: Option<String>,
    pub message: Option<String>,
    pub input: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: String,
    pub title: Option<String>,
    pub call: Option<String>,
    pub with: Option<Value>,
    pub topic: Option<String>,
    pub switch: Option<Vec<SwitchCaseDef>>,
    pub parallel: Option<ParallelDef>,
    pub foreach: Option<ForeachDef>,
    pub wait: Option<WaitDef>,
    pub receive: Option<ReceiveDef>,
    pub human: Option<HumanDef>,
    pub workflow: Option<SubworkflowDef>,
    pub set: Option<Map<String, Value>>,
    pub fail: Option<FailDef>,
    pub end: Option<EndDef>,
    pub goto: Option<String>,
    pub retry: Option<RetryDef>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub catch: Vec<CatchDef>,
    pub compensate: Option<Vec<StepDef>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchCaseDef {
    pub when: Option<String>,
    pub goto: Option<String>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelDef {
    pub branches: Vec<BranchDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchDef {
    pub name: String,
    pub steps: Vec<StepDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeachDef {
    pub over: String,
    #[serde(rename = "as")]
    pub item: Option<String>,
    pub concurrency: Option<u32>,
    pub steps: Vec<StepDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDef {
    #[serde(rename = "for")]
    pub duration: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveDef {
    pub message: String,
    pub correlate: String,
    pub timeout: Option<ReceiveTimeoutDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveTimeoutDef {
    pub after: String,
    pub goto: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanDef {
    pub title: String,
    pub description: Option<String>,
    pub assign: AssignDef,
    pub form: Option<String>,
    #[serde(default)]
    pub outcomes: Vec<String>,
    #[serde(default)]
    pub reason_required: Vec<String>,
    pub due: Option<String>,
    pub escalate: Option<EscalateDef>,
    #[serde(default)]
    pub separate_from: Vec<String>,
    pub notify: Option<NotifyDef>,
}

/// Notification hooks of a human task: connector calls when it is assigned or escalated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    pub assigned: Option<HookDef>,
    pub escalated: Option<HookDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookDef {
    pub call: String,
    pub with: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignDef {
    pub user: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateDef {
    pub after: String,
    pub to: AssignDef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubworkflowDef {
    pub name: String,
    pub version: Option<u32>,
    pub input: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailDef {
    pub error: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndDef {
    Flag(bool),
    Output {
        #[serde(default)]
        output: Option<Value>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    pub attempts: u32,
    pub backoff: Option<String>,
    pub delay: Option<String>,
    pub max_delay: Option<String>,
    pub jitter: Option<Jitter>,
    #[serde(default)]
    pub on: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Jitter {
    Enabled(bool),
    Fraction(f64),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatchDef {
    pub error: ErrorPatterns,
    pub steps: Option<Vec<StepDef>>,
    pub goto: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ErrorPatterns {
    One(String),
    Many(Vec<String>),
}
