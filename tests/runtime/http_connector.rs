//! The built-in `http` connector against a real server on loopback (wiremock): request
//! shapes, headers, auth (static and OAuth2), error mapping, timeouts, the address policy,
//! redirects, secret hygiene, and one workflow run through the engine.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pratica_engine::clock::{Clock as _, ManualClock, SharedClock};

use pratica_engine::connector::{Connector, ConnectorError, HttpAuth, HttpConfig, HttpConnector, Invocation, Registry};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_tests::backend::{Backend, test_engine};
use serde_json::{Value, json};
use wiremock::matchers::{basic_auth, bearer_token, body_json, body_string, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn local() -> HttpConfig {
    HttpConfig { allow_private: true, ..HttpConfig::default() }
}

fn connector(config: HttpConfig) -> HttpConnector {
    HttpConnector::new(config).expect("valid connector config")
}

fn call(input: Value) -> Invocation {
    Invocation {
        connector: "http".into(),
        operation: None,
        input,
        idempotency_key: "inst-1:fetch:1".into(),
        attempt: 1,
        deadline: None,
        instance_id: "inst-1".into(),
        step_id: "fetch".into(),
        secrets: Default::default(),
        clock: Default::default(),
    }
}

fn op_call(operation: &str, input: Value) -> Invocation {
    Invocation { connector: "svc".into(), operation: Some(operation.into()), ..call(input) }
}

async fn ok(c: &HttpConnector, call: &Invocation) -> Value {
    match c.invoke(call).await {
        Ok(v) => v,
        Err(e) => panic!("call failed: {e:?}"),
    }
}

async fn err(c: &HttpConnector, call: &Invocation) -> ConnectorError {
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

fn message_of(e: &ConnectorError) -> &str {
    match e {
        ConnectorError::Retryable { message, .. } | ConnectorError::Fatal { message, .. } => message,
    }
}

fn header_of<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn get_with_query_and_headers_returns_status_headers_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cases/42"))
        .and(query_param("view", "full"))
        .and(query_param("n", "3"))
        .and(header("accept", "application/json"))
        .and(header("x-tenant", "inps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42, "state": "open"})).insert_header("X-Request-Id", "r-1"))
        .expect(1)
        .mount(&server)
        .await;
    let c = connector(local());
    let url = format!("{}/cases/42", server.uri());
    let out = ok(
        &c,
        &call(json!({"url": url, "query": {"view": "full", "n": 3}, "headers": {"Accept": "application/json", "X-Tenant": "inps"}})),
    )
    .await;
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], json!({"id": 42, "state": "open"}));
    assert_eq!(out["headers"]["x-request-id"], "r-1");
    assert_eq!(out["headers"]["content-type"], "application/json");

    Mock::given(path("/text")).respond_with(ResponseTemplate::new(201).set_body_string("plain words")).mount(&server).await;
    let out = ok(&c, &call(json!({"url": format!("{}/text", server.uri())}))).await;
    assert_eq!((out["status"].clone(), out["body"].clone()), (json!(201), json!("plain words")));
}

#[tokio::test]
async fn json_body_posts_and_body_string_is_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/payments"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"iban": "IT60X0542811101000000123456", "amount_cents": 1200})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"payment_id": "p-1"})))
        .expect(2)
        .mount(&server)
        .await;
    let c = connector(local());
    let url = format!("{}/payments", server.uri());
    let payment = json!({"iban": "IT60X0542811101000000123456", "amount_cents": 1200});
    let out = ok(&c, &call(json!({"url": url, "json": payment}))).await;
    assert_eq!((out["status"].clone(), out["body"]["payment_id"].clone()), (json!(201), json!("p-1")));
    let out = ok(&c, &call(json!({"url": url, "method": "post", "body": payment}))).await;
    assert_eq!(out["status"], 201);

    Mock::given(method("PUT"))
        .and(path("/notes"))
        .and(header("content-type", "text/plain; charset=utf-8"))
        .and(body_string("hello"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let out = ok(&c, &call(json!({"url": format!("{}/notes", server.uri()), "method": "PUT", "body": "hello"}))).await;
    assert_eq!((out["status"].clone(), out["body"].clone()), (json!(204), Value::Null));
}

#[tokio::test]
async fn form_body_is_url_encoded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/form"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("name=Mario+Rossi&tags=a&tags=b%26c&n=7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = connector(local());
    let input =
        json!({"url": format!("{}/form", server.uri()), "form": {"name": "Mario Rossi", "tags": ["a", "b&c"], "n": 7, "skip": null}});
    assert_eq!(ok(&c, &call(input)).await["body"], json!({"ok": true}));
}

#[tokio::test]
async fn idempotency_key_and_attempt_are_sent() {
    let server = MockServer::start().await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let c = connector(local());
    let invocation = Invocation { idempotency_key: "abc:pay:2".into(), attempt: 3, ..call(json!({"url": format!("{}/x", server.uri())})) };
    ok(&c, &invocation).await;
    let seen = server.received_requests().await.expect("recording on");
    assert_eq!(header_of(&seen[0], "idempotency-key"), Some("abc:pay:2"));
    assert_eq!(header_of(&seen[0], "x-pratica-attempt"), Some("3"));
}

#[tokio::test]
async fn an_instance_maps_operations_to_post_base_url_operation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/inps/contributions"))
        .and(body_json(json!({"fiscal_code": "RSSMRA80A01H501U", "method": "sepa"})))
        .and(header_exists("idempotency-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"weeks": 52})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/inps/persons"))
        .and(query_param("cf", "X"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(["p"])))
        .expect(2)
        .mount(&server)
        .await;
    // The base_url host is operator configuration: allowed without allow_private.
    let c = connector(HttpConfig { base_url: Some(format!("{}/inps/", server.uri())), ..HttpConfig::default() });
    // Operation form: the output is the body itself (a field called `method` is just data).
    let out = ok(&c, &op_call("contributions", json!({"fiscal_code": "RSSMRA80A01H501U", "method": "sepa"}))).await;
    assert_eq!(out, json!({"weeks": 52}));
    // Request form on an instance: a relative url, or a method without url, gives the envelope.
    let out = ok(&c, &op_call("ignored", json!({"url": "persons", "query": {"cf": "X"}}))).await;
    assert_eq!((out["status"].clone(), out["body"].clone()), (json!(200), json!(["p"])));
    let out = ok(&c, &op_call("persons", json!({"method": "GET", "query": {"cf": "X"}}))).await;
    assert_eq!(out["body"], json!(["p"]));
    // An unknown operation is the server's 404, fatal.
    let e = err(&c, &op_call("nope", json!({}))).await;
    assert_eq!(code_of(&e), ("http.404", false));
}

#[tokio::test]
async fn bearer_basic_api_key_and_default_headers() {
    let server = MockServer::start().await;
    Mock::given(path("/bearer")).and(bearer_token("tok-123456")).respond_with(ResponseTemplate::new(200)).expect(1).mount(&server).await;
    Mock::given(path("/basic")).and(basic_auth("svc", "pa55word")).respond_with(ResponseTemplate::new(200)).expect(1).mount(&server).await;
    Mock::given(path("/key"))
        .and(header("x-api-key", "k-987654"))
        .and(header("x-client", "pratica"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let with_auth = |auth: HttpAuth| connector(HttpConfig { base_url: Some(server.uri()), auth: Some(auth), ..HttpConfig::default() });
    ok(&with_auth(HttpAuth::Bearer { token: "tok-123456".into() }), &call(json!({"url": "/bearer"}))).await;
    ok(&with_auth(HttpAuth::Basic { user: "svc".into(), password: "pa55word".into() }), &call(json!({"url": "/basic"}))).await;
    let c = connector(HttpConfig {
        base_url: Some(server.uri()),
        auth: Some(HttpAuth::ApiKey { header: "X-Api-Key".into(), value: "k-987654".into() }),
        default_headers: [("X-Client".to_string(), "pratica".to_string())].into(),
        ..HttpConfig::default()
    });
    ok(&c, &call(json!({"url": "/key"}))).await;
}

#[tokio::test]
async fn credentials_stay_with_the_base_url_origin() {
    let (api, other) = (MockServer::start().await, MockServer::start().await);
    Mock::given(path("/hop"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", format!("{}/landed", other.uri())))
        .mount(&api)
        .await;
    Mock::given(path("/landed")).respond_with(ResponseTemplate::new(200).set_body_string("here")).mount(&other).await;
    let c = connector(HttpConfig {
        base_url: Some(api.uri()),
        auth: Some(HttpAuth::Bearer { token: "tok-123456".into() }),
        allow_private: true,
        ..HttpConfig::default()
    });
    // A redirect to another origin is followed without the credentials.
    let out = ok(&c, &call(json!({"url": "/hop"}))).await;
    assert_eq!(out["body"], "here");
    assert_eq!(header_of(&api.received_requests().await.expect("recording")[0], "authorization"), Some("Bearer tok-123456"));
    let landed = &other.received_requests().await.expect("recording")[0];
    assert_eq!((header_of(landed, "authorization"), header_of(landed, "idempotency-key")), (None, Some("inst-1:fetch:1")));
    // An absolute URL to another origin gets no credentials either.
    ok(&c, &call(json!({"url": format!("{}/landed", other.uri())}))).await;
    assert_eq!(header_of(&other.received_requests().await.expect("recording")[1], "authorization"), None);
}

fn oauth(server: &MockServer) -> HttpConnector {
    connector(HttpConfig {
        base_url: Some(format!("{}/api", server.uri())),
        auth: Some(HttpAuth::OAuth2ClientCredentials {
            token_url: format!("{}/token", server.uri()),
            client_id: "pratica".into(),
            client_secret: "s3cr3t-value".into(),
            scope: Some("read write".into()),
        }),
        ..HttpConfig::default()
    })
}

async fn token_endpoint(server: &MockServer, token: &str, expires_in: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("grant_type=client_credentials&client_id=pratica&client_secret=s3cr3t-value&scope=read+write"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})),
        )
        .up_to_n_times(1)
        .expect(times)
        .mount(server)
        .await;
}

async fn api_accepting(server: &MockServer, token: &str, answer: Value) {
    Mock::given(path("/api/me"))
        .and(bearer_token(token))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(server)
        .await;
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_cached_and_refreshed_after_expiry() {
    let server = MockServer::start().await;
    // Mounted first, matched first: t1 once, then t2.
    token_endpoint(&server, "t1", 1, 1).await;
    token_endpoint(&server, "t2", 3600, 1).await;
    api_accepting(&server, "t1", json!({"token": 1})).await;
    api_accepting(&server, "t2", json!({"token": 2})).await;
    let c = oauth(&server);
    // Token lifetimes are read on the engine's clock, which the call carries.
    let clock = ManualClock::new(MANUAL_START);
    let me = Invocation { clock: SharedClock::new(Arc::new(clock.clone())), ..call(json!({"url": "me"})) };
    assert_eq!(ok(&c, &me).await["body"], json!({"token": 1}));
    assert_eq!(ok(&c.clone(), &me).await["body"], json!({"token": 1}), "clones share the cached token");
    clock.advance(Duration::from_millis(700)); // t1 lives 1 s, refreshed at half of it
    assert_eq!(ok(&c, &me).await["body"], json!({"token": 2}));
    assert_eq!(ok(&c, &me).await["body"], json!({"token": 2}));
    let token_hits = server.received_requests().await.expect("recording").iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(token_hits, 2);
}

#[tokio::test]
async fn oauth2_refreshes_once_when_the_api_answers_401() {
    let server = MockServer::start().await;
    token_endpoint(&server, "revoked", 3600, 1).await;
    token_endpoint(&server, "fresh", 3600, 1).await;
    Mock::given(path("/api/me")).and(bearer_token("revoked")).respond_with(ResponseTemplate::new(401)).expect(1).mount(&server).await;
    api_accepting(&server, "fresh", json!({"ok": true})).await;
    let c = oauth(&server);
    assert_eq!(ok(&c, &call(json!({"url": "me"}))).await["body"], json!({"ok": true}));
    // A second 401 after the refresh is not retried again: fatal http.401.
    Mock::given(path("/api/locked")).respond_with(ResponseTemplate::new(401)).expect(2).mount(&server).await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "third"})))
        .mount(&server)
        .await;
    let e = err(&c, &call(json!({"url": "locked"}))).await;
    assert_eq!(code_of(&e), ("http.401", false));
}

#[tokio::test]
async fn oauth2_rejected_credentials_are_fatal_and_secret_free() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client", "echo": "client_secret=s3cr3t-value"})))
        .mount(&server)
        .await;
    let e = err(&oauth(&server), &call(json!({"url": "me"}))).await;
    assert_eq!(code_of(&e), ("http.auth", false));
    assert!(message_of(&e).contains("invalid_client") && !message_of(&e).contains("s3cr3t"), "{e:?}");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(path("/busy")).respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7")).mount(&server).await;
    Mock::given(path("/down")).respond_with(ResponseTemplate::new(503).set_body_string("maintenance")).mount(&server).await;
    let c = connector(local());
    let e = err(&c, &call(json!({"url": format!("{}/busy", server.uri())}))).await;
    assert!(
        matches!(&e, ConnectorError::Retryable { code, retry_after: Some(d), .. } if code == "http.429" && *d == Duration::from_secs(7)),
        "{e:?}"
    );
    let e = err(&c, &call(json!({"url": format!("{}/down", server.uri())}))).await;
    assert!(matches!(&e, ConnectorError::Retryable { code, retry_after: None, .. } if code == "http.503"), "{e:?}");
    assert!(message_of(&e).contains("maintenance"), "{e:?}");
}

#[tokio::test]
async fn client_errors_are_fatal_with_a_body_excerpt() {
    let server = MockServer::start().await;
    let long = format!("no such case; {}", "x".repeat(10_000));
    Mock::given(path("/cases/9")).respond_with(ResponseTemplate::new(404).set_body_string(long)).mount(&server).await;
    let e = err(&connector(local()), &call(json!({"url": format!("{}/cases/9?token=abc", server.uri())}))).await;
    assert_eq!(code_of(&e), ("http.404", false));
    let message = message_of(&e);
    assert!(message.starts_with("GET http://127.0.0.1:") && message.contains("/cases/9 answered 404: no such case; xxx"), "{message}");
    assert!(message.len() < 2200 && !message.contains("token=abc"), "excerpt is cut and the query is not shown: {}", message.len());
}

#[tokio::test]
async fn a_slow_server_times_out_at_the_deadline_or_the_configured_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/slow")).respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).mount(&server).await;
    let url = format!("{}/slow", server.uri());
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;
    let started = Instant::now();
    let e = err(&connector(local()), &Invocation { deadline: Some(now_ms + 300), ..call(json!({"url": url})) }).await;
    assert!(matches!(&e, ConnectorError::Retryable { code, .. } if code == "timeout"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let started = Instant::now();
    let e = err(&connector(HttpConfig { timeout: Duration::from_millis(200), ..local() }), &call(json!({"url": url}))).await;
    assert_eq!(code_of(&e), ("timeout", true));
    assert!(started.elapsed() < Duration::from_secs(2));

    let e = err(&connector(local()), &Invocation { deadline: Some(now_ms - 1), ..call(json!({"url": url})) }).await;
    assert_eq!(code_of(&e), ("timeout", true), "a passed deadline fails without sending");
}

/// 2030-01-01T00:00:00Z: far from the wall clock, so a connector reading the wall clock
/// would be seen.
const MANUAL_START: i64 = 1_893_456_000_000;

#[tokio::test]
async fn retry_after_dates_and_deadlines_follow_the_engine_clock() {
    let server = MockServer::start().await;
    let busy = ResponseTemplate::new(503).insert_header("Retry-After", "Tue, 01 Jan 2030 00:01:30 GMT");
    Mock::given(path("/busy")).respond_with(busy).mount(&server).await;
    Mock::given(path("/slow")).respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).mount(&server).await;
    let clock = ManualClock::new(MANUAL_START);
    let at = |url: String, deadline: Option<i64>| Invocation {
        deadline,
        clock: SharedClock::new(Arc::new(clock.clone())),
        ..call(json!({"url": url}))
    };
    let e = err(&connector(local()), &at(format!("{}/busy", server.uri()), None)).await;
    assert!(matches!(&e, ConnectorError::Retryable { retry_after: Some(d), .. } if *d == Duration::from_secs(90)), "{e:?}");
    clock.advance(Duration::from_secs(60));
    let e = err(&connector(local()), &at(format!("{}/busy", server.uri()), None)).await;
    assert!(matches!(&e, ConnectorError::Retryable { retry_after: Some(d), .. } if *d == Duration::from_secs(30)), "{e:?}");

    // A deadline 300 ms after the manual now leaves 300 ms, whatever the wall clock says.
    let started = Instant::now();
    let e = err(&connector(local()), &at(format!("{}/slow", server.uri()), Some(clock.now() + 300))).await;
    assert_eq!(code_of(&e), ("timeout", true), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let e = err(&connector(local()), &at(format!("{}/slow", server.uri()), Some(clock.now() - 1))).await;
    assert_eq!(code_of(&e), ("timeout", true), "a deadline passed on the manual clock fails without sending");
    let sent = server.received_requests().await.expect("recording").iter().filter(|r| r.url.path() == "/slow").count();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn unreachable_servers_are_retryable_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let e = err(&connector(local()), &call(json!({"url": format!("http://127.0.0.1:{port}/")}))).await;
    assert_eq!(code_of(&e), ("http.unavailable", true), "{e:?}");
}

#[tokio::test]
async fn the_address_policy_refuses_private_targets_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(path("/ok")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let port = server.address().port();
    let strict = connector(HttpConfig::default());
    for url in
        [format!("http://127.0.0.1:{port}/ok"), "http://10.0.0.1/".into(), "http://[::1]/".into(), format!("http://localhost:{port}/ok")]
    {
        let e = err(&strict, &call(json!({"url": url}))).await;
        assert_eq!(code_of(&e), ("http.forbidden_address", false), "{url}: {e:?}");
    }
    assert!(server.received_requests().await.expect("recording").is_empty());
    // allow_private, or the host in allowed_hosts (by IP or by name).
    ok(&connector(local()), &call(json!({"url": format!("http://127.0.0.1:{port}/ok")}))).await;
    let listed = connector(HttpConfig { allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()], ..HttpConfig::default() });
    ok(&listed, &call(json!({"url": format!("http://127.0.0.1:{port}/ok")}))).await;
    ok(&listed, &call(json!({"url": format!("http://localhost:{port}/ok")}))).await;
    let e = err(&listed, &call(json!({"url": "http://10.0.0.1/"}))).await;
    assert_eq!(code_of(&e), ("http.forbidden_address", false));
}

#[tokio::test]
async fn redirects_are_followed_and_checked_at_every_hop() {
    let server = MockServer::start().await;
    Mock::given(path("/old")).respond_with(ResponseTemplate::new(301).insert_header("Location", "/new")).mount(&server).await;
    Mock::given(method("GET")).and(path("/new")).respond_with(ResponseTemplate::new(200).set_body_string("moved")).mount(&server).await;
    Mock::given(path("/evil"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "http://169.254.169.254/latest/meta-data"))
        .mount(&server)
        .await;
    Mock::given(path("/loop")).respond_with(ResponseTemplate::new(302).insert_header("Location", "/loop")).mount(&server).await;
    let c = connector(HttpConfig { allowed_hosts: vec!["127.0.0.1".into()], max_redirects: 3, ..HttpConfig::default() });
    let base = server.uri();
    let out = ok(&c, &call(json!({"url": format!("{base}/old"), "json": {"a": 1}}))).await;
    assert_eq!((out["status"].clone(), out["body"].clone()), (json!(200), json!("moved")), "a POST answered 301 goes on as GET");
    let e = err(&c, &call(json!({"url": format!("{base}/evil")}))).await;
    assert_eq!(code_of(&e), ("http.forbidden_address", false));
    let e = err(&c, &call(json!({"url": format!("{base}/loop")}))).await;
    assert_eq!(code_of(&e), ("http.302", false));
    assert!(message_of(&e).contains("not followed"), "{e:?}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_error_messages() {
    let config = HttpConfig {
        auth: Some(HttpAuth::OAuth2ClientCredentials {
            token_url: "https://id.example.it/token".into(),
            client_id: "pratica".into(),
            client_secret: "client-secret-1".into(),
            scope: None,
        }),
        ..HttpConfig::default()
    };
    let shown = format!("{config:?} {:?}", connector(config.clone()));
    assert!(!shown.contains("client-secret-1") && shown.contains("***") && shown.contains("pratica"), "{shown}");
    for auth in [
        HttpAuth::Bearer { token: "bearer-secret-1".into() },
        HttpAuth::Basic { user: "u".into(), password: "basic-secret-1".into() },
        HttpAuth::ApiKey { header: "X-Key".into(), value: "key-secret-1".into() },
    ] {
        let shown = format!(
            "{:?}",
            HttpConfig { auth: Some(auth), default_headers: [("X-Tenant".into(), "t-1".into())].into(), ..HttpConfig::default() }
        );
        assert!(!shown.contains("secret-1") && !shown.contains("t-1") && shown.contains("***"), "{shown}");
    }
    // A server that echoes the request headers in an error: the secret is scrubbed.
    let server = MockServer::start().await;
    Mock::given(path("/echo"))
        .respond_with(|r: &Request| {
            ResponseTemplate::new(400).set_body_string(format!("bad request: {:?}", r.headers.get("authorization")))
        })
        .mount(&server)
        .await;
    let c = connector(HttpConfig {
        base_url: Some(server.uri()),
        auth: Some(HttpAuth::Basic { user: "u".into(), password: "basic-secret-1".into() }),
        ..HttpConfig::default()
    });
    let e = err(&c, &call(json!({"url": "/echo"}))).await;
    assert!(message_of(&e).contains("Basic ***") && !message_of(&e).contains("dTpi"), "{e:?}");
    let c = connector(HttpConfig {
        base_url: Some(server.uri()),
        auth: Some(HttpAuth::Bearer { token: "bearer-secret-1".into() }),
        ..HttpConfig::default()
    });
    let e = err(&c, &call(json!({"url": "/echo"}))).await;
    assert!(message_of(&e).contains("***") && !message_of(&e).contains("bearer-secret-1"), "{e:?}");
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    for config in [
        HttpConfig { base_url: Some("not a url".into()), ..HttpConfig::default() },
        HttpConfig { base_url: Some("ftp://files.example.it".into()), ..HttpConfig::default() },
        HttpConfig { timeout: Duration::ZERO, ..HttpConfig::default() },
        HttpConfig { auth: Some(HttpAuth::ApiKey { header: "bad header".into(), value: "v".into() }), ..HttpConfig::default() },
        HttpConfig { default_headers: [("X-A".into(), "line\nbreak".into())].into(), ..HttpConfig::default() },
    ] {
        assert!(HttpConnector::new(config.clone()).is_err(), "{config:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_calls_the_server_with_the_step_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cases/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"state": "open"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/inps/contributions"))
        .and(body_json(json!({"fiscal_code": "RSSMRA80A01H501U"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"weeks": 52})))
        .expect(1)
        .mount(&server)
        .await;
    let registry = Registry::builtin()
        .with("http", connector(local()))
        .with("inps", connector(HttpConfig { base_url: Some(format!("{}/inps", server.uri())), ..HttpConfig::default() }));
    let Some(t) = test_engine(Backend::Sqlite, registry).await else { return };
    let source = r#"workflow: http-e2e
version: 1
title: Test
steps:
  - id: fetch
    call: http
    with:
      url: ${ .input.base + "/cases/" + .input.case }
      headers: { Accept: application/json }
  - id: weeks
    call: inps.contributions
    with: { fiscal_code: "${ .input.cf }" }
  - id: done
    end:
      output: { state: "${ .steps.fetch.output.body.state }", status: "${ .steps.fetch.output.status }", weeks: "${ .steps.weeks.output.weeks }" }
"#;
    if let Err(e) = t.engine.deploy(source).await {
        panic!("deploy: {e}: {e:?}");
    }
    let input = json!({"base": server.uri(), "case": "42", "cf": "RSSMRA80A01H501U"});
    let id = t.engine.start(StartRequest { workflow: "http-e2e".into(), input, ..Default::default() }).await.expect("start").id;
    t.engine.run_until_idle().await.expect("run");
    let row = t.engine.store().instance(&id).await.expect("instance");
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"state": "open", "status": 200, "weeks": 52})));
    let seen = server.received_requests().await.expect("recording");
    let key = |p: &str| seen.iter().find(|r| r.url.path() == p).and_then(|r| header_of(r, "idempotency-key")).map(String::from);
    assert_eq!(key("/cases/42"), Some(format!("{id}:fetch:1")));
    assert_eq!(key("/inps/contributions"), Some(format!("{id}:weeks:1")));
}
