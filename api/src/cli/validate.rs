//! `pratica validate FILE_OR_DIR...`: check workflow files and report every problem.

use std::io::Write;
use std::path::{Path, PathBuf};

use pratica_engine::definition::{self, Diagnostic};
use serde::Serialize;

use crate::config::Config;
use crate::workspace;

/// The result for one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip)]
    source: String,
}

/// Validates every workflow file under `paths`.
pub fn validate_paths(paths: &[PathBuf], config: &Config, schemas: Option<&Path>) -> std::io::Result<Vec<FileReport>> {
    let files = workspace::workflow_files(paths)?;
    let names = workspace::workflow_names(&files);
    Ok(files.iter().map(|file| validate_file(file, &workspace::catalog_for(file, config, schemas, &names))).collect())
}

fn validate_file(file: &Path, catalog: &pratica_engine::definition::Catalog) -> FileReport {
    let mut report = FileReport {
        file: file.display().to_string(),
        valid: false,
        workflow: None,
        version: None,
        steps: None,
        hash: None,
        diagnostics: Vec::new(),
        source: String::new(),
    };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.diagnostics.push(Diagnostic::new(definition::code::FILE_UNREADABLE, format!("cannot read the file: {e}")));
            return report;
        }
    };
    report.source = String::from_utf8_lossy(&bytes).into_owned();
    match definition::compile_bytes(&bytes, catalog) {
        Ok(plan) => {
            report.valid = true;
            report.workflow = Some(plan.workflow.clone());
            report.version = Some(plan.version);
            report.steps = Some(plan.steps.len());
            report.hash = Some(plan.hash);
        }
        Err(diagnostics) => report.diagnostics = diagnostics,
    }
    report
}

/// Writes the reports for a person: diagnostics with source lines and carets, then a summary.
pub fn write_human(reports: &[FileReport], out: &mut impl Write) -> std::io::Result<()> {
    for r in reports {
        if r.valid {
            writeln!(
                out,
                "ok    {}: {} v{} ({} steps, plan {})",
                r.file,
                r.workflow.as_deref().unwrap_or("?"),
                r.version.unwrap_or(0),
                r.steps.unwrap_or(0),
                r.hash.as_deref().map_or("", |h| &h[..12.min(h.len())])
            )?;
        } else {
            writeln!(out, "FAIL  {}: {} problem(s)", r.file, r.diagnostics.len())?;
            for d in &r.diagnostics {
                writeln!(out, "{}", d.render(&r.file, &r.source))?;
            }
        }
    }
    let failed = reports.iter().filter(|r| !r.valid).count();
    let problems: usize = reports.iter().map(|r| r.diagnostics.len()).sum();
    if reports.is_empty() {
        writeln!(out, "no workflow files found")?;
    } else if failed == 0 {
        writeln!(out, "{} workflow file(s) valid", reports.len())?;
    } else {
        writeln!(out, "{failed} of {} workflow file(s) invalid, {problems} problem(s)", reports.len())?;
    }
    Ok(())
}

/// Writes the reports as one JSON array, for editors and CI tools.
pub fn write_json(reports: &[FileReport], out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, reports)?;
    writeln!(out)
}
