//! The `appio` connector against a real HTTP server on loopback (wiremock) playing App IO:
//! profile lookups (allowed, turned off, not on App IO), sending (headers, body, the
//! profile check first, nothing sent when the citizen cannot receive), length checks made
//! before any request, status, rate limits and server errors, key hygiene, and one workflow
//! run through the engine.

use std::sync::Arc;
use std::time::Duration;

use pratica_engine::clock::{ManualClock, SharedClock};
use pratica_engine::connector::{AppIoConfig, AppIoConnector, Connector, ConnectorError, Invocation, Registry};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_tests::backend::{Backend, test_engine};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "io-subscription-key-0123456789";
const CF: &str = "RSSMRA80A01H501U";
const SUBJECT: &str = "INPS: pagamento disposto";
const MARKDOWN: &str = "Gentile Mario Rossi,\n\nabbiamo disposto il pagamento di **1.234,56 euro** per la pratica N-42, sul conto IBAN che termina con 1234.\n";

fn connector(server: &MockServer) -> AppIoConnector {
    AppIoConnector::new(AppIoConfig { base_url: format!("{}/api/v1", server.uri()), ..AppIoConfig::new(KEY) }).expect("valid config")
}

fn call(operation: &str, input: Value) -> Invocation {
    Invocation {
        connector: "appio".into(),
        operation: Some(operation.into()),
        input,
        idempotency_key: "inst-1:notify_app_io:1".into(),
        attempt: 1,
        deadline: None,
        instance_id: "inst-1".into(),
        step_id: "notify_app_io".into(),
        secrets: Default::default(),
        clock: Default::default(),
    }
}

fn message() -> Value {
    json!({"fiscal_code": CF, "subject": SUBJECT, "markdown": MARKDOWN})
}

async fn ok(c: &AppIoConnector, call: &Invocation) -> Value {
    match c.invoke(call).await {
        Ok(v) => v,
        Err(e) => panic!("call failed: {e:?}"),
    }
}

async fn err(c: &AppIoConnector, call: &Invocation) -> ConnectorError {
    match c.invoke(call).await {
        Ok(v) => panic!("call should fail, got {v}"),
        Err(e) => e,
    }
}

fn code_of(e: &ConnectorError) -> (&str, bool) {
    match e {
        ConnectorError::Retryable { code, .. } => (code, true),
        ConnectorError::Fatal { code, .. } => (code, false),
    }
}

/// `POST /api/v1/profiles` for `CF` answers `status` with `body`.
async fn profile(server: &MockServer, status: u16, body: Option<Value>) {
    let mut answer = ResponseTemplate::new(status);
    if let Some(body) = body {
        answer = answer.set_body_json(body);
    }
    Mock::given(method("POST"))
        .and(path("/api/v1/profiles"))
        .and(header("ocp-apim-subscription-key", KEY))
        .and(body_json(json!({"fiscal_code": CF})))
        .respond_with(answer)
        .mount(server)
        .await;
}

async fn posts_to(server: &MockServer, p: &str) -> usize {
    server.received_requests().await.expect("recording").iter().filter(|r| r.method.as_str() == "POST" && r.url.path() == p).count()
}

#[tokio::test]
async fn profile_tells_whether_the_citizen_can_be_reached() {
    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": true, "preferred_languages": ["it_IT"]}))).await;
    let out = ok(&connector(&server), &call("profile", json!({"fiscal_code": " rssmra80a01h501u "}))).await;
    assert_eq!(out, json!({"sender_allowed": true, "preferred_languages": ["it_IT"], "reason": null}));

    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": false}))).await;
    let out = ok(&connector(&server), &call("profile", json!({"fiscal_code": CF}))).await;
    assert_eq!(out, json!({"sender_allowed": false, "preferred_languages": [], "reason": "sender_not_allowed"}));

    let server = MockServer::start().await;
    profile(&server, 404, Some(json!({"title": "Not found", "status": 404}))).await;
    let out = ok(&connector(&server), &call("profile", json!({"fiscal_code": CF}))).await;
    assert_eq!(out, json!({"sender_allowed": false, "preferred_languages": [], "reason": "no_profile"}));

    let e = err(&connector(&server), &call("profile", json!({"fiscal_code": "RSSMRA80"}))).await;
    assert_eq!(code_of(&e), ("appio.invalid_input", false));
}

#[tokio::test]
async fn send_checks_the_profile_then_posts_the_message_with_its_headers() {
    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": true}))).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/messages"))
        .and(header("ocp-apim-subscription-key", KEY))
        .and(header("idempotency-key", "inst-1:notify_app_io:1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "fiscal_code": CF,
            "content": {"subject": SUBJECT, "markdown": MARKDOWN, "due_date": "2026-06-30T00:00:00.000Z"},
        })))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "01JABCDEF0123456789XYZ"}))
                .insert_header("Location", "/api/v1/messages/x"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut input = message();
    input["due_date"] = json!("2026-06-30");
    assert_eq!(ok(&connector(&server), &call("send", input)).await, json!({"id": "01JABCDEF0123456789XYZ"}));
    let seen = server.received_requests().await.expect("recording");
    assert_eq!(seen.iter().map(|r| r.url.path()).collect::<Vec<_>>(), ["/api/v1/profiles", "/api/v1/messages"], "profile first");
}

#[tokio::test]
async fn nothing_is_sent_to_a_citizen_who_cannot_receive() {
    for (status, body, why) in [(200, Some(json!({"sender_allowed": false})), "turned off messages"), (404, None, "not on App IO")] {
        let server = MockServer::start().await;
        profile(&server, status, body).await;
        Mock::given(method("POST")).and(path("/api/v1/messages")).respond_with(ResponseTemplate::new(201)).expect(0).mount(&server).await;
        let e = err(&connector(&server), &call("send", message())).await;
        assert_eq!(code_of(&e), ("appio.not_reachable", false));
        assert!(e.to_string().contains(why), "{e}");
        assert_eq!(posts_to(&server, "/api/v1/messages").await, 0);
    }
}

#[tokio::test]
async fn messages_outside_app_io_limits_are_refused_before_any_request() {
    let server = MockServer::start().await;
    let c = connector(&server);
    let cases = [
        ("subject", json!("Esito"), "`subject` has 5 characters; App IO accepts 10 to 120"),
        ("subject", json!("x".repeat(121)), "`subject` has 121 characters"),
        ("markdown", json!("Troppo breve."), "`markdown` has 13 characters; App IO accepts 80 to 10000"),
        ("markdown", json!("m".repeat(10_001)), "`markdown` has 10001 characters"),
        ("due_date", json!("30/06/2026"), "`due_date`"),
        ("payment", json!({"amount": 0, "notice_number": "012345678901234567"}), "`payment.amount`"),
    ];
    for (field, value, expected) in cases {
        let mut input = message();
        input[field] = value;
        let e = err(&c, &call("send", input)).await;
        assert_eq!(code_of(&e), ("appio.invalid_message", false), "{field}");
        assert!(e.to_string().contains(expected), "{e}");
    }
    let mut input = message();
    input["sender"] = json!("x");
    assert_eq!(code_of(&err(&c, &call("send", input)).await), ("appio.invalid_input", false));
    assert!(server.received_requests().await.expect("recording").is_empty(), "no request at all");
}

#[tokio::test]
async fn a_retry_after_date_is_read_on_the_engine_clock() {
    let server = MockServer::start().await;
    let busy = ResponseTemplate::new(429).insert_header("Retry-After", "Tue, 01 Jan 2030 00:02:00 GMT");
    Mock::given(method("POST")).and(path("/api/v1/profiles")).respond_with(busy).mount(&server).await;
    // 2030-01-01T00:00:00Z on the engine's clock; the wall clock is years away from it.
    let clock = ManualClock::new(1_893_456_000_000);
    let e = err(&connector(&server), &Invocation { clock: SharedClock::new(Arc::new(clock)), ..call("send", message()) }).await;
    match &e {
        ConnectorError::Retryable { code, retry_after, .. } => {
            assert_eq!((code.as_str(), *retry_after), ("appio.throttled", Some(Duration::from_secs(120))));
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_are_retryable_after_the_given_delay() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/profiles"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7").set_body_json(json!({"title": "Too many requests"})))
        .mount(&server)
        .await;
    let e = err(&connector(&server), &call("send", message())).await;
    match &e {
        ConnectorError::Retryable { code, retry_after, message } => {
            assert_eq!((code.as_str(), *retry_after), ("appio.throttled", Some(Duration::from_secs(7))));
            assert!(message.contains("429") && message.contains("Too many requests"), "{message}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert_eq!(posts_to(&server, "/api/v1/messages").await, 0);

    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": true}))).await;
    Mock::given(method("POST")).and(path("/api/v1/messages")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    assert_eq!(code_of(&err(&connector(&server), &call("send", message())).await), ("appio.unavailable", true));
}

#[tokio::test]
async fn client_errors_are_fatal_and_never_show_the_key() {
    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": true}))).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/messages"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"title": "Invalid payload", "detail": format!("bad request with key {KEY}")})),
        )
        .mount(&server)
        .await;
    let c = connector(&server);
    let e = err(&c, &call("send", message())).await;
    assert_eq!(code_of(&e), ("appio.invalid_message", false));
    assert!(e.to_string().contains("Invalid payload") && !e.to_string().contains(KEY), "{e}");
    assert!(!format!("{c:?}").contains(KEY));

    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/api/v1/profiles")).respond_with(ResponseTemplate::new(401)).mount(&server).await;
    assert_eq!(code_of(&err(&connector(&server), &call("profile", json!({"fiscal_code": CF}))).await), ("appio.unauthorized", false));

    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let down =
        AppIoConnector::new(AppIoConfig { base_url: format!("http://127.0.0.1:{port}/api/v1"), ..AppIoConfig::new(KEY) }).expect("config");
    let e = err(&down, &call("profile", json!({"fiscal_code": CF}))).await;
    assert_eq!(code_of(&e), ("appio.unavailable", true));
    assert!(!e.to_string().contains(KEY), "{e}");
}

#[tokio::test]
async fn status_reads_the_message_state() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/messages/{CF}/01JABCDEF0123456789XYZ")))
        .and(header("ocp-apim-subscription-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "message": {"id": "01JABCDEF0123456789XYZ", "fiscal_code": CF, "content": {"subject": SUBJECT}},
            "notification": {"email": "SENT", "webhook": "SENT"},
            "status": "PROCESSED",
        })))
        .mount(&server)
        .await;
    let c = connector(&server);
    let out = ok(&c, &call("status", json!({"fiscal_code": CF, "message_id": "01JABCDEF0123456789XYZ"}))).await;
    assert_eq!(
        out,
        json!({"status": "PROCESSED", "notification": {"email": "SENT", "webhook": "SENT"}, "read_status": null, "payment_status": null})
    );
    let e = err(&c, &call("status", json!({"fiscal_code": CF, "message_id": "01JZZZ"}))).await;
    assert_eq!(code_of(&e), ("appio.not_found", false));
    let e = err(&c, &call("status", json!({"fiscal_code": CF, "message_id": "../profiles"}))).await;
    assert_eq!(code_of(&e), ("appio.invalid_input", false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_sends_on_app_io_with_the_step_idempotency_key() {
    let server = MockServer::start().await;
    profile(&server, 200, Some(json!({"sender_allowed": true}))).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/messages"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "01JWORKFLOW"})))
        .expect(1)
        .mount(&server)
        .await;
    let Some(t) = test_engine(Backend::Sqlite, Registry::builtin().with("appio", connector(&server))).await else { return };
    let source = r#"workflow: appio-e2e
version: 1
title: Test
steps:
  - id: notify
    call: appio.send
    with:
      fiscal_code: ${ .input.fiscal_code }
      subject: "INPS: pagamento disposto"
      markdown: |
        Gentile {{ input.name }},

        abbiamo disposto il pagamento di **{{ input.amount }} euro** per la pratica {{ input.case_id }}.
    retry: { attempts: 3 }
    catch:
      - error: appio.not_reachable
        goto: by_email
  - id: done
    end:
      output: { channel: app_io, id: "${ .steps.notify.output.id }" }
  - id: by_email
    end:
      output: { channel: email }
"#;
    if let Err(e) = t.engine.deploy(source).await {
        panic!("deploy: {e}: {e:?}");
    }
    let input = json!({"fiscal_code": CF, "name": "Mario Rossi", "amount": "1.234,56", "case_id": "N-42"});
    let id = t.engine.start(StartRequest { workflow: "appio-e2e".into(), input, ..Default::default() }).await.expect("start").id;
    t.engine.run_until_idle().await.expect("run");
    let row = t.engine.store().instance(&id).await.expect("instance");
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"channel": "app_io", "id": "01JWORKFLOW"})));
    let seen = server.received_requests().await.expect("recording");
    let sent = seen.iter().find(|r| r.url.path() == "/api/v1/messages").expect("message posted");
    assert_eq!(sent.headers.get("idempotency-key").and_then(|v| v.to_str().ok()), Some(format!("{id}:notify:1").as_str()));
    let body: Value = serde_json::from_slice(&sent.body).expect("json body");
    assert_eq!(
        body["content"]["markdown"],
        "Gentile Mario Rossi,\n\nabbiamo disposto il pagamento di **1.234,56 euro** per la pratica N-42.\n"
    );

    // A citizen not on App IO (the mock answers 404 to any other profile): no message, e-mail instead.
    let input = json!({"fiscal_code": "VRDLGU75M41F205X", "name": "Luigia Verdi", "amount": "99,00", "case_id": "N-43"});
    let other = t.engine.start(StartRequest { workflow: "appio-e2e".into(), input, ..Default::default() }).await.expect("start").id;
    t.engine.run_until_idle().await.expect("run");
    let row = t.engine.store().instance(&other).await.expect("instance");
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"channel": "email"})));
    assert_eq!(posts_to(&server, "/api/v1/messages").await, 1, "still only the first message");
}
