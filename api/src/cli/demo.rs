//! `pratica demo`: the sandbox of the external systems, the server on SQLite with the shipped
//! workflows and the console, demo console users, and a handful of applications that land in
//! every state, in one command (docs/DEMO.md).
//!
//! Idempotent on restart with the same database: users are created once and every demo start
//! carries a request id, so running it again shows the same cases, not new ones.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use pratica_engine::clock::SystemClock;
use pratica_engine::runtime::{Engine, EngineConfig, StartRequest};
use pratica_engine::schemas::SchemaSet;
use pratica_engine::store::Store;
use pratica_sandbox::Scenario;
use serde_json::{Value, json};

use crate::cli::serve;
use crate::cli::token::{self, Access};
use crate::config::Config;
use crate::registry::build_registry;

/// Where the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The server (API and console).
    pub listen: String,
    /// The sandbox's HTTP address; its SMTP server takes the next port.
    pub sandbox: SocketAddr,
    pub db: String,
    pub workflows: PathBuf,
    /// The configuration the demo starts from (its connectors to the sandbox are replaced).
    pub base_config: Option<PathBuf>,
}

/// The demo console users' password (console passwords need 12 characters).
pub const DEMO_PASSWORD: &str = "pratica-demo";
/// Demo payouts above this many euro need two approvals, so the demo shows four-eyes.
pub const DEMO_FOUR_EYES_EUR: i64 = 1300;

struct DemoUser {
    name: &'static str,
    role: &'static str,
    offices: &'static [&'static str],
    task_roles: &'static [&'static str],
    what: &'static str,
}

const USERS: [DemoUser; 6] = [
    DemoUser {
        name: "operatore.roma",
        role: "operator",
        offices: &["7000"],
        task_roles: &["naspi-operator"],
        what: "NASpI operator of the Roma office (7000): reviews cases",
    },
    DemoUser {
        name: "pagatore.roma",
        role: "operator",
        offices: &["7000"],
        task_roles: &["payout-officer"],
        what: "payout officer, Roma: first approval of large payouts",
    },
    DemoUser {
        name: "pagatrice.roma",
        role: "operator",
        offices: &["7000"],
        task_roles: &["payout-officer"],
        what: "second payout officer, Roma (four-eyes)",
    },
    DemoUser {
        name: "smistamento.roma",
        role: "operator",
        offices: &["smistamento", "pec-naspi", "pec-ricorsi-legale", "pec-contributi-aziende", "pec-altro"],
        task_roles: &["pec-operator"],
        what: "PEC triage operator",
    },
    DemoUser {
        name: "direttrice.roma",
        role: "viewer",
        offices: &["7000"],
        task_roles: &["office-director"],
        what: "office director: dashboards, read-only",
    },
    DemoUser { name: "admin", role: "admin", offices: &[], task_roles: &[], what: "administrator: everything" },
];

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(options: DemoOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let smtp = SocketAddr::new(options.sandbox.ip(), options.sandbox.port().wrapping_add(1));
    let sandbox = pratica_sandbox::start_with(pratica_sandbox::Options { smtp, ..pratica_sandbox::Options::seeded(options.sandbox) })
        .await
        .with_context(|| format!("cannot start the sandbox on {} (SMTP {smtp})", options.sandbox))?;

    // The configuration: the base one with the connectors pointed at the sandbox, and a low
    // four-eyes threshold so that one demo payout waits for two approvals.
    let dir = demo_dir(&options.db);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base_path = options.base_config.clone().or_else(|| Some(PathBuf::from("pratica.toml")).filter(|p| p.is_file()));
    let base = match &base_path {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => String::new(),
    };
    let key_file = std::path::absolute(dir.join("appio-key"))?;
    let mut text = sandbox.pratica_config(&base, &key_file)?;
    if text.contains("[connectors.settings]") {
        text = set_threshold(&text)?;
    }
    // Beside the base configuration, whose relative paths (e.g. a classifier's data) resolve from there.
    let config_path = match base_path.as_ref().and_then(|p| p.parent()) {
        Some(parent) => parent.join("pratica-demo.toml"),
        None => PathBuf::from("pratica-demo.toml"),
    };
    std::fs::write(&config_path, &text).with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)?;

    let registry = build_registry(&config)?;
    let store = Store::connect(&options.db).await.with_context(|| format!("cannot open the database {}", options.db))?;
    if store.is_sqlite() {
        store.release_all_leases().await?;
    }
    let schemas_dir = crate::workspace::schemas_dir(None, &options.workflows.join("x.yaml"))
        .or_else(|| Some(PathBuf::from("schemas")).filter(|d| d.is_dir()));
    let schemas = schemas_dir.as_ref().map(SchemaSet::from_dir).unwrap_or_else(SchemaSet::none);
    let engine = Engine::new(store, registry, Arc::new(SystemClock), EngineConfig { schemas, ..EngineConfig::default() });
    let refused = serve::deploy_directory(&engine, &options.workflows, &config).await?;
    if refused > 0 {
        tracing::warn!(refused, "some workflow files were not deployed");
    }

    let created = create_users(engine.store()).await?;
    let started = submit_cases(&engine, &sandbox).await?;

    let listener = tokio::net::TcpListener::bind(&options.listen).await.with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    print_welcome(out, addr, &sandbox, &created, &started, &config_path)?;
    out.flush()?;

    serve::http_and_workers(engine, listener, schemas_dir, &config).await?;
    drop(sandbox);
    Ok(())
}

/// `.pratica-demo/` (the App IO key file) beside a SQLite database file, else in the current directory.
fn demo_dir(db: &str) -> PathBuf {
    let file = db.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p)).map(PathBuf::from);
    match file.as_ref().and_then(|f| f.parent()) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(".pratica-demo"),
        _ => PathBuf::from(".pratica-demo"),
    }
}

fn set_threshold(text: &str) -> anyhow::Result<String> {
    let mut doc: toml::Table = toml::from_str(text)?;
    if let Some(toml::Value::Table(settings)) = doc.get_mut("connectors").and_then(|c| c.get_mut("settings")) {
        settings.insert("payout_four_eyes_threshold_eur".into(), toml::Value::Integer(DEMO_FOUR_EYES_EUR));
    }
    Ok(format!(
        "# Generated by `pratica demo`: connectors to the SANDBOX, four-eyes above {DEMO_FOUR_EYES_EUR} euro.\n{}",
        toml::to_string(&doc)?
    ))
}

/// Creates the demo users that do not exist yet; returns their names.
async fn create_users(store: &Store) -> anyhow::Result<Vec<&'static str>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut created = vec![];
    for u in &USERS {
        if store.user(u.name).await?.is_some() {
            continue;
        }
        let offices: Vec<String> = u.offices.iter().map(|s| s.to_string()).collect();
        let task_roles: Vec<String> = u.task_roles.iter().map(|s| s.to_string()).collect();
        let access = Access { offices: &offices, task_roles: &task_roles };
        let password = format!("{DEMO_PASSWORD}\n");
        token::create_user(store, u.name, u.role, access, password.as_bytes(), now, &mut std::io::sink()).await?;
        created.push(u.name);
    }
    Ok(created)
}

/// One demo case: what it is and the instance it started.
struct Started {
    what: String,
    instance: String,
}

/// Starts the demo cases (each with a request id, so a restart finds the same ones).
async fn submit_cases(engine: &Engine, sandbox: &pratica_sandbox::Sandbox) -> anyhow::Result<Vec<Started>> {
    let mut started = vec![];
    let mut start = async |workflow: &str, input: Value, request_id: String, what: String| -> anyhow::Result<()> {
        let s = engine
            .start(StartRequest { workflow: workflow.into(), version: None, input, request_id: Some(request_id) })
            .await
            .with_context(|| format!("cannot start {workflow} for the demo ({what})"))?;
        started.push(Started { what, instance: s.id });
        Ok(())
    };
    let mut serial = 0;
    for c in sandbox.citizens() {
        serial += 1;
        let Some(end) = c.terminated_job().and_then(|j| j.termination_date) else { continue };
        // Filed three days after the end of the job: the start date (decorrenza) has come.
        let filed = end.checked_add_days(chrono::Days::new(3)).unwrap_or(end);
        let id = format!("NASPI-{}-{:06}", filed.format("%Y"), 900_000 + serial);
        let Some(app) = c.application(&id, filed, if serial % 3 == 0 { "patronato" } else { "online" }) else { continue };
        let what = match c.scenario {
            Scenario::Clean => "clean: paid automatically (large amounts wait for two approvals)",
            Scenario::Review => "archives disagree: office review",
            Scenario::Documents => "just-cause resignation: documents requested, then review",
            Scenario::Rejected => "rejected with reasons",
            Scenario::Unclaimed => continue,
        };
        sandbox.mark_applied(&c.fiscal_code);
        let request = format!("demo-{}", c.fiscal_code);
        start("naspi-preprocessing", app, request, format!("{id} {} {} ({what})", c.first_name, c.last_name)).await?;
    }
    // Proactive notification: today's scan finds the citizens who have not applied.
    if engine.store().workflow("proactive-notification", None).await?.is_some() {
        let today = chrono::Utc::now().date_naive();
        let input = json!({"benefit": "naspi", "deadline_within_days": 60, "limit": 1000});
        start("proactive-notification", input, format!("demo-scan-{today}"), "daily scan: citizens who have not applied yet".into())
            .await?;
    }
    // PEC routing: the sandbox inbox's messages.
    if engine.store().workflow("pec-routing", None).await?.is_some() {
        let inbox = sandbox.state().pec.clone();
        for m in inbox.iter().filter(|m| m.kind == "posta-certificata") {
            let input = json!({
                "message_id": m.id, "from": m.from, "to": m.to, "received_at": m.received_at,
                "subject": m.subject, "body": m.body, "office": "7000",
                "attachments": m.attachments.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            });
            start("pec-routing", input, format!("demo-{}", m.id), format!("PEC {}: {}", m.id, m.subject)).await?;
        }
    }
    Ok(started)
}

fn print_welcome(
    out: &mut impl Write,
    addr: SocketAddr,
    sandbox: &pratica_sandbox::Sandbox,
    created: &[&str],
    started: &[Started],
    config: &Path,
) -> anyhow::Result<()> {
    let console = format!("http://{addr}/console");
    writeln!(out, "\nPratica demo — fictitious citizens, SANDBOX external systems, nothing real.\n")?;
    writeln!(out, "  Console   {console}")?;
    writeln!(out, "  Sandbox   {}/sandbox   (payments {0}/sandbox/payments, e-mail {0}/sandbox/mail)", sandbox.url())?;
    writeln!(out, "  API       http://{addr}/api/v1   (docs/API.md)")?;
    writeln!(out, "  Config    {}\n", config.display())?;
    writeln!(out, "Console users (password `{DEMO_PASSWORD}`{}):", if created.is_empty() { "" } else { ", created now" })?;
    for u in &USERS {
        writeln!(out, "  {:<18} {}", u.name, u.what)?;
    }
    writeln!(out, "\nCases ({}; they move on by themselves in the first seconds):", started.len())?;
    for s in started {
        writeln!(out, "  {}  {}", s.instance, s.what)?;
    }
    writeln!(out, "\nFollow a case from application to payout: docs/DEMO.md. Stop with Ctrl-C.")?;
    Ok(())
}
