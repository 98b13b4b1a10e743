//! The `email` connector: sends e-mail through an SMTP server (connector instances of
//! `kind = "email"`, usually named `email` so that workflows call `email.send`).
//!
//! # Calling it from a workflow
//!
//! One operation, `send` (`call: email.send`). Templates in `with` are already rendered by
//! the engine. `with` fields (any other field is refused):
//!
//! | field | meaning |
//! |---|---|
//! | `to` | required: one address or a list; `a@b.it` or `Name <a@b.it>` |
//! | `cc`, `bcc`, `reply_to` | optional, same forms; `null` is the same as absent |
//! | `subject` | required; line breaks become spaces and the ends are trimmed |
//! | `body` | required: the plain text (UTF-8) |
//! | `html` | optional: an HTML version, sent with `body` as `multipart/alternative` |
//!
//! The sender is the configured `from`; a step cannot change it. The output is
//! `{message_id, accepted}`: the `Message-ID` header (with its `<>`) and the envelope
//! recipients the server accepted (`to`, `cc` and `bcc`, in that order). SMTP accepts or
//! refuses a message as a whole, so on success every recipient was accepted.
//!
//! # At least once, and how receivers de-duplicate
//!
//! Like every call, a send is repeated after a crash between the send and the commit of its
//! result, and on retries. Every copy carries the same `Message-ID`, derived from the call's
//! idempotency key (`<key@pratica>`, with every byte other than ASCII letters, digits, `-`
//! and `_` written `=XX`; keys longer than 128 characters once encoded become
//! `<sha256-HEX@pratica>`), and an `X-Pratica-Idempotency-Key` header with the key itself,
//! so a receiving system can recognise a repeated message.
//!
//! # Errors
//!
//! | situation | error |
//! |---|---|
//! | an address that does not parse, or no `to` at all | fatal `email.invalid_address` (nothing is sent) |
//! | other bad `with` | fatal `email.invalid_input` |
//! | the server answers 4xx (greylisting, mailbox busy, too many connections) | retryable `email.deferred` |
//! | the server answers 5xx (unknown recipient, refused sender, message refused) | fatal `email.rejected`, with the server's reply |
//! | connection refused, reset, TLS failure, unreadable reply | retryable `email.unavailable` |
//! | no answer in time | retryable `timeout` |
//!
//! The time allowed is the configured `timeout` (30 s by default), cut to the invocation's
//! `deadline` (read on the invocation's clock, the engine's) when that comes sooner; the
//! wait itself is measured on the monotonic clock. It covers connecting, TLS, authentication and the
//! whole SMTP dialogue (each SMTP command also times out after `timeout`).
//!
//! # Configuration ([`EmailConfig`])
//!
//! `host` and `from` are required. `tls` is `starttls` by default (the connection must be
//! upgraded, or nothing is sent: no silent downgrade), `tls` for implicit TLS, or `none`
//! for a relay on the same machine. The port defaults to 587, 465 or 25 accordingly.
//! `user` and `password` (a secret) authenticate with PLAIN or LOGIN; over `tls = "none"`
//! they are only accepted when the host is `localhost` or a loopback address, since they
//! would otherwise cross the network in clear. The password is masked in `Debug` and
//! scrubbed from error messages. Connections are pooled and reused between calls. The
//! host comes from configuration only, so no address policy applies: steps choose
//! recipients, never the server.

mod message;

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};

use super::{Connector, ConnectorError, ConnectorFuture, Invocation};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same machine or a test server.
    None,
    /// Connect in clear, then upgrade with STARTTLS; refuse to go on without it.
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpTls {
    /// `none`, `starttls` or `tls`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            other => Err(format!("tls must be `none`, `starttls` or `tls`, not `{other}`")),
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// How one e-mail connector instance reaches its SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub user: Option<String>,
    /// From a secret, never from YAML; masked in `Debug`.
    pub password: Option<String>,
    /// The sender of every message: `noreply@inps.it` or `INPS <noreply@inps.it>`.
    pub from: String,
    /// Longest a call may take when the step has no earlier deadline (default 30 s).
    pub timeout: Duration,
}

impl EmailConfig {
    /// A configuration with the defaults: STARTTLS on its port, no credentials, 30 s.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            tls: SmtpTls::default(),
            user: None,
            password: None,
            from: from.into(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The `email` connector. The SMTP transport (and its connection pool) is created on the
/// first call, inside the runtime that makes it.
pub struct EmailConnector {
    config: EmailConfig,
    from: Mailbox,
    builder: smtp::AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl EmailConnector {
    /// Checks the configuration (no network access yet).
    pub fn new(config: EmailConfig) -> Result<Self, String> {
        if config.timeout.is_zero() {
            return Err("the e-mail timeout must be longer than zero".into());
        }
        let host = config.host.trim();
        if host.is_empty() {
            return Err("the SMTP `host` is required".into());
        }
        let from =
            config.from.trim().parse::<Mailbox>().map_err(|e| format!("`from` `{}` is not a valid e-mail address: {e}", config.from))?;
        let tls_parameters =
            || smtp::client::TlsParameters::new(host.to_string()).map_err(|e| format!("cannot set up TLS for `{host}`: {e}"));
        let tls = match config.tls {
            SmtpTls::None => smtp::client::Tls::None,
            SmtpTls::StartTls => smtp::client::Tls::Required(tls_parameters()?),
            SmtpTls::Tls => smtp::client::Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port.unwrap_or(config.tls.default_port()))
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(10).idle_timeout(Duration::from_secs(60)));
        match (&config.user, &config.password) {
            (Some(user), Some(password)) => {
                if config.tls == SmtpTls::None && !is_loopback(host) {
                    return Err(format!(
                        "credentials over `tls = \"none\"` would cross the network in clear; use starttls or tls for `{host}`"
                    ));
                }
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("`user` and `password` go together".into()),
        }
        Ok(Self { config, from, builder, transport: OnceLock::new() })
    }

    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    async fn send(&self, call: &Invocation) -> Result<Value, ConnectorError> {
        match call.operation.as_deref() {
            Some("send") => {}
            Some(other) => {
                return Err(ConnectorError::fatal(
                    "email.invalid_input",
                    format!("unknown operation `{other}`: the email connector has `send`"),
                ));
            }
            None => return Err(ConnectorError::fatal("email.invalid_input", "call `email.send`: the operation is missing")),
        }
        let prepared = message::prepare(&call.input, &self.from, &call.idempotency_key)?;
        let budget = call
            .time_allowed(self.config.timeout)
            .ok_or_else(|| ConnectorError::retryable("timeout", "the step's deadline passed before the message was sent"))?;
        let transport = self.transport.get_or_init(|| self.builder.clone().build());
        let what = format!("SMTP server {}", self.config.host);
        match tokio::time::timeout(budget, transport.send(prepared.message)).await {
            Ok(Ok(_response)) => Ok(json!({ "message_id": prepared.message_id, "accepted": prepared.recipients })),
            Ok(Err(error)) => Err(smtp_error(&error, &what)),
            Err(_) => Err(ConnectorError::retryable("timeout", format!("{what}: no answer within {} ms", budget.as_millis()))),
        }
    }

    /// Replaces the password (and its encodings, such as the base64 of SMTP `AUTH PLAIN`) in
    /// an error message with `***`.
    fn scrub(&self, error: ConnectorError) -> ConnectorError {
        let Some(secret) = self.config.password.as_deref() else { return error };
        error.redacted([secret])
    }
}

impl std::fmt::Debug for EmailConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConnector").field("config", &self.config).finish()
    }
}

impl Connector for EmailConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move { self.send(call).await.map_err(|e| self.scrub(e)) })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// 4xx: try again later; 5xx: refused for good; anything else: the server was not reached.
fn smtp_error(error: &smtp::Error, what: &str) -> ConnectorError {
    let mut message = format!("{what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = cause.source();
    }
    if error.is_permanent() {
        ConnectorError::fatal("email.rejected", message)
    } else if error.is_transient() {
        ConnectorError::retryable("email.deferred", message)
    } else if error.is_timeout() {
        ConnectorError::retryable("timeout", message)
    } else {
        ConnectorError::retryable("email.unavailable", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_and_the_password_never_printed() {
        let ok = EmailConfig {
            user: Some("pratica".into()),
            password: Some("hunter22".into()),
            ..EmailConfig::new("smtp.example.it", "INPS <noreply@inps.example>")
        };
        let connector = EmailConnector::new(ok.clone()).expect("valid");
        assert!(!format!("{connector:?}").contains("hunter22"));
        let bad_from = EmailConfig { from: "nobody".into(), ..ok.clone() };
        assert!(EmailConnector::new(bad_from).unwrap_err().contains("from"));
        let clear = EmailConfig { tls: SmtpTls::None, ..ok.clone() };
        assert!(EmailConnector::new(clear).unwrap_err().contains("in clear"));
        let local = EmailConfig { tls: SmtpTls::None, host: "127.0.0.1".into(), ..ok.clone() };
        assert!(EmailConnector::new(local).is_ok());
        let half = EmailConfig { password: None, ..ok };
        assert!(EmailConnector::new(half).unwrap_err().contains("go together"));
        assert_eq!(SmtpTls::parse("starttls"), Ok(SmtpTls::StartTls));
        assert!(SmtpTls::parse("ssl").is_err());
    }
}
