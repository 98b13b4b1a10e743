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
use super::auth::Caller;
use super::error::ApiError;
use super::json::Json;
use crate::app::messages;

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
        super::openapi::JsonBody,
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn publish_message(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PublishRequest>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let delivery = messages::publish(&state, &caller, &req.name, &req.key, req.payload).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
