//! The case file ("fascicolo") of a business key — usually a citizen's codice fiscale —
//! across every workflow: its instances with their tasks and timelines, and the messages
//! correlated with the key.
//!
//! Operators get the office scope: only keys, instances and tasks visible to them (an
//! instance is visible when one of its tasks is), and only the messages consumed by those
//! instances. Another office's citizen is not found, as a key that does not exist.

use pratica_engine::store::{HistoryRow, InstanceFilter, InstanceRow, MessageRow, TaskFilter, TaskRow};

use super::{AppError, AppState, Caller, Permission};

/// Most keys a search lists.
pub const MAX_KEYS: i64 = 50;
/// Most instances, messages and tasks per instance a case file shows.
const MAX_ROWS: i64 = 500;

/// A case file: what happened to one business key.
#[derive(Debug)]
pub struct CaseFile {
    pub instances: Vec<CaseInstance>,
    pub messages: Vec<MessageRow>,
}

/// One instance of a case file, with the tasks the caller may see and its timeline.
#[derive(Debug)]
pub struct CaseInstance {
    pub instance: InstanceRow,
    pub tasks: Vec<TaskRow>,
    pub history: Vec<HistoryRow>,
}

/// The business keys starting with `text` (case-insensitive) that the caller may see.
pub async fn search(state: &AppState, caller: &Caller, text: &str) -> Result<Vec<String>, AppError> {
    caller.require(Permission::ReadInstances)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let scope = caller.scope();
    state.engine().store().business_keys_starting_with(text, MAX_KEYS, scope.as_ref()).await.map_err(AppError::internal)
}

/// The case file of `key`, within the caller's scope.
pub async fn case_file(state: &AppState, caller: &Caller, key: &str) -> Result<CaseFile, AppError> {
    caller.require(Permission::ReadInstances)?;
    let store = state.engine().store();
    let filter = InstanceFilter { business_key: Some(key.to_string()), limit: Some(MAX_ROWS), ..Default::default() };
    let mut instances = store.instances(&filter).await.map_err(AppError::internal)?;
    let mut messages = store.messages_with_key(key, MAX_ROWS).await.map_err(AppError::internal)?;
    if let Some(to) = &caller.scope() {
        let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        let visible = store.visible_instances(&ids, to).await.map_err(AppError::internal)?;
        instances.retain(|i| visible.contains(&i.id));
        messages.retain(|m| m.consumed_by.as_ref().is_some_and(|id| visible.contains(id)));
    }
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        let history = store.history(&instance.id).await.map_err(AppError::internal)?;
        let tasks = visible_tasks_of(state, caller, &instance.id).await?;
        out.push(CaseInstance { instance, tasks, history });
    }
    Ok(CaseFile { instances: out, messages })
}

/// The tasks of instance `id` that the caller may see (the case file and the instance page).
pub async fn visible_tasks_of(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TaskRow>, AppError> {
    let filter = TaskFilter { instance_id: Some(id.to_string()), limit: Some(MAX_ROWS), ..Default::default() };
    let tasks = state.engine().store().tasks(&filter).await.map_err(AppError::internal)?;
    Ok(tasks.into_iter().filter(|task| caller.sees_task(task)).collect())
}
