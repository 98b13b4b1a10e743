//! The business schemas of a deployment (`schemas/<name>.schema.json`): workflow inputs and
//! task forms. Compiled once, on first use; validation errors name the offending field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

/// One problem with a value: where (a JSON pointer; empty for the whole value) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a value could not be checked or did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("there is no schema `{0}`")]
    Unknown(String),
    #[error("schema `{name}` is not a valid JSON Schema: {message}")]
    Broken { name: String, message: String },
    #[error("the value does not match schema `{name}`: {}", .errors.iter().map(|e| format!("{} {}", if e.field.is_empty() { "(value)" } else { &e.field }, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid { name: String, errors: Vec<FieldError> },
}

/// The schemas found in a directory.
#[derive(Clone, Default)]
pub struct SchemaSet {
    dir: Option<PathBuf>,
    compiled: Arc<Mutex<HashMap<String, Arc<jsonschema::Validator>>>>,
}

impl SchemaSet {
    /// Schemas read from `dir` (`<name>.schema.json`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Self {
        Self { dir: Some(dir.as_ref().to_path_buf()), compiled: Default::default() }
    }

    /// No schemas: nothing is checked.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Checks `value` against schema `name`. Without a schemas directory, nothing is checked.
    pub fn validate(&self, name: &str, value: &Value) -> Result<(), SchemaError> {
        let Some(validator) = self.validator(name)? else { return Ok(()) };
        let errors: Vec<FieldError> = validator
            .iter_errors(value)
            .map(|e| FieldError { field: e.instance_path().as_str().to_string(), message: e.to_string() })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(SchemaError::Invalid { name: name.to_string(), errors }) }
    }

    fn validator(&self, name: &str) -> Result<Option<Arc<jsonschema::Validator>>, SchemaError> {
        let Some(dir) = &self.dir else { return Ok(None) };
        if let Some(v) = self.compiled.lock().expect("schema cache lock").get(name) {
            return Ok(Some(v.clone()));
        }
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let path = dir.join(format!("{name}.schema.json"));
        if !safe || !path.is_file() {
            return Err(SchemaError::Unknown(name.to_string()));
        }
        let broken = |message: String| SchemaError::Broken { name: name.to_string(), message };
        let text = std::fs::read_to_string(&path).map_err(|e| broken(e.to_string()))?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| broken(e.to_string()))?;
        let validator = Arc::new(jsonschema::options().should_validate_formats(true).build(&schema).map_err(|e| broken(e.to_string()))?);
        self.compiled.lock().expect("schema cache lock").insert(name.to_string(), validator.clone());
        Ok(Some(validator))
    }
}

impl std::fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaSet").field("dir", &self.dir).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_against_the_shipped_schemas_and_names_fields() {
        let set = SchemaSet::from_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"));
        let err = set.validate("naspi-review", &json!({"outcome": 12})).unwrap_err();
        assert!(matches!(&err, SchemaError::Invalid { errors, .. } if !errors.is_empty()), "{err:?}");
        assert!(matches!(set.validate("nope", &json!({})), Err(SchemaError::Unknown(_))));
        assert!(matches!(set.validate("../etc", &json!({})), Err(SchemaError::Unknown(_))));
        assert!(SchemaSet::none().validate("anything", &json!(1)).is_ok());
    }
}
