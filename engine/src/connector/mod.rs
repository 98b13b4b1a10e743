//! Connectors: how steps reach other systems.
//!
//! A connector receives an [`Invocation`] — the rendered input, the idempotency key (stable
//! across re-executions of the same step iteration), the attempt number and the deadline —
//! and returns an output or a [`ConnectorError`]: retryable (optionally with a retry-after)
//! or fatal with a business code that a `catch` can match.
//!
//! Calls happen outside database transactions, so they are **at least once**: after a crash
//! between the call and the commit of its result, the call is made again with the same
//! idempotency key. Connectors that change the world must pass the key on (HTTP connectors
//! send it as the `Idempotency-Key` header).
//!
//! **Time.** An invocation carries the engine's clock ([`Invocation::clock`]); connectors
//! read the current time only from it (the time left before the deadline, a `Retry-After`
//! date, a token's expiry), so a test with a [`ManualClock`](crate::clock::ManualClock)
//! moves them too. Waiting — a request's timeout — is measured on the monotonic clock.

mod appio;
mod builtin;
mod email;
mod http;
pub mod identity;
pub mod redact;
mod secrets;
pub mod settings;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use appio::{AppIoConfig, AppIoConnector};
pub use builtin::{LogConnector, NoopConnector};
pub use email::{EmailConfig, EmailConnector, SmtpTls};
pub use http::{HttpAuth, HttpConfig, HttpConnector};
pub use secrets::{SecretError, SecretSource, Secrets};

use crate::clock::{Clock as _, Millis, SharedClock};

/// One call of a connector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub connector: String,
    pub operation: Option<String>,
    pub input: Value,
    pub idempotency_key: String,
    pub attempt: u32,
    /// When the step's timeout expires (ms since the epoch, on [`Invocation::clock`]), if it has one.
    pub deadline: Option<Millis>,
    pub instance_id: String,
    pub step_id: String,
    /// The installation's configured secrets, by name (`secrets.get("api-key")`). Values
    /// never appear in YAML, and the engine redacts them from anything a connector returns.
    pub secrets: Arc<Secrets>,
    /// The engine's clock: the time a connector compares the deadline with, and the "now"
    /// of dates it reads (`Retry-After`, token lifetimes). The system clock by default.
    pub clock: SharedClock,
}

impl Invocation {
    /// The time a call may take: `timeout`, cut to what is left before the deadline (read on
    /// [`Invocation::clock`]); `None` when the deadline has already passed.
    pub fn time_allowed(&self, timeout: Duration) -> Option<Duration> {
        let Some(deadline) = self.deadline else { return Some(timeout) };
        match u64::try_from(deadline - self.clock.now()) {
            Ok(left) if left > 0 => Some(timeout.min(Duration::from_millis(left))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth trying again later: a timeout, an unavailable service, a rate limit.
    #[error("{code}: {message}")]
    Retryable { code: String, message: String, retry_after: Option<Duration> },
    /// Trying again will not help: a rejected request, a business rule.
    #[error("{code}: {message}")]
    Fatal { code: String, message: String },
}

impl ConnectorError {
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectorError::Retryable { code: code.into(), message: message.into(), retry_after: None }
    }

    pub fn fatal(code: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectorError::Fatal { code: code.into(), message: message.into() }
    }

    /// The same error with `secrets` (and their common encodings, see [`redact::redact`])
    /// replaced by `***` in its message.
    pub fn redacted<'a>(self, secrets: impl IntoIterator<Item = &'a str>) -> Self {
        match self {
            ConnectorError::Retryable { code, message, retry_after } => {
                ConnectorError::Retryable { code, message: redact::redact(&message, secrets), retry_after }
            }
            ConnectorError::Fatal { code, message } => ConnectorError::Fatal { code, message: redact::redact(&message, secrets) },
        }
    }
}

pub type ConnectorFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ConnectorError>> + Send + 'a>>;

/// The integrator's trait. Implement `invoke` with `Box::pin(async move { ... })`.
pub trait Connector: Send + Sync + 'static {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a>;
}

/// The connectors available to workflows, by the name used in `call:`.
#[derive(Clone, Default)]
pub struct Registry {
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    secrets: Arc<Secrets>,
}

impl Registry {
    /// The built-in connectors that need no configuration (`noop`, `log`, `identity`, `settings`).
    pub fn builtin() -> Self {
        Self::default()
            .with("noop", NoopConnector)
            .with("log", LogConnector)
            .with("identity", identity::IdentityConnector)
            .with("settings", settings::SettingsConnector::default())
    }

    pub fn with(mut self, name: &str, connector: impl Connector) -> Self {
        self.connectors.insert(name.to_string(), Arc::new(connector));
        self
    }

    pub fn register(&mut self, name: &str, connector: Arc<dyn Connector>) {
        self.connectors.insert(name.to_string(), connector);
    }

    /// The installation's secrets: connectors look them up; the engine redacts them from
    /// everything connectors return before it is stored.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.connectors.keys()).finish()
    }
}
