//! Pratica's engine: everything that defines and runs durable workflows, without HTTP.
//!
//! # Layout
//! - [`definition`]: the YAML workflow language — parse with positions, validate against the
//!   JSON Schema and semantic rules, compile to a [`plan::Plan`].
//! - [`plan`]: the immutable, versioned, surface-independent execution plan.
//! - [`expr`]: `${ jq }` expressions (jaq), compiled at load time, sandboxed to the case data.
//! - [`budget`]: the limits every expression and template is evaluated under, and the
//!   evaluator threads transitions run on.
//! - [`template`]: `{{ handlebars }}` text in strict mode.
//! - [`duration`]: `30s`, `5m`, `2h`, `5d` durations.
//! - [`graph`]: diagrams of a plan (SVG, Mermaid, DOT).
//! - [`trigger`]: cron schedules (fired once across processes), webhooks and message triggers.
//! - [`schemas`]: the business schemas of inputs and task forms.

pub mod audit;
pub mod budget;
pub mod clock;
pub mod connector;
pub mod definition;
pub mod duration;
pub mod expr;
pub mod graph;
pub mod plan;
pub mod runtime;
pub mod schemas;
pub mod store;
pub mod template;
pub mod trigger;
