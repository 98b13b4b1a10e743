//! External tasks over HTTP, end to end: an engine on a fresh database, the HTTP API on
//! 127.0.0.1:0 and the engine's worker loop in the background, worked by the example Python
//! worker (a real subprocess) and by plain reqwest calls. Lock expiry with real time and
//! short locks; retries and extensions with a manual clock.

use std::process::Stdio;
use std::time::Duration;

use pratica_api::http::auth::{Role, TokenAccess, create_token_with_access};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_engine::store::{InstanceRow, Store, TaskFilter};
use pratica_tests::app::{self as harness, Account, AppOptions, TestApp, Time};
use pratica_tests::backend::{Backend, ScratchDir, T0};
use pratica_tests::wait::eventually;
use pratica_tests::{both_backends, repo_path};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const TOPIC: &str = "documents.ocr";

/// The app of `spawn_app` with a `worker` API token (`ocr-workers`) its client sends with
/// every request.
struct App {
    app: TestApp,
    /// Sends [`App::token`].
    http: reqwest::Client,
    /// A `worker` API token.
    token: String,
}

impl std::ops::Deref for App {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn spawn_app(backend: Backend, time: Time) -> Option<App> {
    let app = harness::spawn_app(AppOptions::new(backend).clock(time).token(Account::new("ocr-workers", Role::Worker))).await?;
    let token = app.token("ocr-workers").to_string();
    let http = client_for(&token);
    Some(App { app, http, token })
}

/// A client that sends `token`.
fn client_for(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

impl App {
    fn tasks_url(&self, path: &str) -> String {
        self.url(&format!("/api/v1/external-tasks{path}"))
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.tasks_url(path)).json(&body).send().await.expect("the server answers")
    }

    /// Fetches tasks of [`TOPIC`]; waits up to 10 s for one unless `body` says otherwise
    /// (a started instance reaches its external step in the background worker loop).
    async fn fetch(&self, worker: &str, body: Value) -> Vec<Value> {
        let mut request = json!({"worker": worker, "topic": TOPIC, "wait_ms": 10_000});
        request.as_object_mut().unwrap().extend(body.as_object().cloned().unwrap_or_default());
        let response = self.post("/fetch-and-lock", request).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Vec<Value>>().await.unwrap()
    }

    async fn deploy(&self, source: &str) {
        if let Err(e) = self.engine.deploy(source).await {
            panic!("deploy: {e}: {e:?}");
        }
    }

    async fn start(&self, workflow: &str, input: Value) -> String {
        self.engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id
    }

    /// Polls the instance until it has `status` (the worker loop runs in the background).
    async fn wait_for_status(&self, id: &str, status: &str) -> InstanceRow {
        let row = eventually(Duration::from_secs(15), async || {
            let row = self.engine.store().instance(id).await.unwrap();
            if row.status == status { Ok(row) } else { Err(row) }
        });
        row.await.unwrap_or_else(|row| panic!("instance never became {status}: {row:?}"))
    }

    /// A client that sends `token`.
    fn client_for(&self, token: &str) -> reqwest::Client {
        client_for(token)
    }

    /// A new API token of `role`, limited to `topics` (none: any).
    async fn token(&self, name: &str, role: Role, topics: &[&str]) -> String {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let access = TokenAccess { topics: &topics, ..TokenAccess::default() };
        create_token_with_access(self.engine.store(), name, role, access, T0).await.unwrap()
    }

    fn advance(&self, by: Duration) {
        self.clock.as_ref().expect("a manual-clock app").advance(by);
        self.engine.wake();
    }

    fn python_worker(&self, args: &[&str]) -> Command {
        let mut command = Command::new("python3");
        command
            .arg(repo_path("examples/external-worker/worker.py"))
            .args(["--url", &self.url(""), "--token", &self.token, "--topic", TOPIC, "--wait-ms", "5000"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// What a Python worker printed: one JSON report per task on stdout, logs on stderr.
struct WorkerRun {
    reports: Vec<Value>,
    stderr: String,
}

async fn finish_worker(child: tokio::process::Child, stderr_so_far: String) -> WorkerRun {
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("the worker exits in time").unwrap();
    let stderr = stderr_so_far + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "worker failed ({}):\n{stderr}", out.status);
    let reports = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON report line")).collect();
    WorkerRun { reports, stderr }
}

async fn run_python_worker(app: &App, args: &[&str]) -> WorkerRun {
    let child = app.python_worker(args).spawn().expect("python3 runs");
    finish_worker(child, String::new()).await
}

fn document_intake() -> String {
    std::fs::read_to_string(repo_path("examples/external-worker/document-intake.yaml")).unwrap()
}

fn naspi_document() -> Value {
    json!({"document_id": "PROT-2026-000123", "filename": "domanda-naspi-rossi.pdf", "size_bytes": 184_320})
}

fn history_kinds(rows: &[pratica_engine::store::HistoryRow]) -> Vec<String> {
    rows.iter().map(|r| format!("{}{}", r.kind, r.step.as_deref().map(|s| format!(":{s}")).unwrap_or_default())).collect()
}

both_backends!(python_worker_completes_the_task_and_the_instance_goes_on_with_its_output, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Real).await else { return };
    app.deploy(&document_intake()).await;
    let id = app.start("document-intake", naspi_document()).await;
    let run = run_python_worker(&app, &["--once", "--worker", "ocr-1"]).await;
    assert_eq!(run.reports.len(), 1, "{}", run.stderr);
    assert_eq!(run.reports[0]["result"], "completed", "{}", run.stderr);
    assert_eq!(run.reports[0]["instance"], json!(id));
    assert_eq!(run.reports[0]["idempotency_key"], json!(format!("{id}:ocr:1")));
    let row = app.wait_for_status(&id, "completed").await;
    assert_eq!(output_of(&row), json!({"route": "naspi-office", "pages": 4, "read_by": "ocr-1"}));
    let history = app.engine.store().history(&id).await.unwrap();
    let ocr = history.iter().find(|h| h.kind == "step.completed" && h.step.as_deref() == Some("ocr")).expect("ocr completed");
    let data: Value = serde_json::from_str(&ocr.data).unwrap();
    assert_eq!(
        data["output"],
        json!({"document_id": "PROT-2026-000123", "pages": 4, "classification": "naspi-application", "language": "it", "processed_by": "ocr-1"})
    );
});

both_backends!(a_worker_that_outlives_its_lock_is_refused_and_a_second_worker_takes_over, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Real).await else { return };
    app.deploy(&document_intake()).await;
    let id = app.start("document-intake", json!({"document_id": "PROT-7", "filename": "memo.txt", "size_bytes": 10})).await;

    // The slow worker locks the task for 400 ms but holds it for 2 s.
    let mut slow = app.python_worker(&["--once", "--worker", "slow", "--lock-ms", "400", "--hold-ms", "2000"]).spawn().unwrap();
    let mut slow_err = BufReader::new(slow.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("locked task") {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(15), slow_err.read_line(&mut line))
            .await
            .expect("the slow worker locks a task")
            .unwrap();
        assert!(n > 0, "the slow worker stopped before locking a task:\n{seen}");
        seen.push_str(&line);
    }
    // Only now does the second worker ask: it long-polls until the first lock expires.
    let fast = run_python_worker(&app, &["--once", "--worker", "fast"]).await;
    let mut rest = String::new();
    slow_err.read_to_string(&mut rest).await.unwrap();
    let slow = finish_worker(slow, seen + &rest).await;

    assert_eq!(slow.reports.len(), 1, "{}", slow.stderr);
    assert_eq!(slow.reports[0]["result"], "lock_lost", "{}", slow.stderr);
    assert!(slow.stderr.contains("lock lost"), "{}", slow.stderr);
    assert_eq!(fast.reports[0]["result"], "completed", "{}", fast.stderr);
    // The same task and the same idempotency key: lock expiry is not a new attempt.
    assert_eq!(fast.reports[0]["task"], slow.reports[0]["task"]);
    assert_eq!(fast.reports[0]["idempotency_key"], slow.reports[0]["idempotency_key"]);

    let row = app.wait_for_status(&id, "completed").await;
    assert_eq!(output_of(&row), json!({"route": "archive", "classification": "other", "pages": 1, "read_by": "fast"}));
    let history = app.engine.store().history(&id).await.unwrap();
    let ocr_results = history.iter().filter(|h| h.step.as_deref() == Some("ocr") && h.kind.starts_with("step.")).count();
    assert_eq!(ocr_results, 1, "{:?}", history_kinds(&history));
});

both_backends!(python_worker_business_error_is_caught_by_the_workflow, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Real).await else { return };
    app.deploy(&document_intake()).await;
    let id = app.start("document-intake", naspi_document()).await;
    let run = run_python_worker(&app, &["--once", "--worker", "ocr-1", "--fail-with", "document.unreadable"]).await;
    assert_eq!(run.reports[0]["result"], "failed", "{}", run.stderr);
    // The catch logs, remembers the code and sends the document to a person.
    let task = eventually(Duration::from_secs(15), async || {
        let filter = TaskFilter { instance_id: Some(id.clone()), ..Default::default() };
        app.engine.store().tasks(&filter).await.unwrap().into_iter().next().ok_or(())
    })
    .await
    .unwrap_or_else(|()| panic!("no human task was created"));
    assert_eq!(task.step_id, "manual_reading");
    assert!(task.description.as_deref().unwrap_or_default().contains("document.unreadable"), "{task:?}");
    let kinds = history_kinds(&app.engine.store().history(&id).await.unwrap());
    assert!(kinds.contains(&"step.completed:note_unreadable".to_string()), "{kinds:?}");
});

const CATCHING: &str = r#"workflow: ocr-with-fallback
version: 1
title: OCR with a fallback
steps:
  - id: ocr
    call: external
    topic: documents.ocr
    with: { document_id: "${ .input.document_id }" }
    retry: { attempts: 3, backoff: constant, delay: 1s }
    catch:
      - error: document.*
        steps:
          - id: fallback
            set: { reason: "${ .error.code }", message: "${ .error.message }" }
        goto: unreadable
  - id: read
    end: { output: { read: true, pages: "${ .steps.ocr.output.pages }" } }
  - id: unreadable
    end: { output: { read: false, reason: "${ .vars.reason }", message: "${ .vars.message }" } }
"#;

both_backends!(fail_over_http_business_errors_are_caught_and_retryable_ones_are_retried, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Manual).await else { return };
    app.deploy(CATCHING).await;

    // A business error: caught by `document.*`.
    let unreadable = app.start("ocr-with-fallback", json!({"document_id": "D-1"})).await;
    let task = app.fetch("w1", json!({})).await.remove(0);
    assert_eq!(
        (task["instance_id"].as_str(), task["step_id"].as_str(), task["attempt"].as_u64()),
        (Some(&*unreadable), Some("ocr"), Some(1))
    );
    assert_eq!(task["input"], json!({"document_id": "D-1"}));
    assert_eq!(task["lock_expires_at"], json!(T0 + 60_000), "the default lock is 60 s");
    assert_eq!(task["lock_expires"], "2026-03-01T09:01:00.000Z");
    let failed = app
        .post(
            &format!("/{}/fail", task["id"]),
            json!({"worker": "w1", "lock": task["lock"], "code": "document.unreadable", "message": "scan too dark"}),
        )
        .await;
    assert_eq!(failed.status(), StatusCode::NO_CONTENT);
    let row = app.wait_for_status(&unreadable, "completed").await;
    assert_eq!(output_of(&row), json!({"read": false, "reason": "document.unreadable", "message": "scan too dark"}));

    // A retryable error: attempt 2 comes after retry_after_ms, with the same idempotency key.
    let flaky = app.start("ocr-with-fallback", json!({"document_id": "D-2"})).await;
    let first = app.fetch("w1", json!({})).await.remove(0);
    let body = json!({"worker": "w1", "lock": first["lock"], "code": "ocr.busy", "message": "GPU queue full", "retryable": true, "retry_after_ms": 5000});
    assert_eq!(app.post(&format!("/{}/fail", first["id"]), body).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.fetch("w1", json!({"wait_ms": 0})).await, Vec::<Value>::new(), "not before retry_after_ms");
    app.advance(Duration::from_millis(5_000));
    let second = app.fetch("w2", json!({})).await.remove(0);
    assert_eq!(second["attempt"], 2);
    assert_eq!(second["idempotency_key"], first["idempotency_key"]);
    let done =
        app.post(&format!("/{}/complete", second["id"]), json!({"worker": "w2", "lock": second["lock"], "output": {"pages": 3}})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let row = app.wait_for_status(&flaky, "completed").await;
    assert_eq!(output_of(&row), json!({"read": true, "pages": 3}));
});

both_backends!(extend_lock_keeps_the_task_and_results_need_the_current_lock, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Manual).await else { return };
    app.deploy(CATCHING).await;
    let id = app.start("ocr-with-fallback", json!({"document_id": "D-3"})).await;
    let task = app.fetch("w1", json!({"lock_ms": 1000})).await.remove(0);
    assert_eq!(task["lock_expires_at"], json!(T0 + 1000));
    let (task_id, lock) = (task["id"].clone(), task["lock"].clone());

    // Only the holder of the lock may extend it.
    let other = app.post(&format!("/{task_id}/extend-lock"), json!({"worker": "w2", "lock": lock, "lock_ms": 10_000})).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let wrong_lock = app.post(&format!("/{task_id}/extend-lock"), json!({"worker": "w1", "lock": "0".repeat(32)})).await;
    assert_eq!(wrong_lock.status(), StatusCode::CONFLICT);

    app.advance(Duration::from_millis(500));
    let extended = app.post(&format!("/{task_id}/extend-lock"), json!({"worker": "w1", "lock": lock, "lock_ms": 10_000})).await;
    assert_eq!(extended.status(), StatusCode::OK);
    let body: Value = extended.json().await.unwrap();
    assert_eq!(body, json!({"lock_expires_at": T0 + 10_500, "lock_expires": "2026-03-01T09:00:10.500Z"}));

    // Past the first expiry, the task is still ours: nobody else gets it.
    app.advance(Duration::from_millis(5_000));
    assert_eq!(app.fetch("w2", json!({"wait_ms": 0})).await, Vec::<Value>::new());
    let done = app.post(&format!("/{task_id}/complete"), json!({"worker": "w1", "lock": lock, "output": {"pages": 1}})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(output_of(&app.wait_for_status(&id, "completed").await), json!({"read": true, "pages": 1}));

    // A finished task refuses everything, as a lost lock.
    let again = app.post(&format!("/{task_id}/complete"), json!({"worker": "w1", "lock": lock, "output": {}})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let problem: Value = again.json().await.unwrap();
    assert_eq!((problem["status"].as_u64(), problem["code"].as_str()), (Some(409), Some("lock_lost")));
    let extend = app.post(&format!("/{task_id}/extend-lock"), json!({"worker": "w1", "lock": lock})).await;
    assert_eq!(extend.status(), StatusCode::CONFLICT);
});

both_backends!(an_expired_lock_refuses_the_result_and_frees_the_task, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Manual).await else { return };
    app.deploy(CATCHING).await;
    let id = app.start("ocr-with-fallback", json!({"document_id": "D-4"})).await;
    let first = app.fetch("w1", json!({"lock_ms": 1000, "max_tasks": 10})).await;
    assert_eq!(first.len(), 1);
    app.advance(Duration::from_millis(1_001));
    let late =
        app.post(&format!("/{}/complete", first[0]["id"]), json!({"worker": "w1", "lock": first[0]["lock"], "output": {"pages": 9}})).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert_eq!(late.headers()["content-type"], "application/problem+json");
    let second = app.fetch("w2", json!({})).await.remove(0);
    assert_eq!(second["id"], first[0]["id"]);
    assert_ne!(second["lock"], first[0]["lock"], "a new lock token fences the first worker out");
    let done =
        app.post(&format!("/{}/complete", second["id"]), json!({"worker": "w2", "lock": second["lock"], "output": {"pages": 2}})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(output_of(&app.wait_for_status(&id, "completed").await), json!({"read": true, "pages": 2}));
});

/// A problem document's status and code.
async fn problem_code(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/problem+json", "status {status}");
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_string(), body["detail"].as_str().unwrap_or_default().to_string())
}

both_backends!(another_worker_token_cannot_complete_fail_or_extend_a_lock_it_did_not_fetch, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Manual).await else { return };
    app.deploy(CATCHING).await;
    let id = app.start("ocr-with-fallback", json!({"document_id": "D-6"})).await;
    let task = app.fetch("w1", json!({})).await.remove(0);
    let lock = task["lock"].as_str().expect("the lock is text").to_string();
    assert!(lock.len() == 32 && lock.chars().all(|c| c.is_ascii_hexdigit()), "128 random bits, hex: {lock}");

    // Worker B has a valid worker token, the task id, the lock, and claims to be `w1`.
    let intruder = app.client_for(&app.token("intruders", Role::Worker, &[]).await);
    let forged = |path: &str, body: Value| intruder.post(app.tasks_url(&format!("/{}/{path}", task["id"]))).json(&body).send();
    let attempts = [
        ("complete", json!({"worker": "w1", "lock": lock, "output": {"pages": 666}})),
        ("fail", json!({"worker": "w1", "lock": lock, "code": "document.unreadable"})),
        ("extend-lock", json!({"worker": "w1", "lock": lock, "lock_ms": 3_600_000})),
    ];
    for (path, body) in attempts {
        let (status, code, detail) = problem_code(forged(path, body).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (409, "lock_not_owned"), "{path}: {detail}");
        assert!(detail.contains("another API token"), "{detail}");
    }
    // Nothing the intruder sent took effect: the owner still holds the lock and completes.
    let done = app.post(&format!("/{}/complete", task["id"]), json!({"worker": "w1", "lock": lock, "output": {"pages": 2}})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(output_of(&app.wait_for_status(&id, "completed").await), json!({"read": true, "pages": 2}));

    // The history names the token that reported the result, not just the declared name.
    let viewer = app.client_for(&app.token("auditor", Role::Viewer, &[]).await);
    let history: Vec<Value> = viewer.get(app.url(&format!("/api/v1/instances/{id}/history"))).send().await.unwrap().json().await.unwrap();
    let reports: Vec<&Value> = history.iter().filter(|h| h["kind"].as_str().is_some_and(|k| k.starts_with("external."))).collect();
    assert_eq!(reports.len(), 1, "{history:?}");
    assert_eq!((reports[0]["kind"].as_str(), reports[0]["step"].as_str()), (Some("external.completed"), Some("ocr")));
    assert_eq!(reports[0]["actor"], "ocr-workers");
    assert_eq!(reports[0]["data"], json!({"task": task["id"], "topic": TOPIC, "attempt": 1, "token": "ocr-workers", "worker": "w1"}));
});

both_backends!(a_topic_limited_token_fetches_and_completes_only_its_topics, |backend| async move {
    let Some(app) = spawn_app(backend, Time::Manual).await else { return };
    app.deploy(CATCHING).await;
    let id = app.start("ocr-with-fallback", json!({"document_id": "D-7"})).await;
    let scorer = app.client_for(&app.token("scorers", Role::Worker, &["naspi.scoring", "naspi.ranking"]).await);
    let fetch =
        |topic: &str| scorer.post(app.tasks_url("/fetch-and-lock")).json(&json!({"worker": "s1", "topic": topic, "wait_ms": 0})).send();
    let (status, code, detail) = problem_code(fetch(TOPIC).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "topic_forbidden"), "{detail}");
    assert!(detail.contains("`naspi.scoring`, `naspi.ranking`") && detail.contains(TOPIC), "{detail}");
    let allowed = fetch("naspi.scoring").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.json::<Vec<Value>>().await.unwrap(), Vec::<Value>::new());

    // The OCR task stays for the token allowed its topic; the scorer cannot report on it.
    let task = app.fetch("w1", json!({})).await.remove(0);
    let body = json!({"worker": "w1", "lock": task["lock"], "output": {}});
    let refused = scorer.post(app.tasks_url(&format!("/{}/complete", task["id"]))).json(&body).send().await.unwrap();
    assert_eq!(problem_code(refused).await.1, "lock_not_owned");
    let done = app.post(&format!("/{}/complete", task["id"]), json!({"worker": "w1", "lock": task["lock"], "output": {"pages": 7}})).await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(output_of(&app.wait_for_status(&id, "completed").await), json!({"read": true, "pages": 7}));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_as_soon_as_a_task_is_due_and_ends_at_shutdown() {
    let Some(app) = spawn_app(Backend::Sqlite, Time::Manual).await else { return };
    app.deploy(CATCHING).await;
    let started = tokio::time::Instant::now();
    let poll = {
        let (http, url) = (app.http.clone(), app.tasks_url("/fetch-and-lock"));
        tokio::spawn(async move {
            let body = json!({"worker": "w1", "topic": TOPIC, "wait_ms": 30_000});
            http.post(url).json(&body).send().await.unwrap().json::<Vec<Value>>().await.unwrap()
        })
    };
    app.start("ocr-with-fallback", json!({"document_id": "D-5"})).await;
    let tasks = tokio::time::timeout(Duration::from_secs(10), poll).await.expect("the long poll answers").unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Shutdown: a waiting long poll answers an empty list at once.
    let poll = {
        let (http, url) = (app.http.clone(), app.tasks_url("/fetch-and-lock"));
        tokio::spawn(async move {
            let body = json!({"worker": "w1", "topic": "nothing.here", "wait_ms": 60_000});
            http.post(url).json(&body).send().await.unwrap().json::<Vec<Value>>().await.unwrap()
        })
    };
    // Give the request time to reach the server before stopping it; if it arrives after
    // the stop it is refused, which the unwraps above would report. Real time: the request
    // is in flight on a socket, and the server offers nothing to wait on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.stop();
    let tasks = tokio::time::timeout(Duration::from_secs(10), poll).await.expect("shutdown ends the long poll").unwrap();
    assert_eq!(tasks, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problem_documents_with_stable_codes() {
    let Some(app) = spawn_app(Backend::Sqlite, Time::Manual).await else { return };
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    async fn problem(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        assert_eq!(response.headers()["content-type"], "application/problem+json", "status {status}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], json!(status));
        assert_eq!(body["type"], json!(format!("urn:pratica:problem:{}", body["code"].as_str().unwrap())));
        assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
        (status, body)
    }
    let raw = |path: &str, content_type: &str, body: &str| {
        app.http.post(app.tasks_url(path)).header("content-type", content_type).body(body.to_string()).send()
    };

    // (path, body, status, code, field)
    let cases: &[(&str, Value, u16, &str, Option<&str>)] = &[
        ("/fetch-and-lock", json!({"topic": TOPIC}), 422, "invalid_field", Some("worker")),
        ("/fetch-and-lock", json!({"worker": "w"}), 422, "invalid_field", Some("topic")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "max_tasks": 0}), 422, "invalid_field", Some("max_tasks")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "max_tasks": 101}), 422, "invalid_field", Some("max_tasks")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "max_tasks": "ten"}), 422, "invalid_field", Some("max_tasks")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "wait_ms": 60_001}), 422, "invalid_field", Some("wait_ms")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "lock_ms": 0}), 422, "invalid_field", Some("lock_ms")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "lock_ms": -5}), 422, "invalid_field", Some("lock_ms")),
        ("/fetch-and-lock", json!({"worker": " ", "topic": TOPIC}), 422, "invalid_field", Some("worker")),
        ("/fetch-and-lock", json!({"worker": "w", "topic": TOPIC, "max_task": 5}), 422, "invalid_field", Some("max_task")),
        ("/7/complete", json!({"worker": "w"}), 422, "invalid_field", Some("lock")),
        ("/7/complete", json!({"worker": "w", "lock": 1}), 422, "invalid_field", Some("lock")),
        ("/7/complete", json!({"worker": "w", "lock": ""}), 422, "invalid_field", Some("lock")),
        ("/7/fail", json!({"worker": "w", "lock": "l-1"}), 422, "invalid_field", Some("code")),
        ("/7/fail", json!({"worker": "w", "lock": "l-1", "code": "has space"}), 422, "invalid_field", Some("code")),
        ("/7/fail", json!({"worker": "w", "lock": "l-1", "code": "x", "retry_after_ms": -1}), 422, "invalid_field", Some("retry_after_ms")),
        ("/7/extend-lock", json!({"worker": "w", "lock": "l-1", "lock_ms": 0}), 422, "invalid_field", Some("lock_ms")),
        ("/7/complete", json!({"worker": "w", "lock": "l-1"}), 409, "lock_lost", None),
        ("/7/fail", json!({"worker": "w", "lock": "l-1", "code": "x"}), 409, "lock_lost", None),
        ("/7/extend-lock", json!({"worker": "w", "lock": "l-1"}), 409, "lock_lost", None),
        ("/seven/complete", json!({"worker": "w", "lock": "l-1"}), 404, "not_found", None),
    ];
    for (path, body, status, code, field) in cases {
        let (got, problem) = problem(app.post(path, body.clone()).await).await;
        assert_eq!((got, problem["code"].as_str()), (*status, Some(*code)), "{path} {body}: {problem}");
        assert_eq!(problem["field"].as_str(), *field, "{path} {body}: {problem}");
        if let Some(field) = field {
            assert!(problem["detail"].as_str().unwrap().contains(field), "the detail names the field: {problem}");
        }
    }

    let (status, body) = problem(raw("/fetch-and-lock", "application/json", r#"{"worker": "w", "#).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed_json")));
    let (status, body) = problem(raw("/fetch-and-lock", "text/plain", r#"{"worker": "w", "topic": "t"}"#).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (415, Some("unsupported_media_type")));
    let big = format!(r#"{{"worker": "w", "lock": "l-1", "output": "{}"}}"#, "x".repeat(1024 * 1024));
    let (status, body) = problem(raw("/7/complete", "application/json", &big).await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));
    let (status, body) = problem(app.http.get(app.tasks_url("/fetch-and-lock")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));
    let (status, body) = problem(app.http.get(app.url("/api/v1/nothing")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

/// `pratica serve --listen` as an operator runs it: the API and the workers in one process,
/// a case started by `pratica run` on the same database, worked by the Python worker, and a
/// clean stop on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pratica_serve_listen_runs_the_api_beside_the_workers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("serve.db").display());
    let mut server = Command::new(pratica_tests::pratica_bin())
        .current_dir(pratica_tests::repo_root())
        .args(["--log-format", "json", "serve", "--workflows", "examples/external-worker", "--listen", "127.0.0.1:0", "--db", &db])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pratica serve starts");
    let mut logs = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), logs.next_line()).await.expect("serve logs its address").unwrap();
        let line = line.expect("serve stopped before listening");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
        if entry["fields"]["message"] == "HTTP API listening" {
            break entry["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    let drained = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(line)) = logs.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!((health.status(), health.text().await.unwrap().as_str()), (StatusCode::OK, "ok"));

    let run = Command::new(pratica_tests::pratica_bin())
        .current_dir(pratica_tests::repo_root())
        .args([
            "run",
            "examples/external-worker/document-intake.yaml",
            "--input",
            "examples/external-worker/sample-document.json",
            "--db",
            &db,
        ])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success() && printed.contains("waiting"), "{printed}{}", String::from_utf8_lossy(&run.stderr));
    let id = printed.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();

    let token = Command::new(pratica_tests::pratica_bin())
        .args(["token", "create", "--name", "ocr-cli", "--role", "worker", "--db", &db])
        .output()
        .await
        .unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let worker = Command::new("python3")
        .arg(repo_path("examples/external-worker/worker.py"))
        .args(["--url", &format!("http://{addr}"), "--token", &token, "--once", "--worker", "ocr-cli", "--wait-ms", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let worked = finish_worker(worker, String::new()).await;
    assert_eq!(worked.reports[0]["instance"], json!(id), "{}", worked.stderr);
    assert_eq!(worked.reports[0]["result"], "completed", "{}", worked.stderr);

    let store = Store::connect(&db).await.unwrap();
    let row = eventually(Duration::from_secs(15), async || {
        let row = store.instance(&id).await.unwrap();
        if row.status == "completed" { Ok(row) } else { Err(row) }
    })
    .await
    .unwrap_or_else(|row| row);
    store.close().await;
    assert_eq!(output_of(&row), json!({"route": "naspi-office", "pages": 4, "read_by": "ocr-cli"}), "{row:?}");

    // SIGTERM stops both the API and the workers.
    let pid = server.id().expect("still running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait()).await.expect("serve stops on SIGTERM").unwrap();
    let log = drained.await.unwrap();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("\"stopped\""), "{log}");
}
