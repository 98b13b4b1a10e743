//! The durable runtime: a pure state machine ([`machine`]) over persisted instance state
//! ([`state`]); the [`Engine`] commits each event as one transaction of state, history and
//! effects; workers ([`worker`]) claim due jobs with leases and commit results only while
//! the lease is held.

mod engine;
mod external;
pub mod history_kind;
pub mod machine;
pub mod state;
mod tasks;
mod worker;

pub use engine::{Delivery, Deployment, Engine, EngineConfig, EngineError, Published, StartRequest, Started, TaskCompletion, status_of};
pub use external::{ExternalFailure, ExternalRefusal, ExternalTask, ExternalWorker};
pub use history_kind::HistoryKind;
pub use machine::{
    CallError, CallRequest, Effect, Event, HistoryEntry, IdSource, InstanceInfo, TaskEscalation, TaskNotification, TaskRequest, Transition,
    UuidV7Ids, apply,
};
pub use state::{InstanceState, Phase, StepError};
pub use tasks::{MAX_COMMENT_CHARS, TaskActor, TaskComment, TaskRefusal};
pub use worker::{Pass, output_of};
