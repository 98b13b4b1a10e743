//! Messages for a caller: publish one to the instance waiting for it (or keep it until one
//! waits).

use pratica_engine::runtime::Delivery;
use serde_json::Value;

use super::{AppError, AppState, Caller, Permission};

/// Longest message name or correlation key, in bytes.
pub const MAX_NAME_LEN: usize = 500;

/// Publishes the message `name` with correlation `key`: delivered to the instance waiting for
/// it, or kept until one waits (or it expires).
pub async fn publish(state: &AppState, caller: &Caller, name: &str, key: &str, payload: Value) -> Result<Delivery, AppError> {
    caller.require(Permission::PublishMessages)?;
    for (field, value) in [("name", name), ("key", key)] {
        if value.trim().is_empty() || value.len() > MAX_NAME_LEN {
            return Err(AppError::invalid_field(field, format!("`{field}` must be 1 to 500 bytes of text")));
        }
    }
    Ok(state.engine().publish(name, key, payload).await?)
}
