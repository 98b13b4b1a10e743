//! The `appio` connector: messages to citizens through App IO, PagoPA's app for public
//! services (connector instances of `kind = "appio"`, usually named `appio`).
//!
//! # Calling it from a workflow
//!
//! | call | `with` | output |
//! |---|---|---|
//! | `appio.profile` | `fiscal_code` | `{sender_allowed, preferred_languages, reason}` |
//! | `appio.send` | `fiscal_code`, `subject`, `markdown`, `due_date`?, `payment`? | `{id}` |
//! | `appio.status` | `fiscal_code`, `message_id` | `{status, notification, read_status, payment_status}` |
//!
//! Any other field is refused. Fiscal codes are trimmed and upper-cased, and must have App
//! IO's format (16 characters; the check character is not verified).
//!
//! **`profile`** asks App IO whether the citizen can receive this service's messages
//! (`POST {base_url}/profiles` with `{fiscal_code}`). A citizen who is not on App IO (404)
//! is an answer, not an error: `{sender_allowed: false, preferred_languages: [], reason:
//! "no_profile"}`. A citizen who turned the service off gives `reason: "sender_not_allowed"`;
//! `reason` is `null` when `sender_allowed` is `true`. So a workflow needs one `switch` on
//! `sender_allowed`, and `catch` only for real failures.
//!
//! **`send`** checks `with` first, without any request: `subject` 10–120 and `markdown`
//! 80–10,000 characters (counted in UTF-16 code units, as App IO counts), `due_date` a date
//! (`YYYY-MM-DD`, sent as midnight UTC) or an RFC 3339 date-time (sent in UTC),
//! `payment` `{amount (euro cents), notice_number (18 digits), invalid_after_due_date?,
//! payee?: {fiscal_code}}` sent as App IO's `payment_data`. Then it looks the profile up as
//! above and sends **nothing** unless `sender_allowed` is `true`; then it submits the
//! message (`POST {base_url}/messages` with `{fiscal_code, content}`) and returns the `id`
//! App IO gave it.
//!
//! **`status`** reads a sent message (`GET {base_url}/messages/{fiscal_code}/{message_id}`):
//! `status` is `ACCEPTED`, `THROTTLED`, `FAILED`, `PROCESSED` or `REJECTED`; `notification`
//! the per-channel object App IO returns (or `null`); `read_status` and `payment_status`
//! are only given to services with the advanced feature level (`null` otherwise).
//!
//! Fiscal codes go in request bodies, not URLs (which end up in gateway logs), except for
//! `status`, which App IO offers only that way. Every request carries
//! `Ocp-Apim-Subscription-Key`, `Idempotency-Key: <invocation.idempotency_key>` and
//! `X-Pratica-Attempt`. App IO itself does not de-duplicate messages by key: a `send`
//! repeated after a crash between App IO's answer and the commit of the step may reach the
//! citizen twice.
//!
//! # Errors
//!
//! | situation | error |
//! |---|---|
//! | bad `with`, unknown operation | fatal `appio.invalid_input` |
//! | subject, markdown, due date or payment outside App IO's rules (before any request), or App IO answers 400 | fatal `appio.invalid_message` |
//! | `send` to a citizen not on App IO or who turned the service off | fatal `appio.not_reachable` (nothing sent) |
//! | 401 | fatal `appio.unauthorized` (a wrong or revoked API key) |
//! | 403 | fatal `appio.forbidden` (caller IP not allowed, or a service in test mode writing to a citizen it may not) |
//! | 404 on `status` | fatal `appio.not_found` |
//! | 429 | retryable `appio.throttled`, `retry_after` from `Retry-After` |
//! | 408, 5xx, connection refused or reset | retryable `appio.unavailable` (`retry_after` when given) |
//! | no answer in time | retryable `timeout` |
//! | other answers (other 4xx, 3xx, a 2xx without the expected body) | fatal `appio.rejected` |
//!
//! Error messages carry the method, the path and App IO's `title`/`detail`, never the key.
//!
//! # Configuration ([`AppIoConfig`])
//!
//! `base_url` (default `https://api.io.pagopa.it/api/v1`), `api_key` (a secret: the service's
//! subscription key), `timeout` (default 30 s, cut to the step's deadline; one budget for
//! the profile check and the submission together; the deadline is compared with the
//! invocation's clock, the engine's, and a `Retry-After` date is read relative to it). The
//! base URL is written by an operator and is the only host ever called (its prefix is
//! trusted; anything else would meet the `http` connector's address policy); redirects are
//! not followed and proxies from the environment are not used. Requests go through the
//! `http` connector's transport (clients built once, time budget, size limit,
//! `Retry-After`, transport errors), with App IO's error codes. There is no client-side rate limit: App IO's 429 (about 150
//! requests every 5 s per key) is retried with the step's `retry`.

mod input;

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::http::transport::{self, Codes, Reach, Transport};
use super::{Connector, ConnectorError, ConnectorFuture, Invocation};
use crate::clock::Clock as _;

/// App IO's production API.
pub const APPIO_BASE_URL: &str = "https://api.io.pagopa.it/api/v1";
/// Largest answer read; App IO's are a few KB.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest part of an answer quoted in an error message.
const EXCERPT_BYTES: usize = 512;
/// App IO's codes for transport failures.
const CODES: Codes = Codes { unavailable: "appio.unavailable", too_large: "appio.rejected", invalid_input: "appio.invalid_input" };

/// How one App IO connector instance reaches App IO.
#[derive(Clone, PartialEq, Eq)]
pub struct AppIoConfig {
    pub base_url: String,
    /// The service's subscription key, from a secret; masked in `Debug`.
    pub api_key: String,
    /// Longest a call may take when the step has no earlier deadline (default 30 s).
    pub timeout: Duration,
}

impl AppIoConfig {
    /// Production App IO with `api_key` and a 30 s timeout.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self { base_url: APPIO_BASE_URL.into(), api_key: api_key.into(), timeout: Duration::from_secs(30) }
    }
}

impl std::fmt::Debug for AppIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppIoConfig").field("base_url", &self.base_url).field("api_key", &"***").field("timeout", &self.timeout).finish()
    }
}

/// The `appio` connector.
pub struct AppIoConnector {
    config: AppIoConfig,
    base: Url,
    transport: Transport,
    key: HeaderValue,
}

/// Whether the citizen can receive this service's messages, and why not.
struct Reachability {
    output: Value,
    allowed: bool,
}

impl AppIoConnector {
    /// Checks the configuration and builds the client (no network access yet).
    pub fn new(config: AppIoConfig) -> Result<Self, String> {
        if config.timeout.is_zero() {
            return Err("the App IO timeout must be longer than zero".into());
        }
        let text = config.base_url.trim_end_matches('/');
        let base = Url::parse(text).map_err(|e| format!("invalid base_url `{text}`: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.query().is_some() || base.fragment().is_some() || base.cannot_be_a_base() {
            return Err(format!("base_url `{text}` must be an http(s) URL without query or fragment"));
        }
        if config.api_key.trim().is_empty() {
            return Err("the App IO `api_key` is empty".into());
        }
        let mut key =
            HeaderValue::from_str(config.api_key.trim()).map_err(|_| "the App IO `api_key` is not a valid header value".to_string())?;
        key.set_sensitive(true);
        let transport = Transport::new(Reach { base: Some(base.clone()), ..Reach::default() }, MAX_RESPONSE_BYTES, CODES)?;
        Ok(Self { config, base, transport, key })
    }

    pub fn config(&self) -> &AppIoConfig {
        &self.config
    }

    async fn run(&self, call: &Invocation) -> Result<Value, ConnectorError> {
        let budget = Transport::budget(self.config.timeout, call, "the step's deadline passed before App IO was called")?;
        let operation = call.operation.as_deref().unwrap_or_default();
        let work = async {
            match operation {
                "profile" => {
                    let fields = input::fields(&call.input, "profile", &["fiscal_code"])?;
                    Ok(self.reachability(&input::fiscal_code(fields)?, call).await?.output)
                }
                "send" => self.send(call).await,
                "status" => self.status(call).await,
                other => Err(ConnectorError::fatal(
                    "appio.invalid_input",
                    format!("unknown operation `{other}`: the appio connector has profile, send and status"),
                )),
            }
        };
        Transport::within(budget, "App IO", work).await
    }

    async fn reachability(&self, fiscal_code: &str, call: &Invocation) -> Result<Reachability, ConnectorError> {
        let (status, body) = self.exchange(Method::POST, &["profiles"], Some(json!({ "fiscal_code": fiscal_code })), call).await?;
        match status {
            200..=299 => {
                let allowed = body
                    .get("sender_allowed")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| ConnectorError::fatal("appio.rejected", "POST /profiles answered without `sender_allowed`"))?;
                let languages = body.get("preferred_languages").filter(|l| l.is_array()).cloned().unwrap_or_else(|| json!([]));
                let reason = if allowed { Value::Null } else { json!("sender_not_allowed") };
                Ok(Reachability {
                    output: json!({ "sender_allowed": allowed, "preferred_languages": languages, "reason": reason }),
                    allowed,
                })
            }
            404 => Ok(Reachability {
                output: json!({ "sender_allowed": false, "preferred_languages": [], "reason": "no_profile" }),
                allowed: false,
            }),
            _ => Err(failure("POST /profiles", status, &body)),
        }
    }

    async fn send(&self, call: &Invocation) -> Result<Value, ConnectorError> {
        const FIELDS: [&str; 5] = ["fiscal_code", "subject", "markdown", "due_date", "payment"];
        let fields = input::fields(&call.input, "send", &FIELDS)?;
        let fiscal_code = input::fiscal_code(fields)?;
        let content = input::content(fields)?;
        let reach = self.reachability(&fiscal_code, call).await?;
        if !reach.allowed {
            let why = match reach.output["reason"].as_str() {
                Some("no_profile") => "the citizen is not on App IO",
                _ => "the citizen has turned off messages from this service",
            };
            return Err(ConnectorError::fatal("appio.not_reachable", format!("{why}; no message was sent")));
        }
        let body = json!({ "fiscal_code": fiscal_code, "content": content });
        let (status, answer) = self.exchange(Method::POST, &["messages"], Some(body), call).await?;
        if !(200..300).contains(&status) {
            return Err(failure("POST /messages", status, &answer));
        }
        match answer.get("id").and_then(Value::as_str) {
            Some(id) => Ok(json!({ "id": id })),
            None => Err(ConnectorError::fatal("appio.rejected", format!("POST /messages answered {status} without a message `id`"))),
        }
    }

    async fn status(&self, call: &Invocation) -> Result<Value, ConnectorError> {
        let fields = input::fields(&call.input, "status", &["fiscal_code", "message_id"])?;
        let (fiscal_code, id) = (input::fiscal_code(fields)?, input::message_id(fields)?);
        let (status, body) = self.exchange(Method::GET, &["messages", &fiscal_code, &id], None, call).await?;
        if !(200..300).contains(&status) {
            return Err(failure("GET /messages/{fiscal_code}/{id}", status, &body));
        }
        let Some(state) = body.get("status").and_then(Value::as_str) else {
            return Err(ConnectorError::fatal("appio.rejected", "GET /messages/{fiscal_code}/{id} answered without a `status`"));
        };
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
        Ok(json!({
            "status": state,
            "notification": field("notification"),
            "read_status": field("read_status"),
            "payment_status": field("payment_status"),
        }))
    }

    /// One request; the answer's status and body (parsed JSON, the text, or `null`).
    /// Transport failures are errors; every status is returned.
    async fn exchange(
        &self,
        method: Method,
        path: &[&str],
        body: Option<Value>,
        call: &Invocation,
    ) -> Result<(u16, Value), ConnectorError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ConnectorError::fatal("appio.invalid_input", "the base_url cannot take a path"))?
            .pop_if_empty()
            .extend(path);
        let what = format!("App IO {method} /{}", path.first().copied().unwrap_or_default());
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("ocp-apim-subscription-key"), self.key.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        self.transport.stamp(&mut headers, call)?;
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let route = self.transport.route(&url)?;
        let body = body.map(|body| body.to_string().into_bytes());
        let received = self.transport.send(route, (&method, &url), headers, body, &what).await?;
        let status = received.status;
        if status == 429 || status == 408 || status >= 500 {
            let code = if status == 429 { "appio.throttled" } else { "appio.unavailable" };
            let message = format!("{what} answered {status}{}", detail(&parse(&received.body)));
            let retry_after = transport::retry_after(&received.headers, call.clock.now());
            return Err(ConnectorError::Retryable { code: code.into(), message, retry_after });
        }
        Ok((status, parse(&received.body)))
    }
}

impl std::fmt::Debug for AppIoConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppIoConnector").field("config", &self.config).finish()
    }
}

impl Connector for AppIoConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            // The key is never put in a message; this is a second line of defence.
            self.run(call).await.map_err(|error| error.redacted([self.config.api_key.trim()]))
        })
    }
}

/// The error for a non-2xx answer that [`AppIoConnector::exchange`] did not already turn
/// into a retryable one.
fn failure(what: &str, status: u16, body: &Value) -> ConnectorError {
    let code = match status {
        400 => "appio.invalid_message",
        401 => "appio.unauthorized",
        403 => "appio.forbidden",
        404 => "appio.not_found",
        _ => "appio.rejected",
    };
    ConnectorError::fatal(code, format!("App IO {what} answered {status}{}", detail(body)))
}

/// `: title: detail` from an RFC 7807 problem, or an excerpt of any other body.
fn detail(body: &Value) -> String {
    let text = match body {
        Value::Null => return String::new(),
        Value::Object(problem) if problem.contains_key("title") || problem.contains_key("detail") => {
            let part = |k: &str| problem.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
            [part("title"), part("detail")].into_iter().flatten().collect::<Vec<_>>().join(": ")
        }
        Value::String(text) => text.trim().to_string(),
        other => other.to_string(),
    };
    if text.is_empty() {
        return String::new();
    }
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(": {}{}", &text[..end], if end < text.len() { "…" } else { "" })
}

fn parse(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_and_the_key_never_printed() {
        let connector = AppIoConnector::new(AppIoConfig::new("key-0123456789")).expect("valid");
        assert!(!format!("{connector:?}").contains("key-0123456789"));
        assert_eq!(connector.base.as_str(), "https://api.io.pagopa.it/api/v1");
        assert!(AppIoConnector::new(AppIoConfig { base_url: "ftp://x".into(), ..AppIoConfig::new("k") }).is_err());
        assert!(AppIoConnector::new(AppIoConfig::new(" ")).is_err());
        assert!(AppIoConnector::new(AppIoConfig::new("a\nb")).is_err());
    }

    #[test]
    fn problems_are_summarised() {
        assert_eq!(
            detail(&json!({"type": "x", "title": "Invalid payload", "detail": "subject too short", "status": 400})),
            ": Invalid payload: subject too short"
        );
        assert_eq!(detail(&Value::Null), "");
        assert!(detail(&json!("é".repeat(600))).ends_with('…'));
    }
}
