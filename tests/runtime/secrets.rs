//! Secrets a connector leaks in its output or errors never reach history, in plain text or
//! in any of their common encodings.

use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation, Registry, Secrets};
use pratica_engine::runtime::StartRequest;
use pratica_tests::backend::{Backend, test_engine};
use serde_json::json;

const SECRET: &str = "tok-9f8e7d6c5b4a";
/// base64 of `pratica:SECRET` (an `Authorization: Basic` credential).
const BASIC: &str = "cHJhdGljYTp0b2stOWY4ZTdkNmM1YjRh";
const BASE64: &str = "dG9rLTlmOGU3ZDZjNWI0YQ==";
const BASE64URL_NO_PAD: &str = "dG9rLTlmOGU3ZDZjNWI0YQ";
const HEX: &str = "746f6b2d396638653764366335623461";

/// A careless connector: echoes its credential, and puts it in its error message.
struct Leaky;

impl Connector for Leaky {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            match call.operation.as_deref() {
                Some("echo") => Ok(json!({"sent": format!("Bearer {SECRET}"), "nested": [SECRET]})),
                Some("encoded") => Ok(json!({
                    "basic": format!("Basic {BASIC}"),
                    "base64": BASE64,
                    "base64url": BASE64URL_NO_PAD,
                    "hex": HEX.to_uppercase(),
                    "query": format!("https://api.example.it/x?token={}", SECRET.replace('-', "%2D")),
                    "shouted": SECRET.to_uppercase(),
                })),
                _ => Err(ConnectorError::fatal("auth.refused", format!("token {SECRET} was refused"))),
            }
        })
    }
}

#[tokio::test]
async fn secrets_are_redacted_from_history() {
    let registry =
        Registry::builtin().with("leaky", Leaky).with_secrets(Secrets::from_values([("api-token".to_string(), SECRET.to_string())]));
    let Some(t) = test_engine(Backend::Sqlite, registry).await else { return };
    t.engine
        .deploy(
            "workflow: leak\nversion: 1\ntitle: Leak\nsteps:\n  - id: echo\n    call: leaky.echo\n  - id: refuse\n    call: leaky.refuse\n",
        )
        .await
        .unwrap();
    let id = t.engine.start(StartRequest { workflow: "leak".into(), input: json!({}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!(row.status, "failed");
    let everything = format!("{row:?} {:?}", t.engine.store().history(&id).await.unwrap());
    assert!(!everything.contains(SECRET), "a secret reached the database");
    assert!(everything.contains("Bearer ***") && everything.contains("token *** was refused"));
}

#[tokio::test]
async fn encoded_secrets_are_redacted_from_history() {
    let registry =
        Registry::builtin().with("leaky", Leaky).with_secrets(Secrets::from_values([("api-token".to_string(), SECRET.to_string())]));
    let Some(t) = test_engine(Backend::Sqlite, registry).await else { return };
    t.engine.deploy("workflow: leak-encoded\nversion: 1\ntitle: Leak\nsteps:\n  - id: encoded\n    call: leaky.encoded\n").await.unwrap();
    let id = t.engine.start(StartRequest { workflow: "leak-encoded".into(), input: json!({}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!(row.status, "completed");
    let history = t.engine.store().history(&id).await.unwrap();
    let everything = format!("{row:?} {history:?}");
    for leaked in
        [SECRET.to_string(), SECRET.to_uppercase(), BASE64.into(), BASE64URL_NO_PAD.into(), HEX.into(), HEX.to_uppercase(), BASIC.into()]
    {
        assert!(!everything.contains(&leaked), "{leaked} reached the database: {everything}");
    }
    let completed = history.iter().find(|h| h.kind == "step.completed").unwrap();
    let output: serde_json::Value = serde_json::from_str(&completed.data).unwrap();
    assert_eq!(
        output["output"],
        json!({
            "basic": "Basic ***",
            "base64": "***",
            "base64url": "***",
            "hex": "***",
            "query": "https://api.example.it/x?token=***",
            "shouted": "***",
        })
    );
}
