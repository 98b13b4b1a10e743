//! Observability: `/metrics` (Prometheus text, admin or viewer token) on a real server with
//! its worker loop: instance and connector counters with their labels, call durations,
//! batch sizes and the store gauges computed at scrape time. And `pratica --log-format json
//! serve` logs connector calls as JSON lines carrying the instance and the step.
//!
//! Counters are process-wide (one recorder per process, shared with the other tests), so
//! this test uses workflow and connector names no other test uses, and SQLite only.

use std::io::Read as _;
use std::time::Duration;

use pratica_api::http::auth::Role;
use pratica_engine::connector::Registry;
use pratica_example_connector::IbanConnector;
use pratica_tests::app::{Account, AppOptions, TestApp, spawn_app};
use pratica_tests::backend::{Backend, ScratchDir};
use pratica_tests::pratica_bin;
use pratica_tests::wait::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};

const VALID: &str = "IT60X0542811101000000123456";
/// Passes the mod-97 check, fails the CIN: a fatal `iban.invalid`.
const WRONG_CIN: &str = "IT40S0542811101000000123456";

const CHECK: &str = r#"workflow: metrics-check
version: 1
title: Metrics check
steps:
  - id: verify
    call: metrics-iban.check
    with: { iban: "${ .input.iban }", require_valid: true }
"#;

const REVIEW: &str = r#"workflow: metrics-review
version: 1
title: Metrics review
steps:
  - id: look
    human:
      title: Look
      assign: { role: naspi-operator, office: "${ .input.office }" }
"#;

/// The app of `spawn_app` (SQLite, the system clock, `metrics-iban` registered) and its
/// `admin`, `viewer` and `worker` tokens.
struct Server {
    app: TestApp,
    admin: String,
    viewer: String,
    worker: String,
}

impl std::ops::Deref for Server {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Server {
    async fn start() -> Server {
        let registry = Registry::builtin().with("metrics-iban", IbanConnector);
        let options = AppOptions::new(Backend::Sqlite)
            .registry(registry)
            .token(Account::new("admin", Role::Admin))
            .token(Account::new("viewer", Role::Viewer))
            .token(Account::new("worker", Role::Worker));
        let app = spawn_app(options).await.expect("SQLite is always available");
        let [admin, viewer, worker] = ["admin", "viewer", "worker"].map(|name| app.token(name).to_string());
        Server { app, admin, viewer, worker }
    }

    async fn deploy(&self, yaml: &str) {
        let response = self
            .http
            .post(format!("{}/api/v1/workflows", self.base))
            .bearer_auth(&self.admin)
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{:?}", response.text().await);
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.admin).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {:?}", response.text().await);
        let text = response.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn start_instance(&self, workflow: &str, input: Value) -> String {
        let started = self.post("/api/v1/instances", json!({"workflow": workflow, "input": input})).await;
        started["id"].as_str().expect("an instance id").to_string()
    }

    async fn wait_for_status(&self, id: &str, status: &str) {
        let became = eventually(Duration::from_secs(15), async || {
            let response = self.http.get(format!("{}/api/v1/instances/{id}", self.base)).bearer_auth(&self.admin).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            if body["status"] == status { Ok(()) } else { Err(body) }
        });
        became.await.unwrap_or_else(|body| panic!("{id} never became {status}: {body}"));
    }

    async fn scrape(&self, token: Option<&str>) -> (StatusCode, String) {
        let mut request = self.http.get(format!("{}/metrics", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

/// The value of the sample `name{labels}` (labels in the exporter's order), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_instances_calls_errors_and_backlog() {
    let server = Server::start().await;
    server.deploy(CHECK).await;
    server.deploy(REVIEW).await;

    let ok = server.start_instance("metrics-check", json!({"iban": VALID})).await;
    let bad = server.start_instance("metrics-check", json!({"iban": WRONG_CIN})).await;
    server.wait_for_status(&ok, "completed").await;
    server.wait_for_status(&bad, "failed").await;
    let waiting = server.start_instance("metrics-review", json!({"office": "MX1"})).await;
    let cancelled = server.start_instance("metrics-review", json!({"office": "MX1"})).await;
    server.start_instance("metrics-review", json!({"office": "MX2"})).await;
    server.wait_for_status(&waiting, "running").await;
    server.post(&format!("/api/v1/instances/{cancelled}/cancel"), json!({"reason": "test"})).await;
    server.wait_for_status(&cancelled, "cancelled").await;

    // A token is needed, of role admin or viewer.
    assert_eq!(server.scrape(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(server.scrape(Some(&server.worker)).await.0, StatusCode::FORBIDDEN);
    let (status, body) = server.scrape(Some(&server.viewer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The open tasks may appear a moment after the instances start: poll the gauge.
    let open_tasks = |body: &str| sample(body, r#"pratica_open_tasks{office="MX2"}"#) == Some(1.0);
    let body = if open_tasks(&body) {
        body
    } else {
        let scraped = eventually(Duration::from_secs(15), async || {
            let body = server.scrape(Some(&server.admin)).await.1;
            if open_tasks(&body) { Ok(body) } else { Err(body) }
        });
        scraped.await.unwrap_or_else(|body| panic!("{body}"))
    };

    let expect = |series: &str, value: f64| assert_eq!(sample(&body, series), Some(value), "{series} in:\n{body}");
    expect(r#"pratica_instances_started_total{workflow="metrics-check"}"#, 2.0);
    expect(r#"pratica_instances_started_total{workflow="metrics-review"}"#, 3.0);
    expect(r#"pratica_instances_finished_total{workflow="metrics-check",status="completed"}"#, 1.0);
    expect(r#"pratica_instances_finished_total{workflow="metrics-check",status="failed"}"#, 1.0);
    expect(r#"pratica_instances_finished_total{workflow="metrics-review",status="cancelled"}"#, 1.0);
    expect(r#"pratica_connector_errors_total{connector="metrics-iban",code="iban.invalid",retryable="false"}"#, 1.0);
    expect(r#"pratica_step_duration_seconds_count{workflow="metrics-check",step="verify",kind="metrics-iban"}"#, 2.0);
    assert!(sample(&body, r#"pratica_step_duration_seconds_sum{workflow="metrics-check",step="verify",kind="metrics-iban"}"#).is_some());
    assert!(sample(&body, "pratica_worker_batch_size_count").is_some_and(|n| n >= 1.0), "{body}");
    // Scrape-time gauges from this server's store: nothing due (the worker keeps up), two
    // tasks waiting in MX1 (one cancelled), one in MX2.
    expect("pratica_jobs_due", 0.0);
    expect("pratica_oldest_due_job_age_seconds", 0.0);
    expect(r#"pratica_open_tasks{office="MX1"}"#, 1.0);
    expect(r#"pratica_open_tasks{office="MX2"}"#, 1.0);
    assert!(body.contains("# TYPE pratica_step_duration_seconds histogram"), "{body}");
    assert!(body.contains("# TYPE pratica_open_tasks gauge"), "{body}");
}

/// `pratica --log-format json serve` writes JSON lines; a connector call's line carries the
/// instance and the step as fields.
#[test]
fn json_logs_carry_the_instance_and_the_step() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("logs.db").display());
    let workflows = scratch.0.join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("noop.yaml"), "workflow: log-noop\nversion: 1\ntitle: Noop\nsteps:\n  - id: touch\n    call: noop\n")
        .unwrap();
    let token = std::process::Command::new(pratica_bin())
        .args(["token", "create", "--name", "admin", "--role", "admin", "--db", &db])
        .output()
        .expect("pratica runs");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(pratica_bin())
        .args(["--log-format", "json", "serve", "--listen", &listen, "--db", &db, "--workflows"])
        .arg(&workflows)
        .env("RUST_LOG", "pratica_engine=trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pratica serve starts");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = runtime.block_on(async {
        let http = reqwest::Client::new();
        // The server is a real process: poll until it answers, then until the instance ends.
        let id = eventually(Duration::from_secs(20), async || {
            let response = http
                .post(format!("http://{listen}/api/v1/instances"))
                .bearer_auth(&token)
                .json(&json!({"workflow": "log-noop", "input": {}}))
                .send()
                .await;
            match response {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await.unwrap();
                    Ok(body["id"].as_str().unwrap().to_string())
                }
                _ => Err(()),
            }
        })
        .await
        .ok()?;
        let _ = eventually(Duration::from_secs(20), async || {
            let response = http.get(format!("http://{listen}/api/v1/instances/{id}")).bearer_auth(&token).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            if body["status"] == "completed" { Ok(()) } else { Err(()) }
        })
        .await;
        Some(id)
    });
    let _ = child.kill();
    let _ = child.wait();
    let logs = reader.join().unwrap();
    let id = started.unwrap_or_else(|| panic!("the server never started the instance:\n{logs}"));
    let lines: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let call = lines
        .iter()
        .find(|l| l["fields"]["message"] == "connector call" && l["fields"]["instance"] == id.as_str())
        .unwrap_or_else(|| panic!("no connector call line for {id}:\n{logs}"));
    assert_eq!(call["fields"]["step"], "touch", "{call}");
    assert_eq!(call["fields"]["connector"], "noop", "{call}");
    assert_eq!(call["level"], "TRACE", "{call}");
}
