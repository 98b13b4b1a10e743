//! Human tasks: list, read, claim, unclaim, complete.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/tasks?status=&office=&role=&assignee=&limit=` | tasks (operators: only their offices) |
//! | `GET /api/v1/tasks/{id}` | one task |
//! | `POST /api/v1/tasks/{id}/claim` | the task, assigned to the caller; `409 task_claimed` if someone else has it |
//! | `POST /api/v1/tasks/{id}/unclaim` | the task, back in the queue |
//! | `POST /api/v1/tasks/{id}/complete` `{outcome, reason, form}` | `204`; `422 invalid_form` with `errors: [{field, message}]`; `403 separation_of_duties` |
//!
//! A task an operator may not see answers 404, exactly as a task that does not exist.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::runtime::{EngineError, TaskCompletion};
use pratica_engine::schemas::{SchemaError, SchemaSet};
use pratica_engine::store::{TaskQuery, TaskRow, Tx};
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
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTasksQuery {
    pub status: Option<String>,
    pub office: Option<String>,
    pub role: Option<String>,
    pub assignee: Option<String>,
    /// 1 to 500 (default 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
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

/// Tasks matching the filters, most urgent first. Operators see only their offices' tasks.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(ListTasksQuery),
    responses(
        (status = 200, description = "The matching tasks", body = Vec<TaskView>),
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
    let offices = match (caller.role, q.office) {
        (Role::Operator, Some(o)) => Some(if caller.offices.contains(&o) { vec![o] } else { Vec::new() }),
        (Role::Operator, None) => Some(caller.offices.clone()),
        (_, office) => office.map(|o| vec![o]),
    };
    let query = TaskQuery { status: q.status, offices, role: q.role, assignee: q.assignee, limit };
    let rows = state.engine().store().tasks_matching(&query).await.map_err(|e| ApiError::Internal(e.into()))?;
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
    caller.require(Permission::WorkTasks)?;
    let (mut tx, mut task) = lock_workable_task(&state, &caller, &id).await?;
    if let Some(holder) = task.assignee.as_deref().filter(|a| *a != caller.name) {
        return Err(claimed_by(&id, holder));
    }
    task.assignee = Some(caller.name.clone());
    task.status = "claimed".into();
    tx.update_task(&task).await.map_err(|e| ApiError::Internal(e.into()))?;
    tx.commit().await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(task.into()))
}

/// Opens a transaction and locks a task the caller may see and that is still open or
/// claimed (404 for another office's task, 409 `task_closed` for a finished one).
async fn lock_workable_task(state: &AppState, caller: &Caller, id: &str) -> Result<(Tx, TaskRow), ApiError> {
    let mut tx = state.engine().store().begin().await.map_err(|e| ApiError::Internal(e.into()))?;
    let task = tx
        .task_for_update(id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .filter(|t| caller.sees_task(t))
        .ok_or_else(|| not_found(id))?;
    check_workable(&task)?;
    Ok((tx, task))
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
    caller.require(Permission::WorkTasks)?;
    let (mut tx, mut task) = lock_workable_task(&state, &caller, &id).await?;
    if let Some(holder) = task.assignee.as_deref().filter(|a| *a != caller.name && caller.role != Role::Admin) {
        return Err(claimed_by(&id, holder));
    }
    task.assignee = None;
    task.status = "open".into();
    tx.update_task(&task).await.map_err(|e| ApiError::Internal(e.into()))?;
    tx.commit().await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(task.into()))
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
    caller.require(Permission::WorkTasks)?;
    let task = visible_task(&state, &caller, &id).await?;
    check_workable(&task)?;
    if let Some(holder) = task.assignee.as_deref().filter(|a| *a != caller.name && caller.role != Role::Admin) {
        return Err(claimed_by(&id, holder));
    }
    if let Some(form) = task.form.as_deref() {
        check_form(state.schemas(), form, &req.form)?;
    }
    let completion = TaskCompletion { outcome: req.outcome, reason: req.reason, form: req.form };
    match state.engine().complete_task(&id, &caller.name, completion).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(EngineError::Forbidden(detail)) => {
            Err(ApiError::problem(StatusCode::FORBIDDEN, "separation_of_duties", "Separation of duties", detail))
        }
        Err(e) => Err(e.into()),
    }
}

async fn visible_task(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, ApiError> {
    match state.engine().store().task(id).await {
        Ok(task) if caller.sees_task(&task) => Ok(task),
        Ok(_) | Err(pratica_engine::store::StoreError::NotFound { .. }) => Err(not_found(id)),
        Err(e) => Err(ApiError::Internal(e.into())),
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
