//! [`ApiError`]: every error the HTTP API answers with, as an RFC 9457 problem.
//!
//! The body is `application/problem+json`:
//!
//! ```json
//! {"type": "urn:pratica:problem:lock_lost", "title": "Lock lost", "status": 409,
//!  "code": "lock_lost", "detail": "external task 7 is not locked by this worker any more ..."}
//! ```
//!
//! `code` is stable: clients branch on it, never on `detail`. A 422 about one request field
//! also names it in `field`. A 500 says only "internal error"; the real error is logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pratica_engine::runtime::{EngineError, ExternalRefusal};
use pratica_engine::store::StoreError;
use serde::Serialize;

use crate::app::AppError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (a syntax error, or it ends too early).
    #[error("{detail}")]
    MalformedJson { detail: String },
    /// The body is not declared as JSON.
    #[error("the request body must be JSON: send `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// The body is larger than the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body could not be read (the client went away, a broken chunk).
    #[error("the request body could not be read: {detail}")]
    UnreadableBody { detail: String },
    /// A field is missing, has the wrong type, is unknown or has a value out of range.
    #[error("{detail}")]
    InvalidField { field: Option<String>, detail: String },
    /// The request is well formed but the engine refuses it.
    #[error("{0}")]
    Invalid(String),
    /// No such resource (also: no such route).
    #[error("{0}")]
    NotFound(String),
    /// The route exists, the method does not.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// An external task's lock expired or was taken over by another worker.
    #[error("{0}")]
    LockLost(String),
    /// The request conflicts with the current state (a version already deployed, a
    /// concurrent change).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// No valid `Authorization: Bearer` token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Any other problem with its own status and stable code, and extra members (a
    /// workflow's `diagnostics`, a form's per-field `errors`).
    #[error("{detail}")]
    Problem {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: String,
        extra: Box<serde_json::Map<String, serde_json::Value>>,
    },
    /// Anything else: the client sees "internal error", the log sees this.
    #[error(transparent)]
    Internal(EngineError),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson { .. } | ApiError::UnreadableBody { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidField { .. } | ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::LockLost(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Problem { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients match on (documented in docs/CONNECTORS.md).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson { .. } => "malformed_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnreadableBody { .. } => "unreadable_body",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::LockLost(_) => "lock_lost",
            ApiError::Conflict(_) => "conflict",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Problem { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedJson { .. } => "Malformed JSON",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnreadableBody { .. } => "Unreadable body",
            ApiError::InvalidField { .. } => "Invalid field",
            ApiError::Invalid(_) => "Invalid request",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::LockLost(_) => "Lock lost",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Unauthenticated(_) => "Unauthenticated",
            ApiError::Problem { title, .. } => title,
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// A problem with its own status and code, without extra members.
    pub fn problem(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Problem { status, code, title, detail: detail.into(), extra: Box::default() }
    }

    /// Adds a member to a [`ApiError::Problem`] (other variants are returned unchanged).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        if let ApiError::Problem { extra, .. } = &mut self {
            extra.insert(key.to_string(), value);
        }
        self
    }

    /// A 422 about one field of the request.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        ApiError::InvalidField { field: Some(field.to_string()), detail: detail.into() }
    }
}

/// A use-case's refusal as a problem: the code is [`AppError::code`]; the status and title
/// are the API's.
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound(detail) => ApiError::NotFound(detail),
            AppError::Forbidden(detail) => ApiError::Forbidden(detail),
            AppError::SeparationOfDuties(detail) => {
                ApiError::problem(StatusCode::FORBIDDEN, "separation_of_duties", "Separation of duties", detail)
            }
            AppError::TaskClaimed(detail) => ApiError::problem(StatusCode::CONFLICT, "task_claimed", "Task claimed", detail),
            AppError::TaskClosed(detail) => ApiError::problem(StatusCode::CONFLICT, "task_closed", "Task closed", detail),
            AppError::NotRetryable(detail) => ApiError::problem(StatusCode::CONFLICT, "not_retryable", "Not retryable", detail),
            AppError::InvalidField { field, detail } => ApiError::InvalidField { field: Some(field), detail },
            AppError::InvalidForm { detail, errors } => {
                let list = errors.into_iter().map(|e| serde_json::json!({"field": e.field, "message": e.message})).collect();
                ApiError::problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_form", "Invalid form", detail)
                    .with("errors", serde_json::Value::Array(list))
            }
            AppError::InvalidDelegation(detail) => {
                ApiError::problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_delegation", "Invalid delegation", detail)
            }
            AppError::Engine(e) => from_engine(e),
            AppError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Engine errors the client can act on keep their message; the rest become a 500.
impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        from_engine(error)
    }
}

fn from_engine(error: EngineError) -> ApiError {
    match error {
        EngineError::LockLost(m) => ApiError::LockLost(m),
        EngineError::External(refusal) => {
            let (status, title) = match refusal {
                ExternalRefusal::NotOwned(_) => (StatusCode::CONFLICT, "Lock not owned"),
                ExternalRefusal::TopicForbidden(_) => (StatusCode::FORBIDDEN, "Topic forbidden"),
            };
            ApiError::problem(status, refusal.code(), title, refusal.to_string())
        }
        EngineError::NotFound { .. } | EngineError::Store(StoreError::NotFound { .. }) | EngineError::UnknownWorkflow(_) => {
            ApiError::NotFound(error.to_string())
        }
        EngineError::Invalid(m) => ApiError::Invalid(m),
        EngineError::Definition(diagnostics) => {
            let detail = format!("the workflow is not valid ({} problem(s))", diagnostics.len());
            let list = diagnostics.iter().map(diagnostic_json).collect();
            ApiError::problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow", "Invalid workflow", detail)
                .with("diagnostics", serde_json::Value::Array(list))
        }
        EngineError::VersionConflict { .. } => {
            ApiError::problem(StatusCode::CONFLICT, "version_conflict", "Version conflict", error.to_string())
        }
        EngineError::Store(StoreError::Conflict { .. }) => ApiError::Conflict(error.to_string()),
        EngineError::Forbidden(m) => ApiError::Forbidden(m),
        EngineError::Schema(pratica_engine::schemas::SchemaError::Invalid { name, errors }) => {
            let detail = format!("the input does not match schema `{name}`");
            ApiError::problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", "Invalid input", detail)
                .with("errors", serde_json::to_value(&errors).unwrap_or_default())
        }
        other => ApiError::Internal(other),
    }
}

/// A workflow diagnostic as the API shows it: every member present (`null` when unknown).
pub fn diagnostic_json(d: &pratica_engine::definition::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "code": d.code,
        "message": d.message,
        "line": d.location.map(|l| l.line),
        "column": d.location.map(|l| l.column),
        "pointer": d.pointer,
        "hint": d.hint,
    })
}

/// The problem document (RFC 9457) with Pratica's `code` (and `field` for a 422 about one
/// field).
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten)]
    extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(e) => {
                // Runs inside the request's trace span (TraceLayer), so the log line carries
                // the method and path.
                tracing::error!(error = %e, debug = ?e, "request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::InvalidField { field, .. } => field.as_deref(),
            _ => None,
        };
        let extra = match &self {
            ApiError::Problem { extra, .. } if !extra.is_empty() => Some(&**extra),
            _ => None,
        };
        let code = self.code();
        let problem = Problem {
            kind: format!("urn:pratica:problem:{code}"),
            title: self.title(),
            status: status.as_u16(),
            code,
            detail,
            field,
            extra,
        };
        let body = serde_json::to_vec(&problem).expect("a problem always serialises");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn lock_lost_is_a_409_problem_with_a_stable_code() {
        let (status, content_type, body) = body_of(from_engine(EngineError::LockLost("task 7 lock expired".into()))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(
            body,
            serde_json::json!({"type": "urn:pratica:problem:lock_lost", "title": "Lock lost", "status": 409, "code": "lock_lost", "detail": "task 7 lock expired"})
        );
    }

    #[tokio::test]
    async fn engine_errors_map_to_their_statuses_and_internals_stay_hidden() {
        let (status, _, body) = body_of(from_engine(EngineError::NotFound { entity: "instance", id: "x".into() })).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (status, _, body) = body_of(from_engine(EngineError::Invalid("no".into()))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
        let (status, _, body) = body_of(from_engine(EngineError::Corrupt("secret table details".into()))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!((body["code"].as_str(), body["detail"].as_str()), (Some("internal"), Some("internal error")));
    }

    #[tokio::test]
    async fn an_invalid_field_is_named() {
        let (status, _, body) = body_of(ApiError::invalid_field("max_tasks", "at most 100")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!((body["field"].as_str(), body["code"].as_str()), (Some("max_tasks"), Some("invalid_field")));
    }
}
