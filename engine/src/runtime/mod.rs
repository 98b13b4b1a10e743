//! The durable runtime: a pure state machine ([`machine`]) over persisted instance state
//! ([`state`]), driven by workers that claim jobs from the store.

pub mod machine;
pub mod state;

pub use machine::{CallError, CallRequest, Effect, Event, HistoryEntry, InstanceInfo, TaskRequest, Transition, apply};
pub use state::{InstanceState, Phase, StepError};
