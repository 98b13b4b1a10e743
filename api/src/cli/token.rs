//! `pratica token create|list|revoke` (API tokens) and `pratica user create` (console users),
//! each with its offices and task roles (`--office`, `--task-role`, repeatable); worker
//! tokens may be limited to external-task topics (`--topic`, repeatable).

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::store::{Store, StoreError, UserRow};

use crate::app::Role;
use crate::app::credentials;

fn parse_role(role: &str) -> anyhow::Result<Role> {
    Role::parse(role).with_context(|| {
        format!("unknown role `{role}`: use one of {}", Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))
    })
}

fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        bail!("{what} `{name}`: use 1 to 100 letters, digits, `-`, `_`, `.` or `@`");
    }
    Ok(())
}

fn check_offices(role: Role, offices: &[String]) -> anyhow::Result<()> {
    if role == Role::Operator && offices.is_empty() {
        bail!("an operator needs at least one --office");
    }
    Ok(())
}

fn check_task_roles(task_roles: &[String]) -> anyhow::Result<()> {
    for r in task_roles {
        if r.is_empty() || r.len() > 100 || !r.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("task role `{r}`: use 1 to 100 letters, digits, `-`, `_` or `.`");
        }
    }
    Ok(())
}

fn check_topics(role: Role, topics: &[String]) -> anyhow::Result<()> {
    if !topics.is_empty() && role != Role::Worker {
        bail!("--topic limits worker tokens; a `{role}` token cannot have topics");
    }
    for t in topics {
        if t.is_empty() || t.len() > 200 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("topic `{t}`: use 1 to 200 characters without spaces");
        }
    }
    Ok(())
}

/// The offices and task roles of a token or user.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub offices: &'a [String],
    pub task_roles: &'a [String],
}

/// Creates a token and prints it (the only time it is shown). `topics` limits a worker
/// token to those external-task topics (empty: any).
pub async fn create(
    store: &Store,
    name: &str,
    role: &str,
    access: credentials::TokenAccess<'_>,
    now: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    check_name("token name", name)?;
    let role = parse_role(role)?;
    check_offices(role, access.offices)?;
    check_task_roles(access.task_roles)?;
    check_topics(role, access.topics)?;
    let token = match credentials::create_token_with_access(store, name, role, access, now).await {
        Err(StoreError::Conflict { .. }) => bail!("a token named `{name}` already exists"),
        other => other?,
    };
    writeln!(out, "{token}")?;
    Ok(())
}

/// Lists tokens by name (never their text).
pub async fn list(store: &Store, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "{:<24} {:<9} {:<16} {:<24} {:<24} {:<25} revoked", "name", "role", "offices", "task roles", "topics", "created")?;
    let list = |json: &str| {
        let items: Vec<String> = serde_json::from_str(json).unwrap_or_default();
        if items.is_empty() { "-".to_string() } else { items.join(",") }
    };
    for t in store.tokens().await? {
        let (offices, task_roles, topics) = (list(&t.offices), list(&t.task_roles), list(&t.topics));
        let revoked = t.revoked_at.map(to_rfc3339).unwrap_or_else(|| "-".into());
        let created = to_rfc3339(t.created_at);
        writeln!(out, "{:<24} {:<9} {:<16} {:<24} {:<24} {created:<25} {revoked}", t.name, t.role, offices, task_roles, topics)?;
    }
    Ok(())
}

/// Revokes a token by name; it is refused from then on.
pub async fn revoke(store: &Store, name: &str, now: i64, out: &mut impl Write) -> anyhow::Result<()> {
    if !store.revoke_token(name, now).await? {
        bail!("no active token named `{name}`");
    }
    writeln!(out, "revoked {name}")?;
    Ok(())
}

/// Creates a console user with the password read from the first line of `password_input`.
pub async fn create_user(
    store: &Store,
    username: &str,
    role: &str,
    access: Access<'_>,
    password_input: impl BufRead,
    now: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    check_name("user name", username)?;
    let role = parse_role(role)?;
    check_offices(role, access.offices)?;
    check_task_roles(access.task_roles)?;
    let password = password_input.lines().next().transpose()?.unwrap_or_default();
    if password.chars().count() < 12 {
        bail!("the password must be at least 12 characters");
    }
    let row = UserRow {
        username: username.to_string(),
        password_hash: credentials::hash_password(&password).map_err(anyhow::Error::msg)?,
        role: role.as_str().to_string(),
        offices: serde_json::to_string(access.offices)?,
        task_roles: serde_json::to_string(access.task_roles)?,
        created_at: now,
        disabled_at: None,
    };
    match store.insert_user(&row).await {
        Err(StoreError::Conflict { .. }) => bail!("a user named `{username}` already exists"),
        other => other?,
    }
    writeln!(out, "created user {username} ({role})")?;
    Ok(())
}
