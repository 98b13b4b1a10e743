//! Configuration of an HTTP connector instance. Secrets live here (filled from the
//! environment by whoever builds the config), never in workflow YAML; `Debug` masks them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// How one HTTP connector instance reaches its service.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Base of relative `url`s and of `operation` calls (`POST {base_url}/{operation}`).
    pub base_url: Option<String>,
    /// Longest a call may take when the step has no earlier deadline (default 30 s).
    pub timeout: Duration,
    /// Credentials sent with every request to the `base_url` origin (to any origin when
    /// there is no `base_url`).
    pub auth: Option<HttpAuth>,
    /// Allow private, loopback, link-local and other non-public addresses everywhere.
    pub allow_private: bool,
    /// Hosts exempt from the address policy as a whole (any port, any path): exact names or
    /// IPs, or `*.example.it`. The `base_url` is always exempt, but only its origin and path
    /// prefix; the OAuth2 `token_url` is reached only by token fetches.
    pub allowed_hosts: Vec<String>,
    /// Headers sent with every request (a step's `headers` override them).
    pub default_headers: BTreeMap<String, String>,
    /// Largest response body accepted (default 10 MiB); a larger one is a fatal
    /// `http.response_too_large`.
    pub max_response_bytes: usize,
    /// Redirects followed per call (default 5; 0 turns following off). Every hop is checked
    /// against the address policy.
    pub max_redirects: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            timeout: Duration::from_secs(30),
            auth: None,
            allow_private: false,
            allowed_hosts: Vec::new(),
            default_headers: BTreeMap::new(),
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .field("allow_private", &self.allow_private)
            .field("allowed_hosts", &self.allowed_hosts)
            // Values may carry tenant ids or keys someone put there anyway: names only.
            .field("default_headers", &self.default_headers.keys().collect::<Vec<_>>())
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_redirects", &self.max_redirects)
            .finish()
    }
}

/// Credentials of an HTTP connector instance.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// `<header>: <value>`, e.g. `X-Api-Key`.
    ApiKey { header: String, value: String },
    /// OAuth2 client credentials: a form POST of `grant_type=client_credentials`,
    /// `client_id`, `client_secret` (and `scope`) to `token_url`; the access token is cached
    /// until shortly before `expires_in` and sent as a bearer token.
    OAuth2ClientCredentials { token_url: String, client_id: String, client_secret: String, scope: Option<String> },
}

impl HttpAuth {
    /// The secret strings, to scrub from error messages.
    pub(super) fn secrets(&self) -> Vec<String> {
        match self {
            HttpAuth::Bearer { token } => vec![token.clone()],
            HttpAuth::Basic { user, password } => vec![password.clone(), super::auth::basic_credentials(user, password)],
            HttpAuth::ApiKey { value, .. } => vec![value.clone()],
            HttpAuth::OAuth2ClientCredentials { client_secret, .. } => vec![client_secret.clone()],
        }
    }
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MASK: &str = "***";
        match self {
            HttpAuth::Bearer { .. } => f.debug_struct("Bearer").field("token", &MASK).finish(),
            HttpAuth::Basic { user, .. } => f.debug_struct("Basic").field("user", user).field("password", &MASK).finish(),
            HttpAuth::ApiKey { header, .. } => f.debug_struct("ApiKey").field("header", header).field("value", &MASK).finish(),
            HttpAuth::OAuth2ClientCredentials { token_url, client_id, scope, .. } => f
                .debug_struct("OAuth2ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &MASK)
                .field("scope", scope)
                .finish(),
        }
    }
}
