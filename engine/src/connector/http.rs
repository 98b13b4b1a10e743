//! The built-in `http` connector, and connector instances of `kind = "http"`.
//!
//! # Calling it from a workflow
//!
//! **Request form** — `call: http`, or an instance call whose `with` has a string `url` or a
//! `method` that is an HTTP method. `with` fields (any other field is refused):
//!
//! | field | meaning |
//! |---|---|
//! | `url` | absolute `http(s)` URL, or a path relative to the instance's `base_url` (joined with exactly one `/`); on an instance call without `url`, `{base_url}/{operation}` |
//! | `method` | `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`; default `GET`, or `POST` when there is a body |
//! | `query` | object of scalars (a list repeats the name; `null` is left out), appended to the URL's query |
//! | `headers` | object of scalars; they override the instance's default headers |
//! | `json` | any value, sent as `application/json` |
//! | `body` | a string is sent as `text/plain; charset=utf-8`, any other value as JSON |
//! | `form` | object of scalars, sent as `application/x-www-form-urlencoded` |
//!
//! At most one of `json`, `body`, `form`; a `Content-Type` in `headers` wins over the default.
//! The output is `{status, headers, body}`: `headers` has lower-cased names and string values
//! (repeated headers joined with `, `); `body` is the parsed JSON when the response says it is
//! JSON (`application/json` or `+json`), otherwise the text, and `null` when empty.
//!
//! **Operation form** — `call: inps.contributions` on an instance with a `base_url`, whose
//! `with` is not in the request form: `POST {base_url}/contributions` with `with` as the JSON
//! body (no body when `with` is absent), and the output is the response **body** alone
//! (parsed as above), as `docs/LANGUAGE.md` promises for `kind = "http"`.
//!
//! Every request carries `Idempotency-Key: <invocation.idempotency_key>` and
//! `X-Pratica-Attempt: <attempt>`, also on redirects and on the retry after a 401.
//!
//! # Errors
//!
//! | situation | error |
//! |---|---|
//! | 2xx | success |
//! | 408, 429, 5xx | retryable `http.<status>`, `retry_after` from `Retry-After` (seconds or HTTP date) |
//! | other 4xx, unfollowed 3xx | fatal `http.<status>`; the message has up to 2 KB of the response body |
//! | no answer in time | retryable `timeout` |
//! | connection refused, reset, DNS failure | retryable `http.unavailable` |
//! | refused by the address policy | fatal `http.forbidden_address` |
//! | bad `with` | fatal `http.invalid_input` |
//! | body over `max_response_bytes` | fatal `http.response_too_large` |
//! | OAuth2 token refused (4xx) | fatal `http.auth` (unavailable token endpoint: retryable `http.unavailable`) |
//!
//! The time allowed is the configured `timeout` (30 s by default), cut to the invocation's
//! `deadline` (compared with the invocation's clock, the engine's) when that comes sooner; it
//! covers token fetches, redirects and reading the body, and is waited for on the monotonic
//! clock. A `Retry-After` date and an OAuth2 token's expiry are read on the engine's clock too.
//! The transport (clients, budget, size limit, `Retry-After`, transport errors) is in
//! [`transport`], shared with the `appio` connector.
//!
//! # Configuration ([`HttpConfig`])
//!
//! Credentials ([`HttpAuth`]) come only from configuration, never from YAML, and are sent
//! only to the origin of `base_url` (to any origin when there is no `base_url`); redirects to
//! another origin drop them together with `Authorization` and `Cookie` headers. OAuth2
//! client-credentials tokens are fetched with a form POST, cached until shortly before
//! `expires_in`, and refreshed once when the API answers 401. Secrets are masked in `Debug`
//! and replaced by `***` in error messages, also in their common encodings (hex, base64,
//! percent-encoding, `Basic` credentials; see [`super::redact`]); secrets shorter than 4
//! bytes are not scrubbed.
//!
//! **Address policy (SSRF guard).** Loopback, private, shared (100.64/10), link-local
//! (cloud metadata), unique-local, unspecified, reserved, broadcast and multicast addresses —
//! in any spelling, including IPv6 forms that carry an IPv4 address — are refused with
//! `http.forbidden_address` unless `allow_private` is set or the host is in `allowed_hosts`.
//! The `base_url` is exempt too, but only its origin (scheme, host and port) and its path
//! prefix: a base on `http://127.0.0.1:8081/inps` reaches `http://127.0.0.1:8081/inps/...`,
//! not another port of the host (Pratica's own API) nor `/admin` (after percent-decoding,
//! `..` segments and backslashes are never inside the prefix). Every redirect hop is judged
//! again by the same rule. The OAuth2 `token_url` is used only for token fetches. Names are
//! checked in the client's resolver, so the checked addresses are the ones connected to (no
//! DNS rebinding window); IP literals are checked before each request and each redirect hop.
//! Proxies from the environment are not used, since they would bypass the check.

mod auth;
mod config;
mod guard;
mod input;
pub(super) mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, LOCATION, PROXY_AUTHORIZATION};
use reqwest::{Method, Url};
use serde_json::{Value, json};

pub use config::{HttpAuth, HttpConfig};

use self::auth::Credentials;
use self::guard::Route;
use self::input::{Planned, Shape};
use self::transport::{Codes, Reach, Received, Transport};
use super::{Connector, ConnectorError, ConnectorFuture, Invocation};
use crate::clock::{Clock as _, Millis};

/// Longest excerpt of a response body in an error message.
const EXCERPT_BYTES: usize = 2048;

/// The `http` connector. Cheap to clone: clones share the client, its connection pool and the
/// OAuth2 token cache.
#[derive(Clone)]
pub struct HttpConnector {
    inner: Arc<Inner>,
}

struct Inner {
    config: HttpConfig,
    transport: Transport,
    base: Option<Url>,
    credentials: Option<Credentials>,
    default_headers: HeaderMap,
    secrets: Vec<String>,
}

/// The `http` connector's codes for transport failures.
const CODES: Codes = Codes { unavailable: "http.unavailable", too_large: "http.response_too_large", invalid_input: "http.invalid_input" };

impl HttpConnector {
    /// Checks the configuration and builds the client (no network access yet).
    pub fn new(config: HttpConfig) -> Result<Self, String> {
        if config.timeout.is_zero() {
            return Err("the HTTP timeout must be longer than zero".into());
        }
        let base = match &config.base_url {
            Some(text) => {
                let url = Url::parse(text).map_err(|e| format!("invalid base_url `{text}`: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
                    return Err(format!("base_url `{text}` must be an http(s) URL without query or fragment"));
                }
                Some(url)
            }
            None => None,
        };
        let credentials = config.auth.as_ref().map(Credentials::new).transpose()?;
        let mut default_headers = HeaderMap::new();
        for (name, value) in &config.default_headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| format!("the value of default header `{name}` is not valid"))?;
            default_headers.insert(header, value);
        }
        let reach = Reach { allow_private: config.allow_private, allowed_hosts: config.allowed_hosts.clone(), base: base.clone() };
        let transport = Transport::new(reach, config.max_response_bytes, CODES)?;
        let secrets = config.auth.as_ref().map(HttpAuth::secrets).unwrap_or_default();
        Ok(Self { inner: Arc::new(Inner { config, transport, base, credentials, default_headers, secrets }) })
    }

    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector").field("config", &self.inner.config).finish()
    }
}

impl Connector for HttpConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move { self.inner.invoke(call).await.map_err(|e| self.inner.scrub(e)) })
    }
}

impl Inner {
    async fn invoke(&self, call: &Invocation) -> Result<Value, ConnectorError> {
        let budget = Transport::budget(self.config.timeout, call, "the step's deadline passed before the request was sent")?;
        let planned = input::plan(call, self.base.as_ref())?;
        let (shape, what) = (planned.shape, describe(&planned.method, &planned.url));
        let received = Transport::within(budget, &what, self.exchange(planned, call)).await?;
        outcome(received, shape, call.clock.now())
    }

    /// Sends the request, following redirects within the address policy.
    async fn exchange(&self, mut request: Planned, call: &Invocation) -> Result<Received, ConnectorError> {
        let auth_origin = self.base.as_ref().unwrap_or(&request.url).origin();
        let mut hops = 0;
        loop {
            // Every hop is judged again by the same rule: a redirect out of the base prefix is
            // an ordinary request.
            let route = self.transport.route(&request.url)?;
            let received = self.send_authorized(&request, call, route, request.url.origin() == auth_origin).await?;
            let location = received.headers.get(LOCATION).and_then(|v| v.to_str().ok());
            let (Some(location), 301 | 302 | 303 | 307 | 308) = (location, received.status) else { return Ok(received) };
            if hops >= self.config.max_redirects {
                return Ok(received);
            }
            hops += 1;
            let next = request
                .url
                .join(location)
                .map_err(|e| ConnectorError::fatal("http.bad_redirect", format!("bad Location `{location}`: {e}")))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(ConnectorError::fatal("http.bad_redirect", format!("redirect to a {} URL", next.scheme())));
            }
            if next.origin() != request.url.origin() {
                for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
                    request.headers.remove(name);
                }
            }
            let to_get = received.status == 303 && request.method != Method::HEAD
                || matches!(received.status, 301 | 302) && request.method == Method::POST;
            if to_get {
                (request.method, request.body) = (Method::GET, None);
                request.headers.remove(CONTENT_TYPE);
            }
            request.url = next;
        }
    }

    /// One request with credentials; an OAuth2 token the API refuses with 401 is refreshed once.
    async fn send_authorized(
        &self,
        request: &Planned,
        call: &Invocation,
        route: Route,
        with_auth: bool,
    ) -> Result<Received, ConnectorError> {
        let Some(Credentials::OAuth2(tokens)) = self.credentials.as_ref().filter(|_| with_auth) else {
            return self.send(route, request, call, with_auth, None).await;
        };
        let token = tokens.token(&self.transport, None, &call.clock).await?;
        let received = self.send(route, request, call, true, Some(&token)).await?;
        if received.status != 401 {
            return Ok(received);
        }
        let fresh = tokens.token(&self.transport, Some(&token), &call.clock).await?;
        self.send(route, request, call, true, Some(&fresh)).await
    }

    async fn send(
        &self,
        route: Route,
        request: &Planned,
        call: &Invocation,
        with_auth: bool,
        token: Option<&str>,
    ) -> Result<Received, ConnectorError> {
        let mut headers = self.default_headers.clone();
        headers.extend(request.headers.clone());
        if let Some(body) = &request.body
            && !headers.contains_key(CONTENT_TYPE)
        {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
        }
        match (&self.credentials, token) {
            (Some(Credentials::Header(name, value)), _) if with_auth => {
                headers.insert(name.clone(), value.clone());
            }
            (_, Some(token)) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| ConnectorError::fatal("http.auth", "the OAuth2 access token is not a valid header value"))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            _ => {}
        }
        self.transport.stamp(&mut headers, call)?;
        let what = describe(&request.method, &request.url);
        let body = request.body.as_ref().map(|body| body.bytes.clone());
        self.transport.send(route, (&request.method, &request.url), headers, body, &what).await
    }

    /// Replaces configured secrets (and their encodings) in an error message with `***`.
    fn scrub(&self, error: ConnectorError) -> ConnectorError {
        error.redacted(self.secrets.iter().map(String::as_str))
    }
}

/// The step's output for a 2xx answer, or the error for any other.
/// `now` (the engine's clock) is what a `Retry-After` date is relative to.
fn outcome(received: Received, shape: Shape, now: Millis) -> Result<Value, ConnectorError> {
    let status = received.status;
    if (200..300).contains(&status) {
        let body = parse_body(&received.headers, &received.body);
        return Ok(match shape {
            Shape::Body => body,
            Shape::Envelope => json!({ "status": status, "headers": header_object(&received.headers), "body": body }),
        });
    }
    let mut message = format!("{} answered {status}", describe(&received.method, &received.url));
    if (300..400).contains(&status) {
        let location = received.headers.get(LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        message.push_str(&format!(" (redirect to {} not followed)", location.as_deref().unwrap_or("nowhere")));
    }
    let excerpt = excerpt(&received.body);
    if !excerpt.is_empty() {
        message.push_str(": ");
        message.push_str(&excerpt);
    }
    let code = format!("http.{status}");
    if status == 408 || status == 429 || status >= 500 {
        Err(ConnectorError::Retryable { code, message, retry_after: transport::retry_after(&received.headers, now) })
    } else {
        Err(ConnectorError::Fatal { code, message })
    }
}

/// `GET https://host/path`, without query, fragment or user info.
fn describe(method: &Method, url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    format!("{method} {shown}")
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    let media =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).unwrap_or("").trim().to_ascii_lowercase();
    if (media == "application/json" || media.ends_with("+json"))
        && let Ok(value) = serde_json::from_slice(body)
    {
        return value;
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

fn header_object(headers: &HeaderMap) -> Value {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_string()).and_modify(|v| *v = format!("{v}, {value}")).or_insert_with(|| value.into_owned());
    }
    json!(out)
}

/// At most [`EXCERPT_BYTES`] of a body, cut at a character boundary.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= EXCERPT_BYTES {
        return text.to_string();
    }
    let mut end = EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn bodies_headers_and_excerpts() {
        let json_type = headers(&[("content-type", "application/problem+json; charset=utf-8")]);
        assert_eq!(parse_body(&json_type, br#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_body(&json_type, b"not json"), json!("not json"));
        assert_eq!(parse_body(&headers(&[("content-type", "text/plain")]), b"[1]"), json!("[1]"));
        assert_eq!(parse_body(&json_type, b""), Value::Null);
        assert_eq!(header_object(&headers(&[("x-a", "1"), ("x-a", "2"), ("x-b", "3")])), json!({"x-a": "1, 2", "x-b": "3"}));
        let long = "è".repeat(3000);
        let cut = excerpt(long.as_bytes());
        assert!(cut.len() < EXCERPT_BYTES + 40 && cut.ends_with("(6000 bytes in all)"), "{}", cut.len());
        let url = Url::parse("https://u:p@h.example/a?secret=1#f").expect("url");
        assert_eq!(describe(&Method::GET, &url), "GET https://h.example/a");
    }
}
