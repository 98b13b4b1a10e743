//! The built-in `settings` connector: values the administration sets in `pratica.toml`
//! (thresholds, limits, switches) that workflows read at run time, so that changing one needs
//! no new workflow version.
//!
//! ```toml
//! [connectors.settings]
//! kind = "settings"
//! payout_four_eyes_threshold_eur = 5000
//! ```
//!
//! ```yaml
//! - id: limits
//!   call: settings.get
//!   with: { name: payout_four_eyes_threshold_eur, default: 5000 }
//! ```
//!
//! `settings.get` with `name` answers `{name, value, source}` (`source` is `configuration` or
//! `default`); without a configured value and without `default` it fails with the business
//! error `settings.unknown`. Without `name` it answers every configured value as an object.
//! An installation without a `[connectors.settings]` section has the connector with no values,
//! so workflows fall back to their `default`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Connector, ConnectorError, ConnectorFuture, Invocation};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsConnector {
    values: BTreeMap<String, Value>,
}

impl SettingsConnector {
    pub fn new(values: BTreeMap<String, Value>) -> Self {
        SettingsConnector { values }
    }

    /// The answer of `settings.get` for `input`.
    pub fn get(&self, input: &Value) -> Result<Value, ConnectorError> {
        let invalid = |message: String| ConnectorError::fatal("settings.invalid_input", message);
        let object = match input {
            Value::Null => return Ok(Value::Object(self.values.clone().into_iter().collect())),
            Value::Object(o) => o,
            other => return Err(invalid(format!("settings.get needs an object `{{name, default}}`, not {other}"))),
        };
        if let Some(unknown) = object.keys().find(|k| *k != "name" && *k != "default") {
            return Err(invalid(format!("unknown field `{unknown}` (known: name, default)")));
        }
        let name = match object.get("name") {
            None | Some(Value::Null) => return Ok(Value::Object(self.values.clone().into_iter().collect())),
            Some(Value::String(name)) => name,
            Some(other) => return Err(invalid(format!("`name` must be a string, not {other}"))),
        };
        match (self.values.get(name), object.get("default")) {
            (Some(value), _) => Ok(json!({"name": name, "value": value, "source": "configuration"})),
            (None, Some(default)) if !default.is_null() => Ok(json!({"name": name, "value": default, "source": "default"})),
            (None, _) => {
                let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
                Err(ConnectorError::fatal(
                    "settings.unknown",
                    format!(
                        "no setting `{name}` in [connectors.settings] of pratica.toml and no `default` in the call (configured: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                ))
            }
        }
    }
}

impl Connector for SettingsConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            match call.operation.as_deref() {
                Some("get") | None => self.get(&call.input),
                Some(other) => {
                    Err(ConnectorError::fatal("settings.unknown_operation", format!("settings has no operation `{other}` (known: get)")))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_default_and_unknown() {
        let s = SettingsConnector::new([("payout_four_eyes_threshold_eur".to_string(), json!(3000))].into_iter().collect());
        assert_eq!(
            s.get(&json!({"name": "payout_four_eyes_threshold_eur", "default": 5000})).unwrap(),
            json!({"name": "payout_four_eyes_threshold_eur", "value": 3000, "source": "configuration"})
        );
        assert_eq!(s.get(&json!({"name": "other", "default": 7})).unwrap(), json!({"name": "other", "value": 7, "source": "default"}));
        let err = s.get(&json!({"name": "other"})).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Fatal { code, message } if code == "settings.unknown" && message.contains("payout_four_eyes"))
        );
        assert_eq!(s.get(&json!({})).unwrap(), json!({"payout_four_eyes_threshold_eur": 3000}));
        assert!(matches!(s.get(&json!({"name": 3})), Err(ConnectorError::Fatal { .. })));
        assert!(matches!(s.get(&json!({"nome": "x"})), Err(ConnectorError::Fatal { .. })));
        assert!(matches!(s.get(&json!([1])), Err(ConnectorError::Fatal { .. })));
        assert_eq!(SettingsConnector::default().get(&json!({"name": "x", "default": 1})).unwrap()["source"], json!("default"));
    }
}
