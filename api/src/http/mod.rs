//! The HTTP API (axum).
//!
//! [`router`] builds the whole API over the shared [`AppState`] (see [`crate::app`], whose
//! use-cases the handlers call); [`serve`] runs it on a listener
//! until a shutdown signal. Tests bind `127.0.0.1:0` and call [`serve`] (end to end) or
//! call the router directly (`tower::ServiceExt::oneshot`).
//!
//! # Layout
//! - [`error`]: [`ApiError`], every error as an `application/problem+json` document with a
//!   stable `code`.
//! - [`json`]: the [`Json`] extractor whose rejections are [`ApiError`]s naming the field.
//! - [`params`]: query parameters with a closed set of values (`400 invalid_parameter`).
//! - [`auth`]: API tokens, roles and the permission each route needs.
//! - [`workflows`], [`instances`], [`messages`], [`tasks`]: the REST API under `/api/v1`.
//! - [`external`]: the external-task protocol under `/api/v1/external-tasks` (worker or
//!   admin tokens).
//! - [`health`]: readiness (`/readyz`).
//! - [`metrics`]: Prometheus metrics (`/metrics`, admin or viewer token).
//! - [`hooks`]: webhook triggers, `POST /hooks/{name}` (signed with HMAC, no token).
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers' attributes and
//!   served at `GET /api/v1/openapi.json`.
//!
//! Every `/api/v1` route needs `Authorization: Bearer <token>` except the OpenAPI
//! document; `/healthz` and `/readyz` are open.

pub mod auth;
pub mod error;
pub mod external;
pub mod health;
pub mod hooks;
pub mod instances;
pub mod json;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod tasks;
pub mod workflows;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use crate::app::AppState;
pub use error::ApiError;
pub use json::Json;

/// Largest request body accepted (1 MiB); larger ones get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The API's routes, with the body limit, problem answers for unknown routes and methods,
/// and a trace span per request.
pub fn router(state: AppState) -> Router {
    let external = external::routes().route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_external));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", metrics::route())
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(workflows::routes())
        .merge(instances::routes())
        .merge(messages::routes())
        .merge(tasks::routes())
        .merge(external)
        .merge(hooks::routes())
        .merge(crate::console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves; then ends long polls and waits
/// for requests in flight. Handlers can read the client's address
/// (`ConnectInfo<SocketAddr>`: the console's login throttling counts failures per address).
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let stopper = state.clone();
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopper.signal_stopping();
        })
        .await
}

/// Liveness: `200 ok` while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use pratica_engine::clock::SystemClock;
    use pratica_engine::connector::Registry;
    use pratica_engine::runtime::Engine;
    use pratica_engine::runtime::EngineConfig;
    use pratica_engine::store::Store;
    use std::sync::Arc;
    use tower::ServiceExt;

    use super::*;

    /// A router over an engine on a fresh SQLite file (removed with the returned guard).
    async fn app() -> (Router, TempDir, Store) {
        let dir = TempDir(std::env::temp_dir().join(format!("pratica-http-{}", uuid::Uuid::now_v7())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.0.join("t.db").display())).await.unwrap();
        let store_copy = store.clone();
        let engine = Engine::new(store, Registry::builtin(), Arc::new(SystemClock), EngineConfig::default());
        (router(AppState::new(engine)), dir, store_copy)
    }

    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Option<String>, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_answers_ok_and_unknown_routes_are_problems() {
        let (app, _dir, _) = app().await;
        let (status, _, body) = send(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
        let (status, _, body) = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        let (status, content_type, body) = send(&app, Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!((status, content_type.as_deref()), (StatusCode::NOT_FOUND, Some("application/problem+json")));
        assert!(body.contains(r#""code":"not_found""#), "{body}");
    }

    #[tokio::test]
    async fn an_empty_fetch_answers_an_empty_list() {
        let (app, _dir, store) = app().await;
        let fetch = || Request::post("/api/v1/external-tasks/fetch-and-lock").header(header::CONTENT_TYPE, "application/json");
        let (status, _, body) = send(&app, fetch().body(Body::from(r#"{"worker": "w", "topic": "documents.ocr"}"#)).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let viewer = auth::create_token(&store, "v", auth::Role::Viewer, &[], 0).await.unwrap();
        let request = fetch().header(header::AUTHORIZATION, format!("Bearer {viewer}")).body(Body::from("{}")).unwrap();
        let (status, _, body) = send(&app, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let token = auth::create_token(&store, "w", auth::Role::Worker, &[], 0).await.unwrap();
        let request = fetch()
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(r#"{"worker": "w", "topic": "documents.ocr"}"#))
            .unwrap();
        let (status, content_type, body) = send(&app, request).await;
        assert_eq!((status, content_type.as_deref(), body.as_str()), (StatusCode::OK, Some("application/json"), "[]"));
    }
}
