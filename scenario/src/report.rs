//! What a run reports: per test file, per scenario, the failures with their text or
//! line-by-line diff, and the instances' histories. The `pratica test` command prints these;
//! nothing here runs anything.

use std::path::PathBuf;
use std::time::Duration;

use pratica_engine::definition::Diagnostic;
use pratica_engine::store::HistoryRow;

use crate::expectations::diff::DiffLine;

/// What happened to one test file.
#[derive(Debug)]
pub struct FileReport {
    pub file: PathBuf,
    pub result: Result<Vec<ScenarioReport>, FileProblem>,
}

/// Why a test file could not run: its problems, rendered with `file:line:column`.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub diagnostics: Vec<Diagnostic>,
    pub rendered: String,
}

/// What happened to one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    /// Line of the scenario in the test file.
    pub line: usize,
    /// Real time taken.
    pub wall: Duration,
    /// Simulated time from the start to the end.
    pub simulated: Duration,
    /// Final status of the instance: completed, failed, waiting, cancelled (or `not run`).
    pub status: String,
    pub failures: Vec<Failure>,
    /// The history of the instance and its sub-workflow instances, for debugging.
    pub timeline: Vec<Timeline>,
}

impl ScenarioReport {
    /// The report of a scenario that has not run (yet): no time, no failure.
    pub fn not_run(name: &str, line: usize) -> Self {
        Self {
            name: name.to_string(),
            line,
            wall: Duration::ZERO,
            simulated: Duration::ZERO,
            status: "not run".into(),
            failures: Vec::new(),
            timeline: Vec::new(),
        }
    }

    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One thing that is not as expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub title: String,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    None,
    Text(String),
    /// Expected (`-`) against actual (`+`), line by line.
    Diff(Vec<DiffLine>),
}

impl Failure {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), detail: Detail::None }
    }

    pub(crate) fn text(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self { title: title.into(), detail: Detail::Text(text.into()) }
    }

    pub(crate) fn diff(title: impl Into<String>, lines: Vec<DiffLine>) -> Self {
        Self { title: title.into(), detail: Detail::Diff(lines) }
    }
}

/// The history of one instance of a scenario.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub workflow: String,
    pub instance: String,
    /// The instance that started it (sub-workflows).
    pub parent: Option<String>,
    pub status: String,
    pub entries: Vec<HistoryRow>,
}

/// A simulated duration for people: `0s`, `45s`, `3m 20s`, `2h 5m`, `3d 4h`.
pub fn format_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {secs}s")
    } else if s > 0 {
        format!("{secs}s")
    } else if d.as_millis() > 0 {
        format!("{}ms", d.as_millis())
    } else {
        "0s".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_times_read_well() {
        assert_eq!(format_elapsed(Duration::ZERO), "0s");
        assert_eq!(format_elapsed(Duration::from_secs(200)), "3m 20s");
        assert_eq!(format_elapsed(Duration::from_secs(30 * 86_400 + 3_600)), "30d 1h");
    }
}
