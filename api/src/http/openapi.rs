//! The OpenAPI 3.1 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! attributes and the request/response types' `ToSchema` derives, served (without a token)
//! at `GET /api/v1/openapi.json`.
//!
//! Error answers are RFC 9457 problems ([`Problem`], `application/problem+json`); the
//! reusable responses below name the stable `code`s each status carries. They are written
//! once and gathered in sets that operations list beside their own answers: [`Guarded`]
//! (`401`, `403`, `500`: every operation that needs a token), [`Authenticated`] (`401`,
//! `500`, for an operation that documents its own `403`), [`JsonBody`] (`400`, `413`, `415`:
//! every operation with a JSON body). Types owned by the
//! engine (a message's [`Delivery`], a locked external task) are mirrored here for the
//! document only, as are the operations of `GET /metrics` and `POST /api/v1/instances/{id}/retry`
//! (their handlers are being reworked; move the attributes onto them when they settle). `tests/runtime/openapi.rs` snapshots the document, checks that every
//! route is in it and runs `openapi-spec-validator` over it.

use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse, ToSchema};

use super::{external, health, hooks, instances, messages, tasks, workflows};

/// The generated document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pratica API",
        description = "Pratica's REST API: deploy workflows, start and follow instances, publish messages, \
            work human tasks and external tasks. Every `/api/v1` route except this document needs \
            `Authorization: Bearer <token>` (`pratica token create`); errors are `application/problem+json` \
            documents with a stable `code`."
    ),
    paths(
        super::healthz,
        health::readyz,
        metrics,
        document,
        workflows::deploy_workflow,
        workflows::list_workflows,
        workflows::validate_workflow,
        workflows::get_version,
        workflows::get_diagram,
        instances::start_instance,
        instances::list_instances,
        instances::get_instance,
        instances::cancel_instance,
        instances::instance_history,
        retry_instance,
        messages::publish_message,
        tasks::list_tasks,
        tasks::get_task,
        tasks::claim_task,
        tasks::unclaim_task,
        tasks::complete_task,
        tasks::delegate_task,
        tasks::comment_task,
        tasks::list_comments,
        external::fetch_and_lock,
        external::complete,
        external::fail,
        external::extend_lock,
        hooks::hook,
    ),
    components(
        schemas(Problem, Diagnostic, FormError),
        responses(BadRequest, Unauthenticated, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable, Internal)
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness and readiness (no token)"),
        (name = "metrics", description = "Prometheus metrics (admin or viewer token)"),
        (name = "meta", description = "This document (no token)"),
        (name = "workflows", description = "Deploy, validate and read workflow definitions"),
        (name = "instances", description = "Start, follow and cancel workflow instances"),
        (name = "messages", description = "Publish messages to waiting instances"),
        (name = "tasks", description = "Human tasks: list, claim, complete, delegate, comment"),
        (name = "external-tasks", description = "The external-task protocol for workers in any language (worker or admin tokens)"),
        (name = "hooks", description = "Webhook triggers, signed with HMAC-SHA256 (no token)"),
    )
)]
pub struct ApiDoc;

/// The name of the bearer security scheme the operations refer to.
pub const BEARER: &str = "bearer";

/// Adds the bearer-token security scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("prt_...")
            .description(Some("An API token from `pratica token create --name NAME --role ROLE`"))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The document as JSON.
pub fn document_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises")
}

/// This OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document_json().to_string())
}

/// Prometheus metrics in the text exposition format.
///
/// Instances started and finished, step durations, connector errors, worker batch sizes,
/// and, computed at each scrape, the job queue's depth and age and the open tasks per
/// office. (Documented here; the handler is `metrics::metrics`.)
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    operation_id = "metrics",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain"), Guarded),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn metrics() {}

/// Retry a failed instance.
///
/// Runs a failed instance again from the top-level step that failed. (Documented here
/// rather than on the handler while it is reworked.)
#[utoipa::path(
    post,
    path = "/api/v1/instances/{id}/retry",
    tag = "instances",
    operation_id = "retry_instance",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 202, description = "The instance runs again from the step that failed"),
        (status = 404, response = NotFound),
        (status = 409, description = "`not_retryable`: the instance is not failed, or its failure was compensated", body = Problem, content_type = "application/problem+json"),
        Guarded,
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn retry_instance() {}

/// An error answer: an RFC 9457 problem document with Pratica's stable `code`.
///
/// Clients branch on `code`, never on `detail`. Some problems carry extra members:
/// `field` (a 422 about one request field), `diagnostics` (`invalid_workflow`), `errors`
/// (`invalid_form`, `invalid_input`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "urn:pratica:problem:lock_lost", "title": "Lock lost", "status": 409, "code": "lock_lost",
    "detail": "external task 7 is not locked by this worker any more"}))]
pub struct Problem {
    /// `urn:pratica:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// The stable code: `malformed_json`, `unreadable_body`, `unsupported_media_type`, `payload_too_large`,
    /// `invalid_field`, `invalid_request`, `invalid_workflow`, `invalid_input`, `invalid_form`, `not_found`,
    /// `method_not_allowed`, `lock_lost`, `conflict`, `version_conflict`, `task_claimed`, `task_closed`,
    /// `forbidden`, `separation_of_duties`, `unauthenticated`, `signature_invalid`, `not_ready`,
    /// `not_retryable`, `internal`.
    pub code: String,
    /// For people; a 500 says only "internal error".
    pub detail: String,
    /// The request field a 422 `invalid_field` is about (`max_tasks`, `nested.count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `invalid_workflow`: what is wrong with the workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<Diagnostic>>,
    /// `invalid_form` (and `invalid_input`): what is wrong with the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FormError>>,
}

/// A problem found in a workflow; every member is present (`null` when unknown).
#[derive(Debug, Serialize, ToSchema)]
pub struct Diagnostic {
    pub code: String,
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// JSON pointer into the workflow document.
    pub pointer: Option<String>,
    pub hint: Option<String>,
}

/// One problem with submitted data.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormError {
    /// JSON pointer of the value (`/` for the whole document).
    pub field: String,
    pub message: String,
}

/// `400 malformed_json` (the body is not JSON) or `unreadable_body`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(#[allow(dead_code)] Problem);

/// `401 unauthenticated`: no valid `Authorization: Bearer` token (with `WWW-Authenticate: Bearer`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unauthenticated(#[allow(dead_code)] Problem);

/// `403 forbidden`: the token's role lacks the permission (the detail names the roles that hold it).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(#[allow(dead_code)] Problem);

/// `404 not_found`: no such resource (operators also get it for tasks outside their offices).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(#[allow(dead_code)] Problem);

/// `413 payload_too_large`: the body is over 1 MiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(#[allow(dead_code)] Problem);

/// `415 unsupported_media_type`: the body is not declared as JSON.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(#[allow(dead_code)] Problem);

/// `422 invalid_field` (a missing, unknown, mistyped or out-of-range field, named in `field`) or
/// `invalid_request` (the engine refuses the request).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unprocessable(#[allow(dead_code)] Problem);

/// `500 internal`: the detail says only "internal error"; the server logs the cause.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Internal(#[allow(dead_code)] Problem);

/// The errors of every operation that needs a token: `401`, `403` and `500`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Guarded {
    #[response(status = 401)]
    Unauthenticated(#[ref_response] Unauthenticated),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 500)]
    Internal(#[ref_response] Internal),
}

/// `401` and `500`, for an operation that needs a token and documents its own `403`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Authenticated {
    #[response(status = 401)]
    Unauthenticated(#[ref_response] Unauthenticated),
    #[response(status = 500)]
    Internal(#[ref_response] Internal),
}

/// The errors of a JSON request body: `400`, `413` and `415`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum JsonBody {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
    #[response(status = 415)]
    UnsupportedMediaType(#[ref_response] UnsupportedMediaType),
}

/// What publishing a message did (`delivery` tells which).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "delivery")]
pub enum Delivery {
    /// A waiting instance received it.
    Delivered { instance: String },
    /// Nobody waits yet; it is kept until an instance waits for it, or it expires.
    Buffered {
        /// The kept message's id.
        message: String,
    },
}

/// A task locked for a worker.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockedExternalTask {
    pub id: i64,
    /// The lock id (128 random bits as hex), bound to the API token that fetched the task:
    /// send it back with the result, with the same token.
    pub lock: String,
    /// When the lock expires, in milliseconds since the Unix epoch.
    pub lock_expires_at: i64,
    pub topic: String,
    pub instance_id: String,
    pub step_id: String,
    /// The step's input.
    pub input: serde_json::Value,
    /// Stable across attempts: pass it to downstream systems to make the work idempotent.
    pub idempotency_key: String,
    pub attempt: u32,
    /// `lock_expires_at` as RFC 3339 text.
    pub lock_expires: String,
}
