//! The HTTP transport the `http` and `appio` connectors share: the two clients (one behind
//! the address policy, one for the operator's own URLs), the time budget of a call, the
//! size limit on answers, `Retry-After`, and how a failure to get an answer becomes a
//! [`ConnectorError`].
//!
//! A connector builds its request (URL, headers, body) and reads the answer's status; the
//! transport sends it and reads the answer in full. Each connector names its own error codes
//! ([`Codes`]), so `appio` keeps `appio.unavailable` where `http` says `http.unavailable`.
//!
//! Time: the budget compares the deadline with the invocation's clock (the engine's), and a
//! `Retry-After` date is read relative to it; the wait for the answer is measured with
//! `tokio::time::timeout`, on the monotonic clock.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Method, Url};

use super::guard::{self, AddressPolicy, GuardedResolver, Route};
use crate::clock::Millis;
use crate::connector::{ConnectorError, Invocation};

/// The error codes a connector reports for transport failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codes {
    /// Connection refused, reset, DNS failure.
    pub unavailable: &'static str,
    /// An answer longer than the limit.
    pub too_large: &'static str,
    /// A request that cannot be built (an idempotency key that is not a header value).
    pub invalid_input: &'static str,
}

/// Which addresses a transport may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    /// Any address, also private ones.
    pub allow_private: bool,
    /// Hosts exempt from the address policy (`*.example.it` for a domain).
    pub allowed_hosts: Vec<String>,
    /// The operator's base URL: its origin and path prefix are exempt.
    pub base: Option<Url>,
}

/// Sends requests and reads answers for one connector instance. Cheap to share: the clients
/// hold the connection pools.
pub(crate) struct Transport {
    /// Resolves through the address policy: every request outside the trusted prefixes.
    guarded: Client,
    /// Resolves as the system does: requests inside the base prefix, and OAuth2 token
    /// fetches (the operator configured both URLs).
    trusted: Client,
    policy: Arc<AddressPolicy>,
    max_response_bytes: usize,
    codes: Codes,
}

/// One answer, read in full.
pub(crate) struct Received {
    pub method: Method,
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Someone else may have installed one already; either way there is one now.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Transport {
    /// Builds the clients (no network access yet): no redirects followed, no proxies from the
    /// environment (they would bypass the address policy).
    pub(crate) fn new(reach: Reach, max_response_bytes: usize, codes: Codes) -> Result<Self, String> {
        install_crypto_provider();
        let mut policy = AddressPolicy::new(reach.allow_private, reach.allowed_hosts);
        if let Some(base) = &reach.base {
            policy = policy.trust_prefix(base);
        }
        let policy = Arc::new(policy);
        let builder = || {
            Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("pratica/", env!("CARGO_PKG_VERSION")))
        };
        let guarded =
            builder().dns_resolver(GuardedResolver(policy.clone())).build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let trusted = builder().build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { guarded, trusted, policy, max_response_bytes, codes })
    }

    /// The client for the operator's own URLs (the OAuth2 `token_url`).
    pub(crate) fn trusted(&self) -> &Client {
        &self.trusted
    }

    /// How `url` may be sent; a non-public IP literal outside the exemptions is refused with
    /// `http.forbidden_address`.
    pub(crate) fn route(&self, url: &Url) -> Result<Route, ConnectorError> {
        self.policy.route(url)
    }

    /// The time this call may take: `timeout` cut to the step's deadline; `late` is the
    /// message when the deadline has already passed.
    pub(crate) fn budget(timeout: Duration, call: &Invocation, late: &str) -> Result<Duration, ConnectorError> {
        call.time_allowed(timeout).ok_or_else(|| ConnectorError::retryable("timeout", late))
    }

    /// Runs `work` within `budget`; running out is a retryable `timeout` naming `what`.
    pub(crate) async fn within<T>(
        budget: Duration,
        what: &str,
        work: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::retryable("timeout", format!("{what}: no answer within {} ms", budget.as_millis()))),
        }
    }

    /// Adds `Idempotency-Key` and `X-Pratica-Attempt` from the invocation.
    pub(crate) fn stamp(&self, headers: &mut HeaderMap, call: &Invocation) -> Result<(), ConnectorError> {
        let key = HeaderValue::from_str(&call.idempotency_key)
            .map_err(|_| ConnectorError::fatal(self.codes.invalid_input, "the idempotency key is not a valid header value"))?;
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        headers.insert(HeaderName::from_static("x-pratica-attempt"), HeaderValue::from(call.attempt));
        Ok(())
    }

    /// Sends one request on the client `route` names and reads the answer, up to the size
    /// limit. `what` names the request in error messages.
    pub(crate) async fn send(
        &self,
        route: Route,
        (method, url): (&Method, &Url),
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Received, ConnectorError> {
        let client = match route {
            Route::Trusted => &self.trusted,
            Route::Guarded => &self.guarded,
        };
        let mut builder = client.request(method.clone(), url.clone()).headers(headers);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| self.failure(&e, what))?;
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(&e, what))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                let limit = self.max_response_bytes;
                return Err(ConnectorError::fatal(self.codes.too_large, format!("{what}: the response is larger than {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Received { method: method.clone(), url: url.clone(), status, headers, body })
    }

    /// A failure to get an answer, with this transport's codes.
    pub(crate) fn failure(&self, error: &reqwest::Error, what: &str) -> ConnectorError {
        transport_error(error, what, self.codes.unavailable)
    }
}

/// A failure to get an answer: refused by the address policy, timed out, or unreachable
/// (`unavailable`).
pub(crate) fn transport_error(error: &reqwest::Error, what: &str, unavailable: &str) -> ConnectorError {
    if let Some(refused) = guard::forbidden_in(error) {
        return ConnectorError::fatal(guard::FORBIDDEN, refused.to_string());
    }
    if error.is_timeout() {
        return ConnectorError::retryable("timeout", format!("{what}: timed out"));
    }
    let mut message = format!("{what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ConnectorError::retryable(unavailable, message)
}

/// `Retry-After` as delay-seconds or an HTTP date (the delay from `now`, the engine's clock).
pub(crate) fn retry_after(headers: &HeaderMap, now: Millis) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let left = when.timestamp_millis() - now;
    Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after_header(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("value"));
        map
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_relative_to_the_given_now() {
        // 2015-10-21T07:28:00Z
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        let at = 1_445_412_480_000;
        assert_eq!(retry_after(&retry_after_header(" 7 "), at), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&retry_after_header(date), at - 120_000), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&retry_after_header(date), at + 1), Some(Duration::ZERO), "a date in the past");
        assert_eq!(retry_after(&retry_after_header("soon"), at), None);
        assert_eq!(retry_after(&HeaderMap::new(), at), None);
    }
}
