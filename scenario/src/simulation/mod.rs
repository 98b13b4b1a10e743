//! Running scenarios: each on a fresh throw-away SQLite database with mocked connectors
//! ([`mock`]) and a manual clock, driven as the world would ([`drive`]), then what happened
//! is gathered ([`facts`]) and compared with what was expected
//! ([`expectations`](crate::expectations)).
//!
//! The loop of one scenario: run every due job; if the instance has finished, stop.
//! Otherwise act as the world would: answer external tasks from the mocks, complete the
//! first open task that has an entry in `tasks` (once its `after` has passed), publish the
//! first message of `messages` that a waiting instance expects. When nothing can happen now,
//! move the clock to the next due timer, retry or delayed action; when nothing is due at
//! all, the instance is `waiting` and the scenario ends.

pub mod mock;

mod drive;
pub(crate) mod facts;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pratica_engine::clock::{Clock, ManualClock, Millis};
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, EngineError};
use pratica_engine::store::{InstanceFilter, Store, StoreError};

use crate::discovery::RunOptions;
use crate::expectations::{check, unused};
use crate::loading::model::Scenario;
use crate::loading::{Suite, load_suite};
use crate::report::{Failure, FileReport, ScenarioReport};
use drive::Run;
use facts::gather;
use mock::MockConnector;

/// How long a scenario may run in simulated time before it is stopped.
pub const MAX_SIMULATED: Duration = Duration::from_secs(20 * 366 * 86_400);

/// How many rounds (run due work, then act) a scenario may take.
pub const MAX_ROUNDS: usize = 20_000;

/// The worker id of the scenario's engine and of the external-task worker that answers for the mocks.
const WORKER: &str = "pratica-test";

/// Loads a test file and runs its scenarios (those matching the filter).
///
/// Scenarios are independent (each has its own database, clock and mocks), so they run in
/// parallel, up to the number of CPUs; the reports keep the file's order.
pub async fn run_file(file: &Path, opts: &RunOptions) -> FileReport {
    let result = match load_suite(file, opts) {
        Err(p) => Err(p),
        Ok(suite) => {
            let suite = Arc::new(suite);
            let parallel = std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 16);
            let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
            let mut set = tokio::task::JoinSet::new();
            for (i, s) in suite.test.scenarios.iter().enumerate() {
                if !opts.selects(&s.name) {
                    continue;
                }
                let (suite, permits) = (suite.clone(), permits.clone());
                set.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (i, run_scenario(&suite, &suite.test.scenarios[i]).await)
                });
            }
            let mut reports = Vec::new();
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(pair) => reports.push(pair),
                    Err(e) => reports.push((
                        usize::MAX,
                        ScenarioReport {
                            failures: vec![Failure::text("the scenario's run panicked", e.to_string())],
                            ..ScenarioReport::not_run("(a scenario)", 0)
                        },
                    )),
                }
            }
            reports.sort_by_key(|(i, _)| *i);
            Ok(reports.into_iter().map(|(_, r)| r).collect())
        }
    };
    FileReport { file: file.to_path_buf(), result }
}

/// A throw-away SQLite database file, removed on drop.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// What stopped a run before the instance settled.
pub(crate) struct Abort(Failure);

impl From<EngineError> for Abort {
    fn from(e: EngineError) -> Self {
        Abort(Failure::text("the engine reported an error", e.to_string()))
    }
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Abort(Failure::text("the store reported an error", e.to_string()))
    }
}

/// Runs one scenario and checks its expectations.
pub async fn run_scenario(suite: &Suite, scenario: &Scenario) -> ScenarioReport {
    let started = Instant::now();
    let mut report = ScenarioReport::not_run(&scenario.name, scenario.line);
    if let Some(schema) = &suite.main().plan.input_schema
        && let Some(errors) = suite.schema_errors(schema, &scenario.input)
        && !errors.is_empty()
    {
        report.failures.push(Failure::text(format!("the scenario's input does not satisfy the schema `{schema}`"), errors.join("\n")));
        report.wall = started.elapsed();
        return report;
    }
    let db = TempDb(std::env::temp_dir().join(format!("pratica-scenario-{}.db", uuid::Uuid::now_v7())));
    let store = match Store::connect(&format!("sqlite://{}?synchronous=off", db.0.display())).await {
        Ok(s) => s,
        Err(e) => {
            report.failures.push(Failure::text("cannot create the scenario's database", e.to_string()));
            return report;
        }
    };
    let (engine, clock, mock) = scenario_engine(suite, scenario, &store);
    let mut run = Run {
        suite,
        scenario,
        engine: &engine,
        clock: &clock,
        mock: &mock,
        used_tasks: vec![false; scenario.tasks.len()],
        used_messages: vec![false; scenario.messages.len()],
        failures: Vec::new(),
    };
    let outcome = run.drive().await;
    let mut failures = std::mem::take(&mut run.failures);
    let (used_tasks, used_messages) = (run.used_tasks.clone(), run.used_messages.clone());
    match outcome {
        Ok(id) => match gather(&engine, &mock, &id).await {
            Ok(facts) => {
                report.status = facts.status.clone();
                report.simulated = Duration::from_millis((clock.now() - scenario.start_at).max(0) as u64);
                let mut problems: Vec<Failure> =
                    mock.problems().into_iter().map(|p| Failure::new(format!("connector call failed the scenario: {p}"))).collect();
                let aborted = !problems.is_empty() || !failures.is_empty();
                problems.append(&mut failures);
                report.failures = problems;
                report.failures.extend(unused(suite, scenario, &used_tasks, &used_messages, &facts));
                report.failures.extend(facts.child_input_problems(suite));
                if !aborted {
                    report.failures.extend(check(suite, scenario, &facts));
                }
                report.timeline = facts.timeline;
            }
            Err(Abort(f)) => report.failures.push(f),
        },
        Err(Abort(f)) => {
            failures.push(f);
            report.failures = failures;
            if let Ok(rows) = engine.store().instances(&InstanceFilter { limit: Some(10_000), ..Default::default() }).await
                && let Some(main) = rows.first()
                && let Ok(facts) = gather(&engine, &mock, &main.id.clone()).await
            {
                report.status = facts.status.clone();
                report.timeline = facts.timeline;
            }
        }
    }
    store.close().await;
    drop(db);
    report.wall = started.elapsed();
    report
}

/// The engine of one scenario: on `store`, with the mock connector registered under every
/// connector name the workflows use, and a manual clock at the scenario's start.
fn scenario_engine(suite: &Suite, scenario: &Scenario, store: &Store) -> (Engine, ManualClock, MockConnector) {
    let mock = MockConnector::new(scenario.mocks.iter().map(|(k, m)| (k.clone(), m.value.clone())).collect());
    let mut registry = Registry::default();
    for name in suite.connectors() {
        registry.register(&name, Arc::new(mock.clone()));
    }
    let clock = ManualClock::new(scenario.start_at);
    let engine =
        Engine::new(store.clone(), registry, Arc::new(clock.clone()), EngineConfig { worker_id: WORKER.into(), ..EngineConfig::default() });
    (engine, clock, mock)
}

/// Whether an instance status is final.
pub(crate) fn finished(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// A duration as milliseconds of the clock (saturating).
pub(crate) fn ms(d: Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Detail;
    use crate::testing::{ROUTING, files};

    #[tokio::test]
    async fn external_tasks_iterations_messages_and_tasks_are_driven_by_the_scenario() {
        let (_dir, test) = files(
            ROUTING,
            r#"input: { batch: B-7, messages: [m1, m2, m3] }
mocks:
  classify:
    - { output: { office: "7000" } }
    - [ { error: { code: model.busy, retryable: true } }, { output: { office: "5100" } } ]
    - { output: { office: "7000" } }
  file: { output: { filed: true } }
scenarios:
  - name: routed, confirmed and checked
    messages:
      - { name: routing-confirmed, after: 1d, payload: { ok: true } }
    tasks:
      - { step: check, outcome: ok, by: clerk, after: 2h }
    expect:
      status: completed
      path_includes: [classify, file, each, confirm, check, done]
      output: { filed: [true, true, true], checked: ok }
      tasks: [ { step: check, title: Check batch B-7, role: pec-clerk } ]
      calls:
        classify:
          - { input: { id: m1 }, attempts: 1 }
          - { input: { id: m2 }, attempts: 2 }
          - { input: { id: m3 } }
        file:
          - { input: { id: m1, office: "7000" } }
          - { input: { id: m2, office: "5100" } }
          - { input: { id: m3, office: "7000" } }
  - name: a deliberate mismatch
    messages: [ { name: routing-confirmed } ]
    tasks: [ { step: check, outcome: redo } ]
    expect:
      status: completed
      calls:
        file: { count: 4 }
  - name: never confirmed
    expect:
      status: failed
      path_includes: [each, confirm, unconfirmed]
      error: { code: pec.unconfirmed, message: B-7 was not confirmed }
"#,
        );
        let report = run_file(&test, &RunOptions::default()).await;
        let scenarios = report.result.expect("the file loads");
        let first = &scenarios[0];
        assert!(first.passed(), "{:#?}\n{:#?}", first.failures, first.timeline);
        assert_eq!(first.status, "completed");
        // The retry of `classify` (about 1s), then the message a day later, then the task 2h later.
        assert!(
            first.simulated > Duration::from_secs(86_400 + 7_200) && first.simulated < Duration::from_secs(86_400 + 7_202),
            "{:?}",
            first.simulated
        );
        let wrong = &scenarios[1];
        assert_eq!(wrong.failures.len(), 1, "{:#?}", wrong.failures);
        assert_eq!(wrong.failures[0].title, "`file` was called 3 time(s), expected 4");
        let Detail::Text(calls) = &wrong.failures[0].detail else { panic!("the calls made are listed") };
        assert!(calls.starts_with("call 1 (archive.file, 1 attempt(s)): {\"id\":\"m1\",\"office\":\"7000\"}"), "{calls}");
        let unconfirmed = &scenarios[2];
        assert!(unconfirmed.passed(), "{:#?}", unconfirmed.failures);
        assert!(unconfirmed.simulated >= Duration::from_secs(2 * 86_400) && unconfirmed.simulated < Duration::from_secs(2 * 86_400 + 2));
    }
}
