//! Authentication of API requests and the permission each route needs.
//!
//! Every `/api/v1` route needs `Authorization: Bearer prt_...`: an opaque random token
//! stored only as its SHA-256 (`pratica token create`, [`crate::app::credentials`]). A
//! missing, unknown or revoked token is `401 unauthenticated`; a role without the permission
//! is `403 forbidden`, naming what is missing ([`crate::app::principal`] has the table of
//! roles and permissions). `/healthz` and `/readyz` are open.
//!
//! A worker token may be limited to some external-task topics (`pratica token create --role
//! worker --topic naspi.scoring`, repeatable): it then fetches, completes, fails and extends
//! only tasks of those topics ([`WorkerTopics`]).
//!
//! The roles, the [`Caller`] and the credentials live in [`crate::app`]; they are re-exported
//! here for the API's clients and tests.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

pub use crate::app::credentials::{
    TOKEN_PREFIX, TokenAccess, create_token, create_token_with_access, create_token_with_task_roles, generate_token, hash_password,
    hash_token, verify_password,
};
pub use crate::app::principal::{Caller, Permission, Role, WorkerTopics};

use super::AppState;
use super::error::ApiError;
use crate::app::credentials;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let (caller, topics) = authenticate(parts, state).await?;
        parts.extensions.insert(caller.clone());
        parts.extensions.insert(topics);
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Caller, WorkerTopics), ApiError> {
    let missing = || ApiError::Unauthenticated("send `Authorization: Bearer <token>` with an API token (`pratica token create`)".into());
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let found = credentials::caller_for_token(state.engine().store(), token.trim()).await.map_err(|e| ApiError::Internal(e.into()))?;
    found.ok_or_else(|| ApiError::Unauthenticated("the API token is unknown or revoked".into()))
}

/// Middleware for the external-task routes: worker or admin tokens only.
pub async fn require_external(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    caller.require(Permission::ExternalTasks)?;
    Ok(next.run(Request::from_parts(parts, body)).await)
}
