//! Authentication and roles.
//!
//! Every `/api/v1` route needs `Authorization: Bearer prt_...`: an opaque random token
//! stored only as its SHA-256 (`pratica token create`). A missing, unknown or revoked token
//! is `401 unauthenticated`; a role without the permission is `403 forbidden`, naming what
//! is missing. `/healthz` and `/readyz` are open.
//!
//! | permission | admin | analyst | operator | worker | viewer |
//! |---|---|---|---|---|---|
//! | read workflows | ✓ | ✓ | ✓ | | ✓ |
//! | deploy / validate workflows | ✓ | ✓ | | | |
//! | read instances and history | ✓ | ✓ | ✓ | | ✓ |
//! | start, cancel, retry instances | ✓ | | | | |
//! | publish messages | ✓ | | | | |
//! | read tasks | ✓ | ✓ | visible | | ✓ |
//! | claim, unclaim, complete, delegate, comment on tasks | ✓ | | visible | | |
//! | external-task protocol | ✓ | | | ✓ | |
//!
//! A worker token may be limited to some external-task topics (`pratica token create --role
//! worker --topic naspi.scoring`, repeatable): it then fetches, completes, fails and extends
//! only tasks of those topics ([`WorkerTopics`]).
//!
//! An operator's visible tasks are those assigned to them and those of their offices whose
//! role is one of their task roles (or that name no role) — [`Caller::sees_task`]. An
//! operator never learns of other tasks: listing filters them out and any other access
//! answers 404, as for a task that does not exist.
//!
//! The same rule scopes every read of case data for operators ([`Caller::scope`]): an
//! operator reads an instance (its details, history, case file, instance page) only if one of
//! its tasks, in any status, is visible to them; any other instance is left out of lists and
//! searches and answers 404.
//!
//! Console users (`pratica user create`) have argon2id password hashes; [`verify_password`]
//! checks one.

use std::fmt;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use pratica_engine::store::{TaskRow, TaskVisibility};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;

/// The prefix of every API token, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "prt_";

/// What a token (or console user) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Analyst,
    Operator,
    Worker,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Analyst, Role::Operator, Role::Worker, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Operator => "operator",
            Role::Worker => "worker",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadWorkflows,
    DeployWorkflows,
    ReadInstances,
    ManageInstances,
    PublishMessages,
    ReadTasks,
    WorkTasks,
    ExternalTasks,
}

impl Permission {
    /// The roles that hold it.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Permission::ReadWorkflows => &[Admin, Analyst, Operator, Viewer],
            Permission::DeployWorkflows => &[Admin, Analyst],
            Permission::ReadInstances => &[Admin, Analyst, Operator, Viewer],
            Permission::ManageInstances => &[Admin],
            Permission::PublishMessages => &[Admin],
            Permission::ReadTasks => &[Admin, Analyst, Operator, Viewer],
            Permission::WorkTasks => &[Admin, Operator],
            Permission::ExternalTasks => &[Admin, Worker],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::ReadWorkflows => "read workflows",
            Permission::DeployWorkflows => "deploy or validate workflows",
            Permission::ReadInstances => "read instances",
            Permission::ManageInstances => "start, cancel or retry instances",
            Permission::PublishMessages => "publish messages",
            Permission::ReadTasks => "read tasks",
            Permission::WorkTasks => "claim or complete tasks",
            Permission::ExternalTasks => "use the external-task protocol",
        }
    }
}

/// The external-task topics the caller's API token is limited to (empty: any topic). Set
/// beside the [`Caller`] whenever a bearer token is authenticated; the external-task routes
/// refuse other topics with `403 topic_forbidden`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerTopics(pub Vec<String>);

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name: the actor recorded in history and task assignments.
    pub name: String,
    pub role: Role,
    /// For operators: the offices whose tasks they see and work.
    pub offices: Vec<String>,
    /// For operators: the task roles (candidate groups) whose tasks they see and work, e.g.
    /// `["naspi-operator", "payout-officer"]`.
    pub task_roles: Vec<String>,
}

impl Caller {
    /// `403 forbidden` unless the caller's role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        let roles = permission.roles();
        if roles.contains(&self.role) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "role `{}` may not {}: it needs one of the roles {}",
            self.role,
            permission.describe(),
            needed.join(", ")
        )))
    }

    /// The office scope of the caller's reads: `Some` for operators (they see the tasks, and
    /// the instances with a task, visible by the task-visibility rule), `None` for the roles
    /// that see everything they may read.
    pub fn scope(&self) -> Option<TaskVisibility> {
        match self.role {
            Role::Operator => {
                Some(TaskVisibility { user: self.name.clone(), offices: self.offices.clone(), task_roles: self.task_roles.clone() })
            }
            _ => None,
        }
    }

    /// Whether the caller may see (and, with [`Permission::WorkTasks`], work) `task`.
    /// Operators: a task assigned to them, or a task of one of their offices whose role is
    /// one of their task roles (or that names no role). Other roles see every task.
    pub fn sees_task(&self, task: &TaskRow) -> bool {
        match self.role {
            Role::Operator => {
                task.assignee.as_deref() == Some(self.name.as_str())
                    || (task.office.as_ref().is_some_and(|o| self.offices.contains(o))
                        && task.role.as_ref().is_none_or(|r| self.task_roles.contains(r)))
            }
            _ => true,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let (caller, topics) = authenticate(parts, state).await?;
        parts.extensions.insert(caller.clone());
        parts.extensions.insert(topics);
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Caller, WorkerTopics), ApiError> {
    let missing = || ApiError::Unauthenticated("send `Authorization: Bearer <token>` with an API token (`pratica token create`)".into());
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    let refused = || ApiError::Unauthenticated("the API token is unknown or revoked".into());
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Err(refused());
    }
    let row = state.engine().store().token_by_hash(&hash_token(token)).await.map_err(|e| ApiError::Internal(e.into()))?;
    let row = row.filter(|r| r.revoked_at.is_none()).ok_or_else(refused)?;
    let role = Role::parse(&row.role).ok_or_else(refused)?;
    let offices = serde_json::from_str(&row.offices).unwrap_or_default();
    let task_roles = serde_json::from_str(&row.task_roles).unwrap_or_default();
    // A topic list that cannot be read limits the token to no topic at all, never to all.
    let topics = serde_json::from_str(&row.topics).unwrap_or_else(|_| vec![String::new()]);
    Ok((Caller { name: row.name, role, offices, task_roles }, WorkerTopics(topics)))
}

/// Middleware for the external-task routes: worker or admin tokens only.
pub async fn require_external(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    caller.require(Permission::ExternalTasks)?;
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Creates a token named `name` (no task roles) and returns its text, which is shown only
/// this once.
pub async fn create_token(
    store: &pratica_engine::store::Store,
    name: &str,
    role: Role,
    offices: &[String],
    now: pratica_engine::clock::Millis,
) -> Result<String, pratica_engine::store::StoreError> {
    create_token_with_task_roles(store, name, role, offices, &[], now).await
}

/// Creates a token with task roles (the candidate groups of human tasks it may work).
pub async fn create_token_with_task_roles(
    store: &pratica_engine::store::Store,
    name: &str,
    role: Role,
    offices: &[String],
    task_roles: &[String],
    now: pratica_engine::clock::Millis,
) -> Result<String, pratica_engine::store::StoreError> {
    create_token_with_access(store, name, role, TokenAccess { offices, task_roles, topics: &[] }, now).await
}

/// What a new token may reach besides its role: offices and task roles (operators), and the
/// external-task topics (workers; empty: any).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenAccess<'a> {
    pub offices: &'a [String],
    pub task_roles: &'a [String],
    pub topics: &'a [String],
}

/// Creates a token with its offices, task roles and topics, and returns its text.
pub async fn create_token_with_access(
    store: &pratica_engine::store::Store,
    name: &str,
    role: Role,
    access: TokenAccess<'_>,
    now: pratica_engine::clock::Millis,
) -> Result<String, pratica_engine::store::StoreError> {
    let TokenAccess { offices, task_roles, topics } = access;
    let token = generate_token();
    let row = pratica_engine::store::TokenRow {
        name: name.to_string(),
        hash: hash_token(&token),
        role: role.as_str().to_string(),
        offices: serde_json::to_string(offices).expect("strings serialize"),
        task_roles: serde_json::to_string(task_roles).expect("strings serialize"),
        topics: serde_json::to_string(topics).expect("strings serialize"),
        created_at: now,
        revoked_at: None,
    };
    store.insert_token(&row).await?;
    Ok(token)
}

/// A new token: `prt_` and 32 random bytes, base64url without padding.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: SHA-256 of its text, hex encoded.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id hash (default parameters, random salt) of a console password, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let hash: PasswordHash = Argon2::default().hash_password(password.as_bytes()).map_err(|e| format!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash (false for a malformed hash).
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_text() {
        let stored = hash_password("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_password("correct horse battery staple", &stored));
        assert!(!verify_password("Correct horse battery staple", &stored));
        assert!(!verify_password("anything", "not a hash"));
        assert_ne!(stored, hash_password("correct horse battery staple").unwrap(), "a random salt each time");
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let (a, b) = (generate_token(), generate_token());
        assert!(a.starts_with("prt_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn operators_see_only_their_offices_tasks_and_roles_name_what_is_missing() {
        let op = Caller { name: "op".into(), role: Role::Operator, offices: vec!["RM1".into()], task_roles: vec![] };
        assert!(op.require(Permission::WorkTasks).is_ok());
        let refused = op.require(Permission::DeployWorkflows).unwrap_err();
        assert!(refused.to_string().contains("deploy"), "{refused}");
        let viewer = Caller { name: "v".into(), role: Role::Viewer, offices: vec![], task_roles: vec![] };
        assert!(viewer.require(Permission::WorkTasks).is_err());
        assert!(viewer.require(Permission::ReadTasks).is_ok());
        assert!(Role::ALL.iter().all(|r| Role::parse(r.as_str()) == Some(*r)));
    }
}
