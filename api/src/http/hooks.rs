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
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/hooks/{name}", post(hook))
}

/// `202` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookAccepted {
    pub instance: String,
    /// False when an earlier delivery with the same `Idempotency-Key` started it.
    pub created: bool,
}

/// Start the workflow whose latest version has `webhook: name`, with the JSON body as input.
///
/// No API token: when the trigger has a `secret`, `X-Pratica-Signature: sha256=<hex HMAC-SHA256 of the body>`
/// authenticates the delivery. A retried delivery with the same `Idempotency-Key` answers the first
/// instance with `created: false`.
#[utoipa::path(
    post,
    path = "/hooks/{name}",
    tag = "hooks",
    operation_id = "webhook",
    params(
        ("name" = String, Path, description = "The trigger's `webhook` name"),
        ("X-Pratica-Signature" = Option<String>, Header, description = "`sha256=<hex HMAC-SHA256 of the body>`; required when the trigger has a secret"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters; a repeated key answers the first instance"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Any JSON document (an empty body is `{}`): the trigger maps it to the workflow's input"),
    responses(
        (status = 202, description = "An instance was started (or, for a repeated `Idempotency-Key`, had been)", body = HookAccepted),
        (status = 400, description = "`malformed_json` or `unreadable_body`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_invalid`: the signature is missing or wrong", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no workflow has this webhook", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 422, description = "`invalid_field` (`Idempotency-Key`), `invalid_request` or `invalid_input`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 500, response = super::openapi::Internal),
    )
)]
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
