//! Secrets: credentials that connectors need and nobody else may see.
//!
//! Secrets never appear in workflow YAML: configuration names them and says where their
//! values live (an environment variable or a file). The engine gives connectors a handle to
//! look them up, and redacts every secret value (and its common encodings) from connector
//! errors and outputs before anything is written to history or logs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

/// Where a secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Named secret values, loaded once at start-up.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

/// Why a secret could not be loaded. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}`: environment variable {var} is not set")]
    MissingEnv { name: String, var: String },
    #[error("secret `{name}`: cannot read {path}: {reason}")]
    File { name: String, path: String, reason: String },
    #[error("secret `{0}` is not defined in [secrets]")]
    Unknown(String),
    #[error("secret `{0}` is empty")]
    Empty(String),
}

impl Secrets {
    /// Reads every source. Values from files are trimmed of a final newline.
    pub fn load(sources: &BTreeMap<String, SecretSource>) -> Result<Self, SecretError> {
        let mut values = BTreeMap::new();
        for (name, source) in sources {
            let value = match source {
                SecretSource::Env(var) => {
                    std::env::var(var).map_err(|_| SecretError::MissingEnv { name: name.clone(), var: var.clone() })?
                }
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| SecretError::File { name: name.clone(), path: path.display().to_string(), reason: e.kind().to_string() })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            };
            if value.is_empty() {
                return Err(SecretError::Empty(name.clone()));
            }
            values.insert(name.clone(), value);
        }
        Ok(Self { values })
    }

    /// Secrets given directly (tests, embedding).
    pub fn from_values<I: IntoIterator<Item = (String, String)>>(values: I) -> Self {
        Self { values: values.into_iter().collect() }
    }

    pub fn get(&self, name: &str) -> Result<&str, SecretError> {
        self.values.get(name).map(String::as_str).ok_or_else(|| SecretError::Unknown(name.to_string()))
    }

    /// `text` with every secret value (of 4 bytes or more) and its common encodings
    /// (letter case, hex, percent-encoding, base64 and `Basic` credentials: see
    /// [`super::redact`]) replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        super::redact::redact(text, self.values.values().map(String::as_str))
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &mut Value) {
        if self.values.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let r = self.redact(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_json(i)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.values.keys().map(|k| (k, "***"))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_values_everywhere_and_never_prints_them() {
        let s = Secrets::from_values([("token".to_string(), "s3cr3t-value".to_string())]);
        assert_eq!(s.redact("Bearer s3cr3t-value refused"), "Bearer *** refused");
        let mut v = json!({"a": ["x s3cr3t-value y"], "b": 1});
        s.redact_json(&mut v);
        assert_eq!(v, json!({"a": ["x *** y"], "b": 1}));
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn redacts_encoded_forms_too() {
        let s = Secrets::from_values([("pw".to_string(), "P@ss w0rd!".to_string())]);
        let text = "basic=Basic dTpQQHNzIHcwcmQh hex=50407373207730726421 url=P%40ss%20w0rd%21 form=P%40ss+w0rd%21 upper=P@SS W0RD! b64=UEBzcyB3MHJkIQ";
        assert_eq!(s.redact(text), "basic=Basic *** hex=*** url=*** form=*** upper=*** b64=***");
        let mut v = json!({"headers": {"authorization": "Basic dTpQQHNzIHcwcmQh"}});
        s.redact_json(&mut v);
        assert_eq!(v, json!({"headers": {"authorization": "Basic ***"}}));
    }

    #[test]
    fn loads_from_env_and_files_with_clear_errors() {
        let dir = std::env::temp_dir().join(format!("pratica-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "from-file\n").unwrap();
        let sources = BTreeMap::from([("pw".to_string(), SecretSource::File(dir.join("pw")))]);
        assert_eq!(Secrets::load(&sources).unwrap().get("pw").unwrap(), "from-file");
        let missing = BTreeMap::from([("x".to_string(), SecretSource::Env("PRATICA_TEST_SURELY_UNSET".into()))]);
        assert!(matches!(Secrets::load(&missing), Err(SecretError::MissingEnv { .. })));
        assert!(matches!(Secrets::default().get("nope"), Err(SecretError::Unknown(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
