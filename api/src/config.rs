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
//!
//! Webhooks (`POST /hooks/<name>`) are signed with secrets declared for them: a secret whose
//! name starts with `webhook-` (connectors may not use those). The signed timestamp must be
//! within `tolerance` of the server's clock (default 5 minutes):
//!
//! ```toml
//! [secrets]
//! webhook-intake = { env = "PRATICA_INTAKE_HOOK_SECRET" }
//!
//! [webhooks]
//! tolerance = "5m"
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
    /// Webhook deliveries: how old (or new) a signed timestamp may be.
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// The budget of workflow authors' expressions and templates, and size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The directory of the file this configuration was read from: relative paths in
    /// settings (a classifier's `training` sample) are relative to it.
    #[serde(skip)]
    pub dir: Option<std::path::PathBuf>,
}

/// `[limits]`: what one expression or template may use, how large values and states may
/// grow, and how often a job may be claimed before it is quarantined. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Evaluation steps of one expression or template (default 2,000,000).
    pub expression_steps: Option<u64>,
    /// Wall-clock time of one evaluation, a duration such as `"1s"` or `"250ms"`... (default 1s).
    pub expression_time: Option<String>,
    /// Memory one evaluation may hold, in MiB (default 64).
    pub expression_memory_mib: Option<usize>,
    /// Size of an expression's result or a template's text, in KiB (default 1024).
    pub result_kib: Option<usize>,
    /// Size of one step output or variable written into the state, in KiB (default 1024).
    pub value_kib: Option<usize>,
    /// Size of a case's whole state, in MiB (default 16).
    pub state_mib: Option<usize>,
    /// Claims of a job before it is quarantined (default 2).
    pub job_claims: Option<u32>,
}

impl LimitsConfig {
    /// Applies the configured limits over `config`.
    pub fn apply(&self, mut config: pratica_engine::runtime::EngineConfig) -> Result<pratica_engine::runtime::EngineConfig, String> {
        let l = &mut config.limits;
        if let Some(n) = self.expression_steps {
            l.fuel = n.max(1);
        }
        if let Some(text) = &self.expression_time {
            l.time = pratica_engine::duration::parse_duration(text).map_err(|e| format!("[limits] expression_time `{text}`: {e}"))?;
        }
        if let Some(mib) = self.expression_memory_mib {
            l.memory = mib.max(1) << 20;
        }
        if let Some(kib) = self.result_kib {
            l.output = kib.max(1) << 10;
        }
        if let Some(kib) = self.value_kib {
            l.value = kib.max(1) << 10;
        }
        if let Some(mib) = self.state_mib {
            l.state = mib.max(1) << 20;
        }
        if let Some(n) = self.job_claims {
            config.max_job_claims = n.max(1);
        }
        Ok(config)
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// A duration such as `"5m"` or `"90s"` (default 5 minutes, at most 1 day).
    pub tolerance: Option<String>,
}

impl WebhooksConfig {
    /// Longest tolerance accepted: a replayed request is refused only while its signature is
    /// remembered, which is as long as the tolerance.
    pub const MAX_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(86_400);

    /// How far a signed timestamp may be from now.
    pub fn tolerance(&self) -> Result<std::time::Duration, String> {
        let Some(text) = &self.tolerance else { return Ok(pratica_engine::trigger::DEFAULT_TOLERANCE) };
        let tolerance = pratica_engine::duration::parse_duration(text).map_err(|e| format!("[webhooks] tolerance `{text}`: {e}"))?;
        if tolerance < std::time::Duration::from_secs(1) || tolerance > Self::MAX_TOLERANCE {
            return Err(format!("[webhooks] tolerance `{text}` must be between 1s and 1d"));
        }
        Ok(tolerance)
    }
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
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.webhooks.tolerance()?;
        Ok(config)
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
    fn the_webhook_tolerance_defaults_to_five_minutes_and_is_bounded() {
        assert_eq!(Config::parse("").unwrap().webhooks.tolerance().unwrap(), std::time::Duration::from_secs(300));
        let c = Config::parse("[webhooks]\ntolerance = \"90s\"\n").unwrap();
        assert_eq!(c.webhooks.tolerance().unwrap(), std::time::Duration::from_secs(90));
        assert!(Config::parse("[webhooks]\ntolerance = \"2d\"\n").unwrap_err().contains("between 1s and 1d"));
        assert!(Config::parse("[webhooks]\ntolerance = \"soon\"\n").unwrap_err().contains("tolerance"));
        assert!(Config::parse("[webhooks]\ntolerence = \"1m\"\n").is_err());
    }

    #[test]
    fn unknown_sections_are_errors() {
        assert!(Config::parse("[conectors.inps]\nkind = \"http\"\n").unwrap_err().contains("conectors"));
    }
}
