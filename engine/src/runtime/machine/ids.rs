//! Where the machine's new ids come from. The machine never mints ids itself, so a
//! transition is a function of its inputs: the engine passes [`UuidV7Ids`], tests pass a
//! counter.

/// A source of new, unique ids (a human task's id, chosen when the task is created).
pub trait IdSource {
    /// The next id; never one handed out before.
    fn next_id(&mut self) -> String;
}

/// Time-ordered UUIDv7 strings: the ids the engine stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    fn next_id(&mut self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
}
