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
//!
//! Credentials are references to `[secrets]`, never values:
//!
//! ```toml
//! auth = { type = "bearer", token = "secret:inps-token" }
//! auth = { type = "basic", user = "pratica", password = "secret:inps-password" }
//! auth = { type = "api_key", header = "X-Api-Key", value = "secret:inps-key" }
//! auth = { type = "oauth2", token_url = "https://...", client_id = "pratica", client_secret = "secret:inps-oauth", scope = "read" }
//! ```
//!
//! Secrets whose name starts with `webhook-` are declared for webhooks (they sign
//! `POST /hooks/...` requests) and are refused as connector credentials.
//!
//! E-mail (`email.send`) and App IO (`appio.profile`, `appio.send`, `appio.status`) need an
//! instance each, named as the workflows call them:
//!
//! ```toml
//! [connectors.email]
//! kind = "email"
//! host = "smtp.example.it"
//! port = 587                      # optional: 587 for starttls, 465 for tls, 25 for none
//! tls = "starttls"                # optional: starttls (default), tls or none (loopback relays)
//! user = "pratica"                # optional, with password
//! password = "secret:smtp-password"
//! from = "INPS <noreply@inps.example>"
//! timeout = "30s"                 # optional
//!
//! [connectors.appio]
//! kind = "appio"
//! base_url = "https://api.io.pagopa.it/api/v1"   # optional: this is the default
//! api_key = "secret:appio-key"    # the service's subscription key
//! timeout = "30s"                 # optional
//! ```

use std::collections::BTreeMap;

use pratica_engine::connector::{
    AppIoConfig, AppIoConnector, EmailConfig, EmailConnector, HttpAuth, HttpConfig, HttpConnector, LogConnector, NoopConnector, Registry,
    SecretSource, Secrets, SmtpTls,
};

use pratica_engine::trigger::webhook::{SECRET_PREFIX, is_webhook_secret};

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
    let secrets = load_secrets(config)?;
    let mut registry = Registry::builtin().with_secrets(secrets.clone());
    let builtin_http = HttpConnector::new(HttpConfig::default()).map_err(|message| RegistryError { name: "http".into(), message })?;
    registry.register("http", std::sync::Arc::new(builtin_http));
    for (name, c) in &config.connectors {
        let err = |message: String| RegistryError { name: name.clone(), message };
        match c.kind.as_str() {
            "http" => {
                let connector = HttpConnector::new(http_config(c, &secrets).map_err(err)?).map_err(err)?;
                registry.register(name, std::sync::Arc::new(connector));
            }
            "email" => {
                let connector = EmailConnector::new(email_config(c, &secrets).map_err(err)?).map_err(err)?;
                registry.register(name, std::sync::Arc::new(connector));
            }
            "appio" => {
                let connector = AppIoConnector::new(appio_config(c, &secrets).map_err(err)?).map_err(err)?;
                registry.register(name, std::sync::Arc::new(connector));
            }
            "classifier" => registry.register(name, std::sync::Arc::new(crate::cli::classify::connector(config, c).map_err(err)?)),
            "noop" => registry.register(name, std::sync::Arc::new(NoopConnector)),
            "log" => registry.register(name, std::sync::Arc::new(LogConnector)),
            "settings" => registry.register(
                name,
                std::sync::Arc::new(pratica_engine::connector::settings::SettingsConnector::new(
                    c.settings.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default())).collect(),
                )),
            ),
            other => return Err(err(format!("unknown kind `{other}` (known: http, email, appio, classifier, noop, log, settings)"))),
        }
    }
    Ok(registry)
}

fn load_secrets(config: &Config) -> Result<Secrets, RegistryError> {
    let mut sources = BTreeMap::new();
    for (name, s) in &config.secrets {
        let source = match (&s.env, &s.file) {
            (Some(var), None) => SecretSource::Env(var.clone()),
            (None, Some(path)) => SecretSource::File(path.clone()),
            _ => return Err(RegistryError { name: name.clone(), message: "a secret needs exactly one of `env` or `file`".into() }),
        };
        sources.insert(name.clone(), source);
    }
    Secrets::load(&sources).map_err(|e| RegistryError { name: "secrets".into(), message: e.to_string() })
}

/// A credential setting: must be `"secret:NAME"`.
fn secret(table: &toml::Table, key: &str, secrets: &Secrets) -> Result<String, String> {
    let value = table.get(key).and_then(toml::Value::as_str).ok_or_else(|| format!("auth needs `{key}`"))?;
    let name = value.strip_prefix("secret:").ok_or_else(|| {
        format!("auth `{key}` must refer to a secret (\"secret:NAME\" with NAME in [secrets]), not hold the credential itself")
    })?;
    credential(name, key, secrets)
}

/// The value of secret `name` used as the connector credential `key`. Secrets declared for
/// webhooks (`webhook-…`) are shared with the systems that call the hooks and sign requests;
/// they are never connector credentials, so workflows (whose webhooks may use only them)
/// can never probe a connector's credential.
fn credential(name: &str, key: &str, secrets: &Secrets) -> Result<String, String> {
    if is_webhook_secret(name) {
        return Err(format!(
            "`{key}` refers to `{name}`, a secret declared for webhooks (its name starts with `{SECRET_PREFIX}`); give the credential a secret of its own"
        ));
    }
    secrets.get(name).map(String::from).map_err(|e| e.to_string())
}

fn plain(table: &toml::Table, key: &str) -> Result<String, String> {
    table.get(key).and_then(toml::Value::as_str).map(String::from).ok_or_else(|| format!("auth needs `{key}`"))
}

fn http_auth(table: &toml::Table, secrets: &Secrets) -> Result<HttpAuth, String> {
    match table.get("type").and_then(toml::Value::as_str) {
        Some("bearer") => Ok(HttpAuth::Bearer { token: secret(table, "token", secrets)? }),
        Some("basic") => Ok(HttpAuth::Basic { user: plain(table, "user")?, password: secret(table, "password", secrets)? }),
        Some("api_key") => Ok(HttpAuth::ApiKey { header: plain(table, "header")?, value: secret(table, "value", secrets)? }),
        Some("oauth2") => Ok(HttpAuth::OAuth2ClientCredentials {
            token_url: plain(table, "token_url")?,
            client_id: plain(table, "client_id")?,
            client_secret: secret(table, "client_secret", secrets)?,
            scope: table.get("scope").and_then(toml::Value::as_str).map(String::from),
        }),
        Some(other) => Err(format!("auth `type` must be bearer, basic, api_key or oauth2, not `{other}`")),
        None => Err("auth needs a `type`: bearer, basic, api_key or oauth2".into()),
    }
}

fn http_config(c: &ConnectorConfig, secrets: &Secrets) -> Result<HttpConfig, String> {
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
            ("auth", toml::Value::Table(t)) => config.auth = Some(http_auth(t, secrets)?),
            (other, _) => return Err(format!("`{other}` is not an http setting, or has the wrong type")),
        }
    }
    Ok(config)
}

/// A credential setting of an `email` or `appio` instance: must be `"secret:NAME"`.
fn secret_setting(value: &toml::Value, key: &str, secrets: &Secrets) -> Result<String, String> {
    let name = value.as_str().and_then(|v| v.strip_prefix("secret:")).ok_or_else(|| {
        format!("`{key}` must refer to a secret (\"secret:NAME\" with NAME in [secrets]), not hold the credential itself")
    })?;
    credential(name, key, secrets)
}

fn email_config(c: &ConnectorConfig, secrets: &Secrets) -> Result<EmailConfig, String> {
    let mut config = EmailConfig::new("", "");
    for (key, value) in &c.settings {
        match (key.as_str(), value) {
            ("host", toml::Value::String(s)) => config.host = s.clone(),
            ("port", toml::Value::Integer(p)) => {
                config.port = Some(u16::try_from(*p).ok().filter(|p| *p > 0).ok_or_else(|| format!("port {p} is not a TCP port"))?)
            }
            ("tls", toml::Value::String(s)) => config.tls = SmtpTls::parse(s)?,
            ("user", toml::Value::String(s)) => config.user = Some(s.clone()),
            ("password", v) => config.password = Some(secret_setting(v, "password", secrets)?),
            ("from", toml::Value::String(s)) => config.from = s.clone(),
            ("timeout", toml::Value::String(s)) => config.timeout = pratica_engine::duration::parse_duration(s)?,
            (other, _) => return Err(format!("`{other}` is not an email setting, or has the wrong type")),
        }
    }
    for (value, key) in [(&config.host, "host"), (&config.from, "from")] {
        if value.trim().is_empty() {
            return Err(format!("an email connector needs `{key}`"));
        }
    }
    Ok(config)
}

fn appio_config(c: &ConnectorConfig, secrets: &Secrets) -> Result<AppIoConfig, String> {
    let mut config = AppIoConfig::new("");
    for (key, value) in &c.settings {
        match (key.as_str(), value) {
            ("base_url", toml::Value::String(s)) => config.base_url = s.clone(),
            ("api_key", v) => config.api_key = secret_setting(v, "api_key", secrets)?,
            ("timeout", toml::Value::String(s)) => config.timeout = pratica_engine::duration::parse_duration(s)?,
            (other, _) => return Err(format!("`{other}` is not an appio setting, or has the wrong type")),
        }
    }
    if config.api_key.is_empty() {
        return Err("an appio connector needs `api_key = \"secret:NAME\"` (the service's subscription key)".into());
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

    #[test]
    fn credentials_come_from_secrets_only() {
        let dir = std::env::temp_dir().join(format!("pratica-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "tok-from-file\n").unwrap();
        let with_secret = format!(
            "[secrets]\ninps-token = {{ file = \"{}\" }}\n[connectors.inps]\nkind = \"http\"\nbase_url = \"http://x\"\nauth = {{ type = \"bearer\", token = \"secret:inps-token\" }}\n",
            dir.join("token").display()
        );
        let registry = build_registry(&Config::parse(&with_secret).unwrap()).unwrap();
        assert_eq!(registry.secrets().redact("tok-from-file"), "***");
        let inline = "[connectors.inps]\nkind = \"http\"\nauth = { type = \"bearer\", token = \"plain-token\" }\n";
        let err = build_registry(&Config::parse(inline).unwrap()).unwrap_err().to_string();
        assert!(err.contains("must refer to a secret") && !err.contains("plain-token"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn webhook_secrets_are_never_connector_credentials() {
        let dir = std::env::temp_dir().join(format!("pratica-registry-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hook"), "hook-value").unwrap();
        let text = format!(
            "[secrets]\nwebhook-intake = {{ file = \"{}\" }}\n[connectors.inps]\nkind = \"http\"\nbase_url = \"http://x\"\nauth = {{ type = \"bearer\", token = \"secret:webhook-intake\" }}\n",
            dir.join("hook").display()
        );
        let err = build_registry(&Config::parse(&text).unwrap()).unwrap_err().to_string();
        assert!(err.contains("declared for webhooks") && !err.contains("hook-value"), "{err}");
        let appio = text.replace("[connectors.inps]\nkind = \"http\"\nbase_url = \"http://x\"\nauth = { type = \"bearer\", token = \"secret:webhook-intake\" }\n", "[connectors.appio]\nkind = \"appio\"\napi_key = \"secret:webhook-intake\"\n");
        assert!(build_registry(&Config::parse(&appio).unwrap()).unwrap_err().to_string().contains("declared for webhooks"));
        let only_declared = text.split("[connectors").next().unwrap().to_string();
        assert_eq!(build_registry(&Config::parse(&only_declared).unwrap()).unwrap().secrets().get("webhook-intake").unwrap(), "hook-value");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn builds_email_and_appio_instances_with_secret_credentials() {
        let dir = std::env::temp_dir().join(format!("pratica-registry-mail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("smtp"), "smtp-pass-1\n").unwrap();
        std::fs::write(dir.join("io"), "io-key-12345\n").unwrap();
        let secrets = format!(
            "[secrets]\nsmtp = {{ file = \"{}\" }}\nio = {{ file = \"{}\" }}\n",
            dir.join("smtp").display(),
            dir.join("io").display()
        );
        let email = "[connectors.email]\nkind = \"email\"\nhost = \"smtp.example.it\"\nport = 587\ntls = \"starttls\"\nuser = \"pratica\"\npassword = \"secret:smtp\"\nfrom = \"INPS <noreply@inps.example>\"\ntimeout = \"10s\"\n";
        let appio = "[connectors.appio]\nkind = \"appio\"\napi_key = \"secret:io\"\ntimeout = \"15s\"\n";
        let registry = build_registry(&Config::parse(&format!("{secrets}{email}{appio}")).unwrap()).unwrap();
        assert!(registry.get("email").is_some() && registry.get("appio").is_some());
        assert_eq!(registry.secrets().redact("smtp-pass-1 io-key-12345"), "*** ***");
        let plain = email.replace("secret:smtp", "hunter22");
        let e = build_registry(&Config::parse(&format!("{secrets}{plain}")).unwrap()).unwrap_err().to_string();
        assert!(e.contains("must refer to a secret") && !e.contains("hunter22"), "{e}");
        let plain = "[connectors.appio]\nkind = \"appio\"\napi_key = \"0123456789abcdef\"\n";
        let e = build_registry(&Config::parse(plain).unwrap()).unwrap_err().to_string();
        assert!(e.contains("must refer to a secret") && !e.contains("0123456789abcdef"), "{e}");
        let missing = "[connectors.email]\nkind = \"email\"\nhost = \"smtp.example.it\"\n";
        assert!(build_registry(&Config::parse(missing).unwrap()).unwrap_err().to_string().contains("needs `from`"));
        let typo = "[connectors.appio]\nkind = \"appio\"\napikey = \"secret:io\"\n";
        assert!(build_registry(&Config::parse(typo).unwrap()).unwrap_err().to_string().contains("apikey"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
