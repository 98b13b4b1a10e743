//! Triggers on both backends: cron schedules across the daylight-saving changes of
//! Europe/Rome with a manual clock, missed fires coalesced, redeploys replacing schedules,
//! exactly-once firing with two engines racing on one database, message triggers, and
//! webhooks over HTTP (signatures, idempotent retries, unknown hooks).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pratica_api::http::{AppState, serve};
use pratica_engine::clock::{Millis, to_rfc3339};
use pratica_engine::connector::{Registry, Secrets};
use pratica_engine::runtime::{Delivery, Engine, EngineConfig, StartRequest};
use pratica_engine::store::{InstanceFilter, InstanceRow, Store};
use pratica_engine::trigger::webhook::sign;
use pratica_tests::backend::{Backend, TestEngine, test_engine};
use pratica_tests::both_backends;
use pratica_tests::wait::wait_until;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// `2026-03-29T01:00:00Z` (UTC) to milliseconds, without a date library in the tests crate.
fn ms(text: &str) -> Millis {
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.split('.').next().unwrap().parse().unwrap()).collect();
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000
}

async fn deploy(engine: &Engine, source: &str) {
    if let Err(e) = engine.deploy(source).await {
        panic!("deploy: {e}: {e:?}");
    }
}

async fn instances(engine: &Engine, workflow: &str) -> Vec<InstanceRow> {
    engine.store().instances(&InstanceFilter { workflow: Some(workflow.into()), ..Default::default() }).await.unwrap()
}

fn input_of(row: &InstanceRow) -> Value {
    serde_json::from_str(&row.input).unwrap()
}

/// The `instance.triggered` event's data.
async fn triggered(engine: &Engine, id: &str) -> Value {
    let history = engine.store().history(id).await.unwrap();
    assert_eq!(history[0].kind, "instance.triggered", "{history:?}");
    serde_json::from_str(&history[0].data).unwrap()
}

const DST: &str = r#"workflow: dst
version: 1
title: Cron across daylight-saving changes
triggers:
  - cron: "30 2 * * *"
    input: { slot: "${ .trigger.scheduled_for }" }
  - cron: "0 * * * *"
    timezone: Europe/Rome
steps:
  - id: done
    end: { output: { ok: true } }
"#;

/// Deploys [`DST`] at `from`, walks the clock to `to` in 10-minute steps firing due
/// schedules (twice per step: the second finds nothing), and returns the due times fired
/// per trigger index.
async fn walk(t: &TestEngine, from: &str, to: &str) -> BTreeMap<String, Vec<String>> {
    t.clock.set(ms(from));
    deploy(&t.engine, DST).await;
    while t.engine.now() < ms(to) {
        t.clock.advance(Duration::from_secs(600));
        t.engine.fire_due_schedules().await.unwrap();
        assert_eq!(t.engine.fire_due_schedules().await.unwrap().fired, 0);
    }
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in instances(&t.engine, "dst").await {
        let rid = row.request_id.clone().unwrap();
        let rest = rid.strip_prefix("cron:dst:").unwrap();
        let (ix, at) = rest.split_once(':').unwrap();
        if ix == "0" {
            assert_eq!(input_of(&row), json!({ "slot": at }));
        } else {
            assert_eq!(input_of(&row), json!({}));
        }
        assert_eq!(triggered(&t.engine, &row.id).await["scheduled_for"], json!(at));
        fired.entry(ix.to_string()).or_default().push(at.to_string());
    }
    for list in fired.values_mut() {
        list.sort();
        let before = list.len();
        list.dedup();
        assert_eq!(before, list.len(), "a due time started more than one instance");
    }
    fired
}

fn hours(from: &str, count: i64) -> Vec<String> {
    (0..count).map(|h| to_rfc3339(ms(from) + h * 3_600_000)).collect()
}

both_backends!(cron_across_the_spring_change_in_rome, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    let fired = walk(&t, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z").await;
    // 02:30 does not exist on 2026-03-29: the fixed-time schedule fires at 03:00 CEST.
    assert_eq!(fired["0"], ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
    // Hourly: every real hour once (01:00 CET is 00:00Z, then 03:00 CEST is 01:00Z).
    assert_eq!(fired["1"], hours("2026-03-28T13:00:00Z", 48));
});

both_backends!(cron_across_the_autumn_change_in_rome, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    let fired = walk(&t, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z").await;
    // 02:30 happens twice on 2026-10-25: fired once, at the first (CEST).
    assert_eq!(fired["0"], ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
    // Hourly: every real hour once, both 02:00 CEST (00:00Z) and 02:00 CET (01:00Z).
    assert_eq!(fired["1"], hours("2026-10-24T13:00:00Z", 48));
});

both_backends!(missed_fires_are_coalesced_into_one, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.clock.set(ms("2026-05-01T09:30:00Z"));
    deploy(
        &t.engine,
        r#"workflow: hourly
version: 1
title: Hourly
triggers:
  - cron: "0 * * * *"
    timezone: UTC
    input: { missed: "${ .trigger.missed }", at: "${ .trigger.scheduled_for }", day: "${ .trigger.scheduled_for[0:10] }" }
steps:
  - id: done
    end: {}
"#,
    )
    .await;
    t.clock.set(ms("2026-05-01T10:00:00Z"));
    assert_eq!(t.engine.fire_due_schedules().await.unwrap().fired, 1);
    // The server is down from 10:00 to 15:30: 11, 12, 13, 14 and 15 are due.
    t.clock.set(ms("2026-05-01T15:30:00Z"));
    assert_eq!(t.engine.fire_due_schedules().await.unwrap().fired, 1);
    assert_eq!(t.engine.fire_due_schedules().await.unwrap().fired, 0);
    let rows = instances(&t.engine, "hourly").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(input_of(&rows[1]), json!({ "missed": 4, "at": "2026-05-01T15:00:00.000Z", "day": "2026-05-01" }));
    let record = triggered(&t.engine, &rows[1].id).await;
    assert_eq!((record["trigger"].clone(), record["missed"].clone()), (json!("cron"), json!(4)));
    // It continues from now.
    let schedules = t.engine.store().schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].next_fire_at, ms("2026-05-01T16:00:00Z"));
    // The instances run like any other and the history chain stays valid.
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(t.engine.store().instance(&rows[1].id).await.unwrap().status, "completed");
});

both_backends!(a_new_version_replaces_the_triggers, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    let v1 = r#"workflow: report
version: 1
title: Report
triggers:
  - cron: "0 7 * * *"
  - message: report-requested
steps:
  - id: done
    end: {}
"#;
    deploy(&t.engine, v1).await;
    let before = t.engine.store().schedules().await.unwrap();
    assert_eq!(before.iter().map(|s| (s.schedule.as_str(), s.version)).collect::<Vec<_>>(), [("0 7 * * *", 1)]);
    // 2026-03-01T09:00Z is 10:00 in Rome: the next 07:00 is tomorrow, 06:00Z.
    assert_eq!(before[0].next_fire_at, ms("2026-03-02T06:00:00Z"));
    deploy(
        &t.engine,
        &v1.replace("version: 1", "version: 2").replace("0 7 * * *", "0 8 * * *").replace("  - message: report-requested\n", ""),
    )
    .await;
    let after = t.engine.store().schedules().await.unwrap();
    assert_eq!(after.iter().map(|s| (s.schedule.as_str(), s.version)).collect::<Vec<_>>(), [("0 8 * * *", 2)]);
    assert_eq!(after[0].next_fire_at, ms("2026-03-02T07:00:00Z"));
    // Deploying the same content again changes nothing; the message trigger is gone.
    deploy(&t.engine, v1).await;
    assert_eq!(t.engine.store().schedules().await.unwrap(), after);
    let published = t.engine.publish_message("report-requested", "k", json!({})).await.unwrap();
    assert!(published.started.is_empty());
    // The version-2 schedule fires an instance of version 2.
    t.clock.set(ms("2026-03-02T07:00:00Z"));
    assert_eq!(t.engine.fire_due_schedules().await.unwrap().fired, 1);
    let rows = instances(&t.engine, "report").await;
    assert_eq!((rows.len(), rows[0].version), (1, 2));
});

both_backends!(two_engines_racing_fire_each_due_time_once, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    let other = Engine::new(
        Store::connect(&t.url).await.unwrap(),
        Registry::builtin(),
        Arc::new(t.clock.clone()),
        EngineConfig { worker_id: "other".into(), ..EngineConfig::default() },
    );
    let source =
        "workflow: minutely\nversion: 1\ntitle: Every minute\ntriggers:\n  - cron: \"* * * * *\"\nsteps:\n  - id: done\n    end: {}\n";
    // Both processes deploy the same directory at start-up.
    let (a, b) = tokio::join!(t.engine.deploy(source), other.deploy(source));
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    let (a, b) = tokio::join!(t.engine.deploy(source), other.deploy(source));
    assert!(!a.unwrap().created && !b.unwrap().created);
    const ROUNDS: usize = 50;
    for round in 0..ROUNDS {
        t.clock.advance(Duration::from_secs(60));
        let (x, y) = tokio::join!(t.engine.fire_due_schedules(), other.fire_due_schedules());
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.fired + y.fired, 1, "round {round}: {x:?} {y:?}");
    }
    let rows = instances(&t.engine, "minutely").await;
    assert_eq!(rows.len(), ROUNDS);
    let mut due: Vec<String> = rows.iter().map(|r| r.request_id.clone().unwrap()).collect();
    due.sort();
    let expected: Vec<String> =
        (1..=ROUNDS as i64).map(|m| format!("cron:minutely:0:{}", to_rfc3339(pratica_tests::backend::T0 + m * 60_000))).collect();
    assert_eq!(due, expected);
    other.store().close().await;
});

both_backends!(a_message_starts_each_triggered_workflow_once, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    deploy(
        &t.engine,
        r#"workflow: intake
version: 1
title: Intake
triggers:
  - message: application-received
    input: { cf: "${ .input.fiscal_code }" }
steps:
  - id: done
    end: { output: "${ .input }" }
"#,
    )
    .await;
    deploy(
        &t.engine,
        r#"workflow: waiter
version: 1
title: Waits
steps:
  - id: wait
    receive: { message: application-received, correlate: "${ .input.key }" }
"#,
    )
    .await;
    deploy(
        &t.engine,
        "workflow: audit-log\nversion: 1\ntitle: Audit\ntriggers:\n  - message: application-received\nsteps:\n  - id: done\n    end: {}\n",
    )
    .await;
    let waiting =
        t.engine.start(StartRequest { workflow: "waiter".into(), input: json!({"key": "A1"}), ..Default::default() }).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    // One publication: delivered to the waiting instance, and one instance per triggered workflow.
    let published = t.engine.publish_message("application-received", "A1", json!({"fiscal_code": "RSSMRA80A01H501U"})).await.unwrap();
    assert_eq!(published.delivery, Delivery::Delivered { instance: waiting.id.clone() });
    assert_eq!(published.started.len(), 2);
    assert!(published.started.iter().all(|s| s.created));
    let intake = instances(&t.engine, "intake").await;
    assert_eq!(intake.len(), 1);
    assert_eq!(input_of(&intake[0]), json!({"cf": "RSSMRA80A01H501U"}));
    assert_eq!(intake[0].request_id.as_deref(), Some(format!("msg:{}", published.message).as_str()));
    let log = instances(&t.engine, "audit-log").await;
    assert_eq!(input_of(&log[0]), json!({"fiscal_code": "RSSMRA80A01H501U"}));
    assert_eq!(triggered(&t.engine, &log[0].id).await["message"], json!("application-received"));
    // A second message (nobody waits: buffered) starts one more of each.
    let second = t.engine.publish("application-received", "B2", json!({"fiscal_code": "VRDLGU70B02F205X"})).await.unwrap();
    assert!(matches!(second, Delivery::Buffered { .. }));
    assert_eq!(instances(&t.engine, "intake").await.len(), 2);
    assert_eq!(instances(&t.engine, "audit-log").await.len(), 2);
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(t.engine.store().instance(&waiting.id).await.unwrap().status, "completed");
});

/// An engine with the HTTP API on 127.0.0.1:0; stops the server when dropped.
struct Hooks {
    base: String,
    t: TestEngine,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn hooks(backend: Backend) -> Option<Hooks> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secrets = Secrets::from_values([("webhook-intake".to_string(), "s3cret-value".to_string())]);
    let t = test_engine(backend, Registry::builtin().with_secrets(secrets)).await?;
    deploy(
        &t.engine,
        r#"workflow: signed
version: 1
title: Signed intake
triggers:
  - webhook: case-intake
    secret: webhook-intake
steps:
  - id: done
    end: {}
"#,
    )
    .await;
    deploy(
        &t.engine,
        r#"workflow: open
version: 1
title: Open intake
triggers:
  - webhook: open-intake
    input: { office: "${ .input.office }", kind: open }
steps:
  - id: done
    end: {}
"#,
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(serve(listener, AppState::new(t.engine.clone()), async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Some(Hooks { base, t, http: reqwest::Client::new(), stop })
}

impl Hooks {
    async fn post(&self, hook: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request =
            self.http.post(format!("{}/hooks/{hook}", self.base)).header("content-type", "application/json").body(body.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

both_backends!(webhooks_check_signatures_and_start_once_per_key, |backend| async move {
    let Some(h) = hooks(backend).await else { return };
    let body = r#"{"case": "C-1"}"#;
    // The engine's clock, not the wall clock: the tolerance is checked against it.
    let now = h.t.engine.now() / 1000;
    let ts = now.to_string();
    let good = sign("s3cret-value", now, body.as_bytes());
    let (status, answer) = h
        .post("case-intake", body, &[("x-pratica-timestamp", &ts), ("x-pratica-signature", &good), ("idempotency-key", "delivery-1")])
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["created"], json!(true));
    let first = answer["instance"].as_str().unwrap().to_string();
    let row = h.t.engine.store().instance(&first).await.unwrap();
    assert_eq!((row.workflow.as_str(), input_of(&row)), ("signed", json!({"case": "C-1"})));
    assert_eq!(triggered(&h.t.engine, &first).await["webhook"], json!("case-intake"));
    // The same signed request again is a replay; a retry signed anew with the same key: the same instance.
    let (status, answer) = h
        .post("case-intake", body, &[("x-pratica-timestamp", &ts), ("x-pratica-signature", &good), ("idempotency-key", "delivery-1")])
        .await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("webhook_replayed")), "{answer}");
    let (ts2, again) = ((now + 1).to_string(), sign("s3cret-value", now + 1, body.as_bytes()));
    let (status, answer) = h
        .post("case-intake", body, &[("x-pratica-timestamp", &ts2), ("x-pratica-signature", &again), ("idempotency-key", "delivery-1")])
        .await;
    assert_eq!((status, answer["instance"].as_str(), answer["created"].clone()), (202, Some(first.as_str()), json!(false)));
    // Wrong secret, tampered body, missing header: 401.
    let wrong = sign("other", now, body.as_bytes());
    for headers in [
        vec![("x-pratica-timestamp", ts.as_str()), ("x-pratica-signature", wrong.as_str())],
        vec![],
        vec![("x-pratica-timestamp", ts.as_str()), ("x-pratica-signature", "sha256=00")],
    ] {
        let (status, answer) = h.post("case-intake", body, &headers).await;
        assert_eq!((status, answer["code"].as_str()), (401, Some("signature_invalid")), "{answer}");
    }
    let (status, _) = h.post("case-intake", r#"{"case": "C-2"}"#, &[("x-pratica-timestamp", &ts), ("x-pratica-signature", &good)]).await;
    assert_eq!(status, 401);
    assert_eq!(instances(&h.t.engine, "signed").await.len(), 1);
    // An unsigned hook with an input mapping; unknown hooks and bad bodies are problems.
    let (status, answer) = h.post("open-intake", r#"{"office": "7000"}"#, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let row = h.t.engine.store().instance(answer["instance"].as_str().unwrap()).await.unwrap();
    assert_eq!(input_of(&row), json!({"office": "7000", "kind": "open"}));
    let (status, answer) = h.post("no-such-hook", "{}", &[]).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = h.post("open-intake", "{not json", &[]).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("malformed_json")));
    let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(1024 * 1024));
    let (status, _) = h.post("open-intake", &big, &[]).await;
    assert_eq!(status, 413);
});

#[tokio::test]
async fn a_webhook_name_belongs_to_one_workflow() {
    let Some(t) = test_engine(Backend::Sqlite, Registry::builtin()).await else { return };
    let hook = |name: &str| {
        format!("workflow: {name}\nversion: 1\ntitle: T\ntriggers:\n  - webhook: shared\nsteps:\n  - id: done\n    end: {{}}\n")
    };
    deploy(&t.engine, &hook("first")).await;
    let err = t.engine.deploy(&hook("second")).await.unwrap_err();
    assert!(err.to_string().contains("webhook `shared` is already used by workflow `first`"), "{err}");
}

/// Two real `pratica serve` processes on one PostgreSQL, both deploying a workflow with a
/// `* * * * *` trigger: each minute starts exactly one instance. It waits for two minute
/// boundaries (about a minute and a half), in parallel with the rest of the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_fire_each_minute_once() {
    use pratica_tests::backend::{ScratchDir, fresh_database};
    let scratch = ScratchDir::new();
    let Some(url) = fresh_database(Backend::Postgres, &scratch).await else { return };
    std::fs::write(scratch.0.join("pratica.toml"), "").unwrap();
    let dir = scratch.0.join("workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("minutely.yaml"),
        "workflow: minutely\nversion: 1\ntitle: Every minute\ntriggers:\n  - cron: \"* * * * *\"\nsteps:\n  - id: done\n    end: {}\n",
    )
    .unwrap();
    let serve = || {
        tokio::process::Command::new(pratica_tests::pratica_bin())
            .args(["serve", "--db", &url, "--config"])
            .arg(scratch.0.join("pratica.toml"))
            .arg("--workflows")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start pratica serve")
    };
    let (_a, _b) = (serve(), serve());
    let store = Store::connect(&url).await.unwrap();
    // Two due minutes fired (the first schedule row appears once a process has deployed).
    wait_until("two fires", Duration::from_secs(150), async || {
        let rows = store.instances(&InstanceFilter { workflow: Some("minutely".into()), ..Default::default() }).await.unwrap();
        rows.len() >= 2
    })
    .await;
    // Give the slower process time to (not) fire the same minute too (real time: two real
    // `pratica serve` processes on the system clock; nothing to wait on for a non-event).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rows = store.instances(&InstanceFilter { workflow: Some("minutely".into()), ..Default::default() }).await.unwrap();
    let mut minutes: Vec<String> = rows.iter().map(|r| r.request_id.clone().unwrap()).collect();
    minutes.sort();
    minutes.dedup();
    assert_eq!(minutes.len(), rows.len(), "a minute started two instances: {minutes:?}");
    assert!(rows.len() == 2 || rows.len() == 3, "{minutes:?}");
    for m in &minutes {
        assert!(m.starts_with("cron:minutely:0:") && m.ends_with(":00.000Z"), "{m}");
    }
    store.close().await;
}
