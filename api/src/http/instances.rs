//! Instances: start, read, list (cursor pages), cancel, history, retry.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v1/instances` `{workflow, version?, input, request_id?}` | `201 {id, created}`, `200` for a repeated `request_id` |
//! | `GET /api/v1/instances/{id}` | status, business key, input, output, error, current steps, times |
//! | `GET /api/v1/instances?workflow=&version=&status=&business_key=&started_after=&started_before=&ended_after=&ended_before=&limit=&cursor=` | `{items, next_cursor}` |
//! | `POST /api/v1/instances/{id}/cancel` `{reason}` | `204` |
//! | `GET /api/v1/instances/{id}/history` | the audit entries |
//! | `POST /api/v1/instances/{id}/retry` | `202`; re-runs a failed instance from the top-level step that failed; `409 not_retryable` if it is not failed or was compensated |
//!
//! The handlers translate; the use-cases are [`crate::app::instances`].
//!
//! **Office scope.** Operators read only the instances with a task (any status) visible to
//! them by the task-visibility rule ([`Caller::scope`]): any other instance answers 404, as
//! one that does not exist, and is left out of the list. `?status=` outside the instance
//! statuses is `400 invalid_parameter`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use pratica_engine::clock::{Millis, to_rfc3339};
use pratica_engine::runtime::StartRequest;
use pratica_engine::store::{INSTANCE_STATUSES, InstanceQuery, InstanceRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, Permission};
use super::error::ApiError;
use super::json::Json;
use crate::app::instances;

/// Default and largest page size of the instance list.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/instances", post(start_instance).get(list_instances))
        .route("/api/v1/instances/{id}", get(get_instance))
        .route("/api/v1/instances/{id}/cancel", post(cancel_instance))
        .route("/api/v1/instances/{id}/history", get(instance_history))
        .route("/api/v1/instances/{id}/retry", post(retry_instance))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInstanceRequest {
    #[schema(min_length = 1)]
    pub workflow: String,
    #[serde(default)]
    pub version: Option<u32>,
    /// The workflow's input (checked against its input schema).
    #[serde(default)]
    pub input: Value,
    /// Repeating a start with the same id returns the first instance.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartInstanceResponse {
    pub id: String,
    pub created: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: String,
}

/// The list's query string; times are RFC 3339.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListInstancesQuery {
    pub workflow: Option<String>,
    pub version: Option<i64>,
    /// `running`, `compensating`, `completed`, `failed` or `cancelled`; any other value is
    /// `400 invalid_parameter`.
    #[param(value_type = Option<InstanceStatus>, inline)]
    pub status: Option<String>,
    pub business_key: Option<String>,
    pub started_after: Option<String>,
    pub started_before: Option<String>,
    pub ended_after: Option<String>,
    pub ended_before: Option<String>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The status of an instance.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Running,
    Compensating,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub workflow: String,
    pub version: i64,
    pub status: String,
    pub business_key: Option<String>,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<Value>,
    /// Ids of the steps the instance is at (waiting or about to run).
    pub current_steps: Vec<String>,
    pub parent_id: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    pub ended_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<InstanceView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
    pub actor: Option<String>,
    pub hash: String,
}

/// Start an instance; with a `request_id`, a repeated start answers the first instance.
#[utoipa::path(
    post,
    path = "/api/v1/instances",
    tag = "instances",
    request_body = StartInstanceRequest,
    responses(
        (status = 201, description = "Started", body = StartInstanceResponse),
        (status = 200, description = "A start with this `request_id` already happened: its instance", body = StartInstanceResponse),
        super::openapi::JsonBody,
        (status = 404, description = "`not_found`: no such workflow (or version)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_field`, `invalid_request`, or `invalid_input` (with `errors`) when the input does not match the workflow's schema", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn start_instance(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<StartInstanceRequest>,
) -> Result<Response, ApiError> {
    let request = StartRequest { workflow: req.workflow, version: req.version, input: req.input, request_id: req.request_id };
    let started = instances::start(&state, &caller, request).await?;
    let status = if started.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(StartInstanceResponse { id: started.id, created: started.created })).into_response())
}

/// One instance: status, input, output, error, current steps and times. Operators read only
/// instances with a task visible to them (any other answers 404).
#[utoipa::path(
    get,
    path = "/api/v1/instances/{id}",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The instance", body = InstanceView),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn get_instance(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<InstanceView>, ApiError> {
    let row = instances::get(&state, &caller, &id).await?;
    Ok(Json(view(&state, row).await))
}

/// Instances matching the filters, oldest first, one page at a time. Operators list only the
/// instances with a task visible to them.
#[utoipa::path(
    get,
    path = "/api/v1/instances",
    tag = "instances",
    params(ListInstancesQuery),
    responses(
        (status = 200, description = "One page of instances (operators: only those with a task visible to them)", body = InstancePage),
        (status = 400, description = "`invalid_parameter`: a `status` that is not an instance status (the problem names the `parameter` and the `allowed` values)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_field`: an unknown parameter, a bad time, `limit` or `cursor`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn list_instances(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListInstancesQuery>, QueryRejection>,
) -> Result<Json<InstancePage>, ApiError> {
    // The permission before the query's checks, so a role without it learns nothing more.
    caller.require(Permission::ReadInstances)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidField { field: None, detail: e.body_text() })?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("`limit` must be between 1 and {MAX_PAGE}")));
    }
    let status = super::params::one_of("status", q.status, &INSTANCE_STATUSES)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let store_query = InstanceQuery {
        workflow: q.workflow,
        version: q.version,
        status,
        business_key: q.business_key,
        started_after: time_param("started_after", q.started_after.as_deref())?,
        started_before: time_param("started_before", q.started_before.as_deref())?,
        ended_after: time_param("ended_after", q.ended_after.as_deref())?,
        ended_before: time_param("ended_before", q.ended_before.as_deref())?,
        after,
        limit: limit + 1,
        // The use-case limits the list to the caller's office scope.
        visible_to: None,
    };
    let mut rows = instances::list(&state, &caller, store_query).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.started_at, &r.id))
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(view(&state, row).await);
    }
    Ok(Json(InstancePage { items, next_cursor }))
}

/// Cancel an instance: pending work is dropped and open tasks withdrawn.
#[utoipa::path(
    post,
    path = "/api/v1/instances/{id}/cancel",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    request_body = CancelRequest,
    responses(
        (status = 204, description = "Cancelled"),
        super::openapi::JsonBody,
        (status = 404, response = super::openapi::NotFound),
        (status = 409, description = "`conflict`: a concurrent change", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_field`, or `invalid_request` (the instance has already ended)", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn cancel_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CancelRequest>,
) -> Result<StatusCode, ApiError> {
    instances::cancel(&state, &caller, &id, &req.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The instance's audit history, oldest first (operators: as for the instance, 404 outside
/// their scope).
#[utoipa::path(
    get,
    path = "/api/v1/instances/{id}/history",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The audit entries, oldest first", body = Vec<HistoryEntry>),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn instance_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let rows = instances::history(&state, &caller, &id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|h| HistoryEntry {
                seq: h.seq,
                at: to_rfc3339(h.at),
                kind: h.kind,
                step: h.step,
                data: serde_json::from_str(&h.data).unwrap_or(Value::String(h.data)),
                actor: h.actor,
                hash: h.hash,
            })
            .collect(),
    ))
}

/// Runs a failed instance again from the top-level step that failed. 409 `not_retryable`
/// when the instance is not failed or its failure was compensated.
async fn retry_instance(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    instances::retry(&state, &caller, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn view(state: &AppState, row: InstanceRow) -> InstanceView {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    InstanceView {
        current_steps: instances::current_steps(state, &row).await,
        input: parse(&row.input),
        output: row.output.as_deref().map(parse),
        error: row.error.as_deref().map(parse),
        started_at: to_rfc3339(row.started_at),
        updated_at: to_rfc3339(row.updated_at),
        ended_at: row.ended_at.map(to_rfc3339),
        id: row.id,
        workflow: row.workflow,
        version: row.version,
        status: row.status,
        business_key: row.business_key,
        parent_id: row.parent_id,
    }
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<Millis>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::invalid_field(field, format!("`{field}` must be an RFC 3339 time, e.g. 2026-03-01T09:00:00Z")))
        })
        .transpose()
}

fn encode_cursor(started_at: Millis, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{started_at}:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(Millis, String), ApiError> {
    let bad = || ApiError::invalid_field("cursor", "`cursor` is not a cursor this server gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(1_772_355_600_000, "0190-abc");
        assert_eq!(decode_cursor(&c).unwrap(), (1_772_355_600_000, "0190-abc".to_string()));
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("nope")).is_err());
    }
}
