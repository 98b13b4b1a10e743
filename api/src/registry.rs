//! The connector registry of an installation: the built-ins plus the instances declared in
//! `pratica.toml`.
//!
//! ```toml
//! [connectors.inps]               # called as `inps.<operation>`
//! kind = "http"
//! base_url = "https://api.example/inps"
//! timeout = "30s"                 # optional
//! allow_private = false           # optional: allow loopback/private addresses (SSRF guard)
//! allowed_hosts = ["10.1.2.3"]    # optional: hosts allowed despite the guard
//! headers = { Accept = "application/json" }
//! ```
//!
//! A `[connectors.http]` section configures the built-in `http` connector itself.

use pratica_engine::connector::{HttpConfig, HttpConnector, LogConnector, NoopConnector, Registry};

use crate::config::{Config, ConnectorConfig};

/// Why a configured connector could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("connector `{name}` in the configuration: {message}")]
pub struct RegistryError {
    pub name: String,
    pub message: String,
}

/// Builds the registry for `config`.
pub fn build_registry(config: &Config) -> Result<Registry, RegistryError> {
    let mut registry = Registry::builtin();
    let builtin_http = HttpConnector::new(HttpConfig::default()).map_err(|message| RegistryError { name: "http".into(), message })?;
    registry.register("http", std::sync::Arc::new(builtin_http));
    for (name, c) in &config.connectors {
        let err = |message: String| RegistryError { name: name.clone(), message };
        match c.kind.as_str() {
            "http" => {
                let connector = HttpConnector::new(http_config(c).map_err(err)?).map_err(err)?;
                registry.register(name, std::sync::Arc::new(connector));
            }
            "noop" => registry.register(name, std::sync::Arc::new(NoopConnector)),
            "log" => registry.register(name, std::sync::Arc::new(LogConnector)),
            other => return Err(err(format!("unknown kind `{other}` (known: http, noop, log)"))),
        }
    }
    Ok(registry)
}

fn http_config(c: &ConnectorConfig) -> Result<HttpConfig, String> {
    let mut config = HttpConfig::default();
    for (key, value) in &c.settings {
        match (key.as_str(), value) {
            ("base_url", toml::Value::String(s)) => config.base_url = Some(s.clone()),
            ("timeout", toml::Value::String(s)) => config.timeout = pratica_engine::duration::parse_duration(s)?,
            ("allow_private", toml::Value::Boolean(b)) => config.allow_private = *b,
            ("allowed_hosts", toml::Value::Array(hosts)) => {
                config.allowed_hosts =
                    hosts.iter().map(|h| h.as_str().map(String::from).ok_or("allowed_hosts must be strings")).collect::<Result<_, _>>()?
            }
            ("headers", toml::Value::Table(t)) => {
                for (h, v) in t {
                    let v = v.as_str().ok_or_else(|| format!("header `{h}` must be a string"))?;
                    config.default_headers.insert(h.clone(), v.to_string());
                }
            }
            (other, _) => return Err(format!("`{other}` is not an http setting, or has the wrong type")),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_http_instances_and_refuses_unknown_settings() {
        let config =
            Config::parse("[connectors.inps]\nkind = \"http\"\nbase_url = \"http://x\"\ntimeout = \"5s\"\nallow_private = true\n").unwrap();
        let registry = build_registry(&config).unwrap();
        assert!(registry.get("inps").is_some() && registry.get("http").is_some() && registry.get("noop").is_some());
        let bad = Config::parse("[connectors.inps]\nkind = \"http\"\nbase_ur = \"http://x\"\n").unwrap();
        assert!(build_registry(&bad).unwrap_err().to_string().contains("base_ur"));
        let unknown = Config::parse("[connectors.x]\nkind = \"ftp\"\n").unwrap();
        assert!(build_registry(&unknown).is_err());
    }
}
