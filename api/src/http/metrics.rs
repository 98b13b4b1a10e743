//! Prometheus metrics: `GET /metrics` (a bearer token of role `admin` or `viewer`).
//!
//! The engine records with the `metrics` facade; one [`PrometheusRecorder`] is installed per
//! process (the first call to [`handle`]) and every server in the process renders from it.
//!
//! Recorded as things happen:
//! - `pratica_instances_started_total{workflow}`
//! - `pratica_instances_finished_total{workflow,status}` (`completed`, `failed`, `cancelled`)
//! - `pratica_step_duration_seconds{workflow,step,kind}`: connector calls (`kind` is the connector)
//! - `pratica_connector_errors_total{connector,code,retryable}`
//! - `pratica_worker_batch_size`: jobs claimed per non-empty worker pass
//!
//! Computed from the store at each scrape:
//! - `pratica_jobs_due`: internal jobs due now and not leased (queue depth)
//! - `pratica_oldest_due_job_age_seconds`: how long the oldest of them has waited (0 if none)
//! - `pratica_open_tasks{office}`: open or claimed human tasks per office (`""`: no office)
//!
//! [`PrometheusRecorder`]: metrics_exporter_prometheus::PrometheusRecorder

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use pratica_engine::runtime::EngineError;

use super::AppState;
use super::auth::{Caller, Role};
use super::error::ApiError;

/// Connector call durations, in seconds.
const DURATION_BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Jobs per worker pass (the default batch is at most a few hundred).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process-wide recorder's handle, installing the recorder on first use. If another
/// recorder is already installed, renders from a recorder of our own (which then sees
/// nothing the engine records).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Buckets make these histograms (without them the exporter renders summaries).
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("pratica_step_duration_seconds".into()), &DURATION_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("pratica_worker_batch_size".into()), &BATCH_BUCKETS))
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will not see the engine's metrics");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!("pratica_instances_started_total", "Instances started, by workflow.");
    metrics::describe_counter!("pratica_instances_finished_total", "Instances finished, by workflow and final status.");
    metrics::describe_histogram!("pratica_step_duration_seconds", metrics::Unit::Seconds, "Duration of connector calls.");
    metrics::describe_counter!("pratica_connector_errors_total", "Failed connector calls, by connector, error code and retryability.");
    metrics::describe_histogram!("pratica_worker_batch_size", "Jobs claimed per non-empty worker pass.");
}

/// The `GET /metrics` route. Installs the process-wide recorder now, so that what the
/// engine records from here on is seen.
pub(super) fn route() -> MethodRouter<AppState> {
    handle();
    get(metrics)
}

/// `GET /metrics`: the Prometheus text exposition format. The store gauges are computed
/// here, per scrape, from this server's database (not through the process-wide recorder,
/// so servers sharing a process never mix them up and no stale office lingers).
async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    if !matches!(caller.role, Role::Admin | Role::Viewer) {
        return Err(ApiError::Forbidden(format!("role `{}` may not read metrics: it needs one of the roles admin, viewer", caller.role)));
    }
    let engine = state.engine();
    let now = engine.now();
    let store = engine.store();
    let (due, oldest) = store.job_stats(now).await.map_err(EngineError::from)?;
    let offices = store.open_tasks_by_office().await.map_err(EngineError::from)?;
    let mut body = handle().render();
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    let age = oldest.map_or(0, |t| (now - t).max(0)) as f64 / 1000.0;
    let _ = write!(
        body,
        "# HELP pratica_jobs_due Internal jobs due now and not leased (queue depth).\n\
         # TYPE pratica_jobs_due gauge\npratica_jobs_due {due}\n\n\
         # HELP pratica_oldest_due_job_age_seconds Age of the oldest due, unleased job (0 if none).\n\
         # TYPE pratica_oldest_due_job_age_seconds gauge\npratica_oldest_due_job_age_seconds {age}\n\n\
         # HELP pratica_open_tasks Open or claimed human tasks, by office (\"\" for none).\n\
         # TYPE pratica_open_tasks gauge\n"
    );
    for (office, count) in offices {
        let _ = writeln!(body, "pratica_open_tasks{{office=\"{}\"}} {count}", escape(&office));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body))
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
