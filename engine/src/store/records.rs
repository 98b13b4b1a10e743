//! Rows as the store reads and writes them.

use crate::clock::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRow {
    pub name: String,
    pub version: i64,
    pub hash: String,
    pub source: String,
    pub deployed_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    pub id: String,
    pub workflow: String,
    pub version: i64,
    pub status: String,
    pub business_key: Option<String>,
    pub request_id: Option<String>,
    /// JSON text.
    pub input: String,
    /// JSON text of [`crate::runtime::InstanceState`].
    pub state: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub parent_id: Option<String>,
    pub parent_token: Option<i64>,
    pub parent_epoch: Option<i64>,
    pub started_at: Millis,
    pub updated_at: Millis,
    pub ended_at: Option<Millis>,
    pub history_seq: i64,
    pub history_head: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub instance_id: String,
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub step: Option<String>,
    /// JSON text.
    pub data: String,
    pub actor: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// A job to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub instance_id: String,
    pub token: i64,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    pub due_at: Millis,
    pub created_at: Millis,
    /// Set for external tasks: the topic external workers fetch from.
    pub topic: Option<String>,
}

/// Who holds an external task's lock: the API token that fetched it (by name) and the
/// worker name it declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder<'a> {
    pub token: &'a str,
    pub worker: &'a str,
}

/// An external task just locked, with its lock id.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedJob {
    pub job: Job,
    pub lock_id: String,
}

/// Who holds an external task's lock now (to explain why a result was refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLock {
    pub lock_id: Option<String>,
    pub locked_by: Option<String>,
    pub topic: String,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub instance_id: String,
    pub token: i64,
    pub kind: String,
    pub payload: String,
    pub due_at: Millis,
    pub fence: i64,
    pub topic: Option<String>,
    pub lease_until: Option<Millis>,
    /// How many times a worker has claimed this job (this claim included).
    pub claims: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub instance_id: String,
    pub token: i64,
    pub epoch: i64,
    pub step_id: String,
    pub status: String,
    pub title: String,
    pub description: Option<String>,
    pub assignee: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
    pub form: Option<String>,
    /// JSON arrays as text.
    pub outcomes: String,
    pub reason_required: String,
    pub excluded_actors: String,
    pub due_at: Option<Millis>,
    pub created_at: Millis,
    pub completed_by: Option<String>,
    pub completed_at: Option<Millis>,
    pub result: Option<String>,
    /// Who handed the task to its assignee last (`delegate`).
    pub delegated_by: Option<String>,
    /// When its escalation reassigned it.
    pub escalated_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub instance_id: String,
    pub token: i64,
    pub epoch: i64,
    pub message: String,
    pub key: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: String,
    pub name: String,
    pub key: String,
    pub payload: String,
    pub published_at: Millis,
    pub expires_at: Millis,
    pub consumed_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFilter {
    pub workflow: Option<String>,
    pub status: Option<String>,
    pub business_key: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub office: Option<String>,
    pub role: Option<String>,
    pub instance_id: Option<String>,
    pub limit: Option<i64>,
}
