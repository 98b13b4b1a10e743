//! Messages: `POST /api/v1/messages` `{name, key, payload}` → `202` with the delivery: the
//! instance waiting for `name` with correlation `key` receives it, or it is kept for the
//! first instance that starts waiting.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use pratica_engine::runtime::Delivery;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, Permission};
use super::error::ApiError;
use super::json::Json;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/messages", post(publish_message))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub name: String,
    /// The correlation key (e.g. a business key).
    #[schema(min_length = 1, max_length = 500)]
    pub key: String,
    #[serde(default)]
    pub payload: Value,
}

/// Publish a message to the waiting instance, or keep it until one waits.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    request_body = PublishRequest,
    responses(
        (status = 202, description = "Delivered to the waiting instance, or kept until one waits", body = super::openapi::Delivery),
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Unprocessable),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn publish_message(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PublishRequest>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    caller.require(Permission::PublishMessages)?;
    for (field, value) in [("name", &req.name), ("key", &req.key)] {
        if value.trim().is_empty() || value.len() > 500 {
            return Err(ApiError::invalid_field(field, format!("`{field}` must be 1 to 500 bytes of text")));
        }
    }
    let delivery = state.engine().publish(&req.name, &req.key, req.payload).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
