//! Workflow tests for analysts: scenarios written in YAML beside a workflow
//! (`<workflow-file-stem>.test.yaml`), run against the real engine with mocked connectors,
//! automatic human tasks and messages, and a simulated clock. This is the runner behind
//! `pratica test`; it uses only the engine's public API.
//!
//! A scenario gives the start input, the result each connector call returns (by step id,
//! per attempt or per foreach iteration), the decisions operators take on the tasks that
//! appear, the messages that arrive while the instance waits, and what must be true at the
//! end: the status, the path of steps, the output or error, the tasks created and what the
//! workflow sent to each connector. The runner drives one instance on a throw-away SQLite
//! database with a [`ManualClock`](pratica_engine::clock::ManualClock) that jumps to the next
//! due timer whenever nothing else can happen, so waits, receive timeouts and retry backoff
//! take no real time; the simulated time is reported.
//!
//! # Layout
//! - [`discovery`]: finding the test files, the workflow each tests, the `schemas/`
//!   directory, and which scenarios the filter selects;
//! - [`loading`]: the YAML text → [`model`], every problem as a [`Diagnostic`] with its
//!   position; the workflows compiled into a [`Suite`];
//! - [`checks`]: the test file checked against its workflows before anything runs;
//! - [`simulation`]: running a scenario with the mock connector, tasks, messages and
//!   simulated time;
//! - [`expectations`]: what happened compared with `expect`, line-by-line [`diff`]s;
//! - [`report`]: the result types and the formatting of simulated time.
//!
//! The format is documented for analysts in `docs/TESTING.md`. Nothing here does HTTP; the
//! `pratica test` command only prints what [`run_file`] reports.

pub mod checks;
pub mod discovery;
pub mod expectations;
pub mod loading;
pub mod report;
pub mod simulation;

#[cfg(test)]
mod testing;

pub use discovery::{RunOptions, TEST_SUFFIXES, find_test_files};
pub use expectations::{diff, path_of};
pub use loading::model::{self, *};
pub use loading::{LoadedWorkflow, Suite, load_suite, parse};
pub use report::{Detail, Failure, FileProblem, FileReport, ScenarioReport, Timeline, format_elapsed};
pub use simulation::{mock, run_file, run_scenario};

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
