//! Secrets a connector leaks in its output or errors never reach history.

use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation, Registry, Secrets};
use pratica_engine::runtime::StartRequest;
use pratica_tests::backend::{Backend, test_engine};
use serde_json::json;

const SECRET: &str = "tok-9f8e7d6c5b4a";

/// A careless connector: echoes its credential, and puts it in its error message.
struct Leaky;

impl Connector for Leaky {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            match call.operation.as_deref() {
                Some("echo") => Ok(json!({"sent": format!("Bearer {SECRET}"), "nested": [SECRET]})),
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
