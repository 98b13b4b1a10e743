//! What one transition produces: the [`Effect`]s for the outside world and the
//! [`HistoryEntry`]s to append, gathered in a [`Transition`]. The engine persists both in
//! the same transaction as the new state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::call::CallRequest;
use super::task::TaskRequest;
use crate::clock::Millis;
use crate::runtime::history_kind::HistoryKind;

/// Work for the outside world, persisted in the same transaction as the state.
///
/// Performing an effect is at least once (a crash after the side effect but before the
/// commit repeats it), so calls carry an idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// A connector call job, due at `due_at` (later than now for a retry).
    Call(CallRequest),
    /// A timer job that fires back as [`super::Event::TimerFired`] or
    /// [`super::Event::ReceiveTimedOut`] (its `purpose`).
    Timer { token: u32, epoch: u32, due_at: Millis, purpose: TimerPurpose },
    /// Wait for the message `message` correlated by `key` (or take one published earlier).
    Subscribe { token: u32, epoch: u32, message: String, key: String },
    /// A human task for an operator's inbox.
    CreateTask(Box<TaskRequest>),
    /// A child instance of `workflow`, whose end comes back as
    /// [`super::Event::ChildFinished`].
    StartChild { token: u32, epoch: u32, workflow: String, version: Option<u32>, input: Value },
    /// Drop the pending jobs, timers, subscriptions, tasks and child instances of tokens
    /// that no longer exist (cancelled siblings, a cancelled instance).
    Discard { tokens: Vec<u32> },
}

/// What a timer is for, so its firing becomes the right event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerPurpose {
    /// A `wait` step's due time.
    Wait,
    /// A `receive` step's timeout.
    ReceiveTimeout,
}

/// One line of the instance's audit history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub kind: HistoryKind,
    pub step: Option<String>,
    pub data: Value,
    pub actor: Option<String>,
}

/// Everything one event did to an instance besides changing its state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transition {
    pub effects: Vec<Effect>,
    pub history: Vec<HistoryEntry>,
}
