//! Workflow tests for analysts: scenarios written in YAML beside a workflow
//! (`<workflow-file-stem>.test.yaml`), run against the real engine with mocked connectors,
//! automatic human tasks and messages, and a simulated clock.
//!
//! A scenario gives the start input, the result each connector call returns (by step id,
//! per attempt or per foreach iteration), the decisions operators take on the tasks that
//! appear, the messages that arrive while the instance waits, and what must be true at the
//! end: the status, the path of steps, the output or error, the tasks created and what the
//! workflow sent to each connector. The runner drives one instance on a throw-away SQLite
//! database with a [`ManualClock`](pratica_engine::clock::ManualClock) that jumps to the next due
//! timer whenever nothing else can happen, so waits, receive timeouts and retry backoff take
//! no real time; the simulated time is reported.
//!
//! - [`model`]: what a test file says;
//! - [`parse`]: the YAML text → model, every problem as a [`Diagnostic`] with its position;
//! - [`mock`]: the mock connector and how it picks a result for a call;
//! - [`diff`]: value comparison (numbers by value) and line-by-line differences;
//! - [`runner`]: loading the workflows, running scenarios, checking the expectations.
//!
//! The format is documented for analysts in `docs/TESTING.md`. Nothing here does HTTP; the
//! `pratica test` command only prints what [`run_file`] reports.

pub mod diff;
pub mod mock;
pub mod model;
pub mod parse;
pub mod runner;

pub use diff::DiffLine;
pub use model::*;
pub use runner::{
    Detail, Failure, FileProblem, FileReport, RunOptions, ScenarioReport, Timeline, find_test_files, format_elapsed, load_suite, path_of,
    run_file, run_scenario,
};

use pratica_engine::definition::Diagnostic;

/// Stable codes of the problems a test file can have (documented in `docs/TESTING.md`).
pub mod code {
    /// The test file or its workflow cannot be read, or the workflow does not load.
    pub const FILE: &str = "WT0001";
    /// The YAML is not well formed, has a duplicate key or exceeds a limit.
    pub const YAML: &str = "WT0002";
    /// A required field is missing.
    pub const MISSING: &str = "WT0101";
    /// A field that the format does not have.
    pub const UNKNOWN_FIELD: &str = "WT0102";
    /// A value of the wrong type.
    pub const WRONG_TYPE: &str = "WT0103";
    /// A value that is not allowed (a bad duration, date, status, ...).
    pub const INVALID: &str = "WT0104";
    /// Two scenarios with the same name.
    pub const DUPLICATE_NAME: &str = "WT0105";
    /// A step id that the workflow (or its sub-workflows) does not have.
    pub const UNKNOWN_STEP: &str = "WT0201";
    /// A step of the wrong kind (a mock for a step that is not a `call`, a task for a step
    /// that is not `human`).
    pub const WRONG_STEP_KIND: &str = "WT0202";
    /// A message no `receive` step waits for.
    pub const UNKNOWN_MESSAGE: &str = "WT0203";
}

/// Renders diagnostics of one file, one after the other.
pub fn render_all(diagnostics: &[Diagnostic], file: &str, source: &str) -> String {
    diagnostics.iter().map(|d| d.render(file, source)).collect::<Vec<_>>().join("\n")
}
