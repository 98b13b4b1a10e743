//! Webhook triggers: `POST /hooks/<name>` (served by the API) starts the workflow whose
//! latest version has `webhook: <name>`.
//!
//! With `secret: NAME`, the request must carry `X-Pratica-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the raw body keyed with the configured secret's value, compared in
//! constant time. An `Idempotency-Key` makes a retried delivery return the first instance
//! (request id `hook:<name>:<key>`). The JSON body is the input, or, when the trigger has
//! an `input` mapping, the mapping evaluated with the body as `.input`. An empty body is `{}`.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{input_of, start_in_tx};
use crate::clock::to_rfc3339;
use crate::plan::Trigger;
use crate::runtime::{Engine, EngineError, Started};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Pratica-Signature";

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no workflow is triggered by webhook `{0}`")]
    Unknown(String),
    #[error("the X-Pratica-Signature header is missing or does not match the body")]
    SignatureInvalid,
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

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`: the header value a sender sets.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid signature of `body` with `secret` (constant-time compare).
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

impl Engine {
    /// Handles a delivery to webhook `name`: checks the signature when the trigger names a
    /// secret, then starts the instance (once per `idempotency_key`).
    pub async fn webhook(
        &self,
        name: &str,
        body: &[u8],
        signature: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Started, WebhookError> {
        // Checked before any write transaction: a flood of bad deliveries takes no write lock.
        let Some(t) = self.store().triggers_named("webhook", name).await?.into_iter().next() else {
            return Err(WebhookError::Unknown(name.into()));
        };
        let plan = self.plan(&t.workflow, Some(t.version as u32)).await?;
        let Some(Trigger::Webhook { secret, input, .. }) = plan.triggers.get(t.trigger_ix as usize) else {
            return Err(WebhookError::Unknown(name.into()));
        };
        if let Some(secret) = secret {
            let value = match self.secrets().get(secret) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(webhook = name, error = %e, "webhook secret is not configured; delivery refused");
                    return Err(WebhookError::SignatureInvalid);
                }
            };
            if !verify(value, body, signature) {
                return Err(WebhookError::SignatureInvalid);
            }
        }
        let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| WebhookError::Body(e.to_string()))?
        };
        let input = input_of(input.as_ref(), &json!({ "input": payload }), payload.clone())?;
        let request_id = match idempotency_key {
            Some(key) => format!("hook:{name}:{key}"),
            None => format!("hook:{name}:{}", uuid::Uuid::now_v7()),
        };
        let mut tx = self.store().begin().await?;
        let record = json!({ "trigger": "webhook", "webhook": name, "idempotency_key": idempotency_key, "at": to_rfc3339(self.now()) });
        let started = start_in_tx(self, &mut tx, &plan, input, request_id, record).await?;
        tx.commit().await?;
        self.wake();
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_same_secret_and_body() {
        let header = sign("s3cret", b"{\"a\":1}");
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert!(verify("s3cret", b"{\"a\":1}", Some(&header)));
        assert!(!verify("other", b"{\"a\":1}", Some(&header)));
        assert!(!verify("s3cret", b"{\"a\":2}", Some(&header)));
        assert!(!verify("s3cret", b"{\"a\":1}", None));
        assert!(!verify("s3cret", b"{\"a\":1}", Some("sha256=zz")));
        assert!(!verify("s3cret", b"{\"a\":1}", Some(header.trim_start_matches("sha256="))));
    }

    #[test]
    fn the_hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
