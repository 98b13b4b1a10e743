//! P: where a W1 step's time goes. Runs W1 once (batch 256) and then times, on the same
//! database and through the store's public API, the pieces a worker pass is made of: the
//! claim transaction, each statement of the commit transaction as the engine issues it for
//! one transition (delete the job, load the instance, insert the next job, two history
//! rows, update the instance), the commit itself, and the CPU work (instance state JSON,
//! history hashing, the state machine, the job payload JSON). The pieces are reported in
//! microseconds per step, next to the engine's measured time per step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pratica_engine::audit;
use pratica_engine::clock::{Clock, SystemClock};
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{CallRequest, Engine, EngineConfig, Event, InstanceInfo, InstanceState, UuidV7Ids, apply};
use pratica_engine::store::{HistoryRow, InstanceRow, NewJob, Store};
use serde_json::{Value, json};

use super::w1::{STEPS, drain, linear_noop, start_all};
use super::{Ctx, emit, round};

const BATCH: usize = 256;
const ROUNDS: usize = 10;

/// Accumulated time per piece.
#[derive(Default)]
struct Clocks(BTreeMap<&'static str, Duration>);

impl Clocks {
    async fn time<T>(&mut self, name: &'static str, f: impl Future<Output = T>) -> T {
        let t = Instant::now();
        let out = f.await;
        *self.0.entry(name).or_default() += t.elapsed();
        out
    }

    fn time_sync<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        *self.0.entry(name).or_default() += t.elapsed();
        out
    }
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let n = ctx.count(1000, BATCH);
    let fresh = ctx.scratch.fresh(ctx.target, "p");
    let store = Store::connect(&fresh.url).await?;
    let engine =
        Engine::new(store.clone(), Registry::builtin(), Arc::new(SystemClock), EngineConfig { batch: BATCH, ..EngineConfig::default() });
    super::deploy(&engine, &linear_noop("bench-p", "Benchmark P: ten no-op steps", STEPS)).await?;
    let start_secs = start_all(&engine, "bench-p", n, 8, |i| json!({ "i": i })).await?;
    let d = drain(&engine).await?;
    let engine_us_per_step = d.seconds * 1e6 / (n * STEPS) as f64;
    let result = pieces(&engine, &store).await;
    store.close().await;
    let (clocks, steps_timed, cpu) = result?;

    let per_step = |name: &str| clocks.0.get(name).map_or(0.0, |d| d.as_secs_f64() * 1e6 / steps_timed as f64);
    let mut pieces = serde_json::Map::new();
    let mut total = 0.0;
    for name in clocks.0.keys() {
        let us = per_step(name);
        total += us;
        pieces.insert((*name).into(), json!(round(us, 2)));
    }
    for (name, us) in &cpu {
        total += us;
        pieces.insert((*name).into(), json!(round(*us, 2)));
    }
    let mut line = ctx.head("P");
    line.insert("instances".into(), json!(n));
    line.insert("batch".into(), json!(BATCH));
    line.insert("start_us_per_instance".into(), json!(round(start_secs * 1e6 / n as f64, 1)));
    line.insert("engine_us_per_step".into(), json!(round(engine_us_per_step, 2)));
    line.insert("engine_passes".into(), json!(d.passes));
    line.insert("pieces_us_per_step".into(), Value::Object(pieces));
    line.insert("pieces_total_us_per_step".into(), json!(round(total, 2)));
    emit(line.clone());
    eprintln!(
        "P  {:8} {:6}  engine {:.1} µs/step (starts {:.0} µs/instance); pieces {:.1} µs/step: {}",
        ctx.target.backend(),
        ctx.target.synchronous(),
        engine_us_per_step,
        start_secs * 1e6 / n as f64,
        total,
        line["pieces_us_per_step"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    Ok(())
}

/// Times the pieces over `ROUNDS` batches of `BATCH` simulated transitions on the completed
/// instances: (statement clocks, transitions timed, CPU pieces in µs per step).
async fn pieces(engine: &Engine, store: &Store) -> anyhow::Result<(Clocks, usize, Vec<(&'static str, f64)>)> {
    let clock = SystemClock;
    let ids: Vec<String> = store.instance_ids().await?.into_iter().take(BATCH).collect();
    anyhow::ensure!(ids.len() == BATCH, "need {BATCH} instances");
    let payload = call_payload(&ids[0]);
    // Seed one job per instance; the engine never runs again, so they are only claimed here.
    let mut tx = store.begin().await?;
    for id in &ids {
        tx.insert_job(&new_job(id, &payload, clock.now())).await?;
    }
    tx.commit().await?;

    let mut clocks = Clocks::default();
    for _ in 0..ROUNDS {
        let now = clock.now();
        let jobs = clocks.time("claim_tx", store.claim_jobs("bench-profile", now, now + 30_000, BATCH as i64)).await?;
        anyhow::ensure!(jobs.len() == BATCH, "claimed {} of {BATCH} jobs", jobs.len());
        let mut tx = clocks.time("begin", store.begin()).await?;
        for job in &jobs {
            let done = clocks.time("sql_finish_job", tx.finish_job(job.id, job.fence)).await?;
            anyhow::ensure!(done, "job {} was fenced", job.id);
            let mut row: InstanceRow =
                clocks.time("sql_load_instance", tx.instance_for_update(&job.instance_id)).await?.expect("instance exists");
            let state: InstanceState = clocks.time_sync("json_state_parse", || serde_json::from_str(&row.state))?;
            let _input: Value = clocks.time_sync("json_input_parse", || serde_json::from_str(&row.input))?;
            clocks.time("sql_insert_job", tx.insert_job(&new_job(&job.instance_id, &payload, now))).await?;
            for kind in ["step.completed", "call.scheduled"] {
                let mut h = HistoryRow {
                    instance_id: row.id.clone(),
                    seq: row.history_seq + 1,
                    at: now,
                    kind: kind.into(),
                    step: Some("step5".into()),
                    data: json!({ "output": { "n": 5 } }).to_string(),
                    actor: None,
                    prev_hash: row.history_head.clone(),
                    hash: String::new(),
                };
                h.hash = clocks.time_sync("history_hash", || audit::hash_of(&h));
                clocks.time("sql_insert_history", tx.insert_history(&h)).await?;
                row.history_seq = h.seq;
                row.history_head = h.hash;
            }
            row.state = clocks.time_sync("json_state_serialize", || serde_json::to_string(&state))?;
            row.updated_at = now;
            clocks.time("sql_update_instance", tx.update_instance(&row)).await?;
        }
        clocks.time("commit", tx.commit()).await?;
    }
    let steps = ROUNDS * BATCH;

    // CPU-only pieces, measured alone.
    let plan = engine.plan("bench-p", None).await?;
    let mut cpu = Vec::new();
    let info = InstanceInfo {
        id: ids[0].clone(),
        workflow: "bench-p".into(),
        version: 1,
        business_key: None,
        input: json!({ "i": 1 }),
        started_at: clock.now(),
    };
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        let mut state = InstanceState::default();
        apply(&plan, &info, &mut state, Event::Start, clock.now(), &mut UuidV7Ids);
        for _ in 0..STEPS {
            let (token, epoch) = state.tokens.values().next().map(|t| (t.id, t.epoch)).expect("a token waits");
            apply(&plan, &info, &mut state, Event::CallSucceeded { token, epoch, output: json!({ "n": 1 }) }, clock.now(), &mut UuidV7Ids);
        }
    }
    cpu.push(("machine_apply", t.elapsed().as_secs_f64() * 1e6 / (reps * (STEPS + 1)) as f64));
    let t = Instant::now();
    for _ in 0..reps * STEPS {
        let call: CallRequest = serde_json::from_str(&payload)?;
        std::hint::black_box(call);
    }
    cpu.push(("json_call_payload_parse", t.elapsed().as_secs_f64() * 1e6 / (reps * STEPS) as f64));
    Ok((clocks, steps, cpu))
}

fn call_payload(instance: &str) -> String {
    let call = CallRequest {
        token: 0,
        epoch: 6,
        step_id: "step5".into(),
        connector: "noop".into(),
        operation: None,
        topic: None,
        input: json!({ "n": 5 }),
        idempotency_key: format!("{instance}:step5:1"),
        attempt: 1,
        due_at: 0,
        timeout_ms: None,
    };
    serde_json::to_string(&call).expect("calls serialize")
}

fn new_job(instance: &str, payload: &str, now: i64) -> NewJob {
    NewJob {
        instance_id: instance.into(),
        token: 0,
        kind: "call".into(),
        payload: payload.into(),
        due_at: now,
        created_at: now,
        topic: None,
    }
}
