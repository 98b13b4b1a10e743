//! Webhook triggers: `POST /hooks/{name}` starts the workflow whose latest version has
//! `webhook: name` (see `pratica_engine::trigger::webhook`).
//!
//! | request | answer |
//! |---|---|
//! | JSON body (≤ 1 MiB); when the trigger has a `secret`: `X-Pratica-Timestamp: <unix seconds>` and `X-Pratica-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`; optional `Idempotency-Key` | `202 {instance, created}` |
//!
//! Problems: `401 signature_invalid` (timestamp or signature missing, malformed or wrong),
//! `401 signature_expired` (the signed timestamp is outside the tolerance, 5 minutes by
//! default), `409 webhook_replayed` (this signed request was accepted before), `404
//! not_found` (no such hook), `400 malformed_json`, `413 payload_too_large`. A retried
//! delivery (signed again) with the same `Idempotency-Key` answers the first instance with
//! `created: false`. The route needs no API token: the signature is the webhook's
//! authentication.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pratica_engine::trigger::{Delivery, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookError};
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
/// No API token: when the trigger has a `secret`, `X-Pratica-Timestamp: <unix seconds>` and
/// `X-Pratica-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` authenticate the
/// delivery; the timestamp must be within 5 minutes (configurable) of the server's clock and
/// each signed request is accepted once. A retried delivery, signed again, with the same
/// `Idempotency-Key` answers the first instance with `created: false`.
#[utoipa::path(
    post,
    path = "/hooks/{name}",
    tag = "hooks",
    operation_id = "webhook",
    params(
        ("name" = String, Path, description = "The trigger's `webhook` name"),
        ("X-Pratica-Timestamp" = Option<String>, Header, description = "Unix time in seconds when the request was signed; required when the trigger has a secret"),
        ("X-Pratica-Signature" = Option<String>, Header, description = "`sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">`; required when the trigger has a secret"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters; a repeated key answers the first instance"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Any JSON document (an empty body is `{}`): the trigger maps it to the workflow's input"),
    responses(
        (status = 202, description = "An instance was started (or, for a repeated `Idempotency-Key`, had been)", body = HookAccepted),
        (status = 400, description = "`malformed_json` or `unreadable_body`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_invalid`: the timestamp or signature is missing or wrong; `signature_expired`: the signed timestamp is too far from now", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no workflow has this webhook", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`webhook_replayed`: this signed request was already accepted; sign a retry again", body = super::openapi::Problem, content_type = "application/problem+json"),
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
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => Some(k.trim()),
        Some(_) => return ApiError::invalid_field("Idempotency-Key", format!("1 to {MAX_KEY_LEN} visible characters")).into_response(),
    };
    let delivery =
        Delivery { body: &body, timestamp: header_text(TIMESTAMP_HEADER), signature: header_text(SIGNATURE_HEADER), idempotency_key: key };
    match state.engine().webhook(&name, &delivery, state.webhook_tolerance()).await {
        Ok(started) => (StatusCode::ACCEPTED, axum::Json(HookAccepted { instance: started.id, created: started.created })).into_response(),
        Err(e @ WebhookError::SignatureInvalid) => refused(StatusCode::UNAUTHORIZED, "signature_invalid", "Signature invalid", &e),
        Err(e @ WebhookError::SignatureExpired { .. }) => refused(StatusCode::UNAUTHORIZED, "signature_expired", "Signature expired", &e),
        Err(e @ WebhookError::Replayed) => refused(StatusCode::CONFLICT, "webhook_replayed", "Webhook replayed", &e),
        Err(e @ WebhookError::Unknown(_)) => ApiError::NotFound(e.to_string()).into_response(),
        Err(WebhookError::Body(detail)) => ApiError::MalformedJson { detail }.into_response(),
        Err(WebhookError::Engine(e)) => ApiError::from(e).into_response(),
    }
}

/// A refused delivery, shaped like every other problem (without the API's
/// `WWW-Authenticate: Bearer`, since no token would help).
fn refused(status: StatusCode, code: &str, title: &str, error: &WebhookError) -> Response {
    let body = serde_json::json!({
        "type": format!("urn:pratica:problem:{code}"),
        "title": title,
        "status": status.as_u16(),
        "code": code,
        "detail": error.to_string(),
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}
