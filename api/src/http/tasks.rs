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
//! Operators see (and work) a task assigned to them, and the tasks of their offices whose
//! role is one of their task roles or that name no role. A task an operator may not see
//! answers 404, exactly as a task that does not exist. Every action is recorded in the
//! instance history with the caller as actor.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::runtime::{EngineError, TaskActor, TaskCompletion, TaskRefusal};
use pratica_engine::schemas::{SchemaError, SchemaSet};
use pratica_engine::store::{TASK_STATUSES, TaskQuery, TaskRow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, Permission, Role};
use super::error::ApiError;
use super::json::Json;

/// Most tasks one list answers.
pub const MAX_TASKS: i64 = 500;

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
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListTasksQuery>, QueryRejection>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    caller.require(Permission::ReadTasks)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidField { field: None, detail: e.body_text() })?;
    let limit = q.limit.unwrap_or(MAX_TASKS);
    if !(1..=MAX_TASKS).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("`limit` must be between 1 and {MAX_TASKS}")));
    }
    let status = super::params::one_of("status", q.status, &TASK_STATUSES)?;
    let query = TaskQuery { status, offices: q.office.map(|o| vec![o]), role: q.role, assignee: q.assignee, limit };
    let rows = tasks_for(&state, &caller, &query).await?;
    Ok(Json(rows.into_iter().map(TaskView::from).collect()))
}

/// The tasks matching `query` that `caller` may see: for operators, those assigned to them or
/// in their offices with one of their task roles (in SQL); everyone else sees all.
pub(crate) async fn tasks_for(state: &AppState, caller: &Caller, query: &TaskQuery) -> Result<Vec<TaskRow>, ApiError> {
    let store = state.engine().store();
    let rows = match caller.scope() {
        Some(to) => store.tasks_visible(query, &to).await,
        None => store.tasks_matching(query).await,
    };
    rows.map_err(|e| ApiError::Internal(e.into()))
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
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn get_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    caller.require(Permission::ReadTasks)?;
    Ok(Json(visible_task(&state, &caller, &id).await?.into()))
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
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn claim_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(claim(&state, &caller, &id).await?.into()))
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
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn unclaim_task(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(unclaim(&state, &caller, &id).await?.into()))
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
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it), `task_closed` or `conflict`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_form` with `errors: [{field, message}]`, `invalid_field` or `invalid_request` (e.g. an unknown outcome, a missing reason)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, or `separation_of_duties`: the caller may not complete this task", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn complete_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CompleteTaskRequest>,
) -> Result<StatusCode, ApiError> {
    complete(&state, &caller, &id, req).await?;
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
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`task_claimed` (someone else holds it) or `task_closed`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_delegation` (unknown user, another office, a role that cannot work tasks, not claimed) or `invalid_field`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, description = "`forbidden`, or `separation_of_duties`: the delegate may not work this task", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn delegate_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<DelegateTaskRequest>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(delegate(&state, &caller, &id, &req.to).await?.into()))
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
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 404, response = super::openapi::NotFound),
        (status = 422, description = "`invalid_request` (an empty or too long text) or `invalid_field`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn comment_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CommentTaskRequest>,
) -> Result<StatusCode, ApiError> {
    comment(&state, &caller, &id, &req.text).await?;
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
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 500, response = super::openapi::Internal),
    ),
    security(("bearer" = []))
)]
async fn list_comments(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Vec<TaskComment>>, ApiError> {
    Ok(Json(task_comments(&state, &caller, &id).await?))
}

// ---- reusable task actions (the REST routes above and the console call these) ----

/// The engine's view of the caller: who acts, whether they may act on others' tasks, and
/// which tasks they see.
fn with_actor<'a>(caller: &'a Caller, sees: &'a (dyn Fn(&TaskRow) -> bool + Send + Sync)) -> TaskActor<'a> {
    TaskActor { name: &caller.name, supervisor: caller.role == Role::Admin, sees }
}

/// Claims a task for the caller (`409 task_claimed` if someone else holds it).
pub(crate) async fn claim(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, ApiError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().claim_task(id, &with_actor(caller, &sees)).await.map_err(task_error)
}

/// Puts a task back in its queue (its holder, or an admin).
pub(crate) async fn unclaim(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, ApiError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().unclaim_task(id, &with_actor(caller, &sees)).await.map_err(task_error)
}

/// Completes a task: the form is checked against its schema (`422 invalid_form`), then the
/// engine checks the holder, the outcome, the reason and separation of duties.
pub(crate) async fn complete(state: &AppState, caller: &Caller, id: &str, req: CompleteTaskRequest) -> Result<(), ApiError> {
    caller.require(Permission::WorkTasks)?;
    let task = visible_task(state, caller, id).await?;
    check_workable(&task)?;
    if let Some(holder) = task.assignee.as_deref().filter(|a| *a != caller.name && caller.role != Role::Admin) {
        return Err(claimed_by(id, holder));
    }
    if let Some(form) = task.form.as_deref() {
        check_form(state.schemas(), form, &req.form)?;
    }
    let completion = TaskCompletion { outcome: req.outcome, reason: req.reason, form: req.form };
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().complete_task_as(id, &with_actor(caller, &sees), completion).await.map_err(task_error)
}

/// Hands a task to the user `to` (see [`pratica_engine::Engine::delegate_task`] for the rule).
pub(crate) async fn delegate(state: &AppState, caller: &Caller, id: &str, to: &str) -> Result<TaskRow, ApiError> {
    caller.require(Permission::WorkTasks)?;
    let to = to.trim();
    if to.is_empty() {
        return Err(ApiError::invalid_field("to", "`to` must name a user"));
    }
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().delegate_task(id, &with_actor(caller, &sees), to).await.map_err(task_error)
}

/// Comments on a task the caller may work.
pub(crate) async fn comment(state: &AppState, caller: &Caller, id: &str, text: &str) -> Result<(), ApiError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().comment_task(id, &with_actor(caller, &sees), text).await.map_err(task_error)
}

/// The comments on a task the caller may see, oldest first.
pub(crate) async fn task_comments(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TaskComment>, ApiError> {
    caller.require(Permission::ReadTasks)?;
    let task = visible_task(state, caller, id).await?;
    let comments = state.engine().task_comments(&task).await?;
    Ok(comments.into_iter().map(|c| TaskComment { actor: c.actor, at: to_rfc3339(c.at), text: c.text }).collect())
}

/// A task the caller may see (`404` otherwise, as for a task that does not exist).
pub(crate) async fn visible_task(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, ApiError> {
    match state.engine().store().task(id).await {
        Ok(task) if caller.sees_task(&task) => Ok(task),
        Ok(_) | Err(pratica_engine::store::StoreError::NotFound { .. }) => Err(not_found(id)),
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

/// Task refusals as problems: `task_claimed`, `task_closed`, `invalid_delegation`,
/// `separation_of_duties`; the rest as usual.
fn task_error(error: EngineError) -> ApiError {
    match error {
        EngineError::Task(TaskRefusal::Claimed { task, holder }) => claimed_by(&task, &holder),
        EngineError::Task(r @ TaskRefusal::Closed { .. }) => {
            ApiError::problem(StatusCode::CONFLICT, "task_closed", "Task closed", r.to_string())
        }
        EngineError::Task(TaskRefusal::Delegation(detail)) => {
            ApiError::problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_delegation", "Invalid delegation", detail)
        }
        EngineError::Forbidden(detail) => ApiError::problem(StatusCode::FORBIDDEN, "separation_of_duties", "Separation of duties", detail),
        EngineError::NotFound { entity: "task", id } => not_found(&id),
        e => e.into(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("task `{id}` not found"))
}

fn claimed_by(id: &str, holder: &str) -> ApiError {
    ApiError::problem(StatusCode::CONFLICT, "task_claimed", "Task claimed", format!("task `{id}` is claimed by {holder}"))
}

fn check_workable(task: &TaskRow) -> Result<(), ApiError> {
    if task.status == "open" || task.status == "claimed" {
        Ok(())
    } else {
        Err(ApiError::problem(StatusCode::CONFLICT, "task_closed", "Task closed", format!("task `{}` is {}", task.id, task.status)))
    }
}

/// `422 invalid_form` with `errors: [{field, message}]` unless `data` matches the form schema
/// `name`. A form without a schema file is not checked (logged).
fn check_form(schemas: &SchemaSet, name: &str, data: &Value) -> Result<(), ApiError> {
    match schemas.validate(name, data) {
        Ok(()) => Ok(()),
        Err(SchemaError::Invalid { errors, .. }) => {
            let list = errors
                .iter()
                .map(|e| json!({"field": if e.field.is_empty() { "/" } else { e.field.as_str() }, "message": e.message}))
                .collect();
            Err(ApiError::problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_form",
                "Invalid form",
                format!("the form does not match `{name}` ({} problem(s))", errors.len()),
            )
            .with("errors", Value::Array(list)))
        }
        Err(SchemaError::Unknown(_)) => {
            tracing::warn!(form = name, "form schema not found; the form is not validated");
            Ok(())
        }
        Err(e @ SchemaError::Broken { .. }) => Err(ApiError::Internal(EngineError::Schema(e))),
    }
}
