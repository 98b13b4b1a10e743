//! Webhook triggers: `POST /hooks/<name>` (served by the API) starts the workflow whose
//! latest version has `webhook: <name>`.
//!
//! **Signatures.** With `secret: NAME`, a delivery carries two headers:
//!
//! ```text
//! X-Pratica-Timestamp: <unix time in seconds, e.g. 1772355600>
//! X-Pratica-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed with the secret's value>
//! ```
//!
//! The timestamp is signed together with the body (as Stripe and Slack do), compared in
//! constant time, and must be within the tolerance of the engine clock (default
//! [`DEFAULT_TOLERANCE`], 5 minutes, either way). The signature of an accepted delivery is
//! remembered in the database (`webhook_signatures`) until its timestamp leaves the
//! tolerance window, so the same signed request is refused the second time
//! ([`WebhookError::Replayed`]); the row is inserted with `ON CONFLICT DO NOTHING` in the
//! transaction that starts the instance, so two processes receiving the same request at once
//! start one instance. A sender's retry signs again with a new timestamp.
//!
//! **Which secrets.** A webhook may only use a secret whose name starts with
//! [`SECRET_PREFIX`] (`webhook-`): the installation declares its webhook secrets by naming
//! them so in `[secrets]`, and connectors may not use such secrets as credentials. A workflow
//! bound to any other secret does not compile (WF0211), and a stored one is refused here, so
//! an analyst cannot turn the hook's 202/401 answer into an oracle for a connector's
//! credential.
//!
//! An `Idempotency-Key` makes a retried delivery return the first instance (request id
//! `hook:<name>:<key>`). The JSON body is the input, or, when the trigger has an `input`
//! mapping, the mapping evaluated with the body as `.input`. An empty body is `{}`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{prepare, start_in_tx};
use crate::clock::{Millis, to_rfc3339};
use crate::plan::Trigger;
use crate::runtime::{Engine, EngineError, Started};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Pratica-Signature";
/// The header carrying the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Pratica-Timestamp";
/// How far a signed timestamp may be from now, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Names of the secrets webhooks may use start with this.
pub const SECRET_PREFIX: &str = "webhook-";

/// Longest timestamp header accepted (Unix seconds have 10 digits until 2286).
const MAX_TIMESTAMP_DIGITS: usize = 12;

/// Whether `name` is a secret webhooks may use (see [`SECRET_PREFIX`]).
pub fn is_webhook_secret(name: &str) -> bool {
    name.len() > SECRET_PREFIX.len() && name.starts_with(SECRET_PREFIX)
}

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no workflow is triggered by webhook `{0}`")]
    Unknown(String),
    #[error("the X-Pratica-Timestamp or X-Pratica-Signature header is missing, or the signature does not match")]
    SignatureInvalid,
    #[error("the signed timestamp is more than {} s away from the server's time; sign the request again", .tolerance.as_secs())]
    SignatureExpired { tolerance: Duration },
    #[error("this signed request was already accepted; a retry must be signed again with a new timestamp")]
    Replayed,
    #[error("the body is not JSON: {0}")]
    Body(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<crate::store::StoreError> for WebhookError {
    fn from(e: crate::store::StoreError) -> Self {
        WebhookError::Engine(e.into())
    }
}

/// One delivery as received: the raw body and the headers that matter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery<'a> {
    pub body: &'a [u8],
    /// `X-Pratica-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Pratica-Signature`.
    pub signature: Option<&'a str>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: the `X-Pratica-Signature` value a
/// sender sets, with `X-Pratica-Timestamp: <timestamp>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// A delivery whose signature matched: its timestamp and its signature, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp, in Unix seconds.
    pub timestamp: i64,
    /// The signature's bytes as lower-case hex (so `AB` and `ab` are the same request).
    pub signature: String,
}

/// Checks the signature of `body` with `secret` (constant-time); the timestamp must be 1 to
/// 12 ASCII digits. Says nothing about the time: see [`within`].
pub fn verify(secret: &str, timestamp: Option<&str>, body: &[u8], signature: Option<&str>) -> Result<Verified, WebhookError> {
    let timestamp =
        timestamp.map(str::trim).filter(|t| !t.is_empty() && t.len() <= MAX_TIMESTAMP_DIGITS && t.bytes().all(|b| b.is_ascii_digit()));
    let (Some(timestamp), Some(sent)) =
        (timestamp, signature.and_then(|s| s.trim().strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok()))
    else {
        return Err(WebhookError::SignatureInvalid);
    };
    mac(secret, timestamp, body).verify_slice(&sent).map_err(|_| WebhookError::SignatureInvalid)?;
    let timestamp = timestamp.parse().map_err(|_| WebhookError::SignatureInvalid)?;
    Ok(Verified { timestamp, signature: hex::encode(sent) })
}

/// Whether a signed `timestamp` (seconds) is within `tolerance` of `now` (milliseconds).
pub fn within(timestamp: i64, now: Millis, tolerance: Duration) -> bool {
    let signed_at = i128::from(timestamp) * 1000;
    (signed_at - i128::from(now)).unsigned_abs() <= tolerance.as_millis()
}

/// When a delivery signed at `timestamp` (seconds) stops being accepted (milliseconds): how
/// long its signature must be remembered.
fn expiry(timestamp: i64, tolerance: Duration) -> Millis {
    timestamp.saturating_mul(1000).saturating_add(i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX))
}

impl Engine {
    /// Handles a delivery to webhook `name`: when the trigger names a secret, checks the
    /// signature, the timestamp (within `tolerance`) and that the signed request was not
    /// accepted before; then starts the instance (once per `Idempotency-Key`).
    pub async fn webhook(&self, name: &str, delivery: &Delivery<'_>, tolerance: Duration) -> Result<Started, WebhookError> {
        // Checked before any write transaction: a flood of bad deliveries takes no write lock.
        let Some(t) = self.store().triggers_named("webhook", name).await?.into_iter().next() else {
            return Err(WebhookError::Unknown(name.into()));
        };
        let plan = self.plan(&t.workflow, Some(t.version as u32)).await?;
        let Some(Trigger::Webhook { secret, input, .. }) = plan.triggers.get(t.trigger_ix as usize) else {
            return Err(WebhookError::Unknown(name.into()));
        };
        let verified = match secret {
            None => None,
            Some(secret) => {
                let value = match self.secrets().get(secret) {
                    Ok(v) if is_webhook_secret(secret) => v,
                    Ok(_) => {
                        tracing::error!(
                            webhook = name,
                            secret,
                            "webhook bound to a secret not declared for webhooks (its name must start with `{SECRET_PREFIX}`); delivery refused"
                        );
                        return Err(WebhookError::SignatureInvalid);
                    }
                    Err(e) => {
                        tracing::error!(webhook = name, error = %e, "webhook secret is not configured; delivery refused");
                        return Err(WebhookError::SignatureInvalid);
                    }
                };
                let verified = verify(value, delivery.timestamp, delivery.body, delivery.signature)?;
                if !within(verified.timestamp, self.now(), tolerance) {
                    return Err(WebhookError::SignatureExpired { tolerance });
                }
                Some(verified)
            }
        };
        let payload: Value = if delivery.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(delivery.body).map_err(|e| WebhookError::Body(e.to_string()))?
        };
        // The input mapping and the business key are evaluated before the transaction opens.
        let prepared = prepare(self, &plan, input.as_ref(), json!({ "input": payload }), payload.clone()).await?;
        let key = delivery.idempotency_key;
        let request_id = match key {
            Some(key) => format!("hook:{name}:{key}"),
            None => format!("hook:{name}:{}", uuid::Uuid::now_v7()),
        };
        let mut tx = self.store().begin().await?;
        // Remembered in the transaction that starts the instance: a start that fails (a body
        // that does not fit the input schema) does not spend the signature.
        if let Some(v) = &verified
            && !tx.remember_webhook_signature(name, &v.signature, expiry(v.timestamp, tolerance)).await?
        {
            return Err(WebhookError::Replayed);
        }
        let record = json!({
            "trigger": "webhook",
            "webhook": name,
            "idempotency_key": key,
            "signed_at": verified.as_ref().map(|v| to_rfc3339(v.timestamp.saturating_mul(1000))),
            "at": to_rfc3339(self.now()),
        });
        let started = start_in_tx(self, &mut tx, &plan, prepared, request_id, record).await?;
        tx.commit().await?;
        self.wake();
        if verified.is_some()
            && let Err(e) = self.store().purge_webhook_signatures(self.now()).await
        {
            tracing::warn!(error = %e, "could not forget expired webhook signatures; will retry with the next delivery");
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_772_355_600;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let header = sign("s3cret", T, b"{\"a\":1}");
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        let ts = T.to_string();
        let ok = verify("s3cret", Some(&ts), b"{\"a\":1}", Some(&header)).unwrap();
        assert_eq!(ok, Verified { timestamp: T, signature: header[7..].to_string() });
        // Upper-case hex is the same signature (so a replay cannot dodge the memory by case).
        assert_eq!(verify("s3cret", Some(&ts), b"{\"a\":1}", Some(&header.to_uppercase().replace("SHA256=", "sha256="))).unwrap(), ok);
        let refused = |secret: &str, ts: Option<&str>, body: &[u8], sig: Option<&str>| {
            matches!(verify(secret, ts, body, sig), Err(WebhookError::SignatureInvalid))
        };
        assert!(refused("other", Some(&ts), b"{\"a\":1}", Some(&header)));
        assert!(refused("s3cret", Some(&ts), b"{\"a\":2}", Some(&header)));
        assert!(refused("s3cret", Some(&(T + 1).to_string()), b"{\"a\":1}", Some(&header)), "the timestamp is signed");
        assert!(refused("s3cret", None, b"{\"a\":1}", Some(&header)));
        assert!(refused("s3cret", Some(&ts), b"{\"a\":1}", None));
        assert!(refused("s3cret", Some(&ts), b"{\"a\":1}", Some("sha256=zz")));
        assert!(refused("s3cret", Some(&ts), b"{\"a\":1}", Some(header.trim_start_matches("sha256="))));
        for bad in ["", "-1", "+1772355600", "1772355600.5", "0x10", "9999999999999"] {
            assert!(refused("s3cret", Some(bad), b"{\"a\":1}", Some(&sign("s3cret", 1, b"{\"a\":1}"))), "{bad}");
        }
    }

    #[test]
    fn the_hmac_is_over_timestamp_dot_body() {
        // The same as `printf '%s' "1.what do ya want for nothing?" | openssl dgst -sha256 -hmac Jefe`.
        let mut plain = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        plain.update(b"1.what do ya want for nothing?");
        assert_eq!(sign("Jefe", 1, b"what do ya want for nothing?"), format!("sha256={}", hex::encode(plain.finalize().into_bytes())));
    }

    #[test]
    fn timestamps_are_accepted_within_the_tolerance_either_way() {
        let now = T * 1000;
        let five = Duration::from_secs(300);
        assert!(within(T, now, five) && within(T - 300, now, five) && within(T + 300, now, five));
        assert!(!within(T - 301, now, five) && !within(T + 301, now, five));
        assert!(!within(i64::MAX, now, five) && !within(0, now, five));
        assert_eq!(expiry(T, five), now + 300_000);
    }

    #[test]
    fn only_secrets_named_for_webhooks_may_sign() {
        assert!(is_webhook_secret("webhook-intake"));
        assert!(!is_webhook_secret("webhook-") && !is_webhook_secret("inps-token") && !is_webhook_secret("intake-webhook"));
    }
}
