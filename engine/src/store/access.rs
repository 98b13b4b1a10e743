//! Rows and queries of the HTTP API: API tokens, console users, and the paged instance and
//! task listings.

use crate::clock::Millis;

/// An API token: only the SHA-256 of its text is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub name: String,
    /// SHA-256 of the token text, hex encoded.
    pub hash: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of the task roles (candidate groups) whose human tasks it may work.
    pub task_roles: String,
    /// JSON array of the external-task topics it may fetch and complete (empty: any).
    pub topics: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// A console user with an argon2id password hash (PHC string).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub username: String,
    pub password_hash: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of the task roles (candidate groups) whose human tasks the user may work.
    pub task_roles: String,
    pub created_at: Millis,
    pub disabled_at: Option<Millis>,
}

/// An active console user or API token by name (users first): who a task can be delegated to.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub role: String,
    /// JSON array of office codes.
    pub offices: String,
    /// JSON array of task roles.
    pub task_roles: String,
}

/// A page of instances, ordered by `(started_at, id)`; `after` is the last row of the
/// previous page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceQuery {
    pub workflow: Option<String>,
    pub version: Option<i64>,
    pub status: Option<String>,
    pub business_key: Option<String>,
    pub started_after: Option<Millis>,
    pub started_before: Option<Millis>,
    pub ended_after: Option<Millis>,
    pub ended_before: Option<Millis>,
    pub after: Option<(Millis, String)>,
    pub limit: i64,
    /// `Some`: only instances with a task visible to this operator (the office scope).
    pub visible_to: Option<TaskVisibility>,
}

/// Tasks by status, offices (any of), role and assignee.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    pub status: Option<String>,
    /// `Some(list)`: only tasks of one of these offices (an empty list matches nothing).
    pub offices: Option<Vec<String>>,
    pub role: Option<String>,
    pub assignee: Option<String>,
    pub limit: i64,
}

/// The statuses an instance can have (`instances.status`).
pub const INSTANCE_STATUSES: [&str; 5] = ["running", "compensating", "completed", "failed", "cancelled"];

/// The statuses a human task can have (`tasks.status`).
pub const TASK_STATUSES: [&str; 4] = ["open", "claimed", "completed", "cancelled"];

/// Who an operator is, for [`super::Store::tasks_visible`] and the office scope of instances
/// ([`super::Store::visible_instances`], [`InstanceQuery::visible_to`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskVisibility {
    pub user: String,
    pub offices: Vec<String>,
    pub task_roles: Vec<String>,
}
