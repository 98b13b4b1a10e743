//! Credentials: static headers (bearer, basic, API key) and the OAuth2 client-credentials
//! token source with its cache. A token's expiry is read on the engine's clock (the
//! invocation's), so a test with a manual clock can let a token expire.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::super::ConnectorError;
use super::HttpAuth;
use super::transport::Transport;
use crate::clock::{Clock as _, Millis, SharedClock};

/// Tokens without `expires_in` are kept this long.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Longer lifetimes are cut to this.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// A token is refreshed this long before it expires (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

pub(super) enum Credentials {
    Header(HeaderName, HeaderValue),
    OAuth2(TokenSource),
}

impl Credentials {
    pub(super) fn new(auth: &HttpAuth) -> Result<Self, String> {
        let header = |name: HeaderName, value: String, what: &str| {
            let mut value = HeaderValue::from_str(&value).map_err(|_| format!("the {what} is not a valid header value"))?;
            value.set_sensitive(true);
            Ok(Credentials::Header(name, value))
        };
        match auth {
            HttpAuth::Bearer { token } => header(AUTHORIZATION, format!("Bearer {token}"), "bearer token"),
            HttpAuth::Basic { user, password } => {
                header(AUTHORIZATION, format!("Basic {}", basic_credentials(user, password)), "user name")
            }
            HttpAuth::ApiKey { header: name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))?;
                header(name, value.clone(), "API key")
            }
            HttpAuth::OAuth2ClientCredentials { token_url, client_id, client_secret, scope } => {
                let token_url = Url::parse(token_url).map_err(|e| format!("invalid OAuth2 token_url `{token_url}`: {e}"))?;
                if !matches!(token_url.scheme(), "http" | "https") {
                    return Err(format!("the OAuth2 token_url must be http or https, not `{}`", token_url.scheme()));
                }
                let mut form = vec![("grant_type", "client_credentials".to_string()), ("client_id", client_id.clone())];
                form.push(("client_secret", client_secret.clone()));
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
                Ok(Credentials::OAuth2(TokenSource { token_url, form, cache: tokio::sync::Mutex::new(None) }))
            }
        }
    }
}

/// `base64(user:password)`, as in `Authorization: Basic`.
pub(super) fn basic_credentials(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.as_bytes().chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() { char::from(ALPHABET[((n >> shift) & 63) as usize]) } else { '=' });
        }
    }
    out
}

struct Cached {
    token: String,
    /// When to fetch a new token, on the engine's clock.
    refresh_at: Millis,
}

/// Fetches OAuth2 access tokens and caches them; one fetch at a time per connector.
pub(super) struct TokenSource {
    token_url: Url,
    form: Vec<(&'static str, String)>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenSource {
    /// A valid access token: the cached one unless it is due for refresh or is `rejected`
    /// (the token an API just answered 401 to), in which case a new one is fetched.
    /// Expiry is read on `clock`, the engine's.
    pub(super) async fn token(&self, transport: &Transport, rejected: Option<&str>, clock: &SharedClock) -> Result<String, ConnectorError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && clock.now() < cached.refresh_at
            && rejected != Some(cached.token.as_str())
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch(transport, clock).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self, transport: &Transport, clock: &SharedClock) -> Result<Cached, ConnectorError> {
        const WHAT: &str = "the OAuth2 token endpoint";
        let response = transport
            .trusted()
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(super::input::form_encode(&self.form))
            .send()
            .await
            .map_err(|e| transport.failure(&e, WHAT))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport.failure(&e, WHAT))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            // Only the standard `error` field: token endpoints may echo the request.
            let reason = json.get("error").and_then(Value::as_str).map(|e| format!(" ({e})")).unwrap_or_default();
            let message = format!("{WHAT} answered {}{reason}", status.as_u16());
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                ConnectorError::retryable("http.unavailable", message)
            } else {
                ConnectorError::fatal("http.auth", message)
            });
        }
        let Some(token) = json.get("access_token").and_then(Value::as_str) else {
            return Err(ConnectorError::fatal("http.auth", format!("{WHAT} answered without an access_token")));
        };
        let lifetime = match json.get("expires_in") {
            Some(Value::Number(n)) => n.as_f64().map(|s| Duration::from_secs_f64(s.clamp(0.0, MAX_TOKEN_LIFETIME.as_secs_f64()))),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok().map(Duration::from_secs),
            _ => None,
        }
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .min(MAX_TOKEN_LIFETIME);
        let valid_for = lifetime - REFRESH_MARGIN.min(lifetime / 2);
        let refresh_at = clock.now().saturating_add(i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX));
        Ok(Cached { token: token.to_string(), refresh_at })
    }
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;

    #[test]
    fn base64_of_basic_credentials() {
        assert_eq!(basic_credentials("Aladdin", "open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_credentials("a", ""), "YTo=");
        assert_eq!(basic_credentials("ab", "c"), "YWI6Yw==");
        assert_eq!(basic_credentials("", ""), "Og==");
    }
}
