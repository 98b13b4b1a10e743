//! `pratica test FILE_OR_DIR...`: run analysts' workflow tests (`*.test.yaml`, see
//! docs/TESTING.md) and report like a test runner: one line per scenario, the failures with
//! a line-by-line diff and the instance's history, and a summary. The work is done by
//! `pratica_scenario`; this module only prints.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use pratica_scenario::{self as scenario, Detail, FileReport, RunOptions, ScenarioReport, diff};

use crate::cli::history::format_entry;

/// The totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

/// Finds the test files under `paths`, runs them and prints the report to `out`.
pub async fn run(paths: &[PathBuf], opts: &RunOptions, out: &mut impl Write) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let files = scenario::find_test_files(paths)?;
    if files.is_empty() {
        writeln!(
            out,
            "no test files (*.test.yaml) found in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )?;
        return Ok(Summary::default());
    }
    let mut reports = Vec::new();
    for file in &files {
        writeln!(out, "test {}", file.display())?;
        out.flush()?;
        let report = scenario::run_file(file, opts).await;
        write_file_lines(&report, out)?;
        reports.push(report);
    }
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for r in &reports {
        match &r.result {
            Err(_) => {
                summary.failed += 1;
                failures.push(r);
            }
            Ok(scenarios) => {
                let failed = scenarios.iter().filter(|s| !s.passed()).count();
                summary.failed += failed;
                summary.passed += scenarios.len() - failed;
                if failed > 0 {
                    failures.push(r);
                }
            }
        }
    }
    if !failures.is_empty() {
        writeln!(out, "\nfailures:")?;
        for r in failures {
            write_failures(r, out)?;
        }
    }
    writeln!(
        out,
        "\ntest result: {}. {} passed, {} failed ({} file(s), {:.2} s)",
        if summary.ok() { "ok" } else { "FAILED" },
        summary.passed,
        summary.failed,
        files.len(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(summary)
}

fn timing(s: &ScenarioReport) -> String {
    format!("{} ms, simulated {}", s.wall.as_millis(), scenario::format_elapsed(s.simulated))
}

fn write_file_lines(report: &FileReport, out: &mut impl Write) -> std::io::Result<()> {
    match &report.result {
        Err(p) => writeln!(out, "  FAIL  the test file has {} problem(s)", p.diagnostics.len().max(1)),
        Ok(scenarios) if scenarios.is_empty() => writeln!(out, "  (no scenario matches the filter)"),
        Ok(scenarios) => {
            for s in scenarios {
                let mark = if s.passed() { "ok  " } else { "FAIL" };
                writeln!(out, "  {mark}  {}  ({})", s.name, timing(s))?;
            }
            Ok(())
        }
    }
}

fn write_failures(report: &FileReport, out: &mut impl Write) -> std::io::Result<()> {
    let file = report.file.display();
    match &report.result {
        Err(p) => {
            writeln!(out, "\n---- {file}: invalid test file ----")?;
            write!(out, "{}", p.rendered)?;
            if !p.rendered.ends_with('\n') {
                writeln!(out)?;
            }
        }
        Ok(scenarios) => {
            for s in scenarios.iter().filter(|s| !s.passed()) {
                writeln!(out, "\n---- {file}:{} {} ----", s.line, s.name)?;
                writeln!(out, "status {}, simulated time {}", s.status, scenario::format_elapsed(s.simulated))?;
                for (i, f) in s.failures.iter().enumerate() {
                    writeln!(out, "\n{}) {}", i + 1, f.title)?;
                    match &f.detail {
                        Detail::None => {}
                        Detail::Text(t) => {
                            for line in t.lines() {
                                writeln!(out, "   {line}")?;
                            }
                        }
                        Detail::Diff(lines) => write!(out, "{}", diff::render(lines))?,
                    }
                }
                if !s.timeline.is_empty() {
                    writeln!(out, "\ntimeline:")?;
                    for t in &s.timeline {
                        let parent = t.parent.as_deref().map(|p| format!(", started by {p}")).unwrap_or_default();
                        writeln!(out, "  {} (instance {}{parent}) — {}", t.workflow, t.instance, t.status)?;
                        for h in &t.entries {
                            writeln!(out, "    {}", format_entry(h))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
