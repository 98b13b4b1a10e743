//! Readiness: `GET /readyz` answers `200 ready` when the database answers and every
//! migration is applied, else `503 not_ready`. (Liveness, `/healthz`, is in the router.)

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;

/// `200 ready`, or a `503 not_ready` problem saying why.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "`ready`: the database answers and every migration is applied", body = String, content_type = "text/plain"),
        (status = 503, description = "`not_ready`: the database does not answer or misses migrations", body = super::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let not_ready = |detail: String| ApiError::problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready", detail);
    match state.engine().store().is_ready().await {
        Ok(true) => Ok("ready"),
        Ok(false) => Err(not_ready("the database is missing migrations".into())),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(not_ready("the database does not answer".into()))
        }
    }
}
