//! What happened in a scenario, gathered from the store once the instance has settled: the
//! instances, their histories, the tasks created and the calls the mock recorded.

use pratica_engine::runtime::state::{InstanceState, StepError, Waiting};
use pratica_engine::runtime::{Engine, output_of};
use pratica_engine::store::{HistoryRow, InstanceFilter, InstanceRow, TaskFilter, TaskRow};
use serde_json::Value;

use super::mock::{MockConnector, RecordedCall};
use super::{Abort, finished};
use crate::expectations::diff;
use crate::loading::Suite;
use crate::report::{Failure, Timeline};

/// Everything known about a finished (or settled) scenario.
pub(crate) struct Facts {
    pub(crate) main: InstanceRow,
    /// Every instance (the main one and its sub-workflows), in start order.
    pub(crate) instances: Vec<InstanceRow>,
    pub(crate) status: String,
    pub(crate) history: Vec<HistoryRow>,
    pub(crate) tasks: Vec<TaskRow>,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) timeline: Vec<Timeline>,
    /// What a waiting instance waits for, for the status failure.
    pub(crate) waiting_for: Vec<String>,
}

pub(crate) async fn gather(engine: &Engine, mock: &MockConnector, id: &str) -> Result<Facts, Abort> {
    let store = engine.store();
    let main = store.instance(id).await?;
    let mut instances = store.instances(&InstanceFilter { limit: Some(10_000), ..Default::default() }).await?;
    instances.sort_by(|a, b| (a.started_at, a.id != main.id, &a.id).cmp(&(b.started_at, b.id != main.id, &b.id)));
    let status = match main.status.as_str() {
        "running" | "compensating" => "waiting".to_string(),
        other => other.to_string(),
    };
    let mut tasks = Vec::new();
    let mut timeline = Vec::new();
    let mut waiting_for = Vec::new();
    for row in &instances {
        let mut t = store.tasks(&TaskFilter { instance_id: Some(row.id.clone()), limit: Some(10_000), ..Default::default() }).await?;
        for task in t.iter().filter(|t| t.status == "open" || t.status == "claimed") {
            waiting_for.push(format!(
                "a task of `{}` ({}): \"{}\" for role {} office {}",
                task.step_id,
                row.workflow,
                task.title,
                task.role.as_deref().unwrap_or("-"),
                task.office.as_deref().unwrap_or("-")
            ));
        }
        tasks.append(&mut t);
        if !finished(&row.status)
            && let Ok(state) = serde_json::from_str::<InstanceState>(&row.state)
        {
            for tok in state.tokens.values() {
                if let Waiting::Message { message, key } = &tok.wait {
                    waiting_for.push(format!("the message `{message}` with key `{key}` ({})", row.workflow));
                }
            }
        }
        timeline.push(Timeline {
            workflow: row.workflow.clone(),
            instance: row.id.clone(),
            parent: row.parent_id.clone(),
            status: row.status.clone(),
            entries: store.history(&row.id).await?,
        });
    }
    tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let history = timeline.iter().find(|t| t.instance == main.id).map(|t| t.entries.clone()).unwrap_or_default();
    let calls = mock.calls();
    Ok(Facts { main, instances, status, history, tasks, calls, timeline, waiting_for })
}

impl Facts {
    /// Sub-workflow instances whose input does not satisfy their workflow's input schema
    /// (the language promises the check; the scenario makes it).
    pub(crate) fn child_input_problems(&self, suite: &Suite) -> Vec<Failure> {
        let mut out = Vec::new();
        for row in self.instances.iter().filter(|r| r.parent_id.is_some()) {
            let Some(w) = suite.workflows.iter().find(|w| w.name == row.workflow) else { continue };
            let Some(schema) = &w.plan.input_schema else { continue };
            let input: Value = serde_json::from_str(&row.input).unwrap_or(Value::Null);
            if let Some(errors) = suite.schema_errors(schema, &input)
                && !errors.is_empty()
            {
                out.push(Failure::text(
                    format!("the sub-workflow `{}` was started with an input that does not satisfy its schema `{schema}`", row.workflow),
                    format!("{}\ninput: {}", errors.join("\n"), diff::pretty(&input)),
                ));
            }
        }
        out
    }

    pub(crate) fn error(&self) -> Option<StepError> {
        self.main.error.as_deref().and_then(|e| serde_json::from_str(e).ok())
    }

    pub(crate) fn output(&self) -> Value {
        output_of(&self.main)
    }

    /// A short description of the end state, for failure titles.
    pub(crate) fn describe_status(&self) -> String {
        match (self.status.as_str(), self.error()) {
            ("failed", Some(e)) => format!("failed with `{}`: {}", e.code, e.message),
            ("waiting", _) if !self.waiting_for.is_empty() => format!("waiting for {}", self.waiting_for.join("; ")),
            ("waiting", _) => "waiting (nothing is due)".into(),
            (s, _) => s.to_string(),
        }
    }
}
