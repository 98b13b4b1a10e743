//! Hostile workflow authors and callers against a real `pratica serve` process, on both
//! backends (issue 11, "fix the class of problem"):
//! - definitions that would read the server (`env`, `$ENV`, `input`), end it (`halt`,
//!   `halt_error`) or never stop (`def f: f; f`, `until(false; …)`, partials) are refused at
//!   deployment with WF0305 / WF0306;
//! - definitions that pass the load checks but spin, allocate without bound, nest without
//!   bound, render a template of a billion repetitions or grow the case state fail **their own**
//!   instance with a documented code (`expression.budget`, `template.budget`,
//!   `state.too_large`), while `/healthz` keeps answering in under a second, an unrelated case
//!   completes and the process's peak memory stays bounded;
//! - an anonymous webhook whose `business_key` spins, or carries a bidirectional-override
//!   character, is answered with a clear problem and the server carries on;
//! - a poison pill (a job whose evaluation outlives its process) is restarted twice with a real
//!   `kill -9`, then quarantined (`job.quarantined`) by the third process, while the case that
//!   shared its batch completes.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pratica_engine::runtime::{Engine, EngineError, StartRequest};
use pratica_engine::store::{InstanceRow, Store};
use pratica_tests::app::{AppOptions, ServeDir, prepare_serve};
use pratica_tests::backend::{Backend, ScratchDir};
use pratica_tests::wait::eventually;
use pratica_tests::{both_backends, pratica_bin};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Peak resident memory allowed to the server while it evaluates hostile definitions: the
/// evaluators may hold 384 MiB together; the rest is the server itself.
const PEAK_RSS_LIMIT_KIB: u64 = 900 * 1024;

/// A `pratica serve` process with its log lines counted and kept.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    claims: Arc<AtomicUsize>,
}

impl Server {
    async fn start(dir: &Path, url: &str) -> Server {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = Command::new(pratica_bin())
            .args(["serve", "--db", url, "--lease", "1s", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(dir.join("pratica.toml"))
            .arg("--workflows")
            .arg(dir.join("workflows"))
            .env("RUST_LOG", "pratica_engine=debug,warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start pratica serve");
        let (log, claims) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (kept, counted) = (log.clone(), claims.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("jobs claimed") {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                kept.lock().unwrap().push(line);
            }
        });
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log, claims };
        let http = reqwest::Client::new();
        let up = eventually(Duration::from_secs(60), async || match http.get(format!("{}/healthz", server.base)).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            _ => Err(()),
        });
        assert!(up.await.is_ok(), "pratica serve did not come up:\n{}", server.log_text());
        server
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The process's peak resident memory (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    async fn kill_9(&mut self) {
        self.child.kill().await.expect("kill -9");
    }
}

/// Probes `/healthz` every 100 ms until stopped; records the slowest answer and failures.
struct Prober {
    stop: Arc<AtomicBool>,
    slowest_ms: Arc<AtomicU64>,
    failures: Arc<AtomicUsize>,
    probes: Arc<AtomicUsize>,
}

impl Prober {
    fn start(base: &str) -> Prober {
        let p = Prober {
            stop: Arc::new(AtomicBool::new(false)),
            slowest_ms: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(AtomicUsize::new(0)),
            probes: Arc::new(AtomicUsize::new(0)),
        };
        let (stop, slowest, failures, probes) = (p.stop.clone(), p.slowest_ms.clone(), p.failures.clone(), p.probes.clone());
        let url = format!("{base}/healthz");
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let ok = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::SeqCst);
                probes.fetch_add(1, Ordering::SeqCst);
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                // Real time: the probe measures how a real process answers, ten times a second.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        p
    }

    fn finish(&self) -> (u64, usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        (self.slowest_ms.load(Ordering::SeqCst), self.failures.load(Ordering::SeqCst), self.probes.load(Ordering::SeqCst))
    }
}

/// A scratch directory with `pratica.toml` and an empty `workflows/`, a fresh database, and an
/// engine that only deploys and starts (the server runs the work); [`ORDINARY`] is deployed.
async fn setup(backend: Backend, config: &str) -> Option<(ScratchDir, String, Engine)> {
    let ServeDir { scratch, url, starter } = prepare_serve(AppOptions::new(backend).pratica_toml(config).deploy(ORDINARY)).await?;
    Some((scratch, url, starter))
}

const ORDINARY: &str = r#"
workflow: ordinary
version: 1
title: An ordinary case beside the hostile ones
steps:
  - id: note
    set: { greeting: "Buongiorno {{ input.name }}", total: "${ [.input.items[] | .amount] | add }" }
  - id: pause
    wait: { for: 200ms }
  - id: done
    end: { output: { total: "${ .vars.total }" } }
"#;

/// A workflow of one `set` step with these values (each written as a YAML block scalar, so
/// that it is exactly the text given).
fn one_step(name: &str, values: &[(&str, &str)]) -> String {
    let set: String = values.iter().map(|(k, v)| format!("      {k}: |-\n        {v}\n")).collect();
    format!("workflow: {name}\nversion: 1\ntitle: Hostile {name}\nsteps:\n  - id: evil\n    set:\n{set}  - id: done\n    end: {{}}\n")
}

async fn start(engine: &Engine, workflow: &str, input: Value) -> String {
    engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id
}

async fn ended(store: &Store, ids: &[String], limit: Duration) -> Vec<InstanceRow> {
    let rows = eventually(limit, async || {
        let rows = store.instances_by_id(ids).await.unwrap();
        if rows.len() == ids.len() && rows.iter().all(|r| r.status != "running") { Ok(rows) } else { Err(rows) }
    });
    rows.await.unwrap_or_else(|rows| {
        let open: Vec<_> = rows.iter().filter(|r| r.status == "running").map(|r| r.workflow.clone()).collect();
        panic!("still running after {limit:?}: {open:?}");
    })
}

fn error_code(row: &InstanceRow) -> String {
    let error: Value = row.error.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or(Value::Null);
    error["code"].as_str().unwrap_or("").to_string()
}

both_backends!(hostile_definitions_are_refused_at_deployment, |backend| async move {
    let Some((_scratch, _url, engine)) = setup(backend, "").await else { return };
    let refused = [
        ("WF0305", "${ env.PRATICA_SECRET }"),
        ("WF0305", "${ $ENV.HOME }"),
        ("WF0305", "${ halt }"),
        ("WF0305", "${ .input | halt_error(1) }"),
        ("WF0305", "${ [inputs] }"),
        ("WF0305", "${ localtime }"),
        ("WF0306", "${ def f: f; f }"),
        ("WF0306", "${ 0 | until(false; . + 1) }"),
        ("WF0306", "{{> evil }}"),
        ("WF0306", "{{#*inline \"evil\"}}x{{/inline}}"),
        ("WF0306", "{{ log input }}"),
    ];
    for (i, (code, set)) in refused.iter().enumerate() {
        match engine.deploy(&one_step(&format!("refused-{i}"), &[("x", set)])).await {
            Err(EngineError::Definition(d)) => assert!(d.iter().any(|d| d.code == *code), "{set}: {d:?}"),
            other => panic!("{set}: expected {code}, got {other:?}"),
        }
    }
});

/// A hostile workflow: its name, the `set` assignments it makes, the error code it must fail with.
type Hostile = (&'static str, &'static [(&'static str, &'static str)], &'static str);

both_backends!(hostile_definitions_fail_alone_and_the_server_stays_up, |backend| async move {
    // The case state may hold 1 MiB here, so that the state limit is reached quickly.
    let Some((scratch, url, engine)) = setup(backend, "[limits]\nstate_mib = 1\n").await else { return };
    let hostile: [Hostile; 9] = [
        ("spin", &[("x", "${ last(range(1e12)) }")], "expression.budget"),
        ("recursion", &[("x", "${ def f: 1 + f; f }")], "expression.budget"),
        ("generator", &[("x", "${ [range(1e9)] | length }")], "expression.budget"),
        ("repetition", &[("x", "${ \"x\" * 1000000000000 | length }")], "expression.budget"),
        ("allocation", &[("x", "${ [limit(1e9; repeat(\"0123456789abcdef\"))] | length }")], "expression.budget"),
        ("nesting", &[("x", "${ reduce range(100000) as $i (0; [.]) }")], "expression.budget"),
        ("huge-result", &[("x", "${ [range(400000)] }")], "expression.budget"),
        (
            "each",
            &[("x", "{{#each input.list}}{{#each @root.input.list}}{{#each @root.input.list}}x{{/each}}{{/each}}{{/each}}")],
            "template.budget",
        ),
        ("state", &[("a", "${ \"a\" * 700000 }"), ("b", "${ \"b\" * 700000 }")], "state.too_large"),
    ];
    let mut ids = Vec::new();
    let list: Vec<u32> = (0..1000).collect();
    for (name, set, _) in &hostile {
        engine.deploy(&one_step(name, set)).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        ids.push(start(&engine, name, json!({ "list": list })).await);
    }
    // An anonymous webhook whose business key spins, and one that takes the key from the body.
    for (hook, key) in [("spin-key", "${ last(range(1e12)) }"), ("body-key", "${ .input.case }")] {
        let yaml = format!(
            "workflow: {hook}\nversion: 1\ntitle: Keyed\nbusiness_key: \"{key}\"\ntriggers:\n  - webhook: {hook}\nsteps:\n  - id: done\n    end: {{}}\n"
        );
        engine.deploy(&yaml).await.unwrap();
    }
    let mut server = Server::start(&scratch.0, &url).await;
    let prober = Prober::start(&server.base);
    let ordinary_input = json!({ "name": "Maria", "items": [{ "amount": 10 }, { "amount": 32 }] });
    let ordinary = start(&engine, "ordinary", ordinary_input.clone()).await;

    let http = reqwest::Client::new();
    let hook = async |name: &str, body: Value| {
        let t = Instant::now();
        let r = http.post(format!("{}/hooks/{name}", server.base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null), t.elapsed())
    };
    let (status, problem, took) = hook("spin-key", json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_request")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("business_key"), "{problem}");
    assert!(took < Duration::from_secs(5), "the spinning key was stopped by its budget ({took:?})");
    let (status, problem, _) = hook("body-key", json!({ "case": "RSSMRA80A01H501U\u{202E}gnp.exe" })).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_request")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("U+202E"), "{problem}");
    let (status, problem, _) = hook("body-key", json!({ "case": "K".repeat(201) })).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("invalid_request")), "{problem}");
    let (status, answer, _) = hook("body-key", json!({ "case": "RSSMRA80A01H501U" })).await;
    assert_eq!(status, 202, "{answer}");

    let rows = ended(engine.store(), &ids, Duration::from_secs(180)).await;
    let ordinary_row = ended(engine.store(), std::slice::from_ref(&ordinary), Duration::from_secs(60)).await.remove(0);
    let peak = server.peak_rss_kib();
    let (slowest, failures, probes) = prober.finish();
    eprintln!("{backend:?}: /healthz slowest {slowest} ms over {probes} probes; peak RSS {} MiB", peak / 1024);

    for (row, (name, _, code)) in rows.iter().zip(&hostile) {
        assert_eq!((row.workflow.as_str(), row.status.as_str(), error_code(row).as_str()), (*name, "failed", *code), "{row:?}");
    }
    assert_eq!(ordinary_row.status, "completed", "{ordinary_row:?}");
    assert_eq!(serde_json::from_str::<Value>(ordinary_row.output.as_deref().unwrap()).unwrap(), json!({ "total": 42 }));
    assert!(probes > 5 && failures == 0, "/healthz failed {failures} of {probes} times");
    assert!(slowest < 1000, "/healthz took {slowest} ms");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {} MiB", peak / 1024);
    assert!(server.child.try_wait().unwrap().is_none(), "the server is still running:\n{}", server.log_text());
    // Nothing a hostile expression did reached the log as its own line.
    assert!(!server.log_text().contains("panicked"), "{}", server.log_text());
    server.kill_9().await;
});

both_backends!(a_poison_pill_is_quarantined_after_two_crashes, |backend| async move {
    // An evaluation may run for a minute here: long enough to outlive its process.
    let config = "[limits]\nexpression_time = \"60s\"\nexpression_steps = 1000000000000\n";
    let Some((scratch, url, engine)) = setup(backend, config).await else { return };
    engine.deploy(&one_step("poison", &[("x", "${ last(range(1e15)) }")])).await.unwrap();
    let poison = start(&engine, "poison", json!({})).await;
    let innocent = start(&engine, "ordinary", json!({ "name": "Anna", "items": [{ "amount": 1 }] })).await;
    for crash in 1..=2 {
        let mut server = Server::start(&scratch.0, &url).await;
        let claimed = eventually(Duration::from_secs(30), async || if server.claims.load(Ordering::SeqCst) > 0 { Ok(()) } else { Err(()) });
        assert!(claimed.await.is_ok(), "crash {crash}: the job was not claimed:\n{}", server.log_text());
        // Let the evaluation start, then kill the process in the middle of it (real time: a
        // real `pratica serve` evaluating on its own clock, killed with `kill -9`).
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.kill_9().await;
        let row = engine.store().instance(&poison).await.unwrap();
        assert_eq!(row.status, "running", "crash {crash}: {row:?}");
        // Let the lease of the dead process run out (real time: the next process reads the
        // system clock).
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let server = Server::start(&scratch.0, &url).await;
    let rows = ended(engine.store(), &[poison.clone(), innocent.clone()], Duration::from_secs(60)).await;
    assert_eq!((rows[0].status.as_str(), error_code(&rows[0]).as_str()), ("failed", "job.quarantined"), "{:?}", rows[0]);
    assert_eq!(rows[1].status, "completed", "the case claimed beside the poison is not quarantined: {:?}", rows[1]);
    let history = engine.store().history(&poison).await.unwrap();
    assert!(history.iter().any(|h| h.kind == "instance.failed"), "{history:?}");
    assert!(server.log_text().contains("job quarantined"), "{}", server.log_text());
    // The server that quarantined it works on.
    let after = start(&engine, "ordinary", json!({ "name": "Luca", "items": [] })).await;
    let row = ended(engine.store(), &[after], Duration::from_secs(30)).await.remove(0);
    assert_eq!(row.status, "completed", "{row:?}");
});
