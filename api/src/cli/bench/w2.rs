//! W2: 200 instances of a 3-step workflow one after the other, with the engine running in
//! the background (`run_until_stopped`); per instance the time from `start` to seeing it
//! completed in the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, StartRequest};
use pratica_engine::store::Store;
use serde_json::json;

use super::w1::linear_noop;
use super::{Ctx, emit, quantile, round};

/// How long the poller sleeps between looks at the instance's status.
const POLL: Duration = Duration::from_micros(200);
const WARMUP: usize = 10;

async fn status(store: &Store, id: &str) -> anyhow::Result<String> {
    Ok(store.instance_status(id).await?)
}

/// Starts one instance and waits until it has completed: the latency in ms.
async fn one(engine: &Engine, i: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let started = engine.start(StartRequest { workflow: "bench-w2".into(), input: json!({ "i": i }), ..StartRequest::default() }).await?;
    loop {
        match status(engine.store(), &started.id).await?.as_str() {
            "completed" => return Ok(t.elapsed().as_secs_f64() * 1000.0),
            "running" => {}
            other => anyhow::bail!("instance {} ended {other}", started.id),
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "instance {} did not complete within 60 s", started.id);
        // A thread sleep is finer than tokio's 1 ms timer.
        tokio::task::spawn_blocking(|| std::thread::sleep(POLL)).await?;
    }
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let n = ctx.count(200, 5);
    let fresh = ctx.scratch.fresh(ctx.target, "w2");
    let store = Store::connect(&fresh.url).await?;
    let config = EngineConfig::default();
    let engine_config = json!({ "batch": config.batch, "lease_ms": config.lease.as_millis(), "loops": 1 });
    let engine = Engine::new(store.clone(), Registry::builtin(), Arc::new(SystemClock), config);
    super::deploy(&engine, &linear_noop("bench-w2", "Benchmark W2: three no-op steps", 3)).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let measured = async {
        for i in 0..WARMUP {
            one(&engine, i).await?;
        }
        let mut latencies = Vec::with_capacity(n);
        for i in 0..n {
            latencies.push(one(&engine, WARMUP + i).await?);
        }
        Ok::<_, anyhow::Error>(latencies)
    }
    .await;
    let _ = stop.send(());
    worker.await??;
    store.close().await;
    let mut latencies = measured?;
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (quantile(&latencies, 0.5), quantile(&latencies, 0.99));
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    let mut line = ctx.head("W2");
    line.insert("instances".into(), json!(n));
    line.insert("steps_per_instance".into(), json!(3));
    line.insert("p50_ms".into(), json!(round(p50, 2)));
    line.insert("p99_ms".into(), json!(round(p99, 2)));
    line.insert("mean_ms".into(), json!(round(mean, 2)));
    line.insert("max_ms".into(), json!(round(latencies[latencies.len() - 1], 2)));
    line.insert("min_ms".into(), json!(round(latencies[0], 2)));
    line.insert("poll_interval_us".into(), json!(POLL.as_micros()));
    line.insert("engine_config".into(), engine_config);
    emit(line);
    eprintln!(
        "W2 {:8} {:6}  p50 {:.2} ms, p99 {:.2} ms ({n} instances, 3 steps)",
        ctx.target.backend(),
        ctx.target.synchronous(),
        p50,
        p99
    );
    Ok(())
}
