//! The external-task protocol: `call: external` steps worked over HTTP by programs in any
//! language (docs/CONNECTORS.md has the walk-through and curl examples).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/v1/external-tasks/fetch-and-lock` | `{worker, topic, max_tasks?, lock_ms?, wait_ms?}` | `200` list of tasks (possibly empty) |
//! | `POST /api/v1/external-tasks/{id}/complete` | `{worker, lock, output?}` | `204` |
//! | `POST /api/v1/external-tasks/{id}/fail` | `{worker, lock, code, message?, retryable?, retry_after_ms?}` | `204` |
//! | `POST /api/v1/external-tasks/{id}/extend-lock` | `{worker, lock, lock_ms?}` | `200 {lock_expires_at, lock_expires}` |
//!
//! A lock is an opaque random string bound to the API token that fetched the task (and the
//! `worker` name it declared). A result or extension sent without the lock (it expired,
//! another worker took the task over, or the task is already finished) is refused with
//! `409 lock_lost`: the worker must drop its result, since someone else is doing or has done
//! the work. The current lock presented with another token is refused with
//! `409 lock_not_owned`, whatever `worker` says. A token limited to some topics
//! (`pratica token create --role worker --topic ...`) is refused any other topic with
//! `403 topic_forbidden`. The instance's history names the token that reported a result
//! (`external.completed`, `external.failed`).

use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use pratica_engine::clock::{Millis, to_rfc3339};
use pratica_engine::runtime::{ExternalFailure, ExternalTask, ExternalWorker};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, WorkerTopics};
use super::error::ApiError;
use super::json::Json;

/// Most tasks one fetch may lock.
pub const MAX_TASKS: u32 = 100;
/// Longest a fetch may wait for a task (long polling).
pub const MAX_WAIT_MS: u64 = 60_000;
/// Lock time when the request does not say.
pub const DEFAULT_LOCK_MS: u64 = 60_000;
/// Longest lock one request may take; a longer job extends its lock as it goes.
pub const MAX_LOCK_MS: u64 = 24 * 3_600_000;
/// Longest worker id, topic, lock or error code accepted.
const MAX_NAME_LEN: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/external-tasks/fetch-and-lock", post(fetch_and_lock))
        .route("/api/v1/external-tasks/{id}/complete", post(complete))
        .route("/api/v1/external-tasks/{id}/fail", post(fail))
        .route("/api/v1/external-tasks/{id}/extend-lock", post(extend_lock))
}

/// `POST /fetch-and-lock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchAndLockRequest {
    /// The name the worker gives itself: recorded with its results, which are accepted only
    /// with the same name and the same API token.
    #[schema(min_length = 1, max_length = 200)]
    pub worker: String,
    /// A topic the API token may work (any, unless the token is limited to some).
    #[schema(min_length = 1, max_length = 200)]
    pub topic: String,
    /// 1 to 100 (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_tasks: u32,
    /// How long the tasks stay locked (default 60000).
    #[serde(default = "default_lock_ms")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub lock_ms: u64,
    /// When no task is available, wait up to this long for one (0 to 60000, default 0).
    #[serde(default)]
    #[schema(maximum = 60_000)]
    pub wait_ms: u64,
}

/// `POST /{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CompleteExternalTaskRequest)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub worker: String,
    /// The lock id the task was fetched with (opaque text).
    #[schema(min_length = 1, max_length = 200)]
    pub lock: String,
    /// The step's output (default `null`).
    #[serde(default)]
    pub output: Value,
}

/// `POST /{id}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = FailExternalTaskRequest)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub worker: String,
    /// The lock id the task was fetched with (opaque text).
    #[schema(min_length = 1, max_length = 200)]
    pub lock: String,
    /// Matched by the step's `retry.on` and `catch` (`document.unreadable`); no spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "^\\S+$")]
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// Retryable failures follow the step's retry policy; others are business errors.
    #[serde(default)]
    pub retryable: bool,
    /// For a retryable failure: the earliest the next attempt may start.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86_400_000)]
    pub retry_after_ms: Option<i64>,
}

/// `POST /{id}/extend-lock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendLockRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub worker: String,
    /// The lock id the task was fetched with (opaque text).
    #[schema(min_length = 1, max_length = 200)]
    pub lock: String,
    /// The new lock runs this long from now (default 60000).
    #[serde(default = "default_lock_ms")]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub lock_ms: u64,
}

/// A locked task as sent to workers: the engine's [`ExternalTask`] plus its expiry as
/// RFC 3339 text.
#[derive(Debug, Serialize)]
pub struct TaskView {
    #[serde(flatten)]
    pub task: ExternalTask,
    pub lock_expires: String,
}

/// The answer of `extend-lock`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockView {
    pub lock_expires_at: Millis,
    pub lock_expires: String,
}

fn one() -> u32 {
    1
}

fn default_lock_ms() -> u64 {
    DEFAULT_LOCK_MS
}

/// Fetch and lock tasks of a topic, waiting up to `wait_ms` for one.
///
/// Answers the tasks locked (at most `max_tasks`), or an empty list when none became
/// available in time or the server is shutting down.
#[utoipa::path(
    post,
    path = "/api/v1/external-tasks/fetch-and-lock",
    tag = "external-tasks",
    request_body = FetchAndLockRequest,
    responses(
        (status = 200, description = "The tasks locked for the worker (possibly none)", body = Vec<super::openapi::LockedExternalTask>),
        super::openapi::JsonBody,
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`: the role may not use the protocol; `topic_forbidden`: the token is limited to other topics", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn fetch_and_lock(
    State(state): State<AppState>,
    caller: Caller,
    Extension(topics): Extension<WorkerTopics>,
    Json(req): Json<FetchAndLockRequest>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    check_name("worker", &req.worker)?;
    check_name("topic", &req.topic)?;
    check_range("max_tasks", u64::from(req.max_tasks), 1, u64::from(MAX_TASKS))?;
    check_range("lock_ms", req.lock_ms, 1, MAX_LOCK_MS)?;
    check_range("wait_ms", req.wait_ms, 0, MAX_WAIT_MS)?;
    let worker = ExternalWorker { token: &caller.name, name: &req.worker, topics: &topics.0 };
    let fetch = state.engine().fetch_and_lock(
        &worker,
        &req.topic,
        req.max_tasks as usize,
        Duration::from_millis(req.lock_ms),
        Duration::from_millis(req.wait_ms),
    );
    // A long poll must not hold up shutdown. Dropping the fetch between a claim's commit
    // and the answer would leave tasks locked that nobody works; their locks then expire
    // like those of a crashed worker.
    let mut stopping = state.stopping();
    let tasks = tokio::select! {
        tasks = fetch => tasks?,
        _ = stopping.wait_for(|stop| *stop) => Vec::new(),
    };
    if !tasks.is_empty() {
        tracing::debug!(token = %caller.name, worker = %req.worker, topic = %req.topic, tasks = tasks.len(), "external tasks locked");
    }
    Ok(Json(tasks.into_iter().map(|task| TaskView { lock_expires: to_rfc3339(task.lock_expires_at), task }).collect()))
}

/// Complete a task with its output; the step continues with it.
#[utoipa::path(
    post,
    path = "/api/v1/external-tasks/{id}/complete",
    tag = "external-tasks",
    operation_id = "complete_external_task",
    params(("id" = i64, Path, description = "The external task's id")),
    request_body = CompleteRequest,
    responses(
        (status = 204, description = "Completed; the step continues with the output"),
        super::openapi::JsonBody,
        (status = 404, description = "`not_found`: no such external task (ids are numbers)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lock_lost`: the lock expired, another worker took the task over, or it is finished; drop the result. `lock_not_owned`: the lock was fetched with another API token", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`: the role may not use the protocol; `topic_forbidden`: the token is limited to other topics", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Extension(topics): Extension<WorkerTopics>,
    id: Result<Path<String>, PathRejection>,
    Json(req): Json<CompleteRequest>,
) -> Result<StatusCode, ApiError> {
    let id = task_id(id)?;
    check_name("worker", &req.worker)?;
    check_name("lock", &req.lock)?;
    let worker = ExternalWorker { token: &caller.name, name: &req.worker, topics: &topics.0 };
    state.engine().complete_external(id, &req.lock, &worker, req.output).await.inspect_err(|e| log_refusal(id, &worker, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fail a task: retryable (the step's retry policy applies) or a business error that the
/// step's `catch` can match by `code`.
#[utoipa::path(
    post,
    path = "/api/v1/external-tasks/{id}/fail",
    tag = "external-tasks",
    operation_id = "fail_external_task",
    params(("id" = i64, Path, description = "The external task's id")),
    request_body = FailRequest,
    responses(
        (status = 204, description = "Recorded: retried per the step's policy, or raised as a business error"),
        super::openapi::JsonBody,
        (status = 404, description = "`not_found`: no such external task (ids are numbers)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lock_lost`: the lock expired, another worker took the task over, or it is finished; drop the result. `lock_not_owned`: the lock was fetched with another API token", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`: the role may not use the protocol; `topic_forbidden`: the token is limited to other topics", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn fail(
    State(state): State<AppState>,
    caller: Caller,
    Extension(topics): Extension<WorkerTopics>,
    id: Result<Path<String>, PathRejection>,
    Json(req): Json<FailRequest>,
) -> Result<StatusCode, ApiError> {
    let id = task_id(id)?;
    check_name("worker", &req.worker)?;
    check_name("lock", &req.lock)?;
    check_name("code", &req.code)?;
    if req.code.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field("code", "`code` must not contain spaces (e.g. `document.unreadable`)"));
    }
    if let Some(ms) = req.retry_after_ms {
        check_range("retry_after_ms", u64::try_from(ms).unwrap_or(u64::MAX), 0, MAX_LOCK_MS)?;
    }
    let failure = ExternalFailure { code: req.code, message: req.message, retryable: req.retryable, retry_after_ms: req.retry_after_ms };
    let worker = ExternalWorker { token: &caller.name, name: &req.worker, topics: &topics.0 };
    state.engine().fail_external(id, &req.lock, &worker, failure).await.inspect_err(|e| log_refusal(id, &worker, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Extend a task's lock to `lock_ms` from now, for work that takes longer than expected.
#[utoipa::path(
    post,
    path = "/api/v1/external-tasks/{id}/extend-lock",
    tag = "external-tasks",
    operation_id = "extend_external_task_lock",
    params(("id" = i64, Path, description = "The external task's id")),
    request_body = ExtendLockRequest,
    responses(
        (status = 200, description = "The new expiry", body = LockView),
        super::openapi::JsonBody,
        (status = 404, description = "`not_found`: no such external task (ids are numbers)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lock_lost`: the lock expired, another worker took the task over, or it is finished; drop the result. `lock_not_owned`: the lock was fetched with another API token", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`: the role may not use the protocol; `topic_forbidden`: the token is limited to other topics", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn extend_lock(
    State(state): State<AppState>,
    caller: Caller,
    Extension(topics): Extension<WorkerTopics>,
    id: Result<Path<String>, PathRejection>,
    Json(req): Json<ExtendLockRequest>,
) -> Result<Json<LockView>, ApiError> {
    let id = task_id(id)?;
    check_name("worker", &req.worker)?;
    check_name("lock", &req.lock)?;
    check_range("lock_ms", req.lock_ms, 1, MAX_LOCK_MS)?;
    let worker = ExternalWorker { token: &caller.name, name: &req.worker, topics: &topics.0 };
    let until = state
        .engine()
        .extend_external_lock(id, &req.lock, &worker, Duration::from_millis(req.lock_ms))
        .await
        .inspect_err(|e| log_refusal(id, &worker, e))?;
    Ok(Json(LockView { lock_expires_at: until, lock_expires: to_rfc3339(until) }))
}

/// Task ids are numbers; anything else names no task.
fn task_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let raw = path.map_err(|e| ApiError::NotFound(format!("no such external task: {}", e.body_text())))?.0;
    raw.parse().map_err(|_| ApiError::NotFound(format!("external task `{raw}` not found (task ids are numbers)")))
}

fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid_field(field, format!("`{field}` must not be empty")));
    }
    if value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(field, format!("`{field}` must be at most {MAX_NAME_LEN} bytes of printable text")));
    }
    Ok(())
}

fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(ApiError::invalid_field(field, format!("`{field}` must be between {min} and {max}")));
    }
    Ok(())
}

fn log_refusal(id: i64, worker: &ExternalWorker<'_>, error: &pratica_engine::runtime::EngineError) {
    use pratica_engine::runtime::{EngineError, ExternalRefusal};
    let (token, name) = (worker.token, worker.name);
    match error {
        EngineError::LockLost(_) => tracing::info!(task = id, token, worker = name, "external task result refused: lock lost"),
        EngineError::External(ExternalRefusal::NotOwned(_)) => {
            tracing::warn!(task = id, token, worker = name, "external task refused: the lock belongs to another API token")
        }
        EngineError::External(ExternalRefusal::TopicForbidden(_)) => {
            tracing::warn!(task = id, token, worker = name, "external task refused: topic not allowed for this token")
        }
        _ => {}
    }
}
