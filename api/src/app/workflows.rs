//! Workflow definitions for a caller: deploy, validate, list, read a deployed version.

use std::sync::Arc;

use pratica_engine::definition::{self, Diagnostic};
use pratica_engine::plan::Plan;
use pratica_engine::runtime::Deployment;
use pratica_engine::store::WorkflowRow;

use super::{AppError, AppState, Caller, Permission};

/// Deploys a workflow's YAML text; deploying the same content again is a no-op
/// (`created: false`).
pub async fn deploy(state: &AppState, caller: &Caller, source: &str) -> Result<Deployment, AppError> {
    caller.require(Permission::DeployWorkflows)?;
    let deployment = state.engine().deploy(source).await?;
    if deployment.created {
        tracing::info!(workflow = %deployment.workflow, version = deployment.version, by = %caller.name, "workflow deployed");
    }
    Ok(deployment)
}

/// Checks a workflow against the engine's connectors without deploying it: every problem
/// found (none for a valid workflow).
pub fn validate(state: &AppState, caller: &Caller, source: &str) -> Result<Vec<Diagnostic>, AppError> {
    caller.require(Permission::DeployWorkflows)?;
    Ok(definition::compile_source(source, &state.engine().catalog()).err().unwrap_or_default())
}

/// Every deployed version, by name then version.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<WorkflowRow>, AppError> {
    caller.require(Permission::ReadWorkflows)?;
    state.engine().store().workflows().await.map_err(AppError::internal)
}

/// The deployed version `version` of `name`, or `None`.
pub async fn deployed(state: &AppState, caller: &Caller, name: &str, version: u32) -> Result<Option<WorkflowRow>, AppError> {
    caller.require(Permission::ReadWorkflows)?;
    state.engine().store().workflow(name, Some(version)).await.map_err(AppError::internal)
}

/// The compiled plan of a deployed version (the engine's not-found when there is none).
pub async fn plan(state: &AppState, caller: &Caller, name: &str, version: u32) -> Result<Arc<Plan>, AppError> {
    caller.require(Permission::ReadWorkflows)?;
    Ok(state.engine().plan(name, Some(version)).await?)
}

/// The title of a deployed version, if its plan can be read.
pub async fn title(state: &AppState, name: &str, version: u32) -> Option<String> {
    state.engine().plan(name, Some(version)).await.ok().map(|p| p.title.clone())
}
