//! Human tasks: list, read, claim, unclaim, complete, delegate, comment.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/tasks?status=&office=&role=&assignee=&limit=` | tasks (operators: only their offices) |
//! | `GET /api/v1/tasks/{id}` | one task |
//! | `POST /api/v1/tasks/{id}/claim` | the task, assigned to the caller; `409 task_claimed` if someone else has it |
//! | `POST /api/v1/tasks/{id}/unclaim` | the task, back in the queue |
//! | `POST /api/v1/tasks/{id}/complete` `{outcome, reason, form}` | `204`; `422 invalid_form` with `errors: [{field, message}]`; `403 separation_of_duties` |
//! | `POST /api/v1/tasks/{id}/delegate` `{to}` | the task, assigned to `to`; `422 invalid_delegation` |
//! | `POST /api/v1/tasks/{id}/comments` `{text}` | `204`; the comment is in the instance history |
//! | `GET /api/v1/tasks/{id}/comments` | `[{actor, at, text}]` |
//!
//! The handlers translate: the use-cases are [`crate::app::tasks`], which the console calls
//! too. Operators see (and work) a task assigned to them, and the tasks of their offices
//! whose role is one of their task roles or that name no role. A task an operator may not
//! see answers 404, exactly as a task that does not exist. Every action is recorded in the
//! instance history with the caller as actor.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::runtime::TaskCompletion;
use pratica_engine::store::{TASK_STATUSES, TaskQuery, TaskRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, Permission};
use super::error::ApiError;
use super::json::Json;
use crate::app::tasks;
pub use crate::app::tasks::MAX_TASKS;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", get(list_tasks))
        .route("/api/v1/tasks/{id}", get(get_task))
        .route("/api/v1/tasks/{id}/claim", post(claim_task))
        .route("/api/v1/tasks/{id}/unclaim", post(unclaim_task))
        .route("/api/v1/tasks/{id}/complete", post(complete_task))
        .route("/api/v1/tasks/{id}/delegate", post(delegate_task))
        .route("/api/v1/tasks/{id}/comments", get(list_comments).post(comment_task))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTasksQuery {
    /// `open`, `claimed`, `completed` or `cancelled`; any other value is `400 invalid_parameter`.
    #[param(value_type = Option<TaskStatus>, inline)]
    pub status: Option<String>,
    pub office: Option<String>,
    pub role: Option<String>,
    pub assignee: Option<String>,
    /// 1 to 500 (default 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The status of a human task.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Claimed,
    Completed,
    Cancelled,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTaskRequest {
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The form's data, validated against the task's form schema.
    #[serde(default)]
    pub form: Value,
}

impl From<CompleteTaskRequest> for TaskCompletion {
    fn from(req: CompleteTaskRequest) -> Self {
        TaskCompletion { outcome: req.outcome, reason: req.reason, form: req.form }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub instance_id: String,
    pub step_id: String,
    pub status: String,
    pub title: String,
    pub description: Option<String>,
    pub assignee: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
    pub form: Option<String>,
    pub outcomes: Value,
    pub reason_required: Value,
    pub due: Option<String>,
    pub created: String,
    pub completed_by: Option<String>,
    pub completed: Option<String>,
    pub result: Option<Value>,
    /// Who handed the task to its assignee last.
    pub delegated_by: Option<String>,
    /// When the task escalated to its current role and office.
    pub escalated: Option<String>,
}

impl From<TaskRow> for TaskView {
    fn from(t: TaskRow) -> Self {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        TaskView {
            outcomes: parse(&t.outcomes),
            reason_required: parse(&t.reason_required),
            due: t.due_at.map(to_rfc3339),
            created: to_rfc3339(t.created_at),
            completed: t.completed_at.map(to_rfc3339),
            result: t.result.as_deref().map(parse),
            escalated: t.escalated_at.map(to_rfc3339),
            delegated_by: t.delegated_by,
            id: t.id,
            instance_id: t.instance_id,
            step_id: t.step_id,
            status: t.status,
            title: t.title,
            description: t.description,
            assignee: t.assignee,
            role: t.role,
            office: t.office,
            form: t.form,
            completed_by: t.completed_by,
        }
    }
}

/// Tasks matching the filters, most urgent first. Operators see only the tasks assigned to
/// them and those of their offices with one of their task roles (or no role).
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(ListTasksQuery),
    responses(
        (status = 200, description = "The matching tasks", body = Vec<TaskView>),
        (status = 400, description = "`invalid_parameter`: a `status` that is not a task status (the problem names the `parameter` and the `allowed` values)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_field`: an unknown parameter or a bad `limit`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListTasksQuery>, QueryRejection>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    // The permission before the query's checks, so a role without it learns nothing more.
    caller.require(Permission::ReadTasks)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidField { field: None, detail: e.body_text() })?;
    let limit = q.limit.unwrap_or(MAX_TASKS);
    if !(1..=MAX_TASKS).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("`limit` must be between 1 and {MAX_TASKS}")));
    }
    let status = super::params::one_of("status", q.status, &TASK_STATUSES)?;
    let query = TaskQuery { status, offices: q.office.map(|o| vec![o]), role: q.role, assignee: q.assignee, limit };
    let rows = tasks::list(&state, &caller, &query).await?;
    Ok(Json(rows.into_iter().map(TaskView::from).collect()))
}

/// One task.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn get_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(tasks::get(&state, &caller, &id).await?.into()))
}

/// Assign the task to the caller. Claiming a task one already holds is a no-op.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/claim",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, assigned to the caller", body = TaskView),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it) or `task_closed`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn claim_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(tasks::claim(&state, &caller, &id).await?.into()))
}

/// Put a claimed task back in the queue (its holder, or an admin).
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/unclaim",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, back in the queue", body = TaskView),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it) or `task_closed`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn unclaim_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(tasks::unclaim(&state, &caller, &id).await?.into()))
}

/// Complete the task with an outcome and the form's data; the instance goes on.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/complete",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    request_body = CompleteTaskRequest,
    responses(
        (status = 204, description = "Completed; the instance goes on"),
        super::openapi::JsonBody,
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it), `task_closed` or `conflict`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_form` with `errors: [{field, message}]`, `invalid_field` or `invalid_request` (e.g. an unknown outcome, a missing reason)", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`, or `separation_of_duties`: the caller may not complete this task", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn complete_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CompleteTaskRequest>,
) -> Result<StatusCode, ApiError> {
    tasks::complete(&state, &caller, &id, req.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateTaskRequest {
    /// The user (console user or token name) who gets the task: an active operator of the
    /// task's office, or an admin.
    pub to: String,
}

/// Hand the task to another user of its office (its holder, or an admin).
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/delegate",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    request_body = DelegateTaskRequest,
    responses(
        (status = 200, description = "The task, assigned to the delegate", body = TaskView),
        super::openapi::JsonBody,
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it) or `task_closed`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_delegation` (unknown user, another office, a role that cannot work tasks, not claimed) or `invalid_field`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Authenticated,
        (status = 403, description = "`forbidden`, or `separation_of_duties`: the delegate may not work this task", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn delegate_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DelegateTaskRequest>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(tasks::delegate(&state, &caller, &id, &req.to).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentTaskRequest {
    /// 1 to 4000 characters.
    pub text: String,
}

/// One comment on a task (kept in the instance's hash-chained history).
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskComment {
    pub actor: Option<String>,
    pub at: String,
    pub text: String,
}

/// Comment on a task (anyone who may work it; also on a closed task).
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/comments",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    request_body = CommentTaskRequest,
    responses(
        (status = 204, description = "Recorded in the instance history"),
        super::openapi::JsonBody,
        (status = 404, response = super::openapi::NotFound),
        (status = 422, description = "`invalid_request` (an empty or too long text) or `invalid_field`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn comment_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CommentTaskRequest>,
) -> Result<StatusCode, ApiError> {
    tasks::comment(&state, &caller, &id, &req.text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The comments on a task, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/comments",
    tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The comments, oldest first", body = Vec<TaskComment>),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn list_comments(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Vec<TaskComment>>, ApiError> {
    let comments = tasks::comments(&state, &caller, &id).await?;
    Ok(Json(comments.into_iter().map(|c| TaskComment { actor: c.actor, at: to_rfc3339(c.at), text: c.text }).collect()))
}
