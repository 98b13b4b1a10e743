//! Instances for a caller: start, read within the office scope, list, cancel, retry, history.
//!
//! **Office scope.** Operators read only the instances with a task (any status) visible to
//! them by the task-visibility rule ([`Caller::scope`]): any other instance is
//! [`AppError::NotFound`], as one that does not exist, and is left out of lists.

use pratica_engine::runtime::{EngineError, InstanceState, StartRequest, Started};
use pratica_engine::store::{HistoryRow, InstanceQuery, InstanceRow, StoreError};

use super::{AppError, AppState, Caller, Permission};

/// Longest `request_id` of a start.
pub const MAX_REQUEST_ID: usize = 200;

/// Starts an instance; with a `request_id`, a repeated start answers the first instance.
pub async fn start(state: &AppState, caller: &Caller, request: StartRequest) -> Result<Started, AppError> {
    caller.require(Permission::ManageInstances)?;
    if request.workflow.trim().is_empty() {
        return Err(AppError::invalid_field("workflow", "`workflow` must not be empty"));
    }
    if let Some(rid) = &request.request_id
        && (rid.is_empty() || rid.len() > MAX_REQUEST_ID)
    {
        return Err(AppError::invalid_field("request_id", "`request_id` must be 1 to 200 bytes"));
    }
    Ok(state.engine().start(request).await?)
}

/// One instance the caller may read.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<InstanceRow, AppError> {
    caller.require(Permission::ReadInstances)?;
    visible(state, caller, id).await
}

/// The instances matching `query` that the caller may read (operators: those with a task
/// visible to them, whatever `query.visible_to` said).
pub async fn list(state: &AppState, caller: &Caller, query: InstanceQuery) -> Result<Vec<InstanceRow>, AppError> {
    caller.require(Permission::ReadInstances)?;
    let query = InstanceQuery { visible_to: caller.scope(), ..query };
    state.engine().store().instances_page(&query).await.map_err(AppError::internal)
}

/// Cancels an instance: pending work is dropped and open tasks withdrawn.
pub async fn cancel(state: &AppState, caller: &Caller, id: &str, reason: &str) -> Result<(), AppError> {
    caller.require(Permission::ManageInstances)?;
    load(state, id).await?;
    Ok(state.engine().cancel(id, &caller.name, reason).await?)
}

/// Runs a failed instance again from the top-level step that failed
/// ([`AppError::NotRetryable`] when it is not failed or its failure was compensated).
pub async fn retry(state: &AppState, caller: &Caller, id: &str) -> Result<(), AppError> {
    caller.require(Permission::ManageInstances)?;
    load(state, id).await?;
    match state.engine().retry(id, &caller.name).await {
        Ok(()) => Ok(()),
        Err(EngineError::Invalid(detail)) => Err(AppError::NotRetryable(detail)),
        Err(e) => Err(e.into()),
    }
}

/// The instance's audit history, oldest first (within the office scope, as for the instance).
pub async fn history(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<HistoryRow>, AppError> {
    caller.require(Permission::ReadInstances)?;
    visible(state, caller, id).await?;
    state.engine().store().history(id).await.map_err(AppError::internal)
}

/// The instance `id` if `caller` may read it: operators only an instance with a task visible
/// to them; an instance outside their scope is [`AppError::NotFound`], exactly as one that
/// does not exist. Checks no permission: callers check [`Permission::ReadInstances`] first.
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<InstanceRow, AppError> {
    let row = load(state, id).await?;
    if let Some(to) = caller.scope() {
        let visible = state.engine().store().visible_instances(std::slice::from_ref(&row.id), &to).await;
        if !visible.map_err(AppError::internal)?.contains(&row.id) {
            return Err(not_found(id));
        }
    }
    Ok(row)
}

/// The step ids the instance is at (waiting or about to run), from its stored state; empty
/// for a finished instance or one whose state or plan cannot be read.
pub async fn current_steps(state: &AppState, row: &InstanceRow) -> Vec<String> {
    let Ok(instance_state) = serde_json::from_str::<InstanceState>(&row.state) else { return Vec::new() };
    if instance_state.phase.is_finished() {
        return Vec::new();
    }
    let Ok(plan) = state.engine().plan(&row.workflow, Some(row.version as u32)).await else { return Vec::new() };
    let mut steps: Vec<String> =
        instance_state.tokens.values().filter_map(|t| plan.steps.get(t.at.0 as usize).map(|s| s.id.clone())).collect();
    steps.dedup();
    steps
}

async fn load(state: &AppState, id: &str) -> Result<InstanceRow, AppError> {
    match state.engine().store().instance(id).await {
        Ok(row) => Ok(row),
        Err(StoreError::NotFound { .. }) => Err(not_found(id)),
        Err(e) => Err(AppError::internal(e)),
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("instance `{id}` not found"))
}
