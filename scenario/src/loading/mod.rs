//! Loading a test file: its YAML read into the [`model`] with every problem at its position
//! ([`parse`]), the workflow it tests and the sub-workflows that one starts, compiled, and
//! the business schemas; then the [`checks`](crate::checks) against those workflows. The
//! result is a [`Suite`], ready to run.

pub mod model;
pub mod parse;

mod expect;
mod mocks;
mod reader;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pratica_engine::definition::{self, Catalog, Diagnostic, SourceMap};
use pratica_engine::plan::{Action, Plan};
use pratica_engine::schemas::{SchemaError, SchemaSet};
use serde_json::Value;

use crate::discovery::{RunOptions, find_schemas_dir, workflow_file_of, workflows_in};
use crate::report::FileProblem;
use crate::{code, render_all};
use model::TestFile;

/// A workflow a test file needs: the one it tests, and the sub-workflows it starts.
#[derive(Debug)]
pub struct LoadedWorkflow {
    pub name: String,
    pub file: PathBuf,
    pub source: String,
    pub plan: Plan,
}

/// A loaded and checked test file, ready to run.
pub struct Suite {
    pub file: PathBuf,
    pub source: String,
    pub test: TestFile,
    /// The workflow under test first, then its sub-workflows.
    pub workflows: Vec<LoadedWorkflow>,
    pub schemas_dir: Option<PathBuf>,
    pub(crate) map: SourceMap,
    schemas: SchemaSet,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").field("file", &self.file).field("scenarios", &self.test.scenarios.len()).finish()
    }
}

fn problem(file: &Path, source: &str, diagnostics: Vec<Diagnostic>) -> FileProblem {
    let rendered = render_all(&diagnostics, &file.display().to_string(), source);
    FileProblem { diagnostics, rendered }
}

/// Reads a test file and the workflows it needs, and checks that the file makes sense for
/// them (mocked steps are calls, tasks are human steps, messages are awaited, ...).
pub fn load_suite(file: &Path, opts: &RunOptions) -> Result<Suite, FileProblem> {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => return Err(problem(file, "", vec![Diagnostic::new(code::FILE, format!("cannot read the test file: {e}"))])),
    };
    let (parsed, map) = parse::parse(&source);
    let test = parsed.map_err(|d| problem(file, &source, d))?;
    let workflow_file = workflow_file_of(file).unwrap_or_else(|| file.with_extension("yaml"));
    let first_line = |msg: String, hint: String| {
        Diagnostic::new(code::FILE, msg).at(Some(definition::Location { line: 1, column: 1, width: 1 })).hint(hint)
    };
    if !workflow_file.is_file() {
        let d = first_line(
            format!("there is no workflow {} for this test file", workflow_file.display()),
            "a test file `<name>.test.yaml` tests the workflow `<name>.yaml` in the same directory".into(),
        );
        return Err(problem(file, &source, vec![d]));
    }
    let workflows = load_workflows(&workflow_file).map_err(|(d, extra)| {
        let mut p = problem(file, &source, vec![first_line(d, "fix the workflow first: `pratica validate` shows every problem".into())]);
        if !extra.is_empty() {
            p.rendered = format!("{}\n{extra}", p.rendered);
        }
        p
    })?;
    let schemas_dir = opts.schemas_dir.clone().or_else(|| find_schemas_dir(file));
    let schemas = schemas_dir.as_ref().map_or_else(SchemaSet::none, SchemaSet::from_dir);
    let suite = Suite { file: file.to_path_buf(), source, test, workflows, schemas_dir, map, schemas };
    let diagnostics = suite.check();
    if !diagnostics.is_empty() {
        return Err(problem(file, &suite.source, diagnostics));
    }
    Ok(suite)
}

/// The workflow in `file` and, recursively, the sub-workflows it starts, found in the same
/// directory (as `<name>.yaml`, or any file declaring `workflow: <name>`).
fn load_workflows(file: &Path) -> Result<Vec<LoadedWorkflow>, (String, String)> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let catalog = Catalog { any_connector: true, ..Catalog::builtin() };
    let compile = |path: &Path| -> Result<LoadedWorkflow, (String, String)> {
        let source =
            std::fs::read_to_string(path).map_err(|e| (format!("cannot read the workflow {}: {e}", path.display()), String::new()))?;
        match definition::compile_source(&source, &catalog) {
            Ok(plan) => Ok(LoadedWorkflow { name: plan.workflow.clone(), file: path.to_path_buf(), source, plan }),
            Err(ds) => Err((
                format!("the workflow {} does not load ({} problem(s))", path.display(), ds.len()),
                render_all(&ds, &path.display().to_string(), &source),
            )),
        }
    };
    let mut out = vec![compile(file)?];
    let mut seen: BTreeSet<String> = BTreeSet::from([out[0].name.clone()]);
    let mut by_name: Option<HashMap<String, PathBuf>> = None;
    let mut i = 0;
    while i < out.len() {
        let children: Vec<String> = out[i]
            .plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Subworkflow(sub) => Some(sub.workflow.clone()),
                _ => None,
            })
            .collect();
        for name in children {
            if !seen.insert(name.clone()) {
                continue;
            }
            let direct = dir.join(format!("{name}.yaml"));
            let path = if direct.is_file() { Some(direct) } else { by_name.get_or_insert_with(|| workflows_in(&dir)).get(&name).cloned() };
            let Some(path) = path else {
                return Err((
                    format!("workflow `{}` starts the sub-workflow `{name}`, which is not in {}", out[i].name, dir.display()),
                    String::new(),
                ));
            };
            out.push(compile(&path)?);
        }
        i += 1;
    }
    Ok(out)
}

impl Suite {
    /// The workflow under test.
    pub fn main(&self) -> &LoadedWorkflow {
        &self.workflows[0]
    }

    /// The line of a value of the test file.
    pub fn line_of(&self, pointer: &str) -> usize {
        self.map.value(pointer).map_or(0, |l| l.line)
    }

    /// Connector names used by `call` steps (external tasks excepted).
    pub(crate) fn connectors(&self) -> BTreeSet<String> {
        self.workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Call(c) if c.connector != "external" => Some(c.connector.clone()),
                _ => None,
            })
            .collect()
    }

    /// Topics of `call: external` steps.
    pub(crate) fn topics(&self) -> BTreeSet<String> {
        self.workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Call(c) if c.connector == "external" => Some(c.topic.clone().unwrap_or_default()),
                _ => None,
            })
            .collect()
    }

    /// Validation errors of `value` against the schema `name` (`None`: no such schema found).
    pub(crate) fn schema_errors(&self, name: &str, value: &Value) -> Option<Vec<String>> {
        match self.schemas.validate(name, value) {
            Ok(()) => Some(Vec::new()),
            Err(SchemaError::Invalid { errors, .. }) => Some(
                errors
                    .into_iter()
                    .map(|e| format!("{}: {}", if e.field.is_empty() { "(the whole value)" } else { &e.field }, e.message))
                    .collect(),
            ),
            Err(_) => None,
        }
    }
}
