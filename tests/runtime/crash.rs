//! Crash recovery with a real `kill -9` of a real `pratica serve` process, on both backends:
//! every instance completes after restart, the idempotency-aware sink sees each step's
//! effect under exactly one key, and re-executions are bounded by the work in flight.
//! On PostgreSQL, two processes share the work and one survives the other's death.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, StartRequest};
use pratica_engine::store::{InstanceFilter, Store};
use pratica_tests::app::{AppOptions, ServeDir, prepare_serve};
use pratica_tests::backend::{Backend, ScratchDir};
use pratica_tests::pratica_bin;
use pratica_tests::sink::Sink;
use pratica_tests::wait::wait_until;
use serde_json::json;
use tokio::process::{Child, Command};

const STEPS: usize = 10;
const BATCH_LIMIT: u32 = 256;

struct Setup {
    scratch: ScratchDir,
    url: String,
    sink: Sink,
    starter: Engine,
}

async fn setup(backend: Backend, instances: usize) -> Option<Setup> {
    let sink = Sink::start(Duration::from_millis(5)).await;
    let config = format!("[connectors.sink]\nkind = \"http\"\nbase_url = \"{}\"\nallow_private = true\n", sink.url());
    let mut yaml = String::from("workflow: ten-steps\nversion: 1\ntitle: Ten effects\nsteps:\n");
    for i in 1..=STEPS {
        yaml.push_str(&format!(
            "  - id: effect_{i}\n    call: sink.effect\n    with: {{ n: {i} }}\n    retry: {{ attempts: 5, delay: 100ms }}\n"
        ));
    }
    // The starter only deploys and starts (it never runs workers).
    let registry = Registry::builtin().with("sink", pratica_engine::connector::NoopConnector);
    let ServeDir { scratch, url, starter } =
        prepare_serve(AppOptions::new(backend).registry(registry).pratica_toml(&config).deploy(&yaml)).await?;
    std::fs::write(scratch.0.join("workflows").join("ten-steps.yaml"), &yaml).unwrap();
    for i in 0..instances {
        starter.start(StartRequest { workflow: "ten-steps".into(), input: json!({ "n": i }), ..Default::default() }).await.unwrap();
    }
    Some(Setup { scratch, url, sink, starter })
}

/// `pratica serve` with its log discarded (an unread pipe would fill up and block it).
fn serve(dir: &Path, url: &str, lease: &str) -> Child {
    let mut child = serve_batch(dir, url, lease, 256);
    drain(&mut child);
    child
}

fn drain(child: &mut Child) {
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        });
    }
}

fn serve_batch(dir: &Path, url: &str, lease: &str, batch: usize) -> Child {
    Command::new(pratica_bin())
        .args(["serve", "--db", url, "--lease", lease, "--batch", &batch.to_string(), "--config"])
        .arg(dir.join("pratica.toml"))
        .arg("--workflows")
        .arg(dir.join("workflows"))
        .env("RUST_LOG", "pratica_engine=debug,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start pratica serve")
}

async fn completed(store: &Store) -> usize {
    store.instances(&InstanceFilter { status: Some("completed".into()), limit: Some(100_000), ..Default::default() }).await.unwrap().len()
}

/// Each (instance, step) reached the sink under exactly one key, and every key belongs to a
/// real (instance, step).
fn assert_one_key_per_effect(sink: &Sink, instances: usize) {
    let keys = sink.keys();
    assert_eq!(keys.len(), instances * STEPS, "distinct keys = effects");
    let mut per_step = std::collections::BTreeMap::new();
    for k in &keys {
        let mut parts = k.rsplitn(3, ':');
        let (visit, step, instance) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(visit, "1", "{k}");
        *per_step.entry((instance.to_string(), step.to_string())).or_insert(0) += 1;
    }
    assert!(per_step.values().all(|n| *n == 1), "no step reached the sink under two keys");
}

async fn kill_midway_and_restart(backend: Backend) {
    let instances = 40;
    let Some(s) = setup(backend, instances).await else { return };
    let total_steps = (instances * STEPS) as u32;
    let mut first = serve(&s.scratch.0, &s.url, "2s");
    wait_until("half of the steps", Duration::from_secs(120), async || s.sink.total() >= total_steps / 2).await;
    first.kill().await.expect("kill -9");
    let at_kill = s.sink.total();
    let restart = Instant::now();
    let _second = serve(&s.scratch.0, &s.url, "2s");
    let store = s.starter.store();
    wait_until("all instances completed", Duration::from_secs(120), async || completed(store).await == instances).await;
    let recovery = restart.elapsed();
    let (requests, distinct, overlaps) = s.sink.summary();
    let re_executed = requests - distinct as u32;
    eprintln!("{backend:?}: killed at {at_kill}/{total_steps} requests; {re_executed} re-executed; all done {recovery:?} after restart");
    assert_one_key_per_effect(&s.sink, instances);
    assert!(re_executed <= BATCH_LIMIT, "re-executions ({re_executed}) bounded by the work in flight");
    assert_eq!(overlaps, 0, "no effect was worked on twice at the same time");
    for id in store.instance_ids().await.unwrap() {
        assert!(pratica_engine::audit::verify_instance(store, &id).await.unwrap().is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_midway_sqlite() {
    kill_midway_and_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_midway_postgres() {
    kill_midway_and_restart(Backend::Postgres).await;
}

/// Counts, from a child's log, the worker passes that committed something.
fn commit_counter(child: &mut Child) -> Arc<AtomicUsize> {
    let stderr = child.stderr.take().expect("piped stderr");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("worker pass") && !line.contains("committed=0") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_work_and_survive_each_other_postgres() {
    let instances = 60;
    let Some(s) = setup(Backend::Postgres, instances).await else { return };
    let total_steps = (instances * STEPS) as u32;
    // Small batches, so that one process cannot take all the work in one claim.
    let mut a = serve_batch(&s.scratch.0, &s.url, "2s", 8);
    let mut b = serve_batch(&s.scratch.0, &s.url, "2s", 8);
    let (a_commits, b_commits) = (commit_counter(&mut a), commit_counter(&mut b));
    wait_until("a third of the steps", Duration::from_secs(120), async || s.sink.total() >= total_steps / 3).await;
    a.kill().await.expect("kill -9 process A");
    let a_before_death = a_commits.load(Ordering::SeqCst);
    let b_before = b_commits.load(Ordering::SeqCst);
    let store = s.starter.store();
    wait_until("process B to finish everything", Duration::from_secs(120), async || completed(store).await == instances).await;
    let (requests, distinct, overlaps) = s.sink.summary();
    eprintln!(
        "two processes: A committed {a_before_death} batches before its death, B {b_before}; {} re-executed",
        requests - distinct as u32
    );
    assert!(a_before_death > 0 && b_before > 0, "both processes made progress");
    assert_one_key_per_effect(&s.sink, instances);
    assert_eq!(overlaps, 0, "no step executed concurrently twice");
    assert!(requests - distinct as u32 <= BATCH_LIMIT);
}
