//! The REST API end to end: a real server on 127.0.0.1:0 with the worker loop in the
//! background, on both backends. Deploy, start (idempotently), message, task claim and
//! complete (an invalid form, then a valid one), four eyes, history; a role-by-endpoint
//! table; tokens created, listed and revoked with the `pratica` command.

use std::time::Duration;

use pratica_api::http::auth::Role;
use pratica_engine::store::Store;
use pratica_tests::app::{self as harness, Account, AppOptions, TestApp};
use pratica_tests::backend::Backend;
use pratica_tests::wait::eventually;
use pratica_tests::{both_backends, pratica_bin};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const REVIEW: &str = r#"workflow: api-review
version: 1
title: API review
business_key: ${ .input.cf }
steps:
  - id: documents
    receive: { message: documents-received, correlate: "${ .input.cf }" }
  - id: review
    human:
      title: "Review {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      form: iban-check
      outcomes: [approve, reject]
  - id: second
    human:
      title: Second approval
      assign: { role: naspi-operator, office: "${ .input.office }" }
      separate_from: [review]
  - id: done
    end: { output: { outcome: "${ .steps.review.output.outcome }", iban: "${ .steps.review.output.form.iban }" } }
"#;

const IBAN_FORM: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["iban"],
  "properties": { "iban": { "type": "string", "pattern": "^IT[0-9]{2}[A-Z][0-9]{10}[0-9A-Z]{12}$" } }
}"#;

/// The server of `spawn_app` with this file's requests. Tokens by role: `admin`,
/// `analyst`, `operator` (office RM1), `operator2` (office RM1), `other_office` (operator of
/// MI1), `worker`, `viewer` (operators with the task role naspi-operator), and
/// `other_role` (operator of RM1 with the task role payout-officer only).
struct App(TestApp);

impl std::ops::Deref for App {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.0
    }
}

async fn spawn_app(backend: Backend) -> Option<App> {
    let operator = |name: &str, office: &str| Account::new(name, Role::Operator).offices(&[office]).task_roles(&["naspi-operator"]);
    let options = AppOptions::new(backend)
        .schema("iban-check", IBAN_FORM)
        .token(Account::new("admin", Role::Admin))
        .token(Account::new("analyst", Role::Analyst))
        .token(operator("operator", "RM1"))
        .token(operator("operator2", "RM1"))
        .token(operator("other_office", "MI1"))
        .token(Account::new("worker", Role::Worker))
        .token(Account::new("viewer", Role::Viewer))
        // An operator of RM1 without the task role: sees none of its naspi-operator tasks.
        .token(Account::new("other_role", Role::Operator).offices(&["RM1"]).task_roles(&["payout-officer"]));
    harness::spawn_app(options).await.map(App)
}

impl App {
    async fn call(&self, who: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("http://{}{path}", self.addr));
        if let Some(who) = who {
            request = request.bearer_auth(self.tokens.get(who).map(String::as_str).unwrap_or(who));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        self.call(Some(who), Method::GET, path, None).await
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(who), Method::POST, path, Some(body)).await
    }

    async fn deploy_yaml(&self, who: &str, yaml: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("http://{}/api/v1/workflows", self.addr))
            .bearer_auth(&self.tokens[who])
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Polls the task list (as `who`) until a task of `step` is open for `instance`.
    async fn wait_for_task(&self, who: &str, instance: &str, step: &str) -> Value {
        let open = eventually(Duration::from_secs(15), async || {
            let (status, tasks) = self.get(who, "/api/v1/tasks?status=open").await;
            assert_eq!(status, StatusCode::OK, "{tasks}");
            let task = tasks.as_array().unwrap().iter().find(|t| t["instance_id"] == instance && t["step_id"] == step).cloned();
            task.ok_or(tasks)
        });
        open.await.unwrap_or_else(|tasks| panic!("no open task {step} for {instance}: {tasks}"))
    }

    /// Polls the instance until its only current step is `step` (waiting there).
    async fn wait_for_step(&self, instance: &str, step: &str) -> Value {
        // The step's wait is committed with the transition that reached it.
        self.wait_for_instance(instance, |body| body["current_steps"] == json!([step]))
            .await
            .unwrap_or_else(|body| panic!("never reached {step}: {body}"))
    }

    async fn wait_for_status(&self, instance: &str, status: &str) -> Value {
        self.wait_for_instance(instance, |body| body["status"] == status)
            .await
            .unwrap_or_else(|body| panic!("instance never became {status}: {body}"))
    }

    /// Polls the instance (as `viewer`) for up to 15 s until `done` holds; the last body either way.
    async fn wait_for_instance(&self, instance: &str, done: impl Fn(&Value) -> bool) -> Result<Value, Value> {
        eventually(Duration::from_secs(15), async || {
            let (_, body) = self.get("viewer", &format!("/api/v1/instances/{instance}")).await;
            if done(&body) { Ok(body) } else { Err(body) }
        })
        .await
    }
}

both_backends!(a_case_runs_end_to_end_over_the_api, |backend| async move {
    let Some(app) = spawn_app(backend).await else { return };

    // Deploy: 201, then 200 unchanged; validate; a bad workflow is 422 with positions.
    let (status, body) = app.deploy_yaml("analyst", REVIEW).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((body["workflow"].as_str(), body["version"].as_u64(), body["created"].as_bool()), (Some("api-review"), Some(1), Some(true)));
    let (status, body) = app.post("analyst", "/api/v1/workflows", json!({"source": REVIEW})).await;
    assert_eq!((status, body["created"].as_bool()), (StatusCode::OK, Some(false)));
    let (status, body) = app.deploy_yaml("analyst", &REVIEW.replace("title: API review", "title: Changed")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("version_conflict")), "{body}");
    let broken = "workflow: broken\nversion: 1\ntitle: B\nsteps:\n  - id: a\n    goto: nowhere\n";
    let (status, body) = app.deploy_yaml("analyst", broken).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_workflow")), "{body}");
    let first = &body["diagnostics"][0];
    assert!(first["code"].as_str().unwrap().starts_with("WF") && first["line"].is_u64(), "{body}");
    let (status, body) = app.post("analyst", "/api/v1/workflows/validate", json!({"source": broken})).await;
    assert_eq!((status, body["valid"].as_bool()), (StatusCode::OK, Some(false)), "{body}");
    let (status, body) = app.deploy_yaml("analyst", &format!("{REVIEW}# {}\n", "x".repeat(1024 * 1024))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "1 MiB at most");
    let text = app
        .http
        .post(format!("http://{}/api/v1/workflows", app.addr))
        .bearer_auth(&app.tokens["analyst"])
        .body(REVIEW)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "YAML must say so");
    let (status, body) = app.get("viewer", "/api/v1/workflows").await;
    assert_eq!((status, body[0]["name"].as_str()), (StatusCode::OK, Some("api-review")), "{body}");
    let (status, body) = app.get("viewer", "/api/v1/workflows/api-review/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["source"], REVIEW);
    assert_eq!(body["plan"]["workflow"], "api-review");
    let svg = app
        .http
        .get(format!("http://{}/api/v1/workflows/api-review/versions/1/diagram.svg", app.addr))
        .bearer_auth(&app.tokens["viewer"])
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));

    // Start, and start again with the same request id: the same instance.
    let start = json!({"workflow": "api-review", "input": {"cf": "RSSMRA80A01H501U", "office": "RM1"}, "request_id": "req-1"});
    let (status, started) = app.post("admin", "/api/v1/instances", start.clone()).await;
    assert_eq!((status, started["created"].as_bool()), (StatusCode::CREATED, Some(true)), "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let (status, again) = app.post("admin", "/api/v1/instances", start).await;
    assert_eq!((status, again["id"].as_str(), again["created"].as_bool()), (StatusCode::OK, Some(id.as_str()), Some(false)));
    let (status, body) = app.post("admin", "/api/v1/instances", json!({"workflow": "nope", "input": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // It waits for the documents.
    let waiting = app.wait_for_step(&id, "documents").await;
    assert_eq!(waiting["business_key"], "RSSMRA80A01H501U");
    let (status, delivery) = app
        .post("admin", "/api/v1/messages", json!({"name": "documents-received", "key": "RSSMRA80A01H501U", "payload": {"files": 2}}))
        .await;
    assert_eq!(
        (status, delivery["delivery"].as_str(), delivery["instance"].as_str()),
        (StatusCode::ACCEPTED, Some("delivered"), Some(id.as_str()))
    );

    // The review task: operators of RM1 see it, MI1 does not.
    let task = app.wait_for_task("operator", &id, "review").await;
    let task_id = task["id"].as_str().unwrap().to_string();
    assert_eq!((task["office"].as_str(), task["form"].as_str()), (Some("RM1"), Some("iban-check")));
    let (_, others) = app.get("other_office", "/api/v1/tasks").await;
    assert_eq!(others, json!([]));
    let (_, filtered) = app.get("operator", "/api/v1/tasks?office=MI1").await;
    assert_eq!(filtered, json!([]));

    // Claim: the second operator cannot take it over; an invalid form is refused per field.
    let (status, claimed) = app.post("operator", &format!("/api/v1/tasks/{task_id}/claim"), json!({})).await;
    assert_eq!((status, claimed["assignee"].as_str(), claimed["status"].as_str()), (StatusCode::OK, Some("operator"), Some("claimed")));
    let (status, body) = app.post("operator2", &format!("/api/v1/tasks/{task_id}/claim"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("task_claimed")));
    let complete = format!("/api/v1/tasks/{task_id}/complete");
    let (status, body) =
        app.post("operator2", &complete, json!({"outcome": "approve", "form": {"iban": "IT60X0542811101000000123456"}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.post("operator", &complete, json!({"outcome": "approve", "form": {"iban": "not an iban"}})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_form")), "{body}");
    assert_eq!(body["errors"][0]["field"], "/iban", "{body}");
    let (status, body) =
        app.post("operator", &complete, json!({"outcome": "approve", "form": {"iban": "IT60X0542811101000000123456"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Four eyes: the reviewer may not approve the second step.
    let second = app.wait_for_task("operator", &id, "second").await;
    let second_complete = format!("/api/v1/tasks/{}/complete", second["id"].as_str().unwrap());
    let (status, body) = app.post("operator", &second_complete, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("separation_of_duties")), "{body}");
    let (status, body) = app.post("operator2", &second_complete, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let done = app.wait_for_status(&id, "completed").await;
    assert_eq!(done["output"], json!({"outcome": "approve", "iban": "IT60X0542811101000000123456"}));
    assert_eq!(done["current_steps"], json!([]));
    assert!(done["ended_at"].is_string());

    // History: ordered, hashed, with the actors.
    let (status, history) = app.get("viewer", &format!("/api/v1/instances/{id}/history")).await;
    assert_eq!(status, StatusCode::OK);
    let entries = history.as_array().unwrap();
    assert!(entries.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    assert!(
        entries.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64) && e["at"].as_str().is_some_and(|a| a.ends_with('Z')))
    );
    let actors: Vec<&str> = entries.iter().filter(|e| e["kind"] == "task.completed").filter_map(|e| e["actor"].as_str()).collect();
    assert_eq!(actors, ["operator", "operator2"]);

    // Listing with filters and cursor pages.
    for n in 0..3 {
        let (status, _) = app
            .post("admin", "/api/v1/instances", json!({"workflow": "api-review", "input": {"cf": format!("CF{n}"), "office": "RM1"}}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page) = app.get("viewer", "/api/v1/instances?workflow=api-review&status=completed").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/instances?workflow=api-review&limit=3&cursor={c}"),
            None => "/api/v1/instances?workflow=api-review&limit=3".to_string(),
        };
        let (status, page) = app.get("viewer", &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], id, "oldest first");
    let (status, body) = app.get("viewer", "/api/v1/instances?cursor=garbage!").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor")), "{body}");
    let (status, body) = app.get("viewer", "/api/v1/instances?started_after=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Cancel one; a cancelled instance cannot be retried.
    let victim = seen[1].clone();
    let (status, _) = app.post("admin", &format!("/api/v1/instances/{victim}/cancel"), json!({"reason": "duplicate"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.wait_for_status(&victim, "cancelled").await;
    let (status, body) = app.post("admin", &format!("/api/v1/instances/{victim}/retry"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("not_retryable")), "{body}");

    // Health.
    let (status, body) = app.call(None, Method::GET, "/readyz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ready")));
});

/// Which roles an endpoint admits: `Ok` for a role that passes authorisation (whatever the
/// handler then answers), `Refused(status)` otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Admit,
    Refuse(u16),
}

both_backends!(every_endpoint_refuses_the_roles_it_must, |backend| async move {
    use Expect::*;
    let Some(app) = spawn_app(backend).await else { return };
    // A case waiting at the review task of office RM1.
    assert_eq!(app.deploy_yaml("admin", REVIEW).await.0, StatusCode::CREATED);
    let (_, started) =
        app.post("admin", "/api/v1/instances", json!({"workflow": "api-review", "input": {"cf": "CF", "office": "RM1"}})).await;
    let id = started["id"].as_str().unwrap().to_string();
    app.wait_for_step(&id, "documents").await;
    let (status, _) = app.post("admin", "/api/v1/messages", json!({"name": "documents-received", "key": "CF", "payload": {}})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = app.wait_for_task("admin", &id, "review").await;
    let task = task["id"].as_str().unwrap().to_string();

    let roles = ["admin", "analyst", "operator", "other_office", "worker", "viewer"];
    // (method, path, body, expectations in the order of `roles`)
    let read = [Admit, Admit, Admit, Admit, Refuse(403), Admit];
    let deploy = [Admit, Admit, Refuse(403), Refuse(403), Refuse(403), Refuse(403)];
    let admin_only = [Admit, Refuse(403), Refuse(403), Refuse(403), Refuse(403), Refuse(403)];
    let task_read = [Admit, Admit, Admit, Refuse(404), Refuse(403), Admit];
    let task_work = [Admit, Refuse(403), Admit, Refuse(404), Refuse(403), Refuse(403)];
    let external = [Admit, Refuse(403), Refuse(403), Refuse(403), Admit, Refuse(403)];
    let table: Vec<(Method, String, Option<Value>, [Expect; 6])> = vec![
        (Method::GET, "/api/v1/workflows".into(), None, read),
        (Method::POST, "/api/v1/workflows".into(), Some(json!({"source": REVIEW})), deploy),
        (Method::POST, "/api/v1/workflows/validate".into(), Some(json!({"source": REVIEW})), deploy),
        (Method::GET, "/api/v1/workflows/api-review/versions/1".into(), None, read),
        (Method::GET, "/api/v1/workflows/api-review/versions/1/diagram.svg".into(), None, read),
        (Method::GET, "/api/v1/instances".into(), None, read),
        // A case is outside the office scope of an operator of another office: 404, as unknown.
        (Method::GET, format!("/api/v1/instances/{id}"), None, task_read),
        (Method::GET, format!("/api/v1/instances/{id}/history"), None, task_read),
        (
            Method::POST,
            "/api/v1/instances".into(),
            Some(json!({"workflow": "api-review", "input": {"cf": "X", "office": "RM1"}, "request_id": "r"})),
            admin_only,
        ),
        (Method::POST, format!("/api/v1/instances/{id}/retry"), Some(json!({})), admin_only),
        (Method::POST, "/api/v1/messages".into(), Some(json!({"name": "nobody-waits", "key": "k", "payload": {}})), admin_only),
        (Method::GET, "/api/v1/tasks".into(), None, read),
        (Method::GET, format!("/api/v1/tasks/{task}"), None, task_read),
        (Method::POST, format!("/api/v1/tasks/{task}/unclaim"), Some(json!({})), task_work),
        (Method::POST, format!("/api/v1/tasks/{task}/claim"), Some(json!({})), task_work),
        (Method::GET, format!("/api/v1/tasks/{task}/comments"), None, task_read),
        (Method::POST, format!("/api/v1/tasks/{task}/comments"), Some(json!({"text": "seen"})), task_work),
        (Method::POST, "/api/v1/external-tasks/fetch-and-lock".into(), Some(json!({"worker": "w", "topic": "t"})), external),
    ];
    for (method, path, body, expected) in &table {
        // No token, a malformed one and an unknown one: 401 everywhere.
        for who in [None, Some("Basic abc"), Some("prt_unknown")] {
            let (status, problem) = match who {
                Some("Basic abc") => {
                    let r = app
                        .http
                        .request(method.clone(), format!("http://{}{path}", app.addr))
                        .header("authorization", "Basic abc")
                        .send()
                        .await
                        .unwrap();
                    (r.status(), r.json::<Value>().await.unwrap())
                }
                _ => app.call(who, method.clone(), path, body.clone()).await,
            };
            assert_eq!(
                (status, problem["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
                "{method} {path} as {who:?}"
            );
        }
        for (role, expect) in roles.iter().zip(expected) {
            let (status, problem) = app.call(Some(role), method.clone(), path, body.clone()).await;
            match expect {
                Admit => {
                    let refused =
                        matches!(status.as_u16(), 401 | 403) || (status == StatusCode::NOT_FOUND && problem["code"] == "not_found");
                    assert!(!refused, "{method} {path} as {role}: {status} {problem}");
                }
                Refuse(code) => {
                    assert_eq!(status.as_u16(), *code, "{method} {path} as {role}: {problem}");
                    let expected_code = match code {
                        403 => "forbidden",
                        _ => "not_found",
                    };
                    assert_eq!(problem["code"], expected_code, "{method} {path} as {role}");
                }
            }
        }
    }
    // Operators of another office cannot complete either (and learn nothing).
    let (status, _) = app.post("other_office", &format!("/api/v1/tasks/{task}/complete"), json!({"outcome": "approve", "form": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post("viewer", &format!("/api/v1/tasks/{task}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("viewer", &format!("/api/v1/instances/{id}/cancel"), json!({"reason": "no"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("admin", &format!("/api/v1/instances/{id}/cancel"), json!({"reason": "end of test"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Health checks need no token.
    assert_eq!(app.call(None, Method::GET, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(app.call(None, Method::GET, "/readyz", None).await.0, StatusCode::OK);
});

both_backends!(tokens_are_created_listed_and_revoked_with_the_cli, |backend| async move {
    let Some(app) = spawn_app(backend).await else { return };
    let pratica = |args: &[&str]| {
        let out = std::process::Command::new(pratica_bin()).args(args).args(["--db", &app.database]).output().expect("pratica runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, token, err) = pratica(&["token", "create", "--name", "ci-bot", "--role", "viewer"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("prt_"), "{token}");
    let (ok, _, err) = pratica(&["token", "create", "--name", "ci-bot", "--role", "viewer"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = pratica(&["token", "create", "--name", "op", "--role", "operator"]);
    assert!(!ok && err.contains("office"), "{err}");
    let (ok, _, err) = pratica(&["token", "create", "--name", "x", "--role", "root"]);
    assert!(!ok && err.contains("unknown role"), "{err}");

    let (ok, list, err) = pratica(&["token", "list"]);
    assert!(ok, "{err}");
    assert!(list.contains("ci-bot") && list.contains("viewer"), "{list}");
    assert!(!list.contains(&token) && !list.contains("prt_"), "tokens are never listed: {list}");

    let auth = |t: &str| app.http.get(format!("http://{}/api/v1/workflows", app.addr)).bearer_auth(t.to_string()).send();
    assert_eq!(auth(&token).await.unwrap().status(), StatusCode::OK);
    let (ok, _, err) = pratica(&["token", "revoke", "ci-bot"]);
    assert!(ok, "{err}");
    let refused = auth(&token).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "unauthenticated");
    let (ok, _, err) = pratica(&["token", "revoke", "ci-bot"]);
    assert!(!ok && err.contains("no active token"), "{err}");
    let (_, list, _) = pratica(&["token", "list"]);
    let line = list.lines().find(|l| l.starts_with("ci-bot")).unwrap();
    assert!(!line.trim_end().ends_with('-'), "the revocation time is listed: {line}");

    // Console users: the password comes from standard input and is stored as argon2id.
    let mut child = std::process::Command::new(pratica_bin())
        .args(["user", "create", "anna", "--role", "operator", "--office", "RM1", "--task-role", "naspi-operator"])
        .args(["--task-role", "payout-officer", "--password-stdin", "--db", &app.database])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"a long enough secret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = Store::connect(&app.database).await.unwrap();
    let user = store.user("anna").await.unwrap().expect("the user exists");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(pratica_api::http::auth::verify_password("a long enough secret", &user.password_hash));
    assert!(!pratica_api::http::auth::verify_password("wrong", &user.password_hash));
    assert_eq!(serde_json::from_str::<Value>(&user.task_roles).unwrap(), json!(["naspi-operator", "payout-officer"]));

    // Tokens carry task roles too, listed with them; a malformed one is refused.
    let (ok, _, err) =
        pratica(&["token", "create", "--name", "op-rm1", "--role", "operator", "--office", "RM1", "--task-role", "naspi-operator"]);
    assert!(ok, "{err}");
    let (_, list, _) = pratica(&["token", "list"]);
    let line = list.lines().find(|l| l.starts_with("op-rm1")).unwrap();
    assert!(line.contains("naspi-operator"), "{line}");
    let (ok, _, err) = pratica(&["token", "create", "--name", "op2", "--role", "operator", "--office", "RM1", "--task-role", "bad role"]);
    assert!(!ok && err.contains("task role"), "{err}");
});

const DESK: &str = r#"workflow: api-desk
version: 1
title: Desk
steps:
  - id: check
    human:
      title: Check the documents
      assign: { role: naspi-operator, office: RM1 }
  - id: done
    end: { output: { by: "${ .steps.check.output.completed_by }" } }
"#;

both_backends!(tasks_are_claimed_commented_and_delegated_over_the_api, |backend| async move {
    let Some(app) = spawn_app(backend).await else { return };
    assert_eq!(app.deploy_yaml("admin", DESK).await.0, StatusCode::CREATED);
    let (_, started) = app.post("admin", "/api/v1/instances", json!({"workflow": "api-desk", "input": {}})).await;
    let id = started["id"].as_str().unwrap().to_string();
    let task = app.wait_for_task("operator", &id, "check").await;
    let task_id = task["id"].as_str().unwrap().to_string();
    let path = |action: &str| format!("/api/v1/tasks/{task_id}/{action}");

    // An operator of the office without the task role neither sees nor works it.
    let (_, listed) = app.get("other_role", "/api/v1/tasks").await;
    assert_eq!(listed, json!([]));
    assert_eq!(app.get("other_role", &format!("/api/v1/tasks/{task_id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post("other_role", &path("claim"), json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post("other_role", &path("comments"), json!({"text": "hi"})).await.0, StatusCode::NOT_FOUND);

    // Claim, comment, read the comments.
    let (status, claimed) = app.post("operator", &path("claim"), json!({})).await;
    assert_eq!((status, claimed["assignee"].as_str()), (StatusCode::OK, Some("operator")), "{claimed}");
    let (status, body) = app.post("operator", &path("comments"), json!({"text": "Waiting for the employer's letter"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.post("operator", &path("comments"), json!({"text": ""})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")), "{body}");
    let (status, body) = app.post("operator", &path("comments"), json!({"txt": "typo"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, comments) = app.get("viewer", &path("comments")).await;
    assert_eq!(status, StatusCode::OK, "{comments}");
    assert_eq!(comments.as_array().unwrap().len(), 1, "{comments}");
    assert_eq!(
        (comments[0]["actor"].as_str(), comments[0]["text"].as_str()),
        (Some("operator"), Some("Waiting for the employer's letter"))
    );
    assert!(comments[0]["at"].as_str().unwrap().ends_with('Z'));

    // Delegation: not by someone who does not hold it, not to another office or an unknown user.
    let (status, body) = app.post("operator2", &path("delegate"), json!({"to": "operator2"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("task_claimed")), "{body}");
    for to in ["other_office", "nobody", "viewer"] {
        let (status, body) = app.post("operator", &path("delegate"), json!({"to": to})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_delegation")), "{to}: {body}");
    }
    let (status, delegated) = app.post("operator", &path("delegate"), json!({"to": "operator2"})).await;
    assert_eq!((status, delegated["assignee"].as_str()), (StatusCode::OK, Some("operator2")), "{delegated}");
    assert_eq!((delegated["delegated_by"].as_str(), &delegated["escalated"]), (Some("operator"), &Value::Null), "{delegated}");

    // The previous holder cannot complete it; the delegate can.
    let (status, body) = app.post("operator", &path("complete"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("task_claimed")), "{body}");
    assert_eq!(app.post("operator2", &path("complete"), json!({})).await.0, StatusCode::NO_CONTENT);
    let done = app.wait_for_status(&id, "completed").await;
    assert_eq!(done["output"], json!({"by": "operator2"}));
    let (status, body) = app.post("operator2", &path("unclaim"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("task_closed")), "{body}");

    // Every action in the history, with its actor.
    let (_, history) = app.get("viewer", &format!("/api/v1/instances/{id}/history")).await;
    let actions: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("task.") && k != "task.created"))
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap_or("-").to_string()))
        .collect();
    let expected: Vec<(String, String)> =
        [("task.claimed", "operator"), ("task.commented", "operator"), ("task.delegated", "operator"), ("task.completed", "operator2")]
            .iter()
            .map(|(k, a)| (k.to_string(), a.to_string()))
            .collect();
    assert_eq!(actions, expected);
});
