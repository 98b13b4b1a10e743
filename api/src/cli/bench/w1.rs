//! W1: 1,000 instances of a linear workflow of 10 `noop` call steps, all started as fast as
//! possible (8 concurrent starters, one transaction per start), then one in-process engine
//! works through them; completed steps per second over both phases (and for the engine
//! phase alone), and the ratio to the raw batched row rate of the same database measured
//! right after.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, StartRequest};
use pratica_engine::store::Store;
use serde_json::json;

use super::{Ctx, cpu_seconds, emit, raw, round};

pub(crate) const STEPS: usize = 10;

/// A linear workflow of `steps` noop calls.
pub(crate) fn linear_noop(name: &str, title: &str, steps: usize) -> String {
    let mut yaml = format!("workflow: {name}\nversion: 1\ntitle: \"{title}\"\nsteps:\n");
    for i in 1..=steps {
        yaml.push_str(&format!("  - id: step{i}\n    call: noop\n    with: {{ n: {i} }}\n"));
    }
    yaml
}

/// Instances whose status is `status`, counted in SQL.
pub(crate) async fn count_status(store: &Store, status: &str) -> anyhow::Result<i64> {
    Ok(store.instance_count(status).await?)
}

/// Starts `n` instances of `workflow` from `concurrency` tasks, one transaction each: seconds.
pub(crate) async fn start_all(
    engine: &Engine,
    workflow: &str,
    n: usize,
    concurrency: usize,
    input: impl Fn(usize) -> serde_json::Value + Send + Sync + 'static,
) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let input = Arc::new(input);
    let mut starters = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (engine, next, input, workflow) = (engine.clone(), next.clone(), input.clone(), workflow.to_string());
        starters.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                engine.start(StartRequest { workflow: workflow.clone(), input: input(i), ..StartRequest::default() }).await?;
            }
        });
    }
    while let Some(r) = starters.join_next().await {
        r.context("starter task")??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// What the engine's passes did while draining.
#[derive(Debug, Default, Clone)]
pub(crate) struct Drain {
    pub seconds: f64,
    pub passes: usize,
    pub committed: usize,
    pub largest_pass: usize,
}

/// Runs engine passes (as `run_until_idle` does) until no job is due.
pub(crate) async fn drain(engine: &Engine) -> anyhow::Result<Drain> {
    let t0 = Instant::now();
    let mut d = Drain::default();
    loop {
        let pass = engine.run_once().await?;
        if pass.claimed == 0 {
            break;
        }
        d.passes += 1;
        d.committed += pass.committed;
        d.largest_pass = d.largest_pass.max(pass.claimed);
    }
    d.seconds = t0.elapsed().as_secs_f64();
    Ok(d)
}

/// One W1 run with `batch`: (steps/s, line). All instances are started first (one
/// transaction each, 8 concurrent starters), then one engine works until nothing is left;
/// the figure is over both phases.
async fn run_one(ctx: &Ctx<'_>, batch: usize) -> anyhow::Result<(f64, serde_json::Map<String, serde_json::Value>)> {
    let n = ctx.count(1000, 1);
    let fresh = ctx.scratch.fresh(ctx.target, "w1");
    let store = Store::connect(&fresh.url).await?;
    let config = EngineConfig { batch, ..EngineConfig::default() };
    let lease_ms = config.lease.as_millis();
    let engine = Engine::new(store.clone(), Registry::builtin(), Arc::new(SystemClock), config);
    super::deploy(&engine, &linear_noop("bench-w1", "Benchmark W1: ten no-op steps", STEPS)).await?;
    let concurrency = 8;
    let cpu_before = cpu_seconds();
    let start_secs = start_all(&engine, "bench-w1", n, concurrency, |i| json!({ "i": i })).await?;
    let cpu_started = cpu_seconds();
    let d = drain(&engine).await?;
    let cpu_after = cpu_seconds();
    let completed = count_status(&store, "completed").await?;
    store.close().await;
    anyhow::ensure!(completed as usize == n, "only {completed} of {n} instances completed");
    let steps = n * STEPS;
    let secs = start_secs + d.seconds;
    let rate = steps as f64 / secs;
    let cpu = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round(b - a, 2));
    let mut line = ctx.head("W1");
    line.insert("instances".into(), json!(n));
    line.insert("steps".into(), json!(steps));
    line.insert("seconds".into(), json!(round(secs, 3)));
    line.insert("steps_per_sec".into(), json!(round(rate, 0)));
    line.insert("start_seconds".into(), json!(round(start_secs, 3)));
    line.insert("starters".into(), json!(concurrency));
    line.insert("engine_seconds".into(), json!(round(d.seconds, 3)));
    line.insert("engine_steps_per_sec".into(), json!(round(steps as f64 / d.seconds, 0)));
    line.insert("engine_passes".into(), json!(d.passes));
    line.insert("transitions".into(), json!(d.committed));
    line.insert("start_cpu_seconds".into(), json!(cpu(cpu_before, cpu_started)));
    line.insert("engine_cpu_seconds".into(), json!(cpu(cpu_started, cpu_after)));
    line.insert("engine_config".into(), json!({ "batch": batch, "lease_ms": lease_ms, "loops": 1 }));
    Ok((rate, line))
}

/// W1 for each batch size, then the raw batched row rate of the same database.
pub(crate) async fn run(ctx: &Ctx<'_>, batches: &[usize]) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for &batch in batches {
        let (rate, line) = run_one(ctx, batch).await.with_context(|| format!("batch {batch}"))?;
        eprintln!(
            "W1 {:8} {:6}  batch {batch:5}: {:.0} steps/s ({} steps in {:.2} s: starts {:.2} s, engine {:.2} s = {} steps/s)",
            ctx.target.backend(),
            ctx.target.synchronous(),
            rate,
            line["steps"],
            line["seconds"].as_f64().unwrap_or(0.0),
            line["start_seconds"].as_f64().unwrap_or(0.0),
            line["engine_seconds"].as_f64().unwrap_or(0.0),
            line["engine_steps_per_sec"]
        );
        runs.push((rate, line));
    }
    let (raw, raw_statements) = raw::batched_rows_per_sec(ctx, "w1raw", ctx.duration(2.0)).await.context("raw batched row rate")?;
    let best = runs.iter().map(|(r, _)| *r).fold(f64::MIN, f64::max);
    for (rate, mut line) in runs {
        line.insert("raw_batched_rows_per_sec".into(), json!(round(raw, 0)));
        line.insert("ratio".into(), json!(round(rate / raw, 4)));
        line.insert("raw_batched_rows_per_sec_row_statements".into(), json!(round(raw_statements, 0)));
        line.insert("ratio_to_row_statements".into(), json!(round(rate / raw_statements, 4)));
        line.insert("best".into(), json!(rate == best));
        emit(line);
    }
    eprintln!(
        "W1 {:8} {:6}  best {:.0} steps/s; raw batched rows/s {:.0} (one statement per tx; ratio {:.3}), {:.0} (a statement per row; ratio {:.3})",
        ctx.target.backend(),
        ctx.target.synchronous(),
        best,
        raw,
        best / raw,
        raw_statements,
        best / raw_statements
    );
    Ok(())
}
