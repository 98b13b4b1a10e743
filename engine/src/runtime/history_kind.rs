//! Every kind of entry an instance's history can hold, in one list.
//!
//! The dotted names (`instance.started`, `call.scheduled`, …) are what the store keeps, what
//! the audit hash chain covers and what the console, the scenario runner and the tests
//! compare: they never change. [`HistoryKind::as_str`], [`Display`](std::fmt::Display),
//! [`FromStr`](std::str::FromStr) and serde all speak exactly those names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a history entry records. Each variant's stored name is given first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HistoryKind {
    /// `instance.triggered`: a cron or webhook trigger started the instance (what fired it).
    #[serde(rename = "instance.triggered")]
    InstanceTriggered,
    /// `instance.started`: the instance began, with its input and business key.
    #[serde(rename = "instance.started")]
    InstanceStarted,
    /// `instance.completed`: the top-level flow ended, with the workflow's output.
    #[serde(rename = "instance.completed")]
    InstanceCompleted,
    /// `instance.failed`: the instance ended with an uncaught (or compensated) error.
    #[serde(rename = "instance.failed")]
    InstanceFailed,
    /// `instance.cancelled`: an operator cancelled the instance, with the reason.
    #[serde(rename = "instance.cancelled")]
    InstanceCancelled,
    /// `instance.retried`: a failed instance runs again from the step that failed.
    #[serde(rename = "instance.retried")]
    InstanceRetried,
    /// `call.scheduled`: a connector call was scheduled, with its input and idempotency key.
    #[serde(rename = "call.scheduled")]
    CallScheduled,
    /// `call.failed`: one attempt of a connector call failed (code, message, retryable).
    #[serde(rename = "call.failed")]
    CallFailed,
    /// `call.retry_scheduled`: the next attempt of a failed call, and when it is due.
    #[serde(rename = "call.retry_scheduled")]
    CallRetryScheduled,
    /// `step.completed`: a step finished, with its output.
    #[serde(rename = "step.completed")]
    StepCompleted,
    /// `step.failed`: a step failed, and whether one of its `catch` clauses caught it.
    #[serde(rename = "step.failed")]
    StepFailed,
    /// `switch.chose`: a `switch` picked the step it goes to next.
    #[serde(rename = "switch.chose")]
    SwitchChose,
    /// `parallel.started`: a `parallel` step forked its branches.
    #[serde(rename = "parallel.started")]
    ParallelStarted,
    /// `foreach.started`: a `foreach` step began, with its number of items and concurrency.
    #[serde(rename = "foreach.started")]
    ForeachStarted,
    /// `timer.armed`: a `wait` step set its timer, with the due time.
    #[serde(rename = "timer.armed")]
    TimerArmed,
    /// `timer.fired`: a `wait` step's timer came due.
    #[serde(rename = "timer.fired")]
    TimerFired,
    /// `message.awaited`: a `receive` step subscribed to a message and correlation key.
    #[serde(rename = "message.awaited")]
    MessageAwaited,
    /// `message.received`: the awaited message arrived, with its payload.
    #[serde(rename = "message.received")]
    MessageReceived,
    /// `message.timed_out`: a `receive` step's timeout passed before the message came.
    #[serde(rename = "message.timed_out")]
    MessageTimedOut,
    /// `task.created`: a human task was created, with everything the inbox shows.
    #[serde(rename = "task.created")]
    TaskCreated,
    /// `task.claimed`: an operator took a task.
    #[serde(rename = "task.claimed")]
    TaskClaimed,
    /// `task.unclaimed`: a task went back to its queue (from whom).
    #[serde(rename = "task.unclaimed")]
    TaskUnclaimed,
    /// `task.delegated`: a task was handed from one operator to another.
    #[serde(rename = "task.delegated")]
    TaskDelegated,
    /// `task.commented`: an operator commented on a task.
    #[serde(rename = "task.commented")]
    TaskCommented,
    /// `task.escalated`: an open task passed its escalation time and moved role or office.
    #[serde(rename = "task.escalated")]
    TaskEscalated,
    /// `task.notified`: a task's notification hook (`assigned`, `escalated`) was delivered.
    #[serde(rename = "task.notified")]
    TaskNotified,
    /// `task.notification_failed`: a notification hook could not be rendered or delivered.
    #[serde(rename = "task.notification_failed")]
    TaskNotificationFailed,
    /// `task.completed`: an operator completed a task, with its output.
    #[serde(rename = "task.completed")]
    TaskCompleted,
    /// `child.started`: a sub-workflow instance was started, with its input.
    #[serde(rename = "child.started")]
    ChildStarted,
    /// `compensation.started`: an uncaught failure began undoing completed steps.
    #[serde(rename = "compensation.started")]
    CompensationStarted,
    /// `compensation.step`: the compensation of one completed step began.
    #[serde(rename = "compensation.step")]
    CompensationStep,
    /// `external.completed`: an external worker reported a call's success.
    #[serde(rename = "external.completed")]
    ExternalCompleted,
    /// `external.failed`: an external worker reported a call's failure.
    #[serde(rename = "external.failed")]
    ExternalFailed,
}

impl HistoryKind {
    /// Every kind, in the order of the list above.
    pub const ALL: [HistoryKind; 33] = [
        Self::InstanceTriggered,
        Self::InstanceStarted,
        Self::InstanceCompleted,
        Self::InstanceFailed,
        Self::InstanceCancelled,
        Self::InstanceRetried,
        Self::CallScheduled,
        Self::CallFailed,
        Self::CallRetryScheduled,
        Self::StepCompleted,
        Self::StepFailed,
        Self::SwitchChose,
        Self::ParallelStarted,
        Self::ForeachStarted,
        Self::TimerArmed,
        Self::TimerFired,
        Self::MessageAwaited,
        Self::MessageReceived,
        Self::MessageTimedOut,
        Self::TaskCreated,
        Self::TaskClaimed,
        Self::TaskUnclaimed,
        Self::TaskDelegated,
        Self::TaskCommented,
        Self::TaskEscalated,
        Self::TaskNotified,
        Self::TaskNotificationFailed,
        Self::TaskCompleted,
        Self::ChildStarted,
        Self::CompensationStarted,
        Self::CompensationStep,
        Self::ExternalCompleted,
        Self::ExternalFailed,
    ];

    /// The stored name, e.g. `"instance.started"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InstanceTriggered => "instance.triggered",
            Self::InstanceStarted => "instance.started",
            Self::InstanceCompleted => "instance.completed",
            Self::InstanceFailed => "instance.failed",
            Self::InstanceCancelled => "instance.cancelled",
            Self::InstanceRetried => "instance.retried",
            Self::CallScheduled => "call.scheduled",
            Self::CallFailed => "call.failed",
            Self::CallRetryScheduled => "call.retry_scheduled",
            Self::StepCompleted => "step.completed",
            Self::StepFailed => "step.failed",
            Self::SwitchChose => "switch.chose",
            Self::ParallelStarted => "parallel.started",
            Self::ForeachStarted => "foreach.started",
            Self::TimerArmed => "timer.armed",
            Self::TimerFired => "timer.fired",
            Self::MessageAwaited => "message.awaited",
            Self::MessageReceived => "message.received",
            Self::MessageTimedOut => "message.timed_out",
            Self::TaskCreated => "task.created",
            Self::TaskClaimed => "task.claimed",
            Self::TaskUnclaimed => "task.unclaimed",
            Self::TaskDelegated => "task.delegated",
            Self::TaskCommented => "task.commented",
            Self::TaskEscalated => "task.escalated",
            Self::TaskNotified => "task.notified",
            Self::TaskNotificationFailed => "task.notification_failed",
            Self::TaskCompleted => "task.completed",
            Self::ChildStarted => "child.started",
            Self::CompensationStarted => "compensation.started",
            Self::CompensationStep => "compensation.step",
            Self::ExternalCompleted => "external.completed",
            Self::ExternalFailed => "external.failed",
        }
    }
}

impl fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored name that is not one of [`HistoryKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a history kind")]
pub struct UnknownHistoryKind(pub String);

impl FromStr for HistoryKind {
    type Err = UnknownHistoryKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| UnknownHistoryKind(name.to_string()))
    }
}

impl From<HistoryKind> for String {
    fn from(kind: HistoryKind) -> Self {
        kind.as_str().to_string()
    }
}

impl PartialEq<str> for HistoryKind {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for HistoryKind {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl PartialEq<HistoryKind> for str {
    fn eq(&self, kind: &HistoryKind) -> bool {
        self == kind.as_str()
    }
}

impl PartialEq<HistoryKind> for String {
    fn eq(&self, kind: &HistoryKind) -> bool {
        self.as_str() == kind.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_display_and_from_str_use_the_stored_names() {
        for kind in HistoryKind::ALL {
            let name = kind.as_str();
            assert_eq!(serde_json::to_value(kind).expect("a kind serializes"), serde_json::Value::String(name.into()));
            assert_eq!(serde_json::from_value::<HistoryKind>(name.into()).expect("a name deserializes"), kind);
            assert_eq!(kind.to_string(), name);
            assert_eq!(name.parse::<HistoryKind>(), Ok(kind));
        }
        assert!("instance.begun".parse::<HistoryKind>().is_err());
    }

    #[test]
    fn the_list_has_every_kind_once() {
        let mut names: Vec<&str> = HistoryKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HistoryKind::ALL.len());
    }

    #[test]
    fn the_names_existing_histories_hold_are_unchanged() {
        let stored = [
            (HistoryKind::InstanceStarted, "instance.started"),
            (HistoryKind::CallRetryScheduled, "call.retry_scheduled"),
            (HistoryKind::MessageTimedOut, "message.timed_out"),
            (HistoryKind::TaskNotificationFailed, "task.notification_failed"),
            (HistoryKind::CompensationStep, "compensation.step"),
            (HistoryKind::ExternalCompleted, "external.completed"),
        ];
        for (kind, name) in stored {
            assert_eq!(kind.as_str(), name);
        }
    }
}
