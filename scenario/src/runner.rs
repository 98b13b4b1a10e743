//! Running scenarios: load a test file and its workflows, check the file against them, then
//! run each scenario on a fresh throw-away SQLite database with mocked connectors and a
//! manual clock, and compare what happened with what was expected.
//!
//! The loop of one scenario: run every due job; if the instance has finished, stop.
//! Otherwise act as the world would: answer external tasks from the mocks, complete the
//! first open task that has an entry in `tasks` (once its `after` has passed), publish the
//! first message of `messages` that a waiting instance expects. When nothing can happen now,
//! move the clock to the next due timer, retry or delayed action; when nothing is due at
//! all, the instance is `waiting` and the scenario ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::diff::{self, DiffLine};
use super::mock::{MockConnector, RecordedCall};
use super::model::*;
use super::{code, parse, render_all};
use pratica_engine::clock::{Clock, ManualClock, Millis};
use pratica_engine::connector::{ConnectorError, Registry};
use pratica_engine::definition::diagnostic::did_you_mean;
use pratica_engine::definition::{self, Catalog, Diagnostic, SourceMap};
use pratica_engine::plan::{Action, BlockRole, Plan, StepIx};
use pratica_engine::runtime::state::{InstanceState, StepError, Waiting};
use pratica_engine::runtime::{Engine, EngineConfig, EngineError, ExternalFailure, ExternalWorker, StartRequest, TaskCompletion};
use pratica_engine::store::{HistoryRow, InstanceFilter, InstanceRow, Store, TaskFilter, TaskRow, WorkflowRow};

/// Suffixes of test files.
pub const TEST_SUFFIXES: &[&str] = &[".test.yaml", ".test.yml"];

/// How long a scenario may run in simulated time before it is stopped.
pub const MAX_SIMULATED: Duration = Duration::from_secs(20 * 366 * 86_400);

/// How many rounds (run due work, then act) a scenario may take.
pub const MAX_ROUNDS: usize = 20_000;

const WORKER: &str = "pratica-test";

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only the scenarios whose name contains this text.
    pub filter: Option<String>,
    /// Directory of JSON Schemas for inputs and forms (default: the nearest `schemas/`
    /// directory beside or above the test file).
    pub schemas_dir: Option<PathBuf>,
}

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
    fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), detail: Detail::None }
    }

    fn text(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self { title: title.into(), detail: Detail::Text(text.into()) }
    }

    fn diff(title: impl Into<String>, lines: Vec<DiffLine>) -> Self {
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
    map: SourceMap,
    schemas: pratica_engine::schemas::SchemaSet,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").field("file", &self.file).field("scenarios", &self.test.scenarios.len()).finish()
    }
}

// ---------------------------------------------------------------------------------------
// Finding and loading
// ---------------------------------------------------------------------------------------

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    TEST_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The test files named by `paths`: test files as given, a workflow file's test file beside
/// it, directories searched recursively; sorted for stable output.
pub fn find_test_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut out)?;
        } else if is_test_file(path) {
            if !path.is_file() {
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} does not exist", path.display())));
            }
            out.push(path.clone());
        } else {
            let beside = test_file_of(path);
            match beside {
                Some(t) if t.is_file() => out.push(t),
                _ if !path.exists() => {
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} does not exist", path.display())));
                }
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "{} has no test file beside it (expected {})",
                            path.display(),
                            test_file_of(path).unwrap_or_default().display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out)?;
        } else if is_test_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// `x.yaml` → `x.test.yaml`.
fn test_file_of(workflow: &Path) -> Option<PathBuf> {
    let name = workflow.file_name()?.to_str()?;
    let stem = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml"))?;
    Some(workflow.with_file_name(format!("{stem}.test.yaml")))
}

/// `x.test.yaml` → `x.yaml` (or `x.yml`) beside it.
fn workflow_file_of(test: &Path) -> Option<PathBuf> {
    let name = test.file_name()?.to_str()?;
    let stem = TEST_SUFFIXES.iter().find_map(|s| name.strip_suffix(s))?;
    let yaml = test.with_file_name(format!("{stem}.yaml"));
    let yml = test.with_file_name(format!("{stem}.yml"));
    Some(if !yaml.is_file() && yml.is_file() { yml } else { yaml })
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
    let schemas = schemas_dir.as_ref().map_or_else(pratica_engine::schemas::SchemaSet::none, pratica_engine::schemas::SchemaSet::from_dir);
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

/// Workflow name → file, for the workflow files of a directory.
fn workflows_in(dir: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for path in entries.flatten().map(|e| e.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !is_test_file(&path)
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok((def, _)) = definition::load(&text)
        {
            out.entry(def.workflow).or_insert(path);
        }
    }
    out
}

/// The nearest `schemas/` directory beside or above the test file's directory.
fn find_schemas_dir(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let start = dir.canonicalize().ok()?;
    start.ancestors().map(|a| a.join("schemas")).find(|p| p.is_dir())
}

// ---------------------------------------------------------------------------------------
// Checking the test file against the workflows
// ---------------------------------------------------------------------------------------

/// What a step id refers to, in the workflows of a suite.
struct StepInfo {
    workflow: String,
    keyword: &'static str,
    in_foreach: bool,
}

fn in_foreach(plan: &Plan, step: StepIx) -> bool {
    match &plan.block(plan.step(step).block).role {
        BlockRole::Root => false,
        BlockRole::ForeachBody { .. } => true,
        BlockRole::Branch { step, .. } | BlockRole::Catch { step, .. } | BlockRole::Compensation { step } => in_foreach(plan, *step),
    }
}

impl Suite {
    pub fn main(&self) -> &LoadedWorkflow {
        &self.workflows[0]
    }

    /// The line of a value of the test file.
    pub fn line_of(&self, pointer: &str) -> usize {
        self.map.value(pointer).map_or(0, |l| l.line)
    }

    fn steps(&self) -> BTreeMap<String, Vec<StepInfo>> {
        let mut out: BTreeMap<String, Vec<StepInfo>> = BTreeMap::new();
        for w in &self.workflows {
            for (i, s) in w.plan.steps.iter().enumerate() {
                out.entry(s.id.clone()).or_default().push(StepInfo {
                    workflow: w.name.clone(),
                    keyword: s.action.keyword(),
                    in_foreach: in_foreach(&w.plan, StepIx(i as u32)),
                });
            }
        }
        out
    }

    /// Connector names used by `call` steps (external tasks excepted).
    fn connectors(&self) -> BTreeSet<String> {
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
    fn topics(&self) -> BTreeSet<String> {
        self.workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Call(c) if c.connector == "external" => Some(c.topic.clone().unwrap_or_default()),
                _ => None,
            })
            .collect()
    }

    fn check(&self) -> Vec<Diagnostic> {
        let steps = self.steps();
        let of_kind = |kind: &str| -> Vec<&str> {
            steps.iter().filter(|(_, infos)| infos.iter().any(|i| i.keyword == kind)).map(|(id, _)| id.as_str()).collect()
        };
        let calls = of_kind("call");
        let humans = of_kind("human");
        let main_ids: Vec<&str> = self.main().plan.steps.iter().map(|s| s.id.as_str()).collect();
        let messages: BTreeSet<String> = self
            .workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Receive(r) => Some(r.message.clone()),
                _ => None,
            })
            .collect();
        let mut out: Vec<Diagnostic> = Vec::new();
        let mut push = |d: Diagnostic| {
            if !out.iter().any(|o| o.code == d.code && o.pointer == d.pointer) {
                out.push(d);
            }
        };
        // A step id of the right kind; the diagnostic points at `at` (a key or a value).
        let step_of_kind =
            |id: &str, kind: &str, candidates: &[&str], at: Option<definition::Location>, pointer: &str| -> Option<Diagnostic> {
                match steps.get(id) {
                    None => {
                        let hint =
                            did_you_mean(id, candidates.iter().copied()).map(|b| format!("did you mean `{b}`?")).unwrap_or_else(|| {
                                if candidates.is_empty() {
                                    format!("the workflow has no `{kind}` step")
                                } else {
                                    format!("the `{kind}` steps are: {}", candidates.join(", "))
                                }
                            });
                        let where_ = self.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
                        Some(
                            Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {where_}"))
                                .at(at)
                                .pointer(pointer)
                                .hint(hint),
                        )
                    }
                    Some(infos) if !infos.iter().any(|i| i.keyword == kind) => {
                        let i = &infos[0];
                        Some(
                            Diagnostic::new(
                                code::WRONG_STEP_KIND,
                                format!("`{id}` is a `{}` step of {}, not a `{kind}` step", i.keyword, i.workflow),
                            )
                            .at(at)
                            .pointer(pointer)
                            .hint(match kind {
                                "call" => "only `call` steps can be mocked; other steps run as written".to_string(),
                                _ if candidates.is_empty() => format!("the workflow has no `{kind}` step"),
                                _ => format!("the `{kind}` steps are: {}", candidates.join(", ")),
                            }),
                        )
                    }
                    _ => None,
                }
            };
        for s in &self.test.scenarios {
            for (id, mock) in &s.mocks {
                if let Some(d) = step_of_kind(id, "call", &calls, self.map.key(&mock.pointer), &mock.pointer) {
                    push(d);
                    continue;
                }
                let nested = matches!(&mock.value, Mock::List(items) if items.iter().any(|i| matches!(i, MockItem::Attempts(_))));
                let looped = steps.get(id).is_some_and(|infos| infos.iter().any(|i| i.in_foreach));
                if nested && !looped {
                    push(
                        Diagnostic::new(code::INVALID, format!("`{id}` is not inside a foreach, so its mock cannot be a list of lists"))
                            .at(self.map.value(&mock.pointer))
                            .pointer(mock.pointer.clone())
                            .hint("outside a foreach, a list gives one result per attempt: [ {error: ...}, {output: ...} ]"),
                    );
                }
            }
            for t in &s.tasks {
                let p = format!("{}/step", t.pointer);
                if let Some(d) = step_of_kind(&t.value.step, "human", &humans, self.map.value(&p), &p) {
                    push(d);
                }
            }
            for m in &s.messages {
                if !messages.contains(&m.value.name) {
                    let p = format!("{}/name", m.pointer);
                    let hint = did_you_mean(&m.value.name, messages.iter().map(String::as_str))
                        .map(|b| format!("did you mean `{b}`?"))
                        .unwrap_or_else(|| format!("the workflows wait for: {}", messages.iter().cloned().collect::<Vec<_>>().join(", ")));
                    push(
                        Diagnostic::new(code::UNKNOWN_MESSAGE, format!("no `receive` step waits for the message `{}`", m.value.name))
                            .at(self.map.value(&p))
                            .pointer(p)
                            .hint(hint),
                    );
                }
            }
            for path in [&s.expect.path, &s.expect.path_includes].into_iter().flatten() {
                for (i, id) in path.value.iter().enumerate() {
                    if !main_ids.contains(&id.as_str()) {
                        let p = format!("{}/{i}", path.pointer);
                        let hint = did_you_mean(id, main_ids.iter().copied())
                            .map(|b| format!("did you mean `{b}`?"))
                            .unwrap_or_else(|| "the path lists steps of the workflow under test (not of its sub-workflows)".to_string());
                        push(
                            Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {}", self.main().name))
                                .at(self.map.value(&p))
                                .pointer(p)
                                .hint(hint),
                        );
                    }
                }
            }
            for t in s.expect.tasks.iter().flatten() {
                let p = format!("{}/step", t.pointer);
                if let Some(d) = step_of_kind(&t.value.step, "human", &humans, self.map.value(&p), &p) {
                    push(d);
                }
            }
            for (id, c) in &s.expect.calls {
                if let Some(d) = step_of_kind(id, "call", &calls, self.map.key(&c.pointer), &c.pointer) {
                    push(d);
                }
            }
        }
        out.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
        out
    }

    /// Validation errors of `value` against the schema `name` (`None`: no such schema found).
    fn schema_errors(&self, name: &str, value: &Value) -> Option<Vec<String>> {
        match self.schemas.validate(name, value) {
            Ok(()) => Some(Vec::new()),
            Err(pratica_engine::schemas::SchemaError::Invalid { errors, .. }) => Some(
                errors
                    .into_iter()
                    .map(|e| format!("{}: {}", if e.field.is_empty() { "(the whole value)" } else { &e.field }, e.message))
                    .collect(),
            ),
            Err(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

/// Loads a test file and runs its scenarios (those matching the filter).
///
/// Scenarios are independent (each has its own database, clock and mocks), so they run in
/// parallel, up to the number of CPUs; the reports keep the file's order.
pub async fn run_file(file: &Path, opts: &RunOptions) -> FileReport {
    let result = match load_suite(file, opts) {
        Err(p) => Err(p),
        Ok(suite) => {
            let suite = Arc::new(suite);
            let parallel = std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 16);
            let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
            let mut set = tokio::task::JoinSet::new();
            for (i, s) in suite.test.scenarios.iter().enumerate() {
                if opts.filter.as_deref().is_some_and(|f| !s.name.contains(f)) {
                    continue;
                }
                let (suite, permits) = (suite.clone(), permits.clone());
                set.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (i, run_scenario(&suite, &suite.test.scenarios[i]).await)
                });
            }
            let mut reports = Vec::new();
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(pair) => reports.push(pair),
                    Err(e) => reports.push((
                        usize::MAX,
                        ScenarioReport {
                            name: "(a scenario)".into(),
                            line: 0,
                            wall: Duration::ZERO,
                            simulated: Duration::ZERO,
                            status: "not run".into(),
                            failures: vec![Failure::text("the scenario's run panicked", e.to_string())],
                            timeline: Vec::new(),
                        },
                    )),
                }
            }
            reports.sort_by_key(|(i, _)| *i);
            Ok(reports.into_iter().map(|(_, r)| r).collect())
        }
    };
    FileReport { file: file.to_path_buf(), result }
}

/// A throw-away SQLite database file, removed on drop.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// What stopped a run before the instance settled.
struct Abort(Failure);

impl From<EngineError> for Abort {
    fn from(e: EngineError) -> Self {
        Abort(Failure::text("the engine reported an error", e.to_string()))
    }
}

impl From<pratica_engine::store::StoreError> for Abort {
    fn from(e: pratica_engine::store::StoreError) -> Self {
        Abort(Failure::text("the store reported an error", e.to_string()))
    }
}

/// Runs one scenario and checks its expectations.
pub async fn run_scenario(suite: &Suite, scenario: &Scenario) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        line: scenario.line,
        wall: Duration::ZERO,
        simulated: Duration::ZERO,
        status: "not run".into(),
        failures: Vec::new(),
        timeline: Vec::new(),
    };
    if let Some(schema) = &suite.main().plan.input_schema
        && let Some(errors) = suite.schema_errors(schema, &scenario.input)
        && !errors.is_empty()
    {
        report.failures.push(Failure::text(format!("the scenario's input does not satisfy the schema `{schema}`"), errors.join("\n")));
        report.wall = started.elapsed();
        return report;
    }
    let db = TempDb(std::env::temp_dir().join(format!("pratica-scenario-{}.db", uuid::Uuid::now_v7())));
    let store = match Store::connect(&format!("sqlite://{}?synchronous=off", db.0.display())).await {
        Ok(s) => s,
        Err(e) => {
            report.failures.push(Failure::text("cannot create the scenario's database", e.to_string()));
            return report;
        }
    };
    let mock = MockConnector::new(scenario.mocks.iter().map(|(k, m)| (k.clone(), m.value.clone())).collect());
    let mut registry = Registry::default();
    for name in suite.connectors() {
        registry.register(&name, Arc::new(mock.clone()));
    }
    let clock = ManualClock::new(scenario.start_at);
    let engine =
        Engine::new(store.clone(), registry, Arc::new(clock.clone()), EngineConfig { worker_id: WORKER.into(), ..EngineConfig::default() });
    let mut run = Run {
        suite,
        scenario,
        engine: &engine,
        clock: &clock,
        mock: &mock,
        used_tasks: vec![false; scenario.tasks.len()],
        used_messages: vec![false; scenario.messages.len()],
        failures: Vec::new(),
    };
    let outcome = run.drive().await;
    let mut failures = std::mem::take(&mut run.failures);
    let (used_tasks, used_messages) = (run.used_tasks.clone(), run.used_messages.clone());
    match outcome {
        Ok(id) => match gather(&engine, &mock, &id).await {
            Ok(facts) => {
                report.status = facts.status.clone();
                report.simulated = Duration::from_millis((clock.now() - scenario.start_at).max(0) as u64);
                let mut problems: Vec<Failure> =
                    mock.problems().into_iter().map(|p| Failure::new(format!("connector call failed the scenario: {p}"))).collect();
                let aborted = !problems.is_empty() || !failures.is_empty();
                problems.append(&mut failures);
                report.failures = problems;
                report.failures.extend(unused(suite, scenario, &used_tasks, &used_messages, &facts));
                report.failures.extend(facts.child_input_problems(suite));
                if !aborted {
                    report.failures.extend(check(suite, scenario, &facts));
                }
                report.timeline = facts.timeline;
            }
            Err(Abort(f)) => report.failures.push(f),
        },
        Err(Abort(f)) => {
            failures.push(f);
            report.failures = failures;
            if let Ok(rows) = engine.store().instances(&InstanceFilter { limit: Some(10_000), ..Default::default() }).await
                && let Some(main) = rows.first()
                && let Ok(facts) = gather(&engine, &mock, &main.id.clone()).await
            {
                report.status = facts.status.clone();
                report.timeline = facts.timeline;
            }
        }
    }
    store.close().await;
    drop(db);
    report.wall = started.elapsed();
    report
}

struct Run<'a> {
    suite: &'a Suite,
    scenario: &'a Scenario,
    engine: &'a Engine,
    clock: &'a ManualClock,
    mock: &'a MockConnector,
    used_tasks: Vec<bool>,
    used_messages: Vec<bool>,
    /// Problems found while driving that do not stop the run.
    failures: Vec<Failure>,
}

/// A token waiting for a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MessageWait {
    instance: String,
    token: u32,
    epoch: u32,
    message: String,
    key: String,
}

fn finished(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

fn ms(d: Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

impl Run<'_> {
    /// Starts the instance and drives it until it finishes or waits for nothing the
    /// scenario brings. Returns the instance id.
    async fn drive(&mut self) -> Result<String, Abort> {
        // The workflows were compiled when the file was loaded: store them as deployed
        // without compiling them again (the engine compiles each once when it first runs it).
        let mut tx = self.engine.store().begin().await?;
        for w in &self.suite.workflows {
            let row = WorkflowRow {
                name: w.name.clone(),
                version: w.plan.version.into(),
                hash: w.plan.hash.clone(),
                source: w.source.clone(),
                deployed_at: self.clock.now(),
            };
            tx.insert_workflow(&row).await?;
        }
        tx.commit().await?;
        let main = &self.suite.main().name;
        let id = self
            .engine
            .start(StartRequest { workflow: main.clone(), version: None, input: self.scenario.input.clone(), request_id: None })
            .await
            .map_err(|e| Abort(Failure::text("the instance could not start", e.to_string())))?
            .id;
        let limit = self.scenario.start_at + ms(MAX_SIMULATED);
        let topics = self.suite.topics();
        let mut first_seen: HashMap<MessageWait, Millis> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            self.engine.run_until_idle().await?;
            let row = self.engine.store().instance(&id).await?;
            if finished(&row.status) {
                return Ok(id);
            }
            let now = self.clock.now();
            if self.answer_external(&topics).await? {
                continue;
            }
            let mut next_action: Option<Millis> = None;
            if self.act_on_tasks(now, &mut next_action).await? {
                continue;
            }
            if self.deliver_messages(now, &mut first_seen, &mut next_action).await? {
                continue;
            }
            let next_job = self.engine.store().next_wakeup().await?;
            let next_external = if topics.is_empty() { None } else { self.next_external_retry(now).await? };
            let next = [next_job, next_action, next_external].into_iter().flatten().min();
            match next {
                Some(t) if t > now => {
                    if t > limit {
                        self.failures.push(Failure::new(format!(
                            "the instance still had work after {} of simulated time; stopped (a loop?)",
                            format_elapsed(MAX_SIMULATED)
                        )));
                        return Ok(id);
                    }
                    self.clock.set(t);
                }
                // Nothing can happen any more: the instance waits for something the scenario
                // does not bring.
                _ => return Ok(id),
            }
        }
        self.failures.push(Failure::new(format!("the instance did not settle after {MAX_ROUNDS} rounds of work; stopped (a loop?)")));
        Ok(id)
    }

    /// When the next retry of an external task is due. `Store::next_wakeup` leaves external
    /// tasks out (workers fetch them), so it is read from the history: the latest
    /// `call.retry_scheduled` of each external step a token is waiting on.
    async fn next_external_retry(&self, now: Millis) -> Result<Option<Millis>, Abort> {
        let mut next: Option<Millis> = None;
        let running = self
            .engine
            .store()
            .instances(&InstanceFilter { status: Some("running".into()), limit: Some(10_000), ..Default::default() })
            .await?;
        for row in running {
            let Some(w) = self.suite.workflows.iter().find(|w| w.name == row.workflow) else { continue };
            let Ok(state) = serde_json::from_str::<InstanceState>(&row.state) else { continue };
            let waiting: BTreeSet<&str> = state
                .tokens
                .values()
                .filter(|t| matches!(t.wait, Waiting::Call { .. }))
                .map(|t| w.plan.step(t.at))
                .filter(|s| matches!(&s.action, Action::Call(c) if c.connector == "external"))
                .map(|s| s.id.as_str())
                .collect();
            if waiting.is_empty() {
                continue;
            }
            for h in self.engine.store().history(&row.id).await? {
                if h.kind != "call.retry_scheduled" || !h.step.as_deref().is_some_and(|s| waiting.contains(s)) {
                    continue;
                }
                let data: Value = serde_json::from_str(&h.data).unwrap_or(Value::Null);
                if let Some(due) = data.get("due_at").and_then(Value::as_str).and_then(parse::parse_time)
                    && due > now
                {
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
        }
        Ok(next)
    }

    /// Answers due external tasks from the mocks. True if any was answered.
    async fn answer_external(&mut self, topics: &BTreeSet<String>) -> Result<bool, Abort> {
        let mut acted = false;
        let worker = ExternalWorker { token: WORKER, name: WORKER, topics: &[] };
        for topic in topics {
            let tasks = self.engine.fetch_and_lock(&worker, topic, 100, Duration::from_secs(3600), Duration::ZERO).await?;
            for t in tasks {
                acted = true;
                let connector = format!("external (topic {topic})");
                match self.mock.answer(&t.instance_id, &t.step_id, &connector, &t.input, &t.idempotency_key, t.attempt) {
                    Ok(output) => self.engine.complete_external(t.id, &t.lock, &worker, output).await?,
                    Err(e) => {
                        let failure = match e {
                            ConnectorError::Retryable { code, message, retry_after } => {
                                ExternalFailure { code, message, retryable: true, retry_after_ms: retry_after.map(ms) }
                            }
                            ConnectorError::Fatal { code, message } => {
                                ExternalFailure { code, message, retryable: false, retry_after_ms: None }
                            }
                        };
                        self.engine.fail_external(t.id, &t.lock, &worker, failure).await?
                    }
                }
            }
        }
        Ok(acted)
    }

    /// Completes the first open task that has an entry whose time has come. True if it did.
    async fn act_on_tasks(&mut self, now: Millis, next_action: &mut Option<Millis>) -> Result<bool, Abort> {
        let mut open =
            self.engine.store().tasks(&TaskFilter { status: Some("open".into()), limit: Some(10_000), ..Default::default() }).await?;
        open.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for task in &open {
            let Some(i) =
                (0..self.scenario.tasks.len()).find(|&i| !self.used_tasks[i] && self.scenario.tasks[i].value.step == task.step_id)
            else {
                continue;
            };
            let entry = &self.scenario.tasks[i];
            let due = task.created_at + ms(entry.value.after);
            if due > now {
                *next_action = Some(next_action.map_or(due, |n| n.min(due)));
                continue;
            }
            self.used_tasks[i] = true;
            self.complete(task, entry).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn complete(&mut self, task: &TaskRow, entry: &Located<TaskAction>) -> Result<(), Abort> {
        let a = &entry.value;
        let line = self.suite.line_of(&entry.pointer);
        if let Some(form) = &task.form
            && let Some(errors) = self.suite.schema_errors(form, &a.form)
            && !errors.is_empty()
        {
            self.failures.push(Failure::text(
                format!("the form of the task entry for `{}` (line {line}) does not satisfy the schema `{form}`", a.step),
                errors.join("\n"),
            ));
        }
        let completion = TaskCompletion { outcome: a.outcome.clone(), reason: a.reason.clone(), form: a.form.clone() };
        let result = self.engine.complete_task(&task.id, &a.by, completion).await;
        match (result, &a.refused) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(text)) => {
                self.failures.push(Failure::new(format!(
                    "the task entry for `{}` (line {line}) expected the completion by {} to be refused ({text}), but it was accepted",
                    a.step, a.by
                )));
                Ok(())
            }
            (Err(e @ (EngineError::Invalid(_) | EngineError::Forbidden(_))), refused) => {
                let message = e.to_string();
                match refused {
                    Some(text) if message.contains(text.as_str()) => Ok(()),
                    Some(text) => Err(Abort(Failure::text(
                        format!("the task entry for `{}` (line {line}) was refused, but not with the expected text `{text}`", a.step),
                        message,
                    ))),
                    None => Err(Abort(Failure::text(
                        format!("the task entry for `{}` (line {line}) was refused by the engine", a.step),
                        message,
                    ))),
                }
            }
            (Err(e), _) => Err(e.into()),
        }
    }

    /// Publishes the first message a waiting instance expects, once its time has come.
    async fn deliver_messages(
        &mut self,
        now: Millis,
        first_seen: &mut HashMap<MessageWait, Millis>,
        next_action: &mut Option<Millis>,
    ) -> Result<bool, Abort> {
        let mut waits = Vec::new();
        for row in self
            .engine
            .store()
            .instances(&InstanceFilter { status: Some("running".into()), limit: Some(10_000), ..Default::default() })
            .await?
        {
            let Ok(state) = serde_json::from_str::<InstanceState>(&row.state) else { continue };
            for t in state.tokens.values() {
                if let Waiting::Message { message, key } = &t.wait {
                    let w =
                        MessageWait { instance: row.id.clone(), token: t.id, epoch: t.epoch, message: message.clone(), key: key.clone() };
                    let seen = *first_seen.entry(w.clone()).or_insert(now);
                    waits.push((seen, row.started_at, w));
                }
            }
        }
        waits.sort_by(|a, b| (a.0, a.1, &a.2.instance, a.2.token).cmp(&(b.0, b.1, &b.2.instance, b.2.token)));
        for (seen, _, w) in waits {
            let Some(i) = (0..self.scenario.messages.len()).find(|&i| {
                let m = &self.scenario.messages[i].value;
                !self.used_messages[i] && m.name == w.message && m.key.as_ref().is_none_or(|k| *k == w.key)
            }) else {
                continue;
            };
            let m = &self.scenario.messages[i].value;
            let due = seen + ms(m.after);
            if due > now {
                *next_action = Some(next_action.map_or(due, |n| n.min(due)));
                continue;
            }
            self.used_messages[i] = true;
            self.engine.publish(&m.name, &w.key, m.payload.clone()).await?;
            return Ok(true);
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------
// What happened
// ---------------------------------------------------------------------------------------

/// Everything known about a finished (or settled) scenario.
struct Facts {
    main: InstanceRow,
    /// Every instance (the main one and its sub-workflows), in start order.
    instances: Vec<InstanceRow>,
    status: String,
    history: Vec<HistoryRow>,
    tasks: Vec<TaskRow>,
    calls: Vec<RecordedCall>,
    timeline: Vec<Timeline>,
    /// What a waiting instance waits for, for the status failure.
    waiting_for: Vec<String>,
}

async fn gather(engine: &Engine, mock: &MockConnector, id: &str) -> Result<Facts, Abort> {
    let store = engine.store();
    let main = store.instance(id).await?;
    let mut instances = store.instances(&InstanceFilter { limit: Some(10_000), ..Default::default() }).await?;
    instances.sort_by(|a, b| (a.started_at, a.id != main.id, &a.id).cmp(&(b.started_at, b.id != main.id, &b.id)));
    let status = match main.status.as_str() {
        "running" | "compensating" => "waiting".to_string(),
        other => other.to_string(),
    };
    let mut tasks = Vec::new();
    let mut timeline = Vec::new();
    let mut waiting_for = Vec::new();
    for row in &instances {
        let mut t = store.tasks(&TaskFilter { instance_id: Some(row.id.clone()), limit: Some(10_000), ..Default::default() }).await?;
        for task in t.iter().filter(|t| t.status == "open" || t.status == "claimed") {
            waiting_for.push(format!(
                "a task of `{}` ({}): \"{}\" for role {} office {}",
                task.step_id,
                row.workflow,
                task.title,
                task.role.as_deref().unwrap_or("-"),
                task.office.as_deref().unwrap_or("-")
            ));
        }
        tasks.append(&mut t);
        if !finished(&row.status)
            && let Ok(state) = serde_json::from_str::<InstanceState>(&row.state)
        {
            for tok in state.tokens.values() {
                if let Waiting::Message { message, key } = &tok.wait {
                    waiting_for.push(format!("the message `{message}` with key `{key}` ({})", row.workflow));
                }
            }
        }
        timeline.push(Timeline {
            workflow: row.workflow.clone(),
            instance: row.id.clone(),
            parent: row.parent_id.clone(),
            status: row.status.clone(),
            entries: store.history(&row.id).await?,
        });
    }
    tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let history = timeline.iter().find(|t| t.instance == main.id).map(|t| t.entries.clone()).unwrap_or_default();
    let calls = mock.calls();
    Ok(Facts { main, instances, status, history, tasks, calls, timeline, waiting_for })
}

impl Facts {
    /// Sub-workflow instances whose input does not satisfy their workflow's input schema
    /// (the language promises the check; the scenario makes it).
    fn child_input_problems(&self, suite: &Suite) -> Vec<Failure> {
        let mut out = Vec::new();
        for row in self.instances.iter().filter(|r| r.parent_id.is_some()) {
            let Some(w) = suite.workflows.iter().find(|w| w.name == row.workflow) else { continue };
            let Some(schema) = &w.plan.input_schema else { continue };
            let input: Value = serde_json::from_str(&row.input).unwrap_or(Value::Null);
            if let Some(errors) = suite.schema_errors(schema, &input)
                && !errors.is_empty()
            {
                out.push(Failure::text(
                    format!("the sub-workflow `{}` was started with an input that does not satisfy its schema `{schema}`", row.workflow),
                    format!("{}\ninput: {}", errors.join("\n"), diff::pretty(&input)),
                ));
            }
        }
        out
    }

    fn error(&self) -> Option<StepError> {
        self.main.error.as_deref().and_then(|e| serde_json::from_str(e).ok())
    }

    fn output(&self) -> Value {
        pratica_engine::runtime::output_of(&self.main)
    }

    /// A short description of the end state, for failure titles.
    fn describe_status(&self) -> String {
        match (self.status.as_str(), self.error()) {
            ("failed", Some(e)) => format!("failed with `{}`: {}", e.code, e.message),
            ("waiting", _) if !self.waiting_for.is_empty() => format!("waiting for {}", self.waiting_for.join("; ")),
            ("waiting", _) => "waiting (nothing is due)".into(),
            (s, _) => s.to_string(),
        }
    }
}

/// Entries of `tasks` and `messages` that were never used.
fn unused(suite: &Suite, scenario: &Scenario, used_tasks: &[bool], used_messages: &[bool], facts: &Facts) -> Vec<Failure> {
    let mut out = Vec::new();
    for (entry, used) in scenario.tasks.iter().zip(used_tasks) {
        if !used {
            let step = &entry.value.step;
            let created = facts.tasks.iter().filter(|t| &t.step_id == step).count();
            let why = match created {
                0 => format!("no task of `{step}` was created"),
                n => format!("the {n} task(s) of `{step}` created were handled by earlier entries"),
            };
            out.push(Failure::new(format!("the task entry for `{step}` (line {}) was not used: {why}", suite.line_of(&entry.pointer))));
        }
    }
    for (entry, used) in scenario.messages.iter().zip(used_messages) {
        if !used {
            let m = &entry.value;
            out.push(Failure::new(format!(
                "the message `{}`{} (line {}) was not delivered: no instance waited for it{}",
                m.name,
                m.key.as_deref().map(|k| format!(" with key `{k}`")).unwrap_or_default(),
                suite.line_of(&entry.pointer),
                if m.after.is_zero() { String::new() } else { format!(" {} after it started waiting", format_elapsed(m.after)) }
            )));
        }
    }
    out
}

/// The steps the instance passed, in the order they finished: completed, failed (caught or
/// not; `fail` steps included), decided (`switch`), timed out (`receive`), and the `end`
/// steps reached (which the history does not record as such).
pub fn path_of(plan: &Plan, history: &[HistoryRow]) -> Vec<String> {
    let mut path = Vec::new();
    for h in history {
        let Some(id) = &h.step else { continue };
        let Some(ix) = plan.step_by_id(id) else { continue };
        let step = plan.step(ix);
        let data: Value = serde_json::from_str(&h.data).unwrap_or(Value::Null);
        let landing = match h.kind.as_str() {
            "step.completed" => {
                path.push(id.clone());
                step.next.or_else(|| match &plan.block(step.block).role {
                    BlockRole::Catch { step: owner, clause } => {
                        let owner = plan.step(*owner);
                        owner.catch.get(*clause).and_then(|c| c.goto).or(owner.next)
                    }
                    _ => None,
                })
            }
            "switch.chose" => {
                path.push(id.clone());
                data.get("next").and_then(Value::as_str).and_then(|n| plan.step_by_id(n))
            }
            "step.failed" => {
                path.push(id.clone());
                let caught = data.get("caught").and_then(Value::as_bool).unwrap_or(false);
                let code = data.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
                match step.catch.iter().find(|c| c.matches(code)) {
                    Some(c) if caught && c.handler.is_none() => c.goto,
                    _ => None,
                }
            }
            "message.timed_out" => match &step.action {
                Action::Receive(r) => {
                    path.push(id.clone());
                    r.timeout.map(|(_, target)| target)
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(l) = landing
            && matches!(plan.step(l).action, Action::End { .. })
        {
            path.push(plan.step(l).id.clone());
        }
    }
    path
}

/// Whether `expected` appears in `actual` in order (other items may come between).
fn is_subsequence(expected: &[String], actual: &[String]) -> bool {
    let mut it = actual.iter();
    expected.iter().all(|e| it.any(|a| a == e))
}

fn task_line(t: &TaskRow, fields: &TaskExpect) -> String {
    let mut parts = vec![format!("step: {}", t.step_id)];
    let show = |o: &Option<String>| o.as_deref().unwrap_or("-").to_string();
    if fields.title.is_some() {
        parts.push(format!("title: {:?}", t.title));
    }
    if fields.role.is_some() {
        parts.push(format!("role: {}", show(&t.role)));
    }
    if fields.office.is_some() {
        parts.push(format!("office: {}", show(&t.office)));
    }
    if fields.user.is_some() {
        parts.push(format!("user: {}", show(&t.assignee)));
    }
    parts.join(", ")
}

fn expected_task_line(e: &TaskExpect) -> String {
    let mut parts = vec![format!("step: {}", e.step)];
    if let Some(t) = &e.title {
        parts.push(format!("title: {t:?}"));
    }
    if let Some(r) = &e.role {
        parts.push(format!("role: {r}"));
    }
    if let Some(o) = &e.office {
        parts.push(format!("office: {o}"));
    }
    if let Some(u) = &e.user {
        parts.push(format!("user: {u}"));
    }
    parts.join(", ")
}

/// A call of a step, its retries folded together.
struct CallGroup<'a> {
    attempts: Vec<&'a RecordedCall>,
}

impl CallGroup<'_> {
    fn input(&self) -> &Value {
        &self.attempts[0].input
    }
}

/// The calls of `step`, one group per call (same instance and idempotency key), ordered
/// by instance, visit and iteration.
fn calls_of<'a>(facts: &Facts, calls: &'a [RecordedCall], step: &str) -> Vec<CallGroup<'a>> {
    let rank: HashMap<&str, usize> = facts.instances.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let mut groups: BTreeMap<(usize, u32, Vec<usize>, String), Vec<&RecordedCall>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.step_id == step) {
        let mut iterations = c.position.iterations.clone();
        iterations.reverse();
        let r = rank.get(c.instance_id.as_str()).copied().unwrap_or(usize::MAX);
        groups.entry((r, c.position.visit, iterations, c.idempotency_key.clone())).or_default().push(c);
    }
    groups
        .into_values()
        .map(|mut attempts| {
            attempts.sort_by_key(|c| (c.attempt, c.seq));
            CallGroup { attempts }
        })
        .collect()
}

/// The calls made, one line each, for a failure about how many there were.
fn describe_calls(groups: &[CallGroup]) -> String {
    if groups.is_empty() {
        return "no call was made".into();
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut input = diff::normalize(g.input()).to_string();
            if input.chars().count() > 200 {
                input = input.chars().take(197).collect::<String>() + "...";
            }
            let c = g.attempts[0];
            format!("call {} ({}, {} attempt(s)): {input}", i + 1, c.connector, g.attempts.len())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_call(step: &str, which: &str, group: &CallGroup, e: &CallExpect, out: &mut Vec<Failure>) {
    if let Some(n) = e.attempts
        && group.attempts.len() != n as usize
    {
        out.push(Failure::new(format!("{which} of `{step}` took {} attempt(s), expected {n}", group.attempts.len())));
    }
    if let Some(input) = &e.input
        && !diff::json_equal(input, group.input())
    {
        out.push(Failure::diff(
            format!("input of {which} of `{step}` differs (- expected, + actual)"),
            diff::diff_json(input, group.input()),
        ));
    }
    if let Some(input) = &e.input_includes
        && !diff::json_includes(input, group.input())
    {
        out.push(Failure::diff(
            format!("input of {which} of `{step}` does not include what was expected (- expected, + actual)"),
            diff::diff_json(input, &diff::project(input, group.input())),
        ));
    }
}

/// Compares what happened with `expect`.
fn check(suite: &Suite, scenario: &Scenario, facts: &Facts) -> Vec<Failure> {
    let e = &scenario.expect;
    let mut out = Vec::new();
    if let Some(status) = e.status
        && status.as_str() != facts.status
    {
        out.push(Failure::diff(
            format!("status differs: the instance is {}", facts.describe_status()),
            vec![DiffLine::Expected(status.as_str().into()), DiffLine::Actual(facts.status.clone())],
        ));
    }
    let path = path_of(&suite.main().plan, &facts.history);
    if let Some(expected) = &e.path
        && expected.value != path
    {
        let ex: Vec<&str> = expected.value.iter().map(String::as_str).collect();
        let ac: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(Failure::diff("path differs (- expected, + actual)", diff::trim_context(diff::diff_lines(&ex, &ac), 10)));
    }
    if let Some(expected) = &e.path_includes
        && !is_subsequence(&expected.value, &path)
    {
        let ex: Vec<&str> = expected.value.iter().map(String::as_str).collect();
        let ac: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push(Failure::diff(
            "path does not include the expected steps in this order (- missing, + other steps passed)",
            diff::diff_lines(&ex, &ac),
        ));
    }
    let output = facts.output();
    let note = if facts.status == "completed" { String::new() } else { format!(" (the instance is {})", facts.describe_status()) };
    if let Some(expected) = &e.output
        && !diff::json_equal(expected, &output)
    {
        out.push(Failure::diff(format!("output differs{note} (- expected, + actual)"), diff::diff_json(expected, &output)));
    }
    if let Some(expected) = &e.output_includes
        && !diff::json_includes(expected, &output)
    {
        out.push(Failure::diff(
            format!("output does not include what was expected{note} (- expected, + actual)"),
            diff::diff_json(expected, &diff::project(expected, &output)),
        ));
    }
    if let Some(expected) = &e.error {
        match facts.error() {
            None => out.push(Failure::new(format!("an error was expected, but the instance is {}", facts.describe_status()))),
            Some(actual) => {
                let mut lines = Vec::new();
                let mut bad = false;
                let mut field = |name: &str, exp: &Option<String>, act: &str, contains: bool| {
                    if let Some(x) = exp {
                        let ok = if contains { act.contains(x.as_str()) } else { x == act };
                        if ok {
                            lines.push(DiffLine::Same(format!("{name}: {act}")));
                        } else {
                            bad = true;
                            let label = if contains { format!("{name} containing") } else { name.to_string() };
                            lines.push(DiffLine::Expected(format!("{label}: {x}")));
                            lines.push(DiffLine::Actual(format!("{name}: {act}")));
                        }
                    }
                };
                field("code", &expected.code, &actual.code, false);
                field("step", &expected.step, actual.step.as_deref().unwrap_or("-"), false);
                field("message", &expected.message, &actual.message, true);
                if bad {
                    out.push(Failure::diff("error differs (- expected, + actual)", lines));
                }
            }
        }
    }
    if let Some(expected) = &e.tasks {
        let default_fields = TaskExpect {
            step: String::new(),
            title: Some(String::new()),
            role: Some(String::new()),
            office: Some(String::new()),
            user: None,
        };
        let ex: Vec<String> = expected.iter().map(|t| expected_task_line(&t.value)).collect();
        let ac: Vec<String> = (0..facts.tasks.len())
            .map(|i| task_line(&facts.tasks[i], expected.get(i).map(|t| &t.value).unwrap_or(&default_fields)))
            .collect();
        if ex != ac {
            let exr: Vec<&str> = ex.iter().map(String::as_str).collect();
            let acr: Vec<&str> = ac.iter().map(String::as_str).collect();
            out.push(Failure::diff(
                format!("tasks created differ: {} expected, {} created (- expected, + actual)", expected.len(), facts.tasks.len()),
                diff::diff_lines(&exr, &acr),
            ));
        }
    }
    let calls = &facts.calls;
    for (step, expected) in &e.calls {
        let groups = calls_of(facts, calls, step);
        match &expected.value {
            CallsExpect::Every(c) => {
                if let Some(n) = c.count
                    && groups.len() != n
                {
                    out.push(Failure::text(format!("`{step}` was called {} time(s), expected {n}", groups.len()), describe_calls(&groups)));
                }
                if groups.is_empty() && (c.input.is_some() || c.input_includes.is_some() || c.attempts.is_some()) {
                    out.push(Failure::new(format!("`{step}` was never called")));
                    continue;
                }
                if let Some(n) = c.attempts {
                    let total: usize = groups.iter().map(|g| g.attempts.len()).sum();
                    if total != n as usize {
                        out.push(Failure::new(format!("`{step}` was attempted {total} time(s) in all, expected {n}")));
                    }
                }
                let per_call = CallExpect { attempts: None, ..c.clone() };
                for (i, g) in groups.iter().enumerate() {
                    let which = if groups.len() == 1 { "the call".to_string() } else { format!("call {}", i + 1) };
                    check_call(step, &which, g, &per_call, &mut out);
                }
            }
            CallsExpect::Each(list) => {
                if list.len() != groups.len() {
                    out.push(Failure::text(
                        format!("`{step}` was called {} time(s), expected {}", groups.len(), list.len()),
                        describe_calls(&groups),
                    ));
                }
                for (i, (g, c)) in groups.iter().zip(list).enumerate() {
                    check_call(step, &format!("call {}", i + 1), g, c, &mut out);
                }
            }
        }
    }
    out
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

    fn row(seq: i64, kind: &str, step: Option<&str>, data: Value) -> HistoryRow {
        HistoryRow {
            instance_id: "i".into(),
            seq,
            at: 0,
            kind: kind.into(),
            step: step.map(String::from),
            data: data.to_string(),
            actor: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_path_includes_switches_fail_steps_and_the_end_reached() {
        let src = r#"workflow: p
version: 1
title: P
steps:
  - id: fetch
    call: noop
    catch:
      - error: x.down
        goto: gave_up
  - id: route
    switch:
      - when: ${ .input.a }
        goto: refused
  - id: done
    end: true
  - id: refused
    fail: { error: p.refused }
  - id: gave_up
    end: { output: none }
"#;
        let plan = definition::compile_source(src, &Catalog::builtin()).unwrap();
        let ok = [
            row(1, "instance.started", None, Value::Null),
            row(2, "call.scheduled", Some("fetch"), Value::Null),
            row(3, "step.completed", Some("fetch"), Value::Null),
            row(4, "switch.chose", Some("route"), serde_json::json!({"next": "done"})),
            row(5, "instance.completed", None, Value::Null),
        ];
        assert_eq!(path_of(&plan, &ok), ["fetch", "route", "done"]);
        let refused = [
            row(3, "step.completed", Some("fetch"), Value::Null),
            row(4, "switch.chose", Some("route"), serde_json::json!({"next": "refused"})),
            row(5, "step.failed", Some("refused"), serde_json::json!({"error": {"code": "p.refused"}, "caught": false})),
        ];
        assert_eq!(path_of(&plan, &refused), ["fetch", "route", "refused"]);
        let caught = [row(3, "step.failed", Some("fetch"), serde_json::json!({"error": {"code": "x.down"}, "caught": true}))];
        assert_eq!(path_of(&plan, &caught), ["fetch", "gave_up"]);
    }

    #[test]
    fn subsequences_keep_order() {
        let a: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert!(is_subsequence(&["a".into(), "c".into()], &a));
        assert!(!is_subsequence(&["c".into(), "a".into()], &a));
    }

    #[test]
    fn elapsed_times_read_well() {
        assert_eq!(format_elapsed(Duration::ZERO), "0s");
        assert_eq!(format_elapsed(Duration::from_secs(200)), "3m 20s");
        assert_eq!(format_elapsed(Duration::from_secs(30 * 86_400 + 3_600)), "30d 1h");
    }

    /// A scratch directory with a workflow and its test file, removed on drop.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn files(workflow: &str, test: &str) -> (Dir, PathBuf) {
        let dir = std::env::temp_dir().join(format!("pratica-scenario-unit-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("w.yaml"), workflow).unwrap();
        std::fs::write(dir.join("w.test.yaml"), test).unwrap();
        let test = dir.join("w.test.yaml");
        (Dir(dir), test)
    }

    const ROUTING: &str = r#"workflow: pec-routing
version: 1
title: Route certified mail
steps:
  - id: each
    foreach:
      over: ${ .input.messages }
      concurrency: 3
      steps:
        - id: classify
          call: external
          topic: pec.classify
          with: { id: "${ .item }" }
          retry: { attempts: 3, delay: 1s }
        - id: file
          call: archive.file
          with: { id: "${ .item }", office: "${ .steps.classify.output.office }" }
  - id: confirm
    receive:
      message: routing-confirmed
      correlate: ${ .input.batch }
      timeout: { after: 2d, goto: unconfirmed }
  - id: check
    human:
      title: "Check batch {{ input.batch }}"
      assign: { role: pec-clerk }
      outcomes: [ok, redo]
  - id: done
    end:
      output: { filed: "${ [.steps.each.output[].filed] }", checked: "${ .steps.check.output.outcome }" }
  - id: unconfirmed
    fail: { error: pec.unconfirmed, message: "Batch {{ input.batch }} was not confirmed" }
"#;

    #[tokio::test]
    async fn external_tasks_iterations_messages_and_tasks_are_driven_by_the_scenario() {
        let (_dir, test) = files(
            ROUTING,
            r#"input: { batch: B-7, messages: [m1, m2, m3] }
mocks:
  classify:
    - { output: { office: "7000" } }
    - [ { error: { code: model.busy, retryable: true } }, { output: { office: "5100" } } ]
    - { output: { office: "7000" } }
  file: { output: { filed: true } }
scenarios:
  - name: routed, confirmed and checked
    messages:
      - { name: routing-confirmed, after: 1d, payload: { ok: true } }
    tasks:
      - { step: check, outcome: ok, by: clerk, after: 2h }
    expect:
      status: completed
      path_includes: [classify, file, each, confirm, check, done]
      output: { filed: [true, true, true], checked: ok }
      tasks: [ { step: check, title: Check batch B-7, role: pec-clerk } ]
      calls:
        classify:
          - { input: { id: m1 }, attempts: 1 }
          - { input: { id: m2 }, attempts: 2 }
          - { input: { id: m3 } }
        file:
          - { input: { id: m1, office: "7000" } }
          - { input: { id: m2, office: "5100" } }
          - { input: { id: m3, office: "7000" } }
  - name: a deliberate mismatch
    messages: [ { name: routing-confirmed } ]
    tasks: [ { step: check, outcome: redo } ]
    expect:
      status: completed
      calls:
        file: { count: 4 }
  - name: never confirmed
    expect:
      status: failed
      path_includes: [each, confirm, unconfirmed]
      error: { code: pec.unconfirmed, message: B-7 was not confirmed }
"#,
        );
        let report = run_file(&test, &RunOptions::default()).await;
        let scenarios = report.result.expect("the file loads");
        let first = &scenarios[0];
        assert!(first.passed(), "{:#?}\n{:#?}", first.failures, first.timeline);
        assert_eq!(first.status, "completed");
        // The retry of `classify` (about 1s), then the message a day later, then the task 2h later.
        assert!(
            first.simulated > Duration::from_secs(86_400 + 7_200) && first.simulated < Duration::from_secs(86_400 + 7_202),
            "{:?}",
            first.simulated
        );
        let wrong = &scenarios[1];
        assert_eq!(wrong.failures.len(), 1, "{:#?}", wrong.failures);
        assert_eq!(wrong.failures[0].title, "`file` was called 3 time(s), expected 4");
        let Detail::Text(calls) = &wrong.failures[0].detail else { panic!("the calls made are listed") };
        assert!(calls.starts_with("call 1 (archive.file, 1 attempt(s)): {\"id\":\"m1\",\"office\":\"7000\"}"), "{calls}");
        let unconfirmed = &scenarios[2];
        assert!(unconfirmed.passed(), "{:#?}", unconfirmed.failures);
        assert!(unconfirmed.simulated >= Duration::from_secs(2 * 86_400) && unconfirmed.simulated < Duration::from_secs(2 * 86_400 + 2));
    }

    #[tokio::test]
    async fn steps_checks_point_at_the_test_file() {
        let (_dir, test) = files(
            ROUTING,
            "scenarios:\n  - name: x\n    mocks:\n      clasify: { output: 1 }\n      confirm: { output: 1 }\n    messages:\n      - { name: routing-confirm }\n    expect: { status: completed, path: [eachh] }\n",
        );
        let Err(problem) = load_suite(&test, &RunOptions::default()) else { panic!("the file should not load") };
        let codes: Vec<(&str, usize)> = problem.diagnostics.iter().map(|d| (d.code, d.location.map_or(0, |l| l.line))).collect();
        assert_eq!(codes, [(code::UNKNOWN_STEP, 4), (code::WRONG_STEP_KIND, 5), (code::UNKNOWN_MESSAGE, 7), (code::UNKNOWN_STEP, 8)]);
        assert!(problem.rendered.contains("did you mean `classify`?"), "{}", problem.rendered);
        assert!(problem.rendered.contains("did you mean `routing-confirmed`?"), "{}", problem.rendered);
    }
}
