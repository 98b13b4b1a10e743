//! The security review of `pratica serve`, on both backends:
//! - webhooks: the timestamp is signed with the body, a stale or future timestamp is refused,
//!   the same signed request is accepted once (also when two engines on one database race
//!   for it), and a webhook may only use a secret declared for webhooks (`webhook-…`), at
//!   deployment and at delivery;
//! - the office scope of case data: instances, their history, lists, the case file and the
//!   instance page, across the role matrix (admin, analyst, operator of the office, operator
//!   of another office, operator without the task role, an operator a task is assigned to,
//!   viewer, worker), out-of-scope reads answering 404 exactly as unknown ids;
//! - console sign-in: throttling and temporary lockout per account and per address, the same
//!   answers (and similar timing) for unknown users and wrong passwords, failures logged as
//!   `warn` lines by a real `pratica serve`, and `next` parameters that are not console pages
//!   answered 400;
//! - unknown enum values in list filters answered `400 invalid_parameter`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use pratica_api::http::auth::{Role, create_token_with_task_roles, hash_password};
use pratica_api::http::{AppState, router};
use pratica_engine::connector::{Registry, Secrets};
use pratica_engine::runtime::{Engine, EngineConfig, EngineError, StartRequest};
use pratica_engine::store::{InstanceFilter, Store, TaskFilter, UserRow};
use pratica_engine::trigger::webhook::{DEFAULT_TOLERANCE, Delivery, WebhookError, sign};
use pratica_tests::app::{Account, AppOptions, start_engine};
use pratica_tests::backend::{Backend, ScratchDir, TestEngine, test_engine};
use pratica_tests::both_backends;
use serde_json::{Value, json};
use tower::ServiceExt;

// ---- requests through the router ----

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }

    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    /// The text of the login page's error summary.
    fn login_error(&self) -> String {
        let start = self.body.find("id=\"error-summary\"").unwrap_or_else(|| panic!("no error summary in {}", self.body));
        let rest = &self.body[start..];
        let p = rest.find("<p>").unwrap() + 3;
        rest[p..].split("</p>").next().unwrap().to_string()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Answer { status, headers, body: String::from_utf8_lossy(&body).to_string() }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn api(app: &Router, token: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    let request = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
    let request = match body {
        Some(b) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => request.body(Body::empty()),
    };
    send(app, request.unwrap()).await
}

// ---- webhooks ----

const HOOK_SECRET: &str = "s3cret-hook-value";
const CONNECTOR_CREDENTIAL: &str = "connector-credential-value";

const SIGNED: &str = r#"workflow: signed-intake
version: 1
title: Signed intake
triggers:
  - webhook: case-intake
    secret: webhook-intake
steps:
  - id: done
    end: {}
"#;

fn hook_secrets() -> Secrets {
    Secrets::from_values([
        ("webhook-intake".to_string(), HOOK_SECRET.to_string()),
        ("inps-token".to_string(), CONNECTOR_CREDENTIAL.to_string()),
    ])
}

async fn hook_engine(backend: Backend) -> Option<TestEngine> {
    let t = test_engine(backend, Registry::builtin().with_secrets(hook_secrets())).await?;
    t.engine.deploy(SIGNED).await.unwrap();
    Some(t)
}

/// `POST /hooks/{hook}` with `X-Pratica-Timestamp`, `X-Pratica-Signature` and an optional
/// `Idempotency-Key`.
async fn deliver(app: &Router, hook: &str, body: &str, timestamp: Option<String>, signature: Option<String>, key: Option<&str>) -> Answer {
    let mut request = Request::post(format!("/hooks/{hook}")).header(header::CONTENT_TYPE, "application/json");
    if let Some(ts) = timestamp {
        request = request.header("x-pratica-timestamp", ts);
    }
    if let Some(sig) = signature {
        request = request.header("x-pratica-signature", sig);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    send(app, request.body(Body::from(body.to_string())).unwrap()).await
}

async fn count_instances(engine: &Engine, workflow: &str) -> usize {
    engine.store().instances(&InstanceFilter { workflow: Some(workflow.into()), ..Default::default() }).await.unwrap().len()
}

both_backends!(signed_webhooks_are_accepted_once_and_only_while_fresh, |backend| async move {
    let Some(t) = hook_engine(backend).await else { return };
    let app = router(AppState::new(t.engine.clone()));
    let now = t.engine.now() / 1000;
    let body = r#"{"case": "C-1"}"#;
    let signed = |ts: i64, body: &str| (Some(ts.to_string()), Some(sign(HOOK_SECRET, ts, body.as_bytes())));

    let (ts, sig) = signed(now, body);
    let first = deliver(&app, "case-intake", body, ts.clone(), sig.clone(), Some("delivery-1")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.json()["created"], json!(true));
    let instance = first.json()["instance"].as_str().unwrap().to_string();

    // The captured request, replayed as is: refused, nothing started.
    let replay = deliver(&app, "case-intake", body, ts.clone(), sig.clone(), Some("delivery-1")).await;
    assert_eq!((replay.status, replay.code().as_str()), (StatusCode::CONFLICT, "webhook_replayed"), "{}", replay.body);
    assert_eq!(replay.headers[header::CONTENT_TYPE], "application/problem+json");
    let replay = deliver(&app, "case-intake", body, ts.clone(), sig.clone(), None).await;
    assert_eq!(replay.code(), "webhook_replayed", "without its key too");
    // The same signature in upper-case hex is the same request.
    let upper = sig.as_ref().map(|s| format!("sha256={}", s.trim_start_matches("sha256=").to_uppercase()));
    assert_eq!(deliver(&app, "case-intake", body, ts.clone(), upper, None).await.code(), "webhook_replayed");
    // A retry signed again (a new timestamp) with the same Idempotency-Key: the first instance.
    let (ts1, sig1) = signed(now + 1, body);
    let retry = deliver(&app, "case-intake", body, ts1, sig1, Some("delivery-1")).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.body);
    assert_eq!((retry.json()["instance"].as_str(), retry.json()["created"].clone()), (Some(instance.as_str()), json!(false)));
    // Without a key, every signed request starts one instance, once.
    let (ts2, sig2) = signed(now + 2, r#"{"case": "C-2"}"#);
    assert_eq!(deliver(&app, "case-intake", r#"{"case": "C-2"}"#, ts2.clone(), sig2.clone(), None).await.status, StatusCode::ACCEPTED);
    assert_eq!(deliver(&app, "case-intake", r#"{"case": "C-2"}"#, ts2, sig2, None).await.status, StatusCode::CONFLICT);

    // Older or newer than 5 minutes: expired (correctly signed, so not "invalid").
    for skew in [-301, 301, -86_400] {
        let (ts, sig) = signed(now + skew, body);
        let stale = deliver(&app, "case-intake", body, ts, sig, None).await;
        assert_eq!((stale.status, stale.code().as_str()), (StatusCode::UNAUTHORIZED, "signature_expired"), "{skew}: {}", stale.body);
        assert!(stale.headers.get(header::WWW_AUTHENTICATE).is_none(), "no bearer token would help");
    }
    let (ts, sig) = signed(now - 299, body);
    assert_eq!(deliver(&app, "case-intake", body, ts, sig, None).await.status, StatusCode::ACCEPTED, "within 5 minutes");
    // The timestamp is signed; the old body-only scheme and missing headers are invalid.
    let (_, sig) = signed(now, body);
    let body_only = openssl_hmac(HOOK_SECRET, body).map(|hex| format!("sha256={hex}"));
    for (ts, sig) in [
        (Some((now + 3).to_string()), sig.clone()),
        (Some(now.to_string()), body_only),
        (None, sig.clone()),
        (Some(now.to_string()), None),
        (Some(format!("{now}.0")), sig.clone()),
        (Some(now.to_string()), Some(sign("another-secret", now, body.as_bytes()))),
        (Some(now.to_string()), Some(sign(HOOK_SECRET, now, br#"{"case": "C-9"}"#))),
    ] {
        let refused = deliver(&app, "case-intake", body, ts.clone(), sig.clone(), None).await;
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::UNAUTHORIZED, "signature_invalid"), "{ts:?} {sig:?}");
    }
    assert_eq!(count_instances(&t.engine, "signed-intake").await, 3);
    let history = t.engine.store().history(&instance).await.unwrap();
    let record: Value = serde_json::from_str(&history[0].data).unwrap();
    assert_eq!((record["trigger"].as_str(), record["signed_at"].as_str()), (Some("webhook"), Some("2026-03-01T09:00:00.000Z")));

    // Once the window has passed, the captured request is refused as expired, and its
    // signature is forgotten with the next accepted delivery.
    let remembered =
        |store: Store| async move { store.execute_raw("UPDATE webhook_signatures SET expires_at = expires_at").await.unwrap() };
    assert_eq!(remembered(t.engine.store().clone()).await, 4);
    t.clock.advance(Duration::from_secs(310));
    let (ts, sig) = signed(now, body);
    assert_eq!(deliver(&app, "case-intake", body, ts, sig, None).await.code(), "signature_expired");
    let later = t.engine.now() / 1000;
    let (ts, sig) = signed(later, body);
    assert_eq!(deliver(&app, "case-intake", body, ts, sig, None).await.status, StatusCode::ACCEPTED);
    assert_eq!(remembered(t.engine.store().clone()).await, 1, "only the fresh signature is kept");

    // The tolerance is configurable ([webhooks] tolerance).
    let strict = router(AppState::new(t.engine.clone()).with_webhook_tolerance(Duration::from_secs(60)));
    let (ts, sig) = signed(later - 61, r#"{"case": "C-3"}"#);
    assert_eq!(deliver(&strict, "case-intake", r#"{"case": "C-3"}"#, ts, sig, None).await.code(), "signature_expired");
    let (ts, sig) = signed(later - 59, r#"{"case": "C-3"}"#);
    assert_eq!(deliver(&strict, "case-intake", r#"{"case": "C-3"}"#, ts, sig, None).await.status, StatusCode::ACCEPTED);
});

/// `printf '%s' TEXT | openssl dgst -sha256 -hmac SECRET -r`, as docs/API.md signs; `None`
/// (with a message) when openssl is not installed.
fn openssl_hmac(secret: &str, text: &str) -> Option<String> {
    use std::io::Write as _;
    let child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("openssl is not installed; skipping the openssl signature check");
        return None;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap().split(' ').next().unwrap().to_string())
}

/// The shell recipe of docs/API.md (`printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256
/// -hmac "$SECRET" -r`) signs requests the server accepts.
#[tokio::test]
async fn a_request_signed_with_openssl_as_documented_is_accepted() {
    let Some(t) = hook_engine(Backend::Sqlite).await else { return };
    let app = router(AppState::new(t.engine.clone()));
    let ts = (t.engine.now() / 1000).to_string();
    let body = r#"{"case": "C-1", "note": "caffè"}"#;
    let Some(hex) = openssl_hmac(HOOK_SECRET, &format!("{ts}.{body}")) else { return };
    assert_eq!(format!("sha256={hex}"), sign(HOOK_SECRET, t.engine.now() / 1000, body.as_bytes()));
    let answer = deliver(&app, "case-intake", body, Some(ts), Some(format!("sha256={hex}")), None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
}

both_backends!(the_same_signed_request_racing_on_two_engines_starts_one_instance, |backend| async move {
    let Some(t) = hook_engine(backend).await else { return };
    // A second engine with its own connections to the same database: another process, as far
    // as the database can tell.
    let other = Engine::new(
        Store::connect(&t.url).await.unwrap(),
        Registry::builtin().with_secrets(hook_secrets()),
        Arc::new(t.clock.clone()),
        EngineConfig::default(),
    );
    let ts = (t.engine.now() / 1000).to_string();
    let body = r#"{"case": "RACE"}"#.to_string();
    let signature = sign(HOOK_SECRET, t.engine.now() / 1000, body.as_bytes());
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let engine = if i % 2 == 0 { t.engine.clone() } else { other.clone() };
            let (ts, body, signature) = (ts.clone(), body.clone(), signature.clone());
            tokio::spawn(async move {
                let delivery = Delivery { body: body.as_bytes(), timestamp: Some(&ts), signature: Some(&signature), idempotency_key: None };
                engine.webhook("case-intake", &delivery, DEFAULT_TOLERANCE).await
            })
        })
        .collect();
    let (mut started, mut replayed) = (0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            Ok(s) => {
                assert!(s.created);
                started += 1;
            }
            Err(WebhookError::Replayed) => replayed += 1,
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!((started, replayed), (1, 7));
    assert_eq!(count_instances(&t.engine, "signed-intake").await, 1);
    other.store().close().await;
});

#[tokio::test]
async fn webhooks_bind_only_to_secrets_declared_for_webhooks() {
    let Some(t) = hook_engine(Backend::Sqlite).await else { return };
    // Binding a hook to a connector's credential is a load-time error of the workflow.
    let probe = SIGNED.replace("signed-intake", "probe").replace("case-intake", "probe").replace("webhook-intake", "inps-token");
    match t.engine.deploy(&probe).await {
        Err(EngineError::Definition(d)) => {
            assert!(d.iter().any(|d| d.code == "WF0211" && d.pointer.as_deref() == Some("/triggers/0/secret")), "{d:?}")
        }
        other => panic!("deployed a webhook bound to a connector credential: {other:?}"),
    }
    let token = create_token_with_task_roles(t.engine.store(), "analyst", Role::Analyst, &[], &[], 0).await.unwrap();
    let app = router(AppState::new(t.engine.clone()));
    let refused = api(&app, &token, Method::POST, "/api/v1/workflows", Some(json!({"source": probe}))).await;
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow"), "{}", refused.body);
    assert_eq!(refused.json()["diagnostics"][0]["code"], "WF0211");
    let validated = api(&app, &token, Method::POST, "/api/v1/workflows/validate", Some(json!({"source": probe}))).await;
    assert!(validated.body.contains("WF0211"), "{}", validated.body);
    // So there is no hook to ask whether a guessed credential is right.
    let now = t.engine.now() / 1000;
    let guess = deliver(&app, "probe", "{}", Some(now.to_string()), Some(sign(CONNECTOR_CREDENTIAL, now, b"{}")), None).await;
    assert_eq!(guess.status, StatusCode::NOT_FOUND);

    // A workflow stored before the rule (bound to the connector credential) still loads, but
    // its webhook refuses every delivery, even one signed with the right value.
    let legacy = probe.replace("probe", "legacy");
    let sql = format!(
        "INSERT INTO workflows (name, version, hash, source, deployed_at) VALUES ('legacy', 1, 'legacy-hash', '{}', 0)",
        legacy.replace('\'', "''")
    );
    t.engine.store().execute_raw(&sql).await.unwrap();
    t.engine
        .store()
        .execute_raw("INSERT INTO trigger_names (kind, name, workflow, version, trigger_ix) VALUES ('webhook', 'legacy', 'legacy', 1, 0)")
        .await
        .unwrap();
    let guess = deliver(&app, "legacy", "{}", Some(now.to_string()), Some(sign(CONNECTOR_CREDENTIAL, now, b"{}")), None).await;
    assert_eq!((guess.status, guess.code().as_str()), (StatusCode::UNAUTHORIZED, "signature_invalid"), "{}", guess.body);
    let wrong = deliver(&app, "legacy", "{}", Some(now.to_string()), Some(sign("a-wrong-guess", now, b"{}")), None).await;
    assert_eq!(
        (wrong.status, wrong.body.replace("a-wrong-guess", "")),
        (guess.status, guess.body.clone()),
        "right and wrong look the same"
    );
    assert_eq!(count_instances(&t.engine, "legacy").await, 0);
}

// ---- the office scope of case data ----

const SCOPE_REVIEW: &str = r#"workflow: scope-review
version: 1
title: Scope review
business_key: ${ .input.cf }
steps:
  - id: review
    human:
      title: "Review {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
  - id: done
    end: {}
"#;

const SCOPE_PERSONAL: &str = r#"workflow: scope-personal
version: 1
title: A check assigned to one person
business_key: ${ .input.cf }
steps:
  - id: check
    human:
      title: Personal check
      assign: { user: "${ .input.user }" }
  - id: done
    end: {}
"#;

const SCOPE_AUTO: &str = r#"workflow: scope-auto
version: 1
title: No human task
business_key: ${ .input.cf }
steps:
  - id: done
    end: {}
"#;

/// The same citizen has cases in Rome and Milan.
const CF_SHARED: &str = "RSSMRA80A01H501U";
const CF_MILAN: &str = "VRDGPP70B02F205X";
const CF_PERSONAL: &str = "BNCLRA75C43L219K";
const PASSWORD: &str = "correct horse battery staple";

/// Who is who: `(name, role, offices, task roles)`. `anna` and `nino` work in Rome (RM1),
/// `carla` in Milan (MI1), `ottavio` in Rome without the task role, `bruno` in Naples with a
/// task assigned to him by name.
const PEOPLE: [(&str, Role, &[&str], &[&str]); 9] = [
    ("admin", Role::Admin, &[], &[]),
    ("analyst", Role::Analyst, &[], &[]),
    ("viewer", Role::Viewer, &[], &[]),
    ("worker", Role::Worker, &[], &[]),
    ("anna", Role::Operator, &["RM1"], &["naspi-operator"]),
    ("nino", Role::Operator, &["RM1"], &["naspi-operator"]),
    ("carla", Role::Operator, &["MI1"], &["naspi-operator"]),
    ("ottavio", Role::Operator, &["RM1"], &["payout-officer"]),
    ("bruno", Role::Operator, &["NA1"], &["naspi-operator"]),
];

struct Cases {
    t: TestEngine,
    app: Router,
    tokens: HashMap<String, String>,
    rome: String,
    milan: String,
    milan_only: String,
    personal: String,
    auto: String,
}

async fn cases(backend: Backend) -> Option<Cases> {
    // Everyone has an API token and a console user.
    let mut options = AppOptions::new(backend).deploy(SCOPE_REVIEW).deploy(SCOPE_PERSONAL).deploy(SCOPE_AUTO);
    for (name, role, offices, task_roles) in PEOPLE {
        let account = Account::new(name, role).offices(offices).task_roles(task_roles);
        options = options.token(account.clone()).user(account, PASSWORD);
    }
    let t = start_engine(options).await?;
    let tokens = t.tokens.clone();
    let start = |workflow: &str, input: Value| {
        let engine = t.engine.clone();
        let request = StartRequest { workflow: workflow.into(), version: None, input, request_id: None };
        async move { engine.start(request).await.unwrap().id }
    };
    let rome = start("scope-review", json!({"cf": CF_SHARED, "office": "RM1"})).await;
    let milan = start("scope-review", json!({"cf": CF_SHARED, "office": "MI1"})).await;
    let milan_only = start("scope-review", json!({"cf": CF_MILAN, "office": "MI1"})).await;
    let personal = start("scope-personal", json!({"cf": CF_PERSONAL, "user": "bruno"})).await;
    let auto = start("scope-auto", json!({"cf": CF_SHARED})).await;
    t.engine.run_until_idle().await.unwrap();
    let app = router(AppState::new(t.engine.clone()));
    Some(Cases { t, app, tokens, rome, milan, milan_only, personal, auto })
}

impl Cases {
    /// The instances `who` may read.
    fn visible_to(&self, who: &str) -> BTreeSet<String> {
        let all = [&self.rome, &self.milan, &self.milan_only, &self.personal, &self.auto];
        let ids: Vec<&String> = match who {
            "admin" | "analyst" | "viewer" => all.to_vec(),
            "anna" | "nino" => vec![&self.rome],
            "carla" => vec![&self.milan, &self.milan_only],
            "bruno" => vec![&self.personal],
            _ => vec![],
        };
        ids.into_iter().cloned().collect()
    }

    fn all(&self) -> [&String; 5] {
        [&self.rome, &self.milan, &self.milan_only, &self.personal, &self.auto]
    }

    async fn get(&self, who: &str, path: &str) -> Answer {
        api(&self.app, &self.tokens[who], Method::GET, path, None).await
    }

    /// Every instance id of the list, following the cursor pages.
    async fn list(&self, who: &str, query: &str) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("/api/v1/instances?limit=1&{query}&cursor={c}"),
                None => format!("/api/v1/instances?limit=1&{query}"),
            };
            let answer = self.get(who, &page).await;
            assert_eq!(answer.status, StatusCode::OK, "{who} {page}: {}", answer.body);
            let body = answer.json();
            ids.extend(body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return ids,
            }
        }
    }
}

both_backends!(operators_read_only_the_cases_of_their_offices_through_the_api, |backend| async move {
    let Some(c) = cases(backend).await else { return };
    let unknown = "0190aaaa-0000-7000-8000-000000000000";
    let not_found = c.get("anna", &format!("/api/v1/instances/{unknown}")).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    for (who, ..) in PEOPLE {
        let visible = c.visible_to(who);
        for id in c.all() {
            for path in [format!("/api/v1/instances/{id}"), format!("/api/v1/instances/{id}/history")] {
                let answer = c.get(who, &path).await;
                let expected = match who {
                    "worker" => StatusCode::FORBIDDEN,
                    _ if visible.contains(id) => StatusCode::OK,
                    _ => StatusCode::NOT_FOUND,
                };
                assert_eq!(answer.status, expected, "{who} GET {path}: {}", answer.body);
                if expected == StatusCode::NOT_FOUND {
                    // Exactly the answer for an id that does not exist.
                    assert_eq!(answer.body.replace(id.as_str(), unknown), not_found.body, "{who} {path}");
                }
            }
        }
        if who == "worker" {
            assert_eq!(c.get(who, "/api/v1/instances").await.status, StatusCode::FORBIDDEN);
            continue;
        }
        assert_eq!(c.list(who, "").await, visible, "{who}: the list");
        let shared: BTreeSet<String> = [&c.rome, &c.milan, &c.auto].into_iter().filter(|id| visible.contains(*id)).cloned().collect();
        assert_eq!(c.list(who, &format!("business_key={CF_SHARED}")).await, shared, "{who}: by business key");
        let running: BTreeSet<String> = visible.iter().filter(|id| **id != c.auto).cloned().collect();
        assert_eq!(c.list(who, "status=running").await, running, "{who}: by status");
    }

    // Any task status counts: once anna has completed her task, she still reads the case.
    let tasks = c.t.engine.store().tasks(&TaskFilter { instance_id: Some(c.rome.clone()), ..Default::default() }).await.unwrap();
    let task = &tasks[0].id;
    let anna = &c.tokens["anna"];
    assert_eq!(api(&c.app, anna, Method::POST, &format!("/api/v1/tasks/{task}/claim"), Some(json!({}))).await.status, StatusCode::OK);
    let done = api(&c.app, anna, Method::POST, &format!("/api/v1/tasks/{task}/complete"), Some(json!({}))).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    c.t.engine.run_until_idle().await.unwrap();
    let read = c.get("anna", &format!("/api/v1/instances/{}", c.rome)).await;
    assert_eq!((read.status, read.json()["status"].as_str()), (StatusCode::OK, Some("completed")));
    assert_eq!(c.get("carla", &format!("/api/v1/instances/{}/history", c.rome)).await.status, StatusCode::NOT_FOUND);
    // The task itself follows the same rule.
    assert_eq!(c.get("carla", &format!("/api/v1/tasks/{task}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("nino", &format!("/api/v1/tasks/{task}")).await.status, StatusCode::OK);
});

/// A console session: its cookie and CSRF token.
struct Browser {
    cookies: String,
}

/// The login form's token cookie and hidden field.
async fn login_form(app: &Router) -> (String, String) {
    let form = send(app, Request::get("/console/login").body(Body::empty()).unwrap()).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = hidden_value(&form.body, "login_token");
    let cookie = form.set_cookies().iter().find(|c| c.starts_with("pratica_login=")).unwrap().split(';').next().unwrap().to_string();
    (cookie, token)
}

/// Posts the login form from `client` (its address, as `pratica serve` passes it).
async fn try_login(app: &Router, client: Option<&str>, user: &str, password: &str, next: Option<&str>) -> Answer {
    let (cookie, token) = login_form(app).await;
    let mut fields = vec![("username", user), ("password", password), ("login_token", token.as_str())];
    if let Some(next) = next {
        fields.push(("next", next));
    }
    let mut request = Request::post("/console/login")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form_body(&fields)))
        .unwrap();
    if let Some(addr) = client {
        request.extensions_mut().insert(ConnectInfo(format!("{addr}:40000").parse::<SocketAddr>().unwrap()));
    }
    send(app, request).await
}

async fn login(app: &Router, user: &str) -> Browser {
    let answer = try_login(app, None, user, PASSWORD, None).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{user}: {}", answer.body);
    let session = answer.set_cookies().into_iter().find(|c| c.starts_with("pratica_session=")).expect("a session cookie");
    Browser { cookies: session.split(';').next().unwrap().to_string() }
}

async fn page(app: &Router, browser: &Browser, path: &str) -> Answer {
    send(app, Request::get(path).header(header::COOKIE, &browser.cookies).body(Body::empty()).unwrap()).await
}

both_backends!(operators_read_only_the_cases_of_their_offices_in_the_console, |backend| async move {
    let Some(c) = cases(backend).await else { return };
    // A message correlated with the shared citizen that no instance consumed.
    c.t.engine.publish_message("late-document", CF_SHARED, json!({"pages": 2})).await.unwrap();
    // Workers have no console.
    assert_eq!(try_login(&c.app, None, "worker", PASSWORD, None).await.status, StatusCode::UNAUTHORIZED);
    for (who, ..) in PEOPLE.iter().filter(|(who, ..)| *who != "worker") {
        let browser = login(&c.app, who).await;
        let visible = c.visible_to(who);
        for id in c.all() {
            let answer = page(&c.app, &browser, &format!("/console/instances/{id}")).await;
            let expected = if visible.contains(id) { StatusCode::OK } else { StatusCode::NOT_FOUND };
            assert_eq!(answer.status, expected, "{who} /console/instances/{id}");
            if expected == StatusCode::NOT_FOUND {
                assert!(!answer.body.contains(CF_SHARED) && !answer.body.contains(CF_MILAN), "{who}: nothing of the case leaks");
            }
        }
        // The case file of the citizen with cases in two offices lists only the visible ones.
        let file = page(&c.app, &browser, &format!("/console/cases?q={CF_SHARED}")).await;
        assert_eq!(file.status, StatusCode::OK);
        for id in [&c.rome, &c.milan, &c.auto] {
            assert_eq!(file.body.contains(id.as_str()), visible.contains(id), "{who}: case file of {CF_SHARED} and {id}");
        }
        let sees_shared = [&c.rome, &c.milan, &c.auto].iter().any(|id| visible.contains(*id));
        assert_eq!(file.body.contains("id=\"case-file\""), sees_shared, "{who}: {}", file.body);
        assert_eq!(file.body.contains("late-document"), visible.contains(&c.auto), "{who}: unconsumed messages only for the unscoped");
        // A search by prefix finds only the citizens the user may see.
        let search = page(&c.app, &browser, "/console/cases?q=vrd").await;
        assert_eq!(search.body.contains(CF_MILAN), visible.contains(&c.milan_only), "{who}: search");
        assert_eq!(search.body.contains("id=\"case-none\""), !visible.contains(&c.milan_only), "{who}: search");
        let search = page(&c.app, &browser, "/console/cases?q=BNC").await;
        assert_eq!(search.body.contains(CF_PERSONAL), visible.contains(&c.personal), "{who}: assigned by name");
    }
});

// ---- console sign-in ----

both_backends!(failed_sign_ins_lock_the_account_and_the_address_for_a_while, |backend| async move {
    let Some(c) = cases(backend).await else { return };
    let app = &c.app;
    // Five wrong passwords for anna: four generic refusals, then the lock.
    let mut anna = Vec::new();
    for _ in 0..5 {
        anna.push(try_login(app, Some("10.0.0.1"), "anna", "wrong", None).await);
    }
    let statuses: Vec<u16> = anna.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    assert_eq!(anna[0].login_error(), "Nome utente o password errati.");
    assert!(anna[4].login_error().starts_with("Troppi tentativi di accesso non riusciti"), "{}", anna[4].login_error());
    assert_eq!(anna[4].headers[header::RETRY_AFTER], "900");
    // Locked: the right password is refused too, from any address, without a session.
    for addr in ["10.0.0.1", "10.0.0.2"] {
        let locked = try_login(app, Some(addr), "anna", PASSWORD, None).await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.body);
        assert!(!locked.set_cookies().iter().any(|c| c.starts_with("pratica_session=")));
    }
    // An unknown user goes through exactly the same answers: no account enumeration.
    let mut ghost = Vec::new();
    for _ in 0..5 {
        ghost.push(try_login(app, Some("10.0.0.3"), "nessuno", "wrong", None).await);
    }
    assert_eq!(ghost.iter().map(|a| a.status.as_u16()).collect::<Vec<_>>(), statuses);
    for (a, g) in anna.iter().zip(&ghost) {
        assert_eq!(a.login_error(), g.login_error());
    }
    // The lock is temporary.
    c.t.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(try_login(app, Some("10.0.0.1"), "anna", PASSWORD, None).await.status, StatusCode::TOO_MANY_REQUESTS);
    c.t.clock.advance(Duration::from_secs(61));
    assert_eq!(try_login(app, Some("10.0.0.1"), "anna", PASSWORD, None).await.status, StatusCode::SEE_OTHER);

    // A successful sign-in starts the account's count afresh.
    for _ in 0..4 {
        assert_eq!(try_login(app, Some("10.0.0.4"), "carla", "wrong", None).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(try_login(app, Some("10.0.0.4"), "carla", PASSWORD, None).await.status, StatusCode::SEE_OTHER);
    for _ in 0..4 {
        assert_eq!(try_login(app, Some("10.0.0.4"), "carla", "wrong", None).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(try_login(app, Some("10.0.0.4"), "carla", PASSWORD, None).await.status, StatusCode::SEE_OTHER);

    // One address guessing at many accounts is locked after 20 failures, for every account,
    // while other addresses are not.
    for n in 0..19 {
        assert_eq!(try_login(app, Some("10.0.0.5"), &format!("guess{n}"), "wrong", None).await.status, StatusCode::UNAUTHORIZED, "{n}");
    }
    assert_eq!(try_login(app, Some("10.0.0.5"), "guess19", "wrong", None).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(try_login(app, Some("10.0.0.5"), "nino", PASSWORD, None).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(try_login(app, Some("10.0.0.6"), "nino", PASSWORD, None).await.status, StatusCode::SEE_OTHER);
});

/// argon2 runs for unknown users too: their refusals take about as long as wrong passwords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_take_as_long_as_wrong_passwords() {
    let Some(c) = cases(Backend::Sqlite).await else { return };
    let _ = try_login(&c.app, None, "warm-up", "x", None).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..3 {
        let started = Instant::now();
        assert_eq!(try_login(&c.app, None, "viewer", "wrong", None).await.status, StatusCode::UNAUTHORIZED);
        known.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(try_login(&c.app, None, &format!("ghost{n}"), "wrong", None).await.status, StatusCode::UNAUTHORIZED);
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[1].as_secs_f64(), unknown[1].as_secs_f64());
    assert!(u > k / 3.0 && u < k * 3.0, "median refusal: wrong password {k:.3}s, unknown user {u:.3}s");
}

#[tokio::test]
async fn next_parameters_that_are_not_console_pages_are_answered_400() {
    let Some(c) = cases(Backend::Sqlite).await else { return };
    let app = &c.app;
    let bad = [
        "/console/inbox\r\nSet-Cookie: pratica_session=forged",
        "/console/inbox\n",
        "/console/inbox\0",
        "/console/in\tbox",
        "/console/inbox\u{7f}",
        "https://evil.example/console/",
        "//evil.example/console/",
        "/console//evil.example",
        "/console/../api/v1/instances",
        "/console/%2e%2e/api/v1/instances",
        "/console/\\evil.example",
        "/api/v1/tasks",
        "/console/login",
        "/console/caf\u{e9}",
    ];
    for next in bad {
        let answer = send(app, Request::get(format!("/console/login?next={}", encode(next))).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "GET next={next:?}: {}", answer.body);
        assert!(answer.body.contains("next"), "{}", answer.body);
        // Even with the right password: 400, no session, no redirect.
        let answer = try_login(app, None, "anna", PASSWORD, Some(next)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "POST next={next:?}: {}", answer.body);
        assert!(answer.headers.get(header::LOCATION).is_none() && !answer.set_cookies().iter().any(|c| c.starts_with("pratica_session=")));
    }
    // A console page is where the browser goes after signing in.
    let form = send(app, Request::get("/console/login?next=%2Fconsole%2Fcases%3Fq%3DRSS").body(Body::empty()).unwrap()).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(hidden_value(&form.body, "next"), "/console/cases?q=RSS");
    let answer = try_login(app, None, "anna", PASSWORD, Some("/console/cases?q=RSS")).await;
    assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/cases?q=RSS"));
    // A logged-out request with control characters (percent-encoded) in its query comes back
    // to the same page after signing in.
    let out = send(app, Request::get("/console/cases?q=%0D%0Ax").body(Body::empty()).unwrap()).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let back = send(app, Request::get(out.location()).body(Body::empty()).unwrap()).await;
    assert_eq!(back.status, StatusCode::OK, "{}", out.location());
    assert_eq!(hidden_value(&back.body, "next"), "/console/cases?q=%0D%0Ax");
}

/// A real `pratica serve`: a failed sign-in is a `warn` line naming the user (quoted, so a
/// username cannot forge log lines) and the client address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_logged_as_warnings() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let db = format!("sqlite://{}", scratch.0.join("serve.db").display());
    let store = Store::connect(&db).await.unwrap();
    let user = UserRow {
        username: "anna".into(),
        password_hash: hash_password(PASSWORD).unwrap(),
        role: "operator".into(),
        offices: json!(["RM1"]).to_string(),
        task_roles: "[]".into(),
        created_at: 0,
        disabled_at: None,
    };
    store.insert_user(&user).await.unwrap();
    store.close().await;
    let mut server = tokio::process::Command::new(pratica_tests::pratica_bin())
        .current_dir(&scratch.0)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--db", &db])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pratica serve starts");
    let mut logs = BufReader::new(server.stderr.take().unwrap()).lines();
    async fn next_entry(logs: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), logs.next_line()).await.expect("serve logs").unwrap();
            let line = line.expect("serve stopped");
            if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                return entry;
            }
        }
    }
    let addr = loop {
        let entry = next_entry(&mut logs).await;
        if entry["fields"]["message"] == "HTTP API listening" {
            break entry["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (user, password) in [("anna", "wrong"), ("eve\r\nINFO forged line", "x")] {
        let form = http.get(format!("http://{addr}/console/login")).send().await.unwrap();
        let cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let token = hidden_value(&form.text().await.unwrap(), "login_token");
        let answer = http
            .post(format!("http://{addr}/console/login"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("username", user), ("password", password), ("login_token", &token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    let mut warnings = Vec::new();
    while warnings.len() < 2 {
        let entry = next_entry(&mut logs).await;
        if entry["level"] == "WARN" && entry["fields"]["message"] == "console login failed" {
            warnings.push(entry["fields"].clone());
        }
    }
    assert_eq!(warnings[0]["user"], "\"anna\"");
    assert_eq!((warnings[0]["reason"].as_str(), warnings[0]["client"].as_str()), (Some("wrong password"), Some("127.0.0.1")));
    assert_eq!(warnings[0]["failures"], 1);
    assert_eq!(warnings[1]["user"], "\"eve\\r\\nINFO forged line\"");
    assert_eq!(warnings[1]["reason"], "unknown user");
    server.kill().await.unwrap();
}

// ---- unknown enum values in filters ----

both_backends!(unknown_filter_values_are_refused_naming_the_allowed_ones, |backend| async move {
    let Some(c) = cases(backend).await else { return };
    let tasks = ["open", "claimed", "completed", "cancelled"];
    let instances = ["running", "compensating", "completed", "failed", "cancelled"];
    for (path, allowed) in [("/api/v1/tasks", &tasks[..]), ("/api/v1/instances", &instances[..])] {
        for who in ["admin", "anna"] {
            for value in ["bogus", "OPEN", "Running", "open%0A", ""] {
                let answer = c.get(who, &format!("{path}?status={value}")).await;
                assert_eq!(
                    (answer.status, answer.code().as_str()),
                    (StatusCode::BAD_REQUEST, "invalid_parameter"),
                    "{who} {path}?status={value}"
                );
                assert_eq!(answer.headers[header::CONTENT_TYPE], "application/problem+json");
                let body = answer.json();
                assert_eq!((body["parameter"].as_str(), body["allowed"].clone()), (Some("status"), json!(allowed)));
                assert!(body["detail"].as_str().unwrap().contains(&allowed.join(", ")), "{body}");
            }
            for value in allowed {
                let answer = c.get(who, &format!("{path}?status={value}")).await;
                assert_eq!(answer.status, StatusCode::OK, "{who} {path}?status={value}: {}", answer.body);
            }
        }
    }
    let open = c.get("admin", "/api/v1/tasks?status=open").await.json();
    assert_eq!(open.as_array().unwrap().len(), 4, "{open}");
});
