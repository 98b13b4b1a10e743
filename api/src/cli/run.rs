//! `pratica run FILE --input JSON_FILE`: run one instance locally, printing each step, until
//! it completes, fails or waits for the outside world. Running the same command again on
//! the same database continues the same instance (the start is idempotent on the workflow's
//! content and the input) and resumes whatever was unfinished.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pratica_engine::runtime::{Engine, EngineError, StartRequest};
use pratica_engine::store::TaskFilter;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::history::format_entry;

pub struct RunOptions {
    pub file: PathBuf,
    pub input: Option<PathBuf>,
    /// Start a new instance even if this input already ran.
    pub new: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    Failed,
    Cancelled,
    Waiting,
}

/// Deploys `file` (and the sub-workflows it names from the same directory), starts or
/// resumes its instance, and drives it while there is work due.
pub async fn run(engine: &Engine, opts: &RunOptions, out: &mut impl Write) -> anyhow::Result<RunEnd> {
    let source = std::fs::read_to_string(&opts.file).with_context(|| format!("cannot read {}", opts.file.display()))?;
    deploy_with_children(engine, &opts.file, &source, &mut BTreeSet::new()).await?;
    let deployed = engine.deploy(&source).await.map_err(|e| describe(e, &opts.file, &source))?;
    let input: Value = match &opts.input {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?
        }
        None => Value::Object(Default::default()),
    };
    let request_id = (!opts.new).then(|| {
        let mut h = Sha256::new();
        h.update(deployed.hash.as_bytes());
        h.update(input.to_string().as_bytes());
        format!("run-{}", &hex::encode(h.finalize())[..24])
    });
    let started =
        engine.start(StartRequest { workflow: deployed.workflow.clone(), version: Some(deployed.version), input, request_id }).await?;
    writeln!(
        out,
        "{} {} v{}: instance {}",
        if started.created { "started" } else { "resuming" },
        deployed.workflow,
        deployed.version,
        started.id
    )?;
    let mut printed = 0;
    loop {
        let pass = engine.run_once().await?;
        let history = engine.store().history(&started.id).await?;
        for h in history.iter().skip(printed) {
            writeln!(out, "  {}", format_entry(h))?;
        }
        printed = history.len();
        let row = engine.store().instance(&started.id).await?;
        match row.status.as_str() {
            "completed" => {
                writeln!(out, "completed; output:\n{}", pretty(row.output.as_deref()))?;
                return Ok(RunEnd::Completed);
            }
            "failed" => {
                writeln!(out, "failed: {}", pretty(row.error.as_deref()))?;
                return Ok(RunEnd::Failed);
            }
            "cancelled" => {
                writeln!(out, "cancelled")?;
                return Ok(RunEnd::Cancelled);
            }
            _ => {}
        }
        if pass.claimed == 0 {
            // Nothing due now: wait for a job due soon, or report what the instance waits for.
            match engine.store().next_wakeup().await? {
                Some(t) if t - engine.now() <= 2_000 => {
                    tokio::time::sleep(Duration::from_millis((t - engine.now()).clamp(1, 2_000) as u64)).await
                }
                next => {
                    report_waiting(engine, &started.id, next, out).await?;
                    return Ok(RunEnd::Waiting);
                }
            }
        }
    }
}

async fn report_waiting(engine: &Engine, id: &str, next: Option<i64>, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "waiting (the instance is stored; run the same command again to continue):")?;
    let tasks =
        engine.store().tasks(&TaskFilter { instance_id: Some(id.into()), status: Some("open".into()), ..Default::default() }).await?;
    for t in tasks {
        let role = t.role.as_deref().unwrap_or("(any)");
        let office = t.office.as_deref().unwrap_or("(any)");
        writeln!(out, "  human task {} \"{}\" for role {role} office {office}", t.id, t.title)?;
    }
    if let Some(t) = next {
        writeln!(out, "  next timer or retry due at {}", pratica_engine::clock::to_rfc3339(t))?;
    }
    Ok(())
}

/// Deploys the sub-workflows `source` names, found as `<name>.yaml` beside `file`.
async fn deploy_with_children(engine: &Engine, file: &Path, source: &str, seen: &mut BTreeSet<String>) -> anyhow::Result<()> {
    let Ok((def, _)) = pratica_engine::definition::load(source) else { return Ok(()) };
    seen.insert(def.workflow.clone());
    let dir = file.parent().unwrap_or(Path::new("."));
    for name in sub_workflows(&def.steps) {
        if seen.contains(&name) {
            continue;
        }
        let child = dir.join(format!("{name}.yaml"));
        if let Ok(child_source) = std::fs::read_to_string(&child) {
            Box::pin(deploy_with_children(engine, &child, &child_source, seen)).await?;
            engine.deploy(&child_source).await.map_err(|e| describe(e, &child, &child_source))?;
        }
    }
    Ok(())
}

fn sub_workflows(steps: &[pratica_engine::definition::StepDef]) -> Vec<String> {
    let mut out = Vec::new();
    for s in steps {
        if let Some(w) = &s.workflow {
            out.push(w.name.clone());
        }
        let nested = s
            .parallel
            .iter()
            .flat_map(|p| p.branches.iter().map(|b| &b.steps))
            .chain(s.foreach.iter().map(|f| &f.steps))
            .chain(s.catch.iter().filter_map(|c| c.steps.as_ref()))
            .chain(s.compensate.iter());
        for list in nested {
            out.extend(sub_workflows(list));
        }
    }
    out
}

fn describe(e: EngineError, file: &Path, source: &str) -> anyhow::Error {
    match e {
        EngineError::Definition(diagnostics) => {
            let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(&file.display().to_string(), source)).collect();
            anyhow::anyhow!("{} is not valid:\n{}", file.display(), rendered.join("\n"))
        }
        other => other.into(),
    }
}

fn pretty(json: Option<&str>) -> String {
    json.and_then(|j| serde_json::from_str::<Value>(j).ok())
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|| "null".into())
}

/// Fails when the workflow cannot run with the configured connectors.
pub fn check_exists(file: &Path) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{} does not exist", file.display());
    }
    Ok(())
}
