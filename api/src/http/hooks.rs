//! Webhook triggers: `POST /hooks/{name}` starts the workflow whose latest version has
//! `webhook: name` (see `pratica_engine::trigger::webhook`).
//!
//! | request | answer |
//! |---|---|
//! | JSON body (≤ 1 MiB); `X-Pratica-Signature: sha256=<hex HMAC-SHA256 of the body>` when the trigger has a `secret`; optional `Idempotency-Key` | `202 {instance, created}` |
//!
//! Problems: `401 signature_invalid` (signature missing or wrong), `404 not_found` (no such
//! hook), `400 malformed_json`, `413 payload_too_large`. A retried delivery with the same
//! `Idempotency-Key` answers the first instance with `created: false`. The route needs no
//! API token: the signature is the webhook's authentication.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pratica_engine::trigger::{SIGNATURE_HEADER, WebhookError};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/hooks/{name}", post(hook))
}

/// `202` answer.
#[derive(Debug, Serialize)]
pub struct HookAccepted {
    pub instance: String,
    /// False when an earlier delivery with the same `Idempotency-Key` started it.
    pub created: bool,
}

async fn hook(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge { limit: super::MAX_BODY_BYTES }.into_response();
        }
        Err(r) => return ApiError::UnreadableBody { detail: r.body_text() }.into_response(),
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => Some(k.trim()),
        Some(_) => return ApiError::invalid_field("Idempotency-Key", format!("1 to {MAX_KEY_LEN} visible characters")).into_response(),
    };
    match state.engine().webhook(&name, &body, signature, key).await {
        Ok(started) => (StatusCode::ACCEPTED, axum::Json(HookAccepted { instance: started.id, created: started.created })).into_response(),
        Err(WebhookError::SignatureInvalid) => signature_invalid(),
        Err(e @ WebhookError::Unknown(_)) => ApiError::NotFound(e.to_string()).into_response(),
        Err(WebhookError::Body(detail)) => ApiError::MalformedJson { detail }.into_response(),
        Err(WebhookError::Engine(e)) => ApiError::from(e).into_response(),
    }
}

/// `401 signature_invalid`, shaped like every other problem.
fn signature_invalid() -> Response {
    let body = serde_json::json!({
        "type": "urn:pratica:problem:signature_invalid",
        "title": "Signature invalid",
        "status": 401,
        "code": "signature_invalid",
        "detail": WebhookError::SignatureInvalid.to_string(),
    });
    let mut response = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}
