//! W3: crash recovery. 200 instances × 10 HTTP steps against the idempotency-aware sink
//! (5 ms of work per request), run by `pratica serve` as a child process; when about half
//! the steps are done the child is killed with SIGKILL and started again. Reports whether
//! everything completed, how many steps ran twice, whether any side effect was duplicated
//! (two different idempotency keys for one step), and the time from restart to resumed work
//! and to completion.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, StartRequest};
use pratica_engine::store::Store;
use serde_json::json;

use super::sink::Sink;
use super::w1::count_status;
use super::{Ctx, Target, emit, round};

const STEPS: usize = 10;
const WORK: Duration = Duration::from_millis(5);
const LEASE: &str = "2s";
const WORKFLOW: &str = "bench-w3";

fn workflow_yaml() -> String {
    let mut yaml = format!("workflow: {WORKFLOW}\nversion: 1\ntitle: \"Benchmark W3: ten HTTP steps\"\nsteps:\n");
    for i in 1..=STEPS {
        yaml.push_str(&format!("  - id: step{i}\n    call: sink.step{i}\n    with: {{ case: \"${{ .input.i }}\", step: {i} }}\n"));
    }
    yaml
}

/// Starts `pratica serve` (this executable) on `url`, logging to `log`.
fn spawn_engine(dir: &Path, url: &str, log: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the pratica executable")?;
    let log = std::fs::File::create(log)?;
    let child = Command::new(exe)
        .arg("serve")
        .arg("--db")
        .arg(url)
        .arg("--workflows")
        .arg(dir.join("workflows"))
        .arg("--config")
        .arg(dir.join("pratica.toml"))
        .arg("--lease")
        .arg(LEASE)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start `pratica serve`")?;
    Ok(child)
}

/// Steps whose completion is committed.
async fn committed_steps(store: &Store) -> anyhow::Result<i64> {
    Ok(store.completed_step_count().await?)
}

/// Kills the child if it still runs.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.0.take() {
            c.kill().context("kill -9")?;
            c.wait()?;
        }
        Ok(())
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

async fn wait_for(
    what: &str,
    timeout: Duration,
    child: &mut ChildGuard,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        if done().await? {
            return Ok(());
        }
        if let Some(status) = child.exited() {
            anyhow::bail!("`pratica serve` exited ({status}) while waiting for {what}");
        }
        anyhow::ensure!(t.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let n = ctx.count(200, 4);
    let total_steps = (n * STEPS) as u64;
    let sink = Sink::start(WORK).await?;
    let dir = std::env::temp_dir().join(format!("pratica-bench-w3-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(dir.join("workflows"))?;
    ctx.scratch.add_dir(dir.clone());
    std::fs::write(dir.join("workflows").join("bench-w3.yaml"), workflow_yaml())?;
    std::fs::write(
        dir.join("pratica.toml"),
        format!("[connectors.sink]\nkind = \"http\"\nbase_url = \"http://{}\"\nallow_private = true\n", sink.addr),
    )?;
    let fresh = ctx.scratch.fresh(ctx.target, "w3");
    // The bench's own engine only reads, deploys nothing and starts instances; it never works.
    let store = Store::connect(&fresh.url).await?;
    let starter = Engine::new(store.clone(), Registry::builtin(), Arc::new(SystemClock), EngineConfig::default());

    let mut child = ChildGuard(Some(spawn_engine(&dir, &fresh.url, &dir.join("serve-1.log"))?));
    let logs = dir.display().to_string();
    let outcome = async {
        wait_for("the workflow to be deployed", Duration::from_secs(60), &mut child, async || {
            Ok(store.workflow(WORKFLOW, None).await?.is_some())
        })
        .await?;
        let t_start = Instant::now();
        for i in 0..n {
            starter.start(StartRequest { workflow: WORKFLOW.into(), input: json!({ "i": i }), ..StartRequest::default() }).await?;
        }
        let start_secs = t_start.elapsed().as_secs_f64();
        wait_for("half of the steps", Duration::from_secs(300), &mut child, async || Ok(sink.stats().distinct_keys >= total_steps / 2))
            .await?;
        child.kill9()?;
        let killed_at = Instant::now();
        // Requests the dead engine had sent are still being worked on by the sink.
        tokio::time::sleep(WORK * 4).await;
        let at_kill = sink.stats();
        let committed_at_kill = committed_steps(&store).await?;
        let in_flight = at_kill.distinct_keys as i64 - committed_at_kill;

        let restart = Instant::now();
        child = ChildGuard(Some(spawn_engine(&dir, &fresh.url, &dir.join("serve-2.log"))?));
        wait_for("all instances to complete", Duration::from_secs(300), &mut child, async || {
            Ok(count_status(&store, "completed").await? as usize >= n)
        })
        .await?;
        let all_done = restart.elapsed().as_secs_f64();
        let resumed = sink.first_after(restart).map(|t| (t - restart).as_secs_f64());
        child.kill9()?;
        let completed = count_status(&store, "completed").await?;
        let committed = committed_steps(&store).await?;
        Ok::<_, anyhow::Error>((start_secs, killed_at, at_kill, committed_at_kill, in_flight, all_done, resumed, completed, committed))
    }
    .await;
    drop(child);
    store.close().await;
    let (start_secs, _killed_at, at_kill, committed_at_kill, in_flight, all_done, resumed, completed, committed) =
        outcome.with_context(|| format!("engine logs in {logs}"))?;
    let end = sink.stats();
    let re_executed = end.requests as i64 - end.distinct_keys as i64;
    let missing = total_steps as i64 - end.pairs as i64;
    let takeover = match ctx.target {
        Target::Sqlite { .. } => {
            "immediate: on SQLite a restarted `pratica serve` frees all leases at start-up (one process owns the database)"
        }
        Target::Postgres { .. } => {
            "waits for lease expiry: jobs leased by the killed process are claimed again once their 2 s lease has run out"
        }
    };
    let mut line = ctx.head("W3");
    line.insert("instances".into(), json!(n));
    line.insert("steps".into(), json!(total_steps));
    line.insert("completed".into(), json!(completed));
    line.insert("all_completed".into(), json!(completed as usize == n));
    line.insert("steps_committed".into(), json!(committed));
    line.insert("sink_work_ms".into(), json!(WORK.as_millis()));
    line.insert("start_seconds".into(), json!(round(start_secs, 3)));
    line.insert("killed_after_keys".into(), json!(at_kill.distinct_keys));
    line.insert("steps_committed_at_kill".into(), json!(committed_at_kill));
    line.insert("in_flight_at_kill".into(), json!(in_flight));
    line.insert("requests".into(), json!(end.requests));
    line.insert("distinct_keys".into(), json!(end.distinct_keys));
    line.insert("re_executed".into(), json!(re_executed));
    line.insert("duplicate_side_effects".into(), json!(end.duplicate_keys));
    line.insert("requests_without_key".into(), json!(end.without_key));
    line.insert("steps_never_called".into(), json!(missing));
    line.insert("seconds_restart_to_resume".into(), json!(resumed.map(|s| round(s, 3))));
    line.insert("seconds_restart_to_all_completed".into(), json!(round(all_done, 3)));
    line.insert("lease".into(), json!(LEASE));
    line.insert("takeover".into(), json!(takeover));
    line.insert("engine".into(), json!("child process `pratica serve --lease 2s`, killed with SIGKILL"));
    emit(line);
    eprintln!(
        "W3 {:8} {:6}  {completed}/{n} completed; {re_executed} re-executed (in flight at kill: {in_flight}); {} duplicate side effects; resumed {} s and all done {:.2} s after restart",
        ctx.target.backend(),
        ctx.target.synchronous(),
        end.duplicate_keys,
        resumed.map_or("never".to_string(), |s| format!("{s:.3}")),
        all_done
    );
    Ok(())
}
