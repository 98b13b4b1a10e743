//! W4: 100,000 instances waiting on a human task, assigned by role to one of 100 offices,
//! each with a codice-fiscale-like business key. Reports the resident memory of the process
//! running the engine (the whole bench process), and p95 times to list one office's open
//! queue and to find a case by business key.

use std::sync::Arc;
use std::time::Instant;

use pratica_engine::clock::SystemClock;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig};
use pratica_engine::store::{InstanceFilter, Store, TaskFilter};
use serde_json::json;

use super::w1::{count_status, drain, start_all};
use super::{Ctx, emit, proc_status_mib, quantile, round};

const OFFICES: usize = 100;
const QUERIES: usize = 100;
const BATCH: usize = 1024;

const WORKFLOW: &str = r#"workflow: bench-w4
version: 1
title: "Benchmark W4: waiting on a human task"
business_key: ${ .input.fiscal_code }
steps:
  - id: review
    human:
      title: "Review the NASpI application of {{ input.fiscal_code }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      outcomes: [approve, reject]
      reason_required: [reject]
"#;

/// A deterministic mix of `i`.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A codice-fiscale-shaped key for instance `i` (6 letters, 2 digits, month letter, 2 digits,
/// a letter, 3 digits, a check letter): `RSSMRA80A01H501U`.
pub(crate) fn fiscal_code(i: usize) -> String {
    const MONTHS: &[u8] = b"ABCDEHLMPRST";
    let (mut a, mut b) = (mix(i as u64), mix(!(i as u64)));
    let letter = |x: &mut u64| {
        let c = (b'A' + (*x % 26) as u8) as char;
        *x /= 26;
        c
    };
    let mut s = String::with_capacity(16);
    for _ in 0..6 {
        s.push(letter(&mut a));
    }
    s.push_str(&format!("{:02}", b % 100));
    b /= 100;
    s.push(MONTHS[(b % 12) as usize] as char);
    b /= 12;
    s.push_str(&format!("{:02}", 1 + b % 71));
    b /= 71;
    s.push(letter(&mut b));
    s.push_str(&format!("{:03}", b % 1000));
    b /= 1000;
    s.push(letter(&mut b));
    s
}

fn office(i: usize) -> String {
    format!("office-{:03}", i % OFFICES)
}

pub(crate) async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let n = ctx.count(100_000, 100);
    let rss_before = proc_status_mib("VmRSS");
    let fresh = ctx.scratch.fresh(ctx.target, "w4");
    let store = Store::connect(&fresh.url).await?;
    let config = EngineConfig { batch: BATCH, ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), Registry::builtin(), Arc::new(SystemClock), config);
    super::deploy(&engine, WORKFLOW).await?;
    let concurrency = 8;
    let start_secs =
        start_all(&engine, "bench-w4", n, concurrency, |i| json!({ "fiscal_code": fiscal_code(i), "office": office(i) })).await?;
    let d = drain(&engine).await?;
    let create_secs = start_secs + d.seconds;
    let running = count_status(&store, "running").await?;
    anyhow::ensure!(running as usize == n, "{running} of {n} instances are waiting");
    // The engine idles with everything waiting: one more pass finds nothing to do.
    let idle = engine.run_once().await?;
    anyhow::ensure!(idle.claimed == 0, "work left after creation: {idle:?}");
    let rss = proc_status_mib("VmRSS");
    let hwm = proc_status_mib("VmHWM");

    let mut queue_ms = Vec::with_capacity(QUERIES);
    let mut key_ms = Vec::with_capacity(QUERIES);
    for q in 0..QUERIES {
        let pick = (super::w4::mix(q as u64 + 7) % n as u64) as usize;
        let filter = TaskFilter { office: Some(office(pick)), status: Some("open".into()), limit: Some(50), ..TaskFilter::default() };
        let t = Instant::now();
        let tasks = store.tasks(&filter).await?;
        queue_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!tasks.is_empty() && tasks.len() <= 50, "office queue of {} has {} tasks", office(pick), tasks.len());
        let filter = InstanceFilter { business_key: Some(fiscal_code(pick)), ..InstanceFilter::default() };
        let t = Instant::now();
        let found = store.instances(&filter).await?;
        key_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!found.is_empty(), "no case with business key {}", fiscal_code(pick));
    }
    store.close().await;
    queue_ms.sort_by(f64::total_cmp);
    key_ms.sort_by(f64::total_cmp);
    let (queue_p95, key_p95) = (quantile(&queue_ms, 0.95), quantile(&key_ms, 0.95));
    let mib = |v: Option<f64>| v.map(|m| round(m, 1));
    let mut line = ctx.head("W4");
    line.insert("instances".into(), json!(n));
    line.insert("offices".into(), json!(OFFICES));
    line.insert("create_seconds".into(), json!(round(create_secs, 2)));
    line.insert("start_seconds".into(), json!(round(start_secs, 2)));
    line.insert("engine_seconds".into(), json!(round(d.seconds, 2)));
    line.insert("instances_per_sec".into(), json!(round(n as f64 / create_secs, 0)));
    line.insert("rss_mib".into(), json!(mib(rss)));
    line.insert("rss_mib_before".into(), json!(mib(rss_before)));
    line.insert("rss_peak_mib".into(), json!(mib(hwm)));
    line.insert(
        "rss_note".into(),
        json!("VmRSS of the whole bench process, which runs the engine in-process; peak is VmHWM since the process started"),
    );
    line.insert("queue_list_p50_ms".into(), json!(round(quantile(&queue_ms, 0.5), 3)));
    line.insert("queue_list_p95_ms".into(), json!(round(queue_p95, 3)));
    line.insert("business_key_p50_ms".into(), json!(round(quantile(&key_ms, 0.5), 3)));
    line.insert("business_key_p95_ms".into(), json!(round(key_p95, 3)));
    line.insert("queries".into(), json!(QUERIES));
    line.insert("engine_config".into(), json!({ "batch": BATCH, "loops": 1 }));
    emit(line);
    eprintln!(
        "W4 {:8} {:6}  {n} waiting (created in {:.1} s); RSS {:.1} MiB (whole process); queue p95 {:.2} ms; business key p95 {:.2} ms",
        ctx.target.backend(),
        ctx.target.synchronous(),
        create_secs,
        rss.unwrap_or(f64::NAN),
        queue_p95,
        key_p95
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_codes_look_right_and_differ() {
        let a = fiscal_code(1);
        assert_eq!(a.len(), 16);
        assert!(a[..6].chars().all(|c| c.is_ascii_uppercase()));
        assert!(a[6..8].chars().all(|c| c.is_ascii_digit()));
        let all: std::collections::BTreeSet<String> = (0..10_000).map(fiscal_code).collect();
        assert_eq!(all.len(), 10_000);
    }
}
