//! The application layer: the use-cases every surface shares, free of HTTP types.
//!
//! Each use-case takes the [`AppState`] and the acting [`Caller`], authorises the caller,
//! then calls the engine, and answers with a domain value or an [`AppError`]. The REST API
//! (`crate::http`) and the operator console (`crate::console`) call these functions and only
//! translate: requests into arguments, results into JSON or HTML, errors into problems or
//! error pages. The CLI (`crate::cli`) uses the credentials.
//!
//! # Layout
//! - [`AppState`]: the shared state of a running server (engine, form schemas, webhook
//!   tolerance, the shutdown signal), used by every surface.
//! - [`error`]: [`AppError`], what a use-case refuses, with the stable codes clients see.
//! - [`principal`]: roles, permissions and the [`Caller`] (who acts, what they may see).
//! - [`credentials`]: API tokens and console passwords (creation, hashing, authentication).
//! - [`tasks`]: human tasks — list, read, claim, unclaim, delegate, comment, complete.
//! - [`instances`]: start, read within the office scope, list, cancel, retry, history.
//! - [`workflows`]: deploy, list, read a deployed version.
//! - [`messages`]: publish a message.
//! - [`cases`]: the case file of a business key (instances, tasks, timelines, messages).
//!
//! The external-task protocol authorises by role for the whole route group (worker or admin
//! tokens) and the engine enforces the token's topics and the lock's owner, so it has no
//! use-case module of its own.

pub mod cases;
pub mod credentials;
pub mod error;
pub mod instances;
pub mod messages;
pub mod principal;
pub mod tasks;
pub mod workflows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pratica_engine::runtime::Engine;
use pratica_engine::schemas::SchemaSet;
use tokio::sync::watch;

pub use error::AppError;
pub use principal::{Caller, Permission, Role, WorkerTopics};

/// What every surface can reach: the engine and the server's settings. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    engine: Engine,
    /// Becomes `true` when the server starts shutting down: long polls answer at once.
    stopping: watch::Receiver<bool>,
    stop: Arc<watch::Sender<bool>>,
    /// Task forms are validated against these (default: the engine's schemas).
    schemas: SchemaSet,
    /// How far a webhook's signed timestamp may be from now (`[webhooks] tolerance`).
    webhook_tolerance: Duration,
}

impl AppState {
    /// The state over `engine`, with its schemas and the default webhook tolerance.
    pub fn new(engine: Engine) -> Self {
        let (stop, stopping) = watch::channel(false);
        let schemas = engine.config().schemas.clone();
        Self { engine, stopping, stop: Arc::new(stop), schemas, webhook_tolerance: pratica_engine::trigger::DEFAULT_TOLERANCE }
    }

    /// Accepts webhook deliveries signed at most `tolerance` before or after now.
    pub fn with_webhook_tolerance(mut self, tolerance: Duration) -> Self {
        self.webhook_tolerance = tolerance;
        self
    }

    /// How far a webhook's signed timestamp may be from now.
    pub fn webhook_tolerance(&self) -> Duration {
        self.webhook_tolerance
    }

    /// Validates completed task forms against the schemas in `dir`.
    pub fn with_schemas(mut self, dir: impl AsRef<Path>) -> Self {
        self.schemas = SchemaSet::from_dir(dir);
        self
    }

    /// The engine every use-case calls.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The schemas task forms are validated against.
    pub fn schemas(&self) -> &SchemaSet {
        &self.schemas
    }

    /// Becomes `true` once the server starts shutting down (long polls watch it).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// Tells everything watching [`AppState::stopping`] that the server is shutting down.
    pub fn signal_stopping(&self) {
        self.stop.send_replace(true);
    }
}
