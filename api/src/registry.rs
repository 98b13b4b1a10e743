//! The connector registry of an installation: the built-ins plus the instances declared in
//! `pratica.toml`.

use pratica_engine::connector::Registry;

use crate::config::Config;

/// Why a configured connector could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("connector `{name}`: {message}")]
pub struct RegistryError {
    pub name: String,
    pub message: String,
}

/// Builds the registry for `config`.
pub fn build_registry(config: &Config) -> Result<Registry, RegistryError> {
    let registry = Registry::builtin();
    if let Some((name, c)) = config.connectors.iter().find(|(_, c)| !matches!(c.kind.as_str(), "http" | "noop" | "log")) {
        return Err(RegistryError { name: name.clone(), message: format!("unknown kind `{}`", c.kind) });
    }
    Ok(registry)
}
