//! Workflow definitions: deploy, validate, list, read a version and its diagram.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v1/workflows` (YAML body, or JSON `{source}`) | `201` deployed, `200` unchanged, `422 invalid_workflow` with `diagnostics`, `409 version_conflict` |
//! | `POST /api/v1/workflows/validate` | `200 {valid, diagnostics}` |
//! | `GET /api/v1/workflows` | every deployed version |
//! | `GET /api/v1/workflows/{name}/versions/{version}` | `{name, version, hash, source, plan}` |
//! | `GET /api/v1/workflows/{name}/versions/{version}/diagram.svg` | `image/svg+xml` |

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::runtime::Deployment;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, Permission};
use super::error::{ApiError, diagnostic_json};
use super::json::{Json, decode};
use crate::app::workflows;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workflows", post(deploy_workflow).get(list_workflows))
        .route("/api/v1/workflows/validate", post(validate_workflow))
        .route("/api/v1/workflows/{name}/versions/{version}", get(get_version))
        .route("/api/v1/workflows/{name}/versions/{version}/diagram.svg", get(get_diagram))
}

/// The JSON form of a deploy or validate body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// The workflow's YAML text.
    pub source: String,
}

/// A workflow's YAML text, sent as `application/yaml` (or `text/yaml`) or as JSON `{source}`.
#[derive(Debug)]
pub struct WorkflowSource(pub String);

impl<S: Send + Sync> FromRequest<S> for WorkflowSource {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let yaml = matches!(essence.as_str(), "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml");
        let json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !yaml && !json {
            return Err(ApiError::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the workflow as `Content-Type: application/yaml`, or as JSON `{\"source\": \"...\"}`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(from_bytes_rejection)?;
        if json {
            return Ok(WorkflowSource(decode::<SourceRequest>(&bytes)?.source));
        }
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Ok(WorkflowSource(text)),
            Err(_) => Err(ApiError::invalid_field("source", "the workflow is not UTF-8 text")),
        }
    }
}

fn from_bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: super::MAX_BODY_BYTES }
    } else {
        ApiError::UnreadableBody { detail: rejection.body_text() }
    }
}

/// The answer of a deploy: the engine's [`Deployment`].
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployResponse {
    pub workflow: String,
    pub version: u32,
    pub hash: String,
    pub created: bool,
}

impl From<Deployment> for DeployResponse {
    fn from(d: Deployment) -> Self {
        Self { workflow: d.workflow, version: d.version, hash: d.hash, created: d.created }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateResponse {
    pub valid: bool,
    #[schema(value_type = Vec<super::openapi::Diagnostic>)]
    pub diagnostics: Vec<Value>,
}

/// One deployed version in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSummary {
    pub name: String,
    pub version: i64,
    pub hash: String,
    pub title: Option<String>,
    pub deployed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: i64,
    pub hash: String,
    pub deployed_at: String,
    pub source: String,
    /// The compiled plan the engine runs.
    #[schema(value_type = Object)]
    pub plan: Value,
}

/// Deploy a workflow: `201` when this content is new, `200` when it was already deployed.
#[utoipa::path(
    post,
    path = "/api/v1/workflows",
    tag = "workflows",
    request_body(
        description = "The workflow's YAML text, or JSON `{\"source\": \"...\"}`",
        content((String = "application/yaml"), (SourceRequest = "application/json"))
    ),
    responses(
        (status = 201, description = "Deployed as a new version", body = DeployResponse),
        (status = 200, description = "This content was already deployed", body = DeployResponse),
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, description = "`unsupported_media_type`: send `application/yaml` or JSON", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the version is already deployed with other content", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_workflow` with `diagnostics`, or `invalid_field`", body = super::openapi::Problem, content_type = "application/problem+json"),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn deploy_workflow(
    State(state): State<AppState>,
    caller: Caller,
    WorkflowSource(source): WorkflowSource,
) -> Result<Response, ApiError> {
    let deployment = workflows::deploy(&state, &caller, &source).await?;
    let status = if deployment.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(DeployResponse::from(deployment))).into_response())
}

/// Validate a workflow against the engine's connectors without deploying it.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/validate",
    tag = "workflows",
    request_body(
        description = "The workflow's YAML text, or JSON `{\"source\": \"...\"}`",
        content((String = "application/yaml"), (SourceRequest = "application/json"))
    ),
    responses(
        (status = 200, description = "Whether the workflow is valid, and its diagnostics", body = ValidateResponse),
        (status = 400, response = super::openapi::BadRequest),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 415, description = "`unsupported_media_type`: send `application/yaml` or JSON", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, response = super::openapi::Unprocessable),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn validate_workflow(
    State(state): State<AppState>,
    caller: Caller,
    WorkflowSource(source): WorkflowSource,
) -> Result<Json<ValidateResponse>, ApiError> {
    let diagnostics: Vec<Value> = workflows::validate(&state, &caller, &source)?.iter().map(diagnostic_json).collect();
    Ok(Json(ValidateResponse { valid: diagnostics.is_empty(), diagnostics }))
}

/// Every deployed version, by name then version.
#[utoipa::path(
    get,
    path = "/api/v1/workflows",
    tag = "workflows",
    responses(
        (status = 200, description = "Every deployed version", body = Vec<WorkflowSummary>),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn list_workflows(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<WorkflowSummary>>, ApiError> {
    let rows = workflows::list(&state, &caller).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let title = workflows::title(&state, &row.name, row.version as u32).await;
        out.push(WorkflowSummary { name: row.name, version: row.version, hash: row.hash, title, deployed_at: to_rfc3339(row.deployed_at) });
    }
    Ok(Json(out))
}

/// One deployed version: its source and compiled plan.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/{name}/versions/{version}",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("version" = String, Path, description = "The version number (a version that is not a number is a 404)")
    ),
    responses(
        (status = 200, description = "The version's source and plan", body = WorkflowVersion),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<WorkflowVersion>, ApiError> {
    // The permission before the version's check, so a role without it learns nothing more.
    caller.require(Permission::ReadWorkflows)?;
    let version = parse_version(&name, &version)?;
    let row = workflows::deployed(&state, &caller, &name, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("workflow `{name}` version {version} is not deployed")))?;
    let plan = workflows::plan(&state, &caller, &name, version).await?;
    let plan = serde_json::to_value(&*plan).unwrap_or(Value::Null);
    Ok(Json(WorkflowVersion {
        name: row.name,
        version: row.version,
        hash: row.hash,
        deployed_at: to_rfc3339(row.deployed_at),
        source: row.source,
        plan,
    }))
}

/// The diagram of a deployed version, as SVG.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/{name}/versions/{version}/diagram.svg",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("version" = String, Path, description = "The version number (a version that is not a number is a 404)")
    ),
    responses(
        (status = 200, description = "The diagram", body = String, content_type = "image/svg+xml"),
        (status = 404, response = super::openapi::NotFound),
        super::openapi::Guarded,
    ),
    security(("bearer" = []))
)]
async fn get_diagram(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ReadWorkflows)?;
    let version = parse_version(&name, &version)?;
    let plan = workflows::plan(&state, &caller, &name, version).await?;
    let svg = pratica_engine::graph::to_svg(&plan);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

fn parse_version(name: &str, version: &str) -> Result<u32, ApiError> {
    version.parse().map_err(|_| ApiError::NotFound(format!("workflow `{name}` has no version `{version}` (versions are numbers)")))
}
