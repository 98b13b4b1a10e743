//! The http connector's address policy as a workflow meets it: a connector whose `base_url`
//! is on 127.0.0.1 reaches its own prefix, and nothing else on the machine — not another
//! port (a second listener standing in for Pratica's own API), not another path of its own
//! server, whatever the spelling of the address or the path, and not through a redirect.

use pratica_engine::connector::{Connector, ConnectorError, HttpAuth, HttpConfig, HttpConnector, Invocation, Registry};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_tests::backend::{Backend, test_engine};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Calls `inps` (base `{api}/inps`) with the URL of its input; a refusal is caught and its
/// code is the output.
const PROBE: &str = r#"workflow: ssrf-probe
version: 1
title: Where can a workflow reach?
steps:
  - id: probe
    call: inps.probe
    with: { url: "${ .input.url }" }
    catch:
      - error: "*"
        steps:
          - id: note
            set: { code: "${ .error.code }" }
        goto: refused
  - id: reached
    end: { output: { reached: true, status: "${ .steps.probe.output.status }", body: "${ .steps.probe.output.body }" } }
  - id: refused
    end: { output: { reached: false, code: "${ .vars.code }" } }
"#;

async fn servers() -> (MockServer, MockServer) {
    let api = MockServer::start().await;
    let other = MockServer::start().await;
    Mock::given(path("/inps/contributions")).respond_with(ResponseTemplate::new(200).set_body_string("weeks: 52")).mount(&api).await;
    Mock::given(path("/admin")).respond_with(ResponseTemplate::new(200).set_body_string("the admin page")).mount(&api).await;
    Mock::given(path("/inps/hop-inside"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/inps/contributions"))
        .mount(&api)
        .await;
    Mock::given(path("/inps/hop-admin")).respond_with(ResponseTemplate::new(302).insert_header("Location", "/admin")).mount(&api).await;
    let elsewhere = format!("http://127.0.0.1:{}/api/v1/tokens", other.address().port());
    Mock::given(path("/inps/hop-out")).respond_with(ResponseTemplate::new(307).insert_header("Location", elsewhere)).mount(&api).await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_string("Pratica's own API")).mount(&other).await;
    (api, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_reaches_its_base_prefix_and_nothing_else_on_loopback() {
    let (api, other) = servers().await;
    let base = format!("{}/inps", api.uri());
    let inps = HttpConnector::new(HttpConfig { base_url: Some(base.clone()), ..HttpConfig::default() }).expect("connector");
    let registry = Registry::builtin().with("inps", inps);
    let Some(t) = test_engine(Backend::Sqlite, registry).await else { return };
    t.engine.deploy(PROBE).await.expect("deploy");
    let (a, b) = (api.address().port(), other.address().port());
    let root = api.uri();
    let reached: Vec<String> = vec!["contributions".into(), format!("{base}/contributions"), "hop-inside".into()];
    let refused: Vec<String> = vec![
        // Another port of the same address: a second listener (Pratica's own API, say).
        format!("http://127.0.0.1:{b}/api/v1/tokens"),
        format!("http://localhost:{b}/"),
        format!("http://2130706433:{b}/"),
        format!("http://0177.0.0.1:{b}/"),
        format!("http://127.1:{b}/"),
        format!("http://0x7f.0.0.1:{b}/"),
        format!("http://0.0.0.0:{b}/"),
        format!("http://[::ffff:127.0.0.1]:{b}/"),
        format!("http://[::ffff:7f00:1]:{b}/"),
        format!("http://[::127.0.0.1]:{b}/"),
        // The base's own server, outside its path prefix.
        format!("{root}/admin"),
        "../admin".into(),
        "/../../admin".into(),
        format!("{root}/inps/%2e%2e/admin"),
        format!("{root}/inps%2F..%2Fadmin"),
        format!("{root}/inps/%252e%252e/admin"),
        format!("http://localhost:{a}/inps/contributions"),
        format!("http://[::ffff:127.0.0.1]:{a}/inps/contributions"),
        // Redirects are judged again by the same rule.
        "hop-admin".into(),
        "hop-out".into(),
        // Cloud metadata.
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fd00:ec2::254]/latest/meta-data/".into(),
    ];
    let mut cases = Vec::new();
    for url in reached.iter().chain(&refused) {
        let started = t.engine.start(StartRequest { workflow: "ssrf-probe".into(), input: json!({ "url": url }), ..Default::default() });
        cases.push((url.clone(), started.await.expect("start").id));
    }
    t.engine.run_until_idle().await.expect("run");
    for (url, id) in &cases {
        let row = t.engine.store().instance(id).await.expect("instance");
        assert_eq!(row.status, "completed", "{url}: {row:?}");
        let output = output_of(&row);
        if reached.contains(url) {
            assert_eq!(output, json!({"reached": true, "status": 200, "body": "weeks: 52"}), "{url}");
        } else {
            assert_eq!(output, json!({"reached": false, "code": "http.forbidden_address"}), "{url} must be refused");
        }
    }
    assert_eq!(other.received_requests().await.expect("recording").len(), 0, "the second listener was never reached");
    let seen = api.received_requests().await.expect("recording");
    assert!(seen.iter().all(|r| r.url.path().starts_with("/inps/")), "{:?}", seen.iter().map(|r| r.url.path()).collect::<Vec<_>>());
}

fn call(url: &str) -> Invocation {
    Invocation {
        connector: "svc".into(),
        operation: Some("probe".into()),
        input: json!({ "url": url }),
        idempotency_key: "i:probe:1".into(),
        attempt: 1,
        instance_id: "i".into(),
        step_id: "probe".into(),
        ..Invocation::default()
    }
}

fn code(result: &Result<Value, ConnectorError>) -> Option<&str> {
    match result {
        Ok(_) => None,
        Err(ConnectorError::Fatal { code, .. } | ConnectorError::Retryable { code, .. }) => Some(code),
    }
}

#[tokio::test]
async fn the_oauth2_token_url_is_for_token_fetches_only() {
    let (api, other) = servers().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "t-1", "expires_in": 3600})))
        .mount(&other)
        .await;
    let config = HttpConfig {
        base_url: Some(format!("{}/inps", api.uri())),
        auth: Some(HttpAuth::OAuth2ClientCredentials {
            token_url: format!("{}/token", other.uri()),
            client_id: "pratica".into(),
            client_secret: "client-secret-1".into(),
            scope: None,
        }),
        ..HttpConfig::default()
    };
    let inps = HttpConnector::new(config).expect("connector");
    let fetched = inps.invoke(&call("contributions")).await;
    assert_eq!(fetched.expect("the token is fetched from the loopback token_url")["body"], json!("weeks: 52"));
    let probe = inps.invoke(&call(&format!("{}/token", other.uri()))).await;
    assert_eq!(code(&probe), Some("http.forbidden_address"), "a workflow may not call the token endpoint's host: {probe:?}");
    let probe = inps.invoke(&call(&format!("{}/api/v1/tokens", other.uri()))).await;
    assert_eq!(code(&probe), Some("http.forbidden_address"), "{probe:?}");
    assert_eq!(other.received_requests().await.expect("recording").iter().filter(|r| r.url.path() != "/token").count(), 0);
}
