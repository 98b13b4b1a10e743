//! `pratica.toml`: the installation's configuration.
//!
//! ```toml
//! [connectors.inps]          # a connector instance, called from YAML as `inps.<operation>`
//! kind = "http"              # which implementation: http, email, appio, ...
//! base_url = "https://..."   # settings of that kind; secrets are referenced by env var name
//! ```
//!
//! Secrets never live in this file or in workflow YAML; settings name the environment
//! variable or file that holds them:
//!
//! ```toml
//! [secrets]
//! inps-token = { env = "PRATICA_INPS_TOKEN" }
//! smtp-password = { file = "/run/secrets/smtp" }
//!
//! [connectors.inps]
//! kind = "http"
//! base_url = "https://..."
//! auth = { type = "bearer", token = "secret:inps-token" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Named secrets and where their values live: `name = { env = "VAR" }` or
    /// `name = { file = "/run/secrets/name" }`. Connector settings refer to them as
    /// `"secret:name"`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// The directory of the file this configuration was read from: relative paths in
    /// settings (a classifier's `training` sample) are relative to it.
    #[serde(skip)]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    pub env: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorConfig {
    pub kind: String,
    #[serde(flatten)]
    pub settings: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.display().to_string(), message })?;
        config.dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Loads `path` if given, else `./pratica.toml` if it exists, else the empty configuration.
    pub fn discover(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None if Path::new("pratica.toml").is_file() => Self::load(Path::new("pratica.toml")),
            None => Ok(Self::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_connector_instances() {
        let c = Config::parse("[connectors.inps]\nkind = \"http\"\nbase_url = \"http://x\"\n").unwrap();
        assert_eq!(c.connectors["inps"].kind, "http");
        assert_eq!(c.connectors["inps"].settings["base_url"].as_str(), Some("http://x"));
    }

    #[test]
    fn unknown_sections_are_errors() {
        assert!(Config::parse("[conectors.inps]\nkind = \"http\"\n").unwrap_err().contains("conectors"));
    }
}
