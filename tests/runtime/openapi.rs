//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`): a snapshot of it, so every change
//! to the API's shape shows up in review; every route the router registers is documented and
//! every documented route is routed; and an independent validator (`openapi-spec-validator`
//! from PyPI) accepts it. Outside CI a missing validator skips that check with a message; in
//! CI (`CI=true`) it is an error.

use std::collections::BTreeSet;
use std::sync::Arc;

use pratica_api::http::openapi::document_json;
use pratica_api::http::{AppState, serve};
use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig};
use pratica_engine::store::Store;
use pratica_tests::backend::ScratchDir;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn the_document_matches_its_snapshot() {
    let doc = document_json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Pratica API");
    insta::assert_json_snapshot!("openapi", doc);
}

/// `(method, path)` of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document_json();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// The HTTP sources, by module.
const SOURCES: [(&str, &str); 9] = [
    ("http", include_str!("../../api/src/http/mod.rs")),
    ("workflows", include_str!("../../api/src/http/workflows.rs")),
    ("instances", include_str!("../../api/src/http/instances.rs")),
    ("messages", include_str!("../../api/src/http/messages.rs")),
    ("tasks", include_str!("../../api/src/http/tasks.rs")),
    ("external", include_str!("../../api/src/http/external.rs")),
    ("hooks", include_str!("../../api/src/http/hooks.rs")),
    ("health", include_str!("../../api/src/http/health.rs")),
    ("metrics", include_str!("../../api/src/http/metrics.rs")),
];

/// The method routers (`get(`, `post(`, ...) called in `code`.
fn methods_in(code: &str) -> Vec<&'static str> {
    METHODS
        .into_iter()
        .filter(|method| {
            // `get(` but not `forget(`: a method router starts the text or follows `.`, ` ` or `,`.
            code.match_indices(&format!("{method}(")).any(|(i, _)| i == 0 || matches!(code.as_bytes()[i - 1], b'.' | b' ' | b',' | b'\n'))
        })
        .collect()
}

/// `(method, path)` of every `.route("PATH", get(..).post(..))` in the HTTP sources, read
/// from the files so that a new route cannot be added without documenting it. A route whose
/// method router is built by a function (`.route("/metrics", metrics::route())`) is
/// resolved through that function's body.
fn registered() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (_, source) in SOURCES {
        let mut rest = source;
        while let Some(at) = rest.find(".route(\"") {
            rest = &rest[at + ".route(\"".len()..];
            let end = rest.find('"').expect("a closing quote");
            let path = rest[..end].to_string();
            // The handlers: up to the end of the `.route(...)` call.
            let mut depth = 1;
            let call_end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("a closed .route(...) call");
            let handlers = rest[end + 1..call_end].trim_start_matches([',', ' ', '\n']);
            let mut methods = methods_in(handlers);
            if methods.is_empty() {
                methods = methods_in(router_fn_body(handlers));
            }
            assert!(!methods.is_empty(), "cannot tell the methods of route {path}: {handlers}");
            for method in methods {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// The body of the function `module::name()` that `call` names.
fn router_fn_body(call: &str) -> &'static str {
    let target = call.split('(').next().unwrap_or_default().trim();
    let (module, name) = target.rsplit_once("::").unwrap_or(("http", target));
    let module = module.rsplit("::").next().unwrap_or(module);
    let Some((_, source)) = SOURCES.into_iter().find(|(m, _)| *m == module) else { return "" };
    let Some(at) = source.find(&format!("fn {name}(")) else { return "" };
    let body = &source[at..];
    &body[..body.find("\n}").unwrap_or(body.len())]
}

#[test]
fn every_registered_route_is_documented() {
    let registered = registered();
    // The parse found the routes (a guard against a parser that finds nothing).
    assert!(registered.len() >= 25, "{registered:?}");
    assert!(registered.contains(&("post".into(), "/api/v1/external-tasks/{id}/extend-lock".into())), "{registered:?}");
    let documented = documented();
    let missing: Vec<_> = registered.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&registered).collect();
    assert!(missing.is_empty(), "routes without an OpenAPI operation: {missing:?}");
    assert!(phantom.is_empty(), "OpenAPI operations without a route: {phantom:?}");
}

#[test]
fn every_operation_declares_its_errors_and_security() {
    let doc = document_json();
    let open = ["/healthz", "/readyz", "/api/v1/openapi.json", "/hooks/{name}"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object().unwrap();
            if open.contains(&path.as_str()) {
                assert!(op.get("security").is_none(), "{method} {path} needs no token");
                continue;
            }
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{method} {path}");
            for status in ["401", "403", "500"] {
                assert!(responses.contains_key(status), "{method} {path} does not document {status}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let problem = response.get("$ref").is_some() || response["content"].get("application/problem+json").is_some();
                    assert!(problem, "{method} {path} {status} is not a problem+json answer");
                }
            }
        }
    }
}

/// The document is served without a token, and every documented route is routed (not the
/// router's `no such route` fallback, not `405`).
#[tokio::test]
async fn the_document_is_served_and_its_routes_exist() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let store = Store::connect(&format!("sqlite://{}", scratch.0.join("t.db").display())).await.unwrap();
    let engine = Engine::new(store, Registry::builtin(), Arc::new(SystemClock), EngineConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, mut stopping) = watch::channel(false);
    let server = tokio::spawn(serve(listener, AppState::new(engine), async move {
        let _ = stopping.wait_for(|s| *s).await;
    }));
    let http = reqwest::Client::new();

    let response = http.get(format!("{url}/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), document_json());

    for (method, path) in documented() {
        let concrete = path.replace("{version}", "1").replace(['{', '}'], "");
        let request = match method.as_str() {
            "get" => http.get(format!("{url}{concrete}")),
            "post" => http.post(format!("{url}{concrete}")).header("content-type", "application/json").body("{}"),
            other => panic!("no {other} routes expected"),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
        assert!(!body.contains("no such route"), "{method} {path} is not routed: {body}");
    }
    stop.send_replace(true);
    server.await.unwrap().unwrap();
}

/// `python3 -m openapi_spec_validator FILE` accepts the document.
#[test]
fn an_independent_validator_accepts_the_document() {
    let have =
        std::process::Command::new("python3").args(["-c", "import openapi_spec_validator"]).status().map(|s| s.success()).unwrap_or(false);
    if !have {
        if std::env::var("CI").is_ok() {
            panic!("python3 with openapi-spec-validator is required in CI (scripts/test and .ci/run install it)");
        }
        eprintln!("openapi-spec-validator is not installed (pip install openapi-spec-validator); skipping");
        return;
    }
    let scratch = ScratchDir::new();
    let file = scratch.0.join("openapi.json");
    std::fs::write(&file, serde_json::to_string_pretty(&document_json()).unwrap()).unwrap();
    let output = std::process::Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
