//! Who acts: roles, the permissions each role holds, and the [`Caller`] of a use-case.
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
//! A worker token may be limited to some external-task topics ([`WorkerTopics`]).
//!
//! An operator's visible tasks are those assigned to them and those of their offices whose
//! role is one of their task roles (or that name no role) — [`Caller::sees_task`]. An
//! operator never learns of other tasks: listing filters them out and any other access
//! answers not found, as for a task that does not exist. The same rule scopes every read of
//! case data for operators ([`Caller::scope`]): an operator reads an instance only if one of
//! its tasks, in any status, is visible to them.

use std::fmt;

use pratica_engine::store::{TaskRow, TaskVisibility};
use serde::{Deserialize, Serialize};

use super::AppError;

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
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Admin, Role::Analyst, Role::Operator, Role::Worker, Role::Viewer];

    /// The role's name (`admin`, `operator`, …), as stored and as `--role` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Operator => "operator",
            Role::Worker => "worker",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `s`, if any.
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
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        let roles = permission.roles();
        if roles.contains(&self.role) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(AppError::Forbidden(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

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
