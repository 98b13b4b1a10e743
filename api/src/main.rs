//! The `pratica` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use pratica_api::app::credentials::TokenAccess;
use pratica_api::cli::graph::{self, GraphFormat};
use pratica_api::cli::run::{RunEnd, RunOptions};
use pratica_api::cli::{history, run, serve, token, validate};
use pratica_api::config::Config;
use pratica_api::registry::build_registry;
use pratica_engine::clock::SystemClock;
use pratica_engine::runtime::{Engine, EngineConfig};
use pratica_engine::schemas::SchemaSet;
use pratica_engine::store::Store;

/// Counts live bytes per thread, so the expression budget can stop a workflow author's
/// expression that grows memory (see pratica_engine::budget).
#[global_allocator]
static ALLOCATOR: pratica_engine::budget::MeteredAllocator = pratica_engine::budget::MeteredAllocator;

#[derive(Parser)]
#[command(name = "pratica", version, about = "Pratica: durable workflows for public-administration case processing")]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Database URL: sqlite://FILE (embedded default) or postgres://USER@HOST/DB.
    #[arg(long, env = "PRATICA_DB", default_value = "sqlite://pratica.db")]
    db: String,
    /// Configuration file declaring connector instances (default: ./pratica.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files (or directories of them) and report every problem with its position.
    Validate {
        /// Workflow files or directories (searched recursively for *.yaml, *.yml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output for people (text) or tools (json).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Configuration file declaring connector instances (default: ./pratica.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of JSON Schemas for inputs and forms (default: ./schemas, or schemas/ beside the workflows directory).
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
    /// Draw a workflow as a diagram.
    Graph {
        /// The workflow file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Svg)]
        format: GraphFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run one instance of a workflow locally until it completes, fails or waits.
    Run {
        /// The workflow file (sub-workflows are taken from the same directory).
        file: PathBuf,
        /// A JSON file with the instance's input.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Start a new instance even if this workflow already ran with this input.
        #[arg(long)]
        new: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Try Pratica: the sandbox of the external systems, the server and console on SQLite, demo users and cases (docs/DEMO.md; needs a build with `--features demo`, as `./scripts/demo` does).
    Demo {
        /// The server (API and console).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// The sandbox of the external systems (its SMTP server on the next port).
        #[arg(long, default_value = "127.0.0.1:8089", value_name = "ADDR")]
        sandbox: std::net::SocketAddr,
        /// The demo's database (a new file is created; the same one again shows the same cases).
        #[arg(long, env = "PRATICA_DEMO_DB", default_value = "sqlite://pratica-demo.db")]
        db: String,
        /// Directory of workflow files deployed at start-up.
        #[arg(long, default_value = "workflows")]
        workflows: PathBuf,
        /// Configuration to start from (default: ./pratica.toml); its sandbox connectors are replaced.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Deploy a directory of workflows and run the workers until stopped (SIGINT/SIGTERM).
    Serve {
        /// Directory of workflow files deployed at start-up.
        #[arg(long)]
        workflows: Option<PathBuf>,
        /// How long a claimed job is ours before another process may take it over.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        lease: Duration,
        /// Jobs claimed, run and committed together by this process (group commit).
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Also serve the HTTP API (external-task protocol, /healthz) on this address, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print an instance's audit history as a timeline.
    History {
        instance: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Measure throughput, latency, crash recovery and footprint (docs/BENCHMARKS.md); JSON lines on stdout.
    Bench(pratica_api::cli::bench::BenchArgs),
    /// The `classifier` connector: evaluate it on the held-out sample, or classify one message.
    Classify(pratica_api::cli::classify::ClassifyArgs),
    /// Run workflow tests (*.test.yaml beside the workflows): mocked connectors, simulated time, a diff on failure.
    Test {
        /// Test files, workflow files (their test file beside them) or directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Run only the scenarios whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Directory of JSON Schemas for inputs and forms (default: the nearest schemas/ beside or above each test file).
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
    /// API tokens for the HTTP API (shown once at creation, stored hashed).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Console users (argon2id password hashes).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Audit commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain of one instance's history (or of all) and report tampering.
    Verify {
        instance: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        #[arg(long)]
        name: String,
        /// admin, analyst, operator, worker or viewer.
        #[arg(long)]
        role: String,
        /// An office whose tasks an operator works (repeatable).
        #[arg(long = "office")]
        offices: Vec<String>,
        /// A task role (candidate group) whose human tasks an operator works, e.g. naspi-operator (repeatable).
        #[arg(long = "task-role")]
        task_roles: Vec<String>,
        /// Limit a worker token to this external-task topic, e.g. naspi.scoring (repeatable; default: any topic).
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never their text).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token by name.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a console user; the password is the first line of standard input.
    Create {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long = "office")]
        offices: Vec<String>,
        /// A task role (candidate group) whose human tasks the user works, e.g. naspi-operator (repeatable).
        #[arg(long = "task-role")]
        task_roles: Vec<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    pratica_engine::duration::parse_duration(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format, matches!(cli.command, Command::Serve { .. } | Command::Demo { .. }));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run_command(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat, serving: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if serving { "info" } else { "warn" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An engine on the database. `owns_work`: this process runs workers (`run`, `serve`); on
/// SQLite, which one process owns, work leased by a crashed earlier run is taken back at once.
async fn engine_for(db: &DbArgs, settings: EngineConfig, owns_work: bool) -> anyhow::Result<(Engine, Config)> {
    let config = Config::discover(db.config.as_deref())?;
    let registry = build_registry(&config)?;
    let store = Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))?;
    if owns_work && store.is_sqlite() {
        store.release_all_leases().await?;
    }
    // Start inputs are checked against schemas/ when the directory is there.
    let schemas = if std::path::Path::new("schemas").is_dir() { SchemaSet::from_dir("schemas") } else { SchemaSet::none() };
    let settings = config.limits.apply(EngineConfig { schemas, ..settings }).map_err(anyhow::Error::msg)?;
    let engine = Engine::new(store, registry, Arc::new(SystemClock), settings);
    Ok((engine, config))
}

/// The database alone, for the commands that only read it (`history`, `audit verify`): they
/// build no connectors, so they work without the connectors' secrets in the environment.
async fn open_store(db: &DbArgs) -> anyhow::Result<Store> {
    Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))
}

/// Runs the HTTP API on `addr` and the engine's workers until the same SIGINT/SIGTERM.
async fn serve_http_and_work(engine: Engine, addr: &str, schemas: Option<PathBuf>, config: &Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP API listening");
    serve::http_and_workers(engine, listener, schemas, config).await
}

async fn run_command(command: Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Validate { paths, format, config, schemas } => {
            let config = Config::discover(config.as_deref())?;
            let reports = validate::validate_paths(&paths, &config, schemas.as_deref()).context("cannot list the workflow files")?;
            match format {
                OutputFormat::Text => validate::write_human(&reports, &mut out)?,
                OutputFormat::Json => validate::write_json(&reports, &mut out)?,
            }
            let all_valid = !reports.is_empty() && reports.iter().all(|r| r.valid);
            Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Graph { file, format, output } => match graph::draw(&file, format) {
            Ok(diagram) => {
                match output {
                    Some(path) => std::fs::write(&path, diagram).with_context(|| format!("cannot write {}", path.display()))?,
                    None => print!("{diagram}"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(graph::GraphError::Invalid { rendered, .. }) => {
                eprint!("{rendered}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        },
        Command::Run { file, input, new, db } => {
            run::check_exists(&file)?;
            let (engine, _) = engine_for(&db, EngineConfig::default(), true).await?;
            let end = run::run(&engine, &RunOptions { file, input, new }, &mut out).await?;
            Ok(match end {
                RunEnd::Completed | RunEnd::Waiting => ExitCode::SUCCESS,
                RunEnd::Failed | RunEnd::Cancelled => ExitCode::FAILURE,
            })
        }
        #[cfg(feature = "demo")]
        Command::Demo { listen, sandbox, db, workflows, config } => {
            let options = pratica_api::cli::demo::DemoOptions { listen, sandbox, db, workflows, base_config: config };
            pratica_api::cli::demo::run(options, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        // The product binary carries no sandbox of fictitious citizens.
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => anyhow::bail!(
            "this `pratica` was built without the demo (the sandbox of the external systems, with fictitious citizens); \
             run `./scripts/demo`, or build it with `cargo run --features demo --bin pratica -- demo` (docs/DEMO.md)"
        ),
        Command::Serve { workflows, lease, batch, listen, db } => {
            let (engine, config) = engine_for(&db, EngineConfig { lease, batch: batch.max(1), ..EngineConfig::default() }, true).await?;
            if let Some(dir) = &workflows {
                let refused = serve::deploy_directory(&engine, dir, &config).await?;
                if refused > 0 {
                    tracing::warn!(refused, "some workflow files were not deployed");
                }
            }
            tracing::info!(db = %db.db, worker = %engine.config().worker_id, "pratica serving");
            match listen {
                None => engine.run_until_stopped(serve::shutdown_signal()).await?,
                Some(addr) => {
                    // Task forms are validated against the schemas beside the workflows (or ./schemas).
                    let schemas = workflows.as_deref().and_then(|dir| pratica_api::workspace::schemas_dir(None, &dir.join("x.yaml")));
                    let schemas = schemas.or_else(|| Some(PathBuf::from("schemas")).filter(|d| d.is_dir()));
                    serve_http_and_work(engine, &addr, schemas, &config).await?
                }
            }
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::History { instance, db } => {
            // Reading history needs the database only: no connectors, so no secrets.
            let store = open_store(&db).await?;
            history::print_history(&store, &instance, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Classify(args) => pratica_api::cli::classify::run(args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => {
            pratica_api::cli::bench::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { paths, filter, schemas } => {
            let opts = pratica_scenario::RunOptions { filter, schemas_dir: schemas };
            let summary = pratica_api::cli::test::run(&paths, &opts, &mut out).await?;
            Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Token { command } => {
            let now = chrono::Utc::now().timestamp_millis();
            match command {
                TokenCommand::Create { name, role, offices, task_roles, topics, db } => {
                    let store = Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))?;
                    let access = TokenAccess { offices: &offices, task_roles: &task_roles, topics: &topics };
                    token::create(&store, &name, &role, access, now, &mut out).await?;
                }
                TokenCommand::List { db } => {
                    let store = Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))?;
                    token::list(&store, &mut out).await?;
                }
                TokenCommand::Revoke { name, db } => {
                    let store = Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))?;
                    token::revoke(&store, &name, now, &mut out).await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Create { name, role, offices, task_roles, password_stdin: _, db } } => {
            let store = Store::connect(&db.db).await.with_context(|| format!("cannot open the database {}", db.db))?;
            let now = chrono::Utc::now().timestamp_millis();
            let access = token::Access { offices: &offices, task_roles: &task_roles };
            token::create_user(&store, &name, &role, access, std::io::stdin().lock(), now, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify { instance, db } } => {
            let store = open_store(&db).await?;
            let broken = history::verify(&store, instance.as_deref(), &mut out).await?;
            Ok(if broken == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
