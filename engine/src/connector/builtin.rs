//! Connectors that need no configuration.

use serde_json::Value;

use super::{Connector, ConnectorFuture, Invocation};

/// Does nothing and returns its input: for tests, benchmarks and sketches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopConnector;

impl Connector for NoopConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move { Ok(call.input.clone()) })
    }
}

/// Writes its input to the log (`message`, optional `level`) and returns nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogConnector;

impl Connector for LogConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            let message = call.input.get("message").and_then(Value::as_str).map(String::from).unwrap_or_else(|| call.input.to_string());
            match call.input.get("level").and_then(Value::as_str) {
                Some("warn") => tracing::warn!(instance = %call.instance_id, step = %call.step_id, "{message}"),
                Some("error") => tracing::error!(instance = %call.instance_id, step = %call.step_id, "{message}"),
                _ => tracing::info!(instance = %call.instance_id, step = %call.step_id, "{message}"),
            }
            Ok(Value::Null)
        })
    }
}
