//! Human tasks for a caller: list, read, claim, unclaim, delegate, comment, complete.
//!
//! Operators see (and work) a task assigned to them, and the tasks of their offices whose
//! role is one of their task roles or that name no role ([`Caller::sees_task`]). A task an
//! operator may not see is [`AppError::NotFound`], exactly as a task that does not exist.
//! Every action is recorded by the engine in the instance history with the caller as actor.

use pratica_engine::runtime::{EngineError, TaskActor, TaskComment, TaskCompletion, TaskRefusal};
use pratica_engine::schemas::{SchemaError, SchemaSet};
use pratica_engine::store::{StoreError, TaskQuery, TaskRow};
use serde_json::Value;

use super::error::FieldError;
use super::{AppError, AppState, Caller, Permission, Role};

/// Most tasks one list answers.
pub const MAX_TASKS: i64 = 500;

/// The tasks matching `query` that `caller` may see: for operators, those assigned to them or
/// in their offices with one of their task roles (in SQL); everyone else sees all.
pub async fn list(state: &AppState, caller: &Caller, query: &TaskQuery) -> Result<Vec<TaskRow>, AppError> {
    caller.require(Permission::ReadTasks)?;
    let store = state.engine().store();
    let rows = match caller.scope() {
        Some(to) => store.tasks_visible(query, &to).await,
        None => store.tasks_matching(query).await,
    };
    rows.map_err(AppError::internal)
}

/// One task the caller may read.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, AppError> {
    caller.require(Permission::ReadTasks)?;
    visible(state, caller, id).await
}

/// Claims a task for the caller ([`AppError::TaskClaimed`] if someone else holds it).
/// Claiming a task one already holds is a no-op.
pub async fn claim(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, AppError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().claim_task(id, &actor(caller, &sees)).await.map_err(refusal)
}

/// Puts a task back in its queue (its holder, or an admin).
pub async fn unclaim(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, AppError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().unclaim_task(id, &actor(caller, &sees)).await.map_err(refusal)
}

/// Completes a task: the form is checked against its schema ([`AppError::InvalidForm`]), then
/// the engine checks the holder, the outcome, the reason and separation of duties.
pub async fn complete(state: &AppState, caller: &Caller, id: &str, completion: TaskCompletion) -> Result<(), AppError> {
    caller.require(Permission::WorkTasks)?;
    let task = visible(state, caller, id).await?;
    check_workable(&task)?;
    if let Some(holder) = task.assignee.as_deref().filter(|a| *a != caller.name && caller.role != Role::Admin) {
        return Err(claimed_by(id, holder));
    }
    if let Some(form) = task.form.as_deref() {
        check_form(state.schemas(), form, &completion.form)?;
    }
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().complete_task_as(id, &actor(caller, &sees), completion).await.map_err(refusal)
}

/// Hands a task to the user `to` (see [`pratica_engine::runtime::Engine::delegate_task`] for
/// the rule).
pub async fn delegate(state: &AppState, caller: &Caller, id: &str, to: &str) -> Result<TaskRow, AppError> {
    caller.require(Permission::WorkTasks)?;
    let to = to.trim();
    if to.is_empty() {
        return Err(AppError::invalid_field("to", "`to` must name a user"));
    }
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().delegate_task(id, &actor(caller, &sees), to).await.map_err(refusal)
}

/// Comments on a task the caller may work (also on a closed task).
pub async fn comment(state: &AppState, caller: &Caller, id: &str, text: &str) -> Result<(), AppError> {
    caller.require(Permission::WorkTasks)?;
    let sees = |t: &TaskRow| caller.sees_task(t);
    state.engine().comment_task(id, &actor(caller, &sees), text).await.map_err(refusal)
}

/// The comments on a task the caller may see, oldest first.
pub async fn comments(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TaskComment>, AppError> {
    caller.require(Permission::ReadTasks)?;
    let task = visible(state, caller, id).await?;
    Ok(state.engine().task_comments(&task).await?)
}

/// A task the caller may see ([`AppError::NotFound`] otherwise, as for a task that does not
/// exist). Checks no permission: callers check the one their action needs first.
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<TaskRow, AppError> {
    match state.engine().store().task(id).await {
        Ok(task) if caller.sees_task(&task) => Ok(task),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(not_found(id)),
        Err(e) => Err(AppError::internal(e)),
    }
}

/// The engine's view of the caller: who acts, whether they may act on others' tasks, and
/// which tasks they see.
fn actor<'a>(caller: &'a Caller, sees: &'a (dyn Fn(&TaskRow) -> bool + Send + Sync)) -> TaskActor<'a> {
    TaskActor { name: &caller.name, supervisor: caller.role == Role::Admin, sees }
}

/// The engine's task refusals in the domain's words; the four-eyes rule is the only
/// `Forbidden` a task action can meet.
fn refusal(error: EngineError) -> AppError {
    match error {
        EngineError::Task(TaskRefusal::Claimed { task, holder }) => claimed_by(&task, &holder),
        EngineError::Task(r @ TaskRefusal::Closed { .. }) => AppError::TaskClosed(r.to_string()),
        EngineError::Task(TaskRefusal::Delegation(detail)) => AppError::InvalidDelegation(detail),
        EngineError::Forbidden(detail) => AppError::SeparationOfDuties(detail),
        EngineError::NotFound { entity: "task", id } => not_found(&id),
        e => AppError::Engine(e),
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("task `{id}` not found"))
}

fn claimed_by(id: &str, holder: &str) -> AppError {
    AppError::TaskClaimed(format!("task `{id}` is claimed by {holder}"))
}

fn check_workable(task: &TaskRow) -> Result<(), AppError> {
    if task.status == "open" || task.status == "claimed" {
        Ok(())
    } else {
        Err(AppError::TaskClosed(format!("task `{}` is {}", task.id, task.status)))
    }
}

/// [`AppError::InvalidForm`] unless `data` matches the form schema `name`. A form without a
/// schema file is not checked (logged).
fn check_form(schemas: &SchemaSet, name: &str, data: &Value) -> Result<(), AppError> {
    match schemas.validate(name, data) {
        Ok(()) => Ok(()),
        Err(SchemaError::Invalid { errors, .. }) => Err(AppError::InvalidForm {
            detail: format!("the form does not match `{name}` ({} problem(s))", errors.len()),
            errors: errors
                .iter()
                .map(|e| FieldError { field: if e.field.is_empty() { "/".into() } else { e.field.clone() }, message: e.message.clone() })
                .collect(),
        }),
        Err(SchemaError::Unknown(_)) => {
            tracing::warn!(form = name, "form schema not found; the form is not validated");
            Ok(())
        }
        Err(e @ SchemaError::Broken { .. }) => Err(AppError::Internal(EngineError::Schema(e))),
    }
}
