//! The one harness of the runtime and console suites. [`AppOptions`] says what to set up —
//! the backend, the clock, the engine's configuration and connectors, API tokens, console
//! users, business schemas, workflows to deploy, a `pratica.toml` — and three starters
//! share it:
//!
//! - [`spawn_app`]: the HTTP API on `127.0.0.1:0` with the engine's worker loop in the
//!   background (zero2prod's `spawn_app`); both stop when the [`TestApp`] is dropped. No
//!   sleep: the listener is bound before the server task starts.
//! - [`start_engine`]: the engine alone on a [`ManualClock`]; the test drives it
//!   (`run_until_idle`, `clock.advance`).
//! - [`prepare_serve`]: a directory and database for a real `pratica serve` process (tests
//!   that kill it), with an engine on the system clock that only deploys and starts.
//!
//! Each returns `None` when PostgreSQL is not reachable outside CI (see [`crate::backend`]).
//!
//! ```ignore
//! let options = AppOptions::new(backend).clock(Time::Manual).token(Account::new("admin", Role::Admin));
//! let Some(app) = spawn_app(options).await else { return };
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pratica_api::http::auth::{Role, TokenAccess, create_token_with_access, hash_password};
use pratica_api::http::{AppState, serve};
use pratica_engine::clock::{Clock, ManualClock, SystemClock};
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig};
use pratica_engine::store::{Store, UserRow};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::{Backend, ScratchDir, T0, fresh_database};

/// Which clock the engine of [`spawn_app`] reads ([`start_engine`] always runs on a manual
/// clock, [`prepare_serve`] on the system clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// The system clock: for tests of real waiting (lock expiry, long polls).
    Real,
    /// A [`ManualClock`] at [`T0`], moved by the test.
    Manual,
}

/// Someone the test acts as: an API token ([`AppOptions::token`]) or a console user
/// ([`AppOptions::user`]).
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub offices: Vec<String>,
    pub task_roles: Vec<String>,
    /// External-task topics a worker token may fetch (empty: any).
    pub topics: Vec<String>,
}

impl Account {
    /// An account of `role` with no office, task role or topic.
    pub fn new(name: &str, role: Role) -> Self {
        Self { name: name.into(), role, offices: vec![], task_roles: vec![], topics: vec![] }
    }

    /// The offices an operator may reach.
    pub fn offices(mut self, offices: &[&str]) -> Self {
        self.offices = offices.iter().map(|o| o.to_string()).collect();
        self
    }

    /// The task roles (candidate groups) an operator may work.
    pub fn task_roles(mut self, roles: &[&str]) -> Self {
        self.task_roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }
}

/// What a starter sets up. Built with [`AppOptions::new`] and the builder methods.
pub struct AppOptions {
    pub backend: Backend,
    pub time: Time,
    pub config: EngineConfig,
    pub registry: Registry,
    pub tokens: Vec<Account>,
    /// Console users and their password.
    pub users: Vec<(Account, String)>,
    /// Business schemas by name, written to `schemas/<name>.schema.json` in the scratch
    /// directory (served by [`spawn_app`]).
    pub schemas: Vec<(String, String)>,
    /// Workflow sources deployed before the starter returns.
    pub workflows: Vec<String>,
    /// `pratica.toml` for [`prepare_serve`].
    pub pratica_toml: String,
}

impl AppOptions {
    /// The system clock, the default configuration, the built-in connectors; nothing else.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            time: Time::Real,
            config: EngineConfig::default(),
            registry: Registry::builtin(),
            tokens: vec![],
            users: vec![],
            schemas: vec![],
            workflows: vec![],
            pratica_toml: String::new(),
        }
    }

    pub fn clock(mut self, time: Time) -> Self {
        self.time = time;
        self
    }

    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// An API token, in [`TestApp::tokens`] / [`TestEngine::tokens`] under the account's name.
    pub fn token(mut self, account: Account) -> Self {
        self.tokens.push(account);
        self
    }

    /// A console user who signs in with `password`.
    pub fn user(mut self, account: Account, password: &str) -> Self {
        self.users.push((account, password.into()));
        self
    }

    pub fn schema(mut self, name: &str, json: &str) -> Self {
        self.schemas.push((name.into(), json.into()));
        self
    }

    pub fn deploy(mut self, source: &str) -> Self {
        self.workflows.push(source.into());
        self
    }

    pub fn pratica_toml(mut self, text: &str) -> Self {
        self.pratica_toml = text.into();
        self
    }
}

/// A fresh database with the accounts and files of the options, and the engine on it.
struct Prepared {
    scratch: ScratchDir,
    database: String,
    engine: Engine,
    tokens: HashMap<String, String>,
    schemas: Option<PathBuf>,
}

async fn prepare(options: AppOptions, clock: Arc<dyn Clock>) -> Option<Prepared> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let database = fresh_database(options.backend, &scratch).await?;
    let store = Store::connect(&database).await.expect("connect to the test database");
    let created_at = if options.time == Time::Manual { T0 } else { 0 };
    let mut tokens = HashMap::new();
    for account in &options.tokens {
        let access = TokenAccess { offices: &account.offices, task_roles: &account.task_roles, topics: &account.topics };
        let token = create_token_with_access(&store, &account.name, account.role, access, created_at).await.expect("create a token");
        tokens.insert(account.name.clone(), token);
    }
    for (account, password) in &options.users {
        let user = UserRow {
            username: account.name.clone(),
            password_hash: hash_password(password).expect("hash a password"),
            role: account.role.as_str().into(),
            offices: json!(account.offices).to_string(),
            task_roles: json!(account.task_roles).to_string(),
            created_at: 0,
            disabled_at: None,
        };
        store.insert_user(&user).await.expect("create a console user");
    }
    let mut schemas = None;
    if !options.schemas.is_empty() {
        let dir = scratch.0.join("schemas");
        std::fs::create_dir_all(&dir).expect("create the schemas directory");
        for (name, json) in &options.schemas {
            std::fs::write(dir.join(format!("{name}.schema.json")), json).expect("write a schema");
        }
        schemas = Some(dir);
    }
    let engine = Engine::new(store, options.registry, clock, options.config);
    for source in &options.workflows {
        if let Err(e) = engine.deploy(source).await {
            panic!("deploy: {e}: {e:?}");
        }
    }
    Some(Prepared { scratch, database, engine, tokens, schemas })
}

/// A running server with its worker loop; both stop when it is dropped (or on [`TestApp::stop`]).
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The database URL (to open a second store, or to run `pratica` on it).
    pub database: String,
    pub engine: Engine,
    /// Set when the app runs on [`Time::Manual`].
    pub clock: Option<ManualClock>,
    /// A client without default headers.
    pub http: reqwest::Client,
    /// The created tokens, by account name.
    pub tokens: HashMap<String, String>,
    stop: watch::Sender<bool>,
    pub scratch: ScratchDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl TestApp {
    /// `base` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The token created for `name`.
    pub fn token(&self, name: &str) -> &str {
        self.tokens.get(name).map(String::as_str).unwrap_or_else(|| panic!("no token `{name}` was asked for"))
    }

    /// Stops the server and the worker loop (as dropping does).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// Starts the HTTP API and the worker loop on what `options` describe.
pub async fn spawn_app(options: AppOptions) -> Option<TestApp> {
    let (clock, manual): (Arc<dyn Clock>, _) = match options.time {
        Time::Real => (Arc::new(SystemClock), None),
        Time::Manual => {
            let clock = ManualClock::new(T0);
            (Arc::new(clock.clone()), Some(clock))
        }
    };
    let Prepared { scratch, database, engine, tokens, schemas } = prepare(options, clock).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let addr = listener.local_addr().expect("the listener's address");
    let (stop, stopped) = watch::channel(false);
    let signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let mut state = AppState::new(engine.clone());
    if let Some(dir) = schemas {
        state = state.with_schemas(dir);
    }
    tokio::spawn(serve(listener, state, signal(stopped.clone())));
    let workers = engine.clone();
    let until = signal(stopped);
    tokio::spawn(async move { workers.run_until_stopped(until).await });
    let base = format!("http://{addr}");
    Some(TestApp { addr, base, database, engine, clock: manual, http: reqwest::Client::new(), tokens, stop, scratch })
}

/// An engine on a fresh database with a manual clock at [`T0`]; nothing runs in the
/// background.
pub struct TestEngine {
    pub engine: Engine,
    pub clock: ManualClock,
    /// The database URL.
    pub url: String,
    pub scratch: ScratchDir,
    /// The created tokens, by account name.
    pub tokens: HashMap<String, String>,
}

impl TestEngine {
    /// Where [`AppOptions::schema`] wrote the schemas.
    pub fn schemas_dir(&self) -> PathBuf {
        self.scratch.0.join("schemas")
    }
}

/// The engine `options` describe, on a manual clock at [`T0`] (whatever `options.time`
/// says).
pub async fn start_engine(options: AppOptions) -> Option<TestEngine> {
    let clock = ManualClock::new(T0);
    let options = AppOptions { time: Time::Manual, ..options };
    let Prepared { scratch, database, engine, tokens, .. } = prepare(options, Arc::new(clock.clone())).await?;
    Some(TestEngine { engine, clock, url: database, scratch, tokens })
}

/// The engine with `registry` on `backend`, on a manual clock: [`start_engine`] with nothing
/// else set up.
pub async fn test_engine(backend: Backend, registry: Registry) -> Option<TestEngine> {
    start_engine(AppOptions::new(backend).registry(registry)).await
}

/// A directory for a real `pratica serve`: `pratica.toml` from the options, an empty
/// `workflows/`, a fresh database, and `starter`, an engine on the system clock that only
/// deploys and starts (the server runs the work).
pub struct ServeDir {
    pub scratch: ScratchDir,
    /// The database URL.
    pub url: String,
    pub starter: Engine,
}

/// Prepares a [`ServeDir`]; the options' workflows are deployed by the starter.
pub async fn prepare_serve(options: AppOptions) -> Option<ServeDir> {
    let pratica_toml = options.pratica_toml.clone();
    let Prepared { scratch, database, engine, .. } = prepare(options, Arc::new(SystemClock)).await?;
    std::fs::write(scratch.0.join("pratica.toml"), pratica_toml).expect("write pratica.toml");
    std::fs::create_dir_all(scratch.0.join("workflows")).expect("create workflows/");
    Some(ServeDir { scratch, url: database, starter: engine })
}
