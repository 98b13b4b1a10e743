//! Proactive notification end to end on both backends: the real
//! `workflows/proactive-notification.yaml` with its schemas, its connectors configured as in
//! `pratica.toml` and talking over real HTTP and SMTP (App IO and the SMTP server of the
//! sandbox in `examples/sandbox`; the INPS eligibility scan and notice register served by a
//! small service in this file, since the sandbox has no notice register), and a manual clock
//! walked hour by hour for sixteen days across the end of summer time in Rome
//! (2026-10-25 03:00 CEST → 02:00 CET), with citizens becoming eligible on different days and
//! the process restarted six times: in both 02:30s of the DST night, while an App IO
//! message settles, while the engine is down across a daily scan, between two reminders, and
//! once by dying in the middle of a call (INPS registered a notice, the answer was lost).
//!
//! **What "exactly one message" means here.** For each eligible citizen (benefit, fiscal
//! code, termination) exactly one *notice* is delivered: an App IO message that App IO
//! processed, or else one e-mail — an App IO message that App IO rejected is not a delivered
//! notice, and the e-mail that replaces it is the one. Then at most one *reminder*, on the
//! channel that delivered the notice, only to those who did not apply within 10 days. The
//! notice is registered once with `inps.notices` (one first registration per notice), and
//! nothing is ever sent twice (no repeated Message-ID, no repeated App IO idempotency key).
//! Nobody the scan does not return is contacted.
//!
//! The INPS service here returns every citizen still eligible on every day's scan (it does
//! not leave out those contacted recently), so the daily scans keep finding the citizens
//! already notified: only the notice register stops a second message.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pratica_api::config::Config;
use pratica_api::registry::build_registry;
use pratica_engine::clock::{Clock, ManualClock, Millis, to_rfc3339};
use pratica_engine::runtime::{Delivery, Engine, EngineConfig, StartRequest, output_of};
use pratica_engine::schemas::SchemaSet;
use pratica_engine::store::{InstanceFilter, InstanceRow, Store};
use pratica_sandbox::chrono::{DateTime, Days, NaiveDate};
use pratica_sandbox::{Citizen, Options, Sandbox};
use pratica_tests::backend::{Backend, ScratchDir, fresh_database};
use pratica_tests::{both_backends, repo_path};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const WORKFLOW: &str = "proactive-notification";
const HOUR: Millis = 3_600_000;

/// `2026-10-25T01:30:00Z` to milliseconds.
fn ms(text: &str) -> Millis {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}")).timestamp_millis()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// A fictitious citizen of the test.
#[derive(Clone)]
struct Person {
    cf: &'static str,
    first: &'static str,
    last: &'static str,
    email: Option<&'static str>,
    /// End of employment (UNILAV).
    termination: &'static str,
    /// `dismissal` (involuntary) or `resignation` (voluntary).
    reason: &'static str,
    /// `enabled`, `sender_not_allowed` or `no_profile`.
    app_io: &'static str,
}

impl Person {
    fn deadline(&self) -> NaiveDate {
        date(self.termination).checked_add_days(Days::new(68)).unwrap()
    }

    fn sandbox_citizen(&self) -> Citizen {
        serde_json::from_value(json!({
            "fiscal_code": self.cf,
            "first_name": self.first,
            "last_name": self.last,
            "birth_date": "1985-01-01",
            "email": self.email,
            "residence": { "address": "Via Roma 1", "postal_code": "00184", "municipality": "Roma", "province": "RM" },
            "office": "7000",
            "iban": null,
            "scenario": "unclaimed",
            "app_io": self.app_io,
        }))
        .expect("a sandbox citizen")
    }
}

// Eligible when the scan's date is at least 8 days after the termination (the deadline,
// 68 days after it, is then within the scan's 60 days).
/// App IO, applies after the first notice: no reminder.
const VERDI: Person = Person {
    cf: "VRDGPP92S03L219I",
    first: "Giuseppe",
    last: "Verdi",
    email: Some("giuseppe.verdi@example.it"),
    termination: "2026-10-16",
    reason: "dismissal",
    app_io: "enabled",
};
/// App IO, never applies: one App IO reminder.
const GALLI: Person = Person {
    cf: "GLLMRC88D15G273V",
    first: "Marco",
    last: "Galli",
    email: Some("marco.galli@example.it"),
    termination: "2026-10-16",
    reason: "dismissal",
    app_io: "enabled",
};
/// Not on App IO: e-mail, then one e-mail reminder.
const FERRARI: Person = Person {
    cf: "FRRLCU65A01A944Z",
    first: "Luca",
    last: "Ferrari",
    email: Some("luca.ferrari@example.it"),
    termination: "2026-10-16",
    reason: "dismissal",
    app_io: "no_profile",
};
/// On App IO, but App IO rejects her messages: e-mail instead, then one e-mail reminder.
/// Eligible on the day of the change of time.
const SARTORI: Person = Person {
    cf: "SRTNNA81E41F839B",
    first: "Anna",
    last: "Sartori",
    email: Some("anna.sartori@example.it"),
    termination: "2026-10-17",
    reason: "dismissal",
    app_io: "enabled",
};
/// Turned INPS messages off on App IO: e-mail; applies later: no reminder.
const COLOMBO: Person = Person {
    cf: "CLMFNC90M44L736D",
    first: "Francesca",
    last: "Colombo",
    email: Some("francesca.colombo@example.it"),
    termination: "2026-10-18",
    reason: "dismissal",
    app_io: "sender_not_allowed",
};
/// App IO, no e-mail address, eligible after the restarts: one App IO reminder.
const ROSSI: Person = Person {
    cf: "RSSMRA80A01H501U",
    first: "Mario",
    last: "Rossi",
    email: None,
    termination: "2026-10-20",
    reason: "dismissal",
    app_io: "enabled",
};
/// Resigned: no NASpI, never contacted.
const BIANCHI: Person = Person {
    cf: "BNCGLI75B52H501X",
    first: "Giulia",
    last: "Bianchi",
    email: Some("giulia.bianchi@example.it"),
    termination: "2026-10-10",
    reason: "resignation",
    app_io: "enabled",
};
/// Applied before the first scan: never contacted.
const RICCI: Person = Person {
    cf: "RCCLSN70C10F205K",
    first: "Alessandro",
    last: "Ricci",
    email: Some("alessandro.ricci@example.it"),
    termination: "2026-10-12",
    reason: "dismissal",
    app_io: "enabled",
};
/// Deadline passed before the first scan: never contacted.
const CONTI: Person = Person {
    cf: "CNTPLA60D55L219Y",
    first: "Paola",
    last: "Conti",
    email: Some("paola.conti@example.it"),
    termination: "2026-08-01",
    reason: "dismissal",
    app_io: "enabled",
};
/// Eligible only after the days walked: never contacted in them.
const MARINO: Person = Person {
    cf: "MRNLNE82E50F839Q",
    first: "Elena",
    last: "Marino",
    email: Some("elena.marino@example.it"),
    termination: "2026-11-03",
    reason: "dismissal",
    app_io: "enabled",
};

fn people() -> Vec<Person> {
    vec![VERDI, GALLI, FERRARI, SARTORI, COLOMBO, ROSSI, BIANCHI, RICCI, CONTI, MARINO]
}

/// One request to `POST /inps/notices`.
#[derive(Debug, Clone)]
struct Registration {
    notice_id: String,
    fiscal_code: String,
    key: String,
    first: bool,
}

/// What the fake INPS knows and saw.
#[derive(Default)]
struct InpsState {
    people: Vec<Person>,
    applied: BTreeSet<String>,
    /// `as_of` of each eligibility scan.
    scans: Vec<String>,
    /// notice id → (the key of its first registration, registered_at).
    notices: BTreeMap<String, (String, String)>,
    registrations: Vec<Registration>,
    /// A fiscal code whose next registration is recorded and then never answered (the
    /// process dies while it waits), and whom to tell when it arrives.
    trap: Option<(String, Arc<Notify>)>,
}

#[derive(Clone, Default)]
struct Inps(Arc<Mutex<InpsState>>);

impl Inps {
    fn lock(&self) -> MutexGuard<'_, InpsState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail }))).into_response()
}

/// `POST /inps/eligibility`: citizens whose employment ended involuntarily on or before
/// `as_of`, who have not applied, and whose deadline falls in `[as_of, as_of + deadline_within_days]`.
async fn eligibility(State(inps): State<Inps>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else { return problem(StatusCode::BAD_REQUEST, "not JSON") };
    let (Some(as_of), Some(within)) =
        (request["as_of"].as_str().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()), request["deadline_within_days"].as_u64())
    else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "`as_of` (YYYY-MM-DD) and `deadline_within_days` are required");
    };
    if request["benefit"] != "naspi" || request["limit"].as_u64().is_none() {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "`benefit: naspi` and `limit` are required");
    }
    let mut s = inps.lock();
    s.scans.push(as_of.to_string());
    let last_day = as_of.checked_add_days(Days::new(within)).unwrap();
    let found: Vec<Value> = s
        .people
        .iter()
        .filter(|p| p.reason == "dismissal" && date(p.termination) <= as_of && !s.applied.contains(p.cf))
        .filter(|p| p.deadline() >= as_of && p.deadline() <= last_day)
        .map(|p| {
            json!({
                "fiscal_code": p.cf, "first_name": p.first, "last_name": p.last, "email": p.email,
                "termination_date": p.termination, "deadline": p.deadline().to_string(),
            })
        })
        .collect();
    axum::Json(json!({ "citizens": found })).into_response()
}

/// `POST /inps/notices`: `first` only for the first registration of a notice id; the same
/// Idempotency-Key again gets the first answer again.
async fn notices(State(inps): State<Inps>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return problem(StatusCode::BAD_REQUEST, "Idempotency-Key is required");
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else { return problem(StatusCode::BAD_REQUEST, "not JSON") };
    let (Some(notice_id), Some(fiscal_code)) = (request["notice_id"].as_str(), request["fiscal_code"].as_str()) else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "`notice_id` and `fiscal_code` are required");
    };
    let (first, registered_at, crashed) = {
        let mut s = inps.lock();
        let (first, registered_at) = match s.notices.get(notice_id) {
            Some((first_key, at)) => (*first_key == key, at.clone()),
            None => {
                let at = pratica_sandbox::chrono::Utc::now().to_rfc3339();
                s.notices.insert(notice_id.to_string(), (key.clone(), at.clone()));
                (true, at)
            }
        };
        s.registrations.push(Registration { notice_id: notice_id.into(), fiscal_code: fiscal_code.into(), key, first });
        let crashed = if s.trap.as_ref().is_some_and(|(cf, _)| cf == fiscal_code) { s.trap.take().map(|(_, n)| n) } else { None };
        (first, registered_at, crashed)
    };
    if let Some(crashed) = crashed {
        crashed.notify_one();
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, axum::Json(json!({ "first": first, "registered_at": registered_at }))).into_response()
}

async fn start_inps(inps: Inps) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/inps/eligibility", post(eligibility)).route("/inps/notices", post(notices)).with_state(inps);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// The installation: database, clock, configuration, external systems, and the current
/// process's engine (replaced on each restart).
struct World {
    url: String,
    clock: ManualClock,
    config: Config,
    source: String,
    engine: Engine,
    processes: usize,
    sandbox: Sandbox,
    inps: Inps,
    _scratch: ScratchDir,
}

impl World {
    async fn new(backend: Backend) -> Option<World> {
        let scratch = ScratchDir::new();
        let url = fresh_database(backend, &scratch).await?;
        let sandbox = pratica_sandbox::start_with(Options::empty("127.0.0.1:0".parse().unwrap())).await.unwrap();
        sandbox.add_citizens(people().iter().map(Person::sandbox_citizen));
        let inps = Inps::default();
        {
            let mut s = inps.lock();
            s.people = people();
            s.applied.insert(RICCI.cf.to_string());
        }
        let inps_url = start_inps(inps.clone()).await;
        // The shipped pratica.toml with the connectors pointed at the sandbox, and `inps` at
        // the notice register above.
        let shipped = std::fs::read_to_string(repo_path("pratica.toml")).unwrap();
        let base = Sandbox::retain_connectors(&shipped, &["inps", "email", "appio"]).unwrap();
        let text = sandbox.pratica_config(&base, &scratch.0.join("appio.key")).unwrap();
        let mut config = Config::parse(&text).unwrap();
        config.connectors.get_mut("inps").unwrap().settings.insert("base_url".into(), format!("{inps_url}/inps").into());
        let clock = ManualClock::new(ms("2026-10-24T04:00:00Z"));
        let source = std::fs::read_to_string(repo_path("workflows/proactive-notification.yaml")).unwrap();
        let engine = process(&url, &config, &clock, 1).await;
        engine.deploy(&source).await.unwrap_or_else(|e| panic!("deploy: {e}: {e:?}"));
        Some(World { url, clock, config, source, engine, processes: 1, sandbox, inps, _scratch: scratch })
    }

    /// Stops the process (its engine and store) and starts a new one on the same database,
    /// which deploys the workflows at start-up like `pratica serve` (a no-op here).
    async fn restart(&mut self) {
        self.engine.store().close().await;
        self.processes += 1;
        self.engine = process(&self.url, &self.config, &self.clock, self.processes).await;
        let deployed = self.engine.deploy(&self.source).await.unwrap();
        assert!(!deployed.created, "the same content is not deployed again");
    }

    /// Fires due schedules, runs every due job, and lets App IO reject Anna Sartori's messages.
    async fn tick(&self) {
        self.engine.fire_due_schedules().await.unwrap();
        self.engine.run_until_idle().await.unwrap();
        for m in self.sandbox.state().io_messages.iter_mut() {
            if m.fiscal_code == SARTORI.cf && m.status == "PROCESSED" {
                m.status = "REJECTED".into();
            }
        }
    }

    /// Walks the clock to `until` from full hour to full hour (and to `until` itself),
    /// ticking at each step.
    async fn walk_to(&self, until: &str) {
        let until = ms(until);
        while self.clock.now() < until {
            self.clock.set(((self.clock.now() / HOUR + 1) * HOUR).min(until));
            self.tick().await;
        }
    }

    async fn instances(&self) -> Vec<InstanceRow> {
        let filter = InstanceFilter { workflow: Some(WORKFLOW.into()), ..Default::default() };
        let mut rows = self.engine.store().instances(&filter).await.unwrap();
        rows.sort_by_key(|r| (r.started_at, r.id.clone()));
        rows
    }

    /// Fires the schedule due now and works until `person`'s notice has been registered with
    /// INPS; the process dies right then, before the answer arrives (so before anything is
    /// committed), and a new process starts a minute later, after the dead one's leases.
    async fn crash_while_registering(&mut self, person: &Person) {
        let crashed = Arc::new(Notify::new());
        self.inps.lock().trap = Some((person.cf.to_string(), crashed.clone()));
        let engine = self.engine.clone();
        let work = tokio::spawn(async move {
            engine.fire_due_schedules().await.unwrap();
            engine.run_until_idle().await.unwrap();
        });
        tokio::time::timeout(Duration::from_secs(30), crashed.notified()).await.expect("the notice is registered");
        work.abort();
        let _ = work.await;
        self.clock.set(self.clock.now() + 60_000);
        self.restart().await;
        self.tick().await;
    }

    /// A citizen applies: INPS has the application (the scan leaves them out), and the
    /// message reaches the instance waiting for it.
    async fn apply(&self, person: &Person, application_id: &str) {
        self.inps.lock().applied.insert(person.cf.to_string());
        let payload = json!({
            "application_id": application_id, "application_date": &to_rfc3339(self.clock.now())[0..10], "channel": "online",
            "applicant": { "fiscal_code": person.cf, "first_name": person.first, "last_name": person.last },
        });
        let delivery = self.engine.publish("naspi-application-submitted", person.cf, payload).await.unwrap();
        assert!(matches!(delivery, Delivery::Delivered { .. }), "{} applies: {delivery:?}", person.cf);
        self.tick().await;
    }

    /// (notices, reminders) delivered per fiscal code, and App IO messages App IO rejected.
    fn delivered(&self) -> BTreeMap<&'static str, Delivered> {
        let mut out: BTreeMap<&'static str, Delivered> = people().iter().map(|p| (p.cf, Delivered::default())).collect();
        for m in self.sandbox.io_messages() {
            let Some(d) = out.get_mut(m.fiscal_code.as_str()) else { panic!("an App IO message to someone unknown: {m:?}") };
            let reminder = m.subject.starts_with("Promemoria");
            match m.status.as_str() {
                "PROCESSED" if reminder => d.app_io_reminders.push(m.subject.clone()),
                "PROCESSED" => d.app_io_notices.push(m.subject.clone()),
                _ => d.app_io_rejected += 1,
            }
        }
        for mail in self.sandbox.mail() {
            assert!(!mail.duplicate, "an e-mail sent twice: {mail:?}");
            assert_eq!(mail.rcpt_to.len(), 1, "{mail:?}");
            let Some(p) = people().into_iter().find(|p| p.email == Some(mail.rcpt_to[0].as_str())) else {
                panic!("an e-mail to someone unknown: {mail:?}");
            };
            let d = out.get_mut(p.cf).unwrap();
            if mail.subject.starts_with("INPS - Promemoria") {
                d.mail_reminders.push(mail.subject.clone());
            } else {
                d.mail_notices.push(mail.subject.clone());
            }
        }
        out
    }
}

/// Messages that reached one citizen.
#[derive(Debug, Default, Clone, PartialEq)]
struct Delivered {
    app_io_notices: Vec<String>,
    app_io_reminders: Vec<String>,
    /// App IO messages App IO did not deliver (REJECTED).
    app_io_rejected: usize,
    mail_notices: Vec<String>,
    mail_reminders: Vec<String>,
}

impl Delivered {
    fn notices(&self) -> usize {
        self.app_io_notices.len() + self.mail_notices.len()
    }

    fn reminders(&self) -> usize {
        self.app_io_reminders.len() + self.mail_reminders.len()
    }
}

async fn process(url: &str, config: &Config, clock: &ManualClock, n: usize) -> Engine {
    let store = Store::connect(url).await.expect("connect to the test database");
    let registry = build_registry(config).unwrap_or_else(|e| panic!("{e}"));
    let config = EngineConfig {
        worker_id: format!("process-{n}"),
        lease: Duration::from_secs(30),
        schemas: SchemaSet::from_dir(repo_path("schemas")),
        ..EngineConfig::default()
    };
    Engine::new(store, registry, Arc::new(clock.clone()), config)
}

const APP_IO_NOTICE: &str = "NASpI: puoi ancora presentare la domanda";
const MAIL_NOTICE: &str = "INPS - NASpI: può ancora presentare la domanda";

fn app_io_reminder(p: &Person) -> String {
    format!("Promemoria: domanda NASpI entro il {}", p.deadline().format("%d/%m/%Y"))
}

fn mail_reminder(p: &Person) -> String {
    format!("INPS - Promemoria: domanda NASpI entro il {}", p.deadline().format("%d/%m/%Y"))
}

both_backends!(each_eligible_citizen_gets_one_notice_across_restarts_and_the_change_of_time, |backend| async move {
    let Some(mut w) = World::new(backend).await else { return };
    // Deployed on Saturday 2026-10-24 at 06:00 in Rome (CEST): the first scan is at 07:00 CEST.
    let schedules = w.engine.store().schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].next_fire_at, ms("2026-10-24T05:00:00Z"));

    // Day 1: Verdi, Galli and Ferrari are eligible.
    w.walk_to("2026-10-24T08:00:00Z").await;
    let day1 = w.delivered();
    assert_eq!(day1[VERDI.cf].app_io_notices, [APP_IO_NOTICE]);
    assert_eq!(day1[GALLI.cf].app_io_notices, [APP_IO_NOTICE]);
    assert_eq!(day1[FERRARI.cf].mail_notices, [MAIL_NOTICE]);
    assert_eq!(day1.values().map(Delivered::notices).sum::<usize>(), 3);

    // The DST night: the process restarts at 02:30 CEST (00:30Z) and again at 02:30 CET
    // (01:30Z), the same local time an hour later.
    w.walk_to("2026-10-25T00:30:00Z").await;
    w.restart().await;
    w.walk_to("2026-10-25T01:30:00Z").await;
    w.restart().await;
    // Sunday's scan is at 07:00 CET = 06:00Z; Sartori is new. App IO takes her message, and
    // the process restarts while the workflow waits an hour for App IO's verdict.
    w.walk_to("2026-10-25T05:59:00Z").await;
    assert_eq!(w.instances().await.len(), 1, "07:00 CET has not come yet");
    w.walk_to("2026-10-25T06:30:00Z").await;
    assert_eq!(w.sandbox.io_messages().iter().filter(|m| m.fiscal_code == SARTORI.cf).count(), 1);
    assert!(w.sandbox.mail().iter().all(|m| m.rcpt_to[0] != SARTORI.email.unwrap()));
    w.restart().await;
    // App IO rejected it: one e-mail instead.
    w.walk_to("2026-10-25T08:00:00Z").await;
    let sartori = &w.delivered()[SARTORI.cf];
    assert_eq!((sartori.app_io_rejected, sartori.mail_notices.clone()), (1, vec![MAIL_NOTICE.to_string()]));

    // Monday: Colombo (INPS messages turned off on App IO) gets an e-mail. Someone starts the
    // scan by hand as well: it finds the same five citizens and writes to nobody.
    w.walk_to("2026-10-26T08:00:00Z").await;
    assert_eq!(w.delivered()[COLOMBO.cf].mail_notices, [MAIL_NOTICE]);
    let before = w.delivered();
    let by_hand = w
        .engine
        .start(StartRequest {
            workflow: WORKFLOW.into(),
            input: json!({"benefit": "naspi", "deadline_within_days": 60, "limit": 1000}),
            ..Default::default()
        })
        .await
        .unwrap();
    w.tick().await;
    let by_hand = w.engine.store().instance(&by_hand.id).await.unwrap();
    assert_eq!(by_hand.status, "completed");
    assert_eq!(output_of(&by_hand)["found"], 5);
    assert_eq!(output_of(&by_hand)["already_notified"], 5);
    assert_eq!(w.delivered(), before, "the second scan of the day wrote to nobody");

    // Tuesday: the process is down from 05:00 to 09:00 (Rome), across the daily scan; the new
    // process runs the missed scan once when it starts. Verdi applies afterwards.
    w.walk_to("2026-10-27T04:00:00Z").await;
    w.clock.set(ms("2026-10-27T08:00:00Z"));
    w.restart().await;
    w.tick().await;
    w.walk_to("2026-10-27T10:00:00Z").await;
    w.apply(&VERDI, "NASPI-2026-000101").await;

    // Rossi becomes eligible on Wednesday. The process dies after INPS registered his notice
    // and before the answer was committed: the new process registers it again with the same
    // Idempotency-Key, gets `first: true` again, and writes to him once.
    w.walk_to("2026-10-28T05:00:00Z").await;
    w.clock.set(ms("2026-10-28T06:00:00Z"));
    w.crash_while_registering(&ROSSI).await;
    w.walk_to("2026-10-28T08:00:00Z").await;
    assert_eq!(w.delivered()[ROSSI.cf].app_io_notices, [APP_IO_NOTICE]);
    {
        let inps = w.inps.lock();
        let rossi: Vec<&Registration> = inps.registrations.iter().filter(|r| r.fiscal_code == ROSSI.cf).collect();
        assert_eq!(rossi.len(), 2, "{rossi:?}");
        assert_eq!((rossi[0].key.as_str(), rossi[0].first), (rossi[1].key.as_str(), true), "the same key, the same answer");
    }

    // Colombo applies on Sunday 1 November.
    w.walk_to("2026-11-01T10:00:00Z").await;
    assert_eq!(w.delivered()[ROSSI.cf].app_io_notices, [APP_IO_NOTICE]);
    w.apply(&COLOMBO, "NASPI-2026-000102").await;

    // Tuesday 3 November: ten days after Saturday's notices, Ferrari's reminder (e-mail,
    // 07:00 CET) is out; the process restarts before Galli's (App IO, an hour later, after
    // the App IO settling hour).
    w.walk_to("2026-11-03T05:30:00Z").await;
    assert_eq!(w.delivered()[FERRARI.cf].mail_reminders, [mail_reminder(&FERRARI)]);
    assert!(w.delivered()[GALLI.cf].app_io_reminders.is_empty());
    w.restart().await;
    w.walk_to("2026-11-08T12:00:00Z").await;

    // Per citizen: exactly one delivered notice, a reminder only where due, nothing else.
    let delivered = w.delivered();
    let expect = |app_io: &[&str], reminders_io: Vec<String>, rejected: usize, mail: &[&str], reminders_mail: Vec<String>| Delivered {
        app_io_notices: app_io.iter().map(|s| s.to_string()).collect(),
        app_io_reminders: reminders_io,
        app_io_rejected: rejected,
        mail_notices: mail.iter().map(|s| s.to_string()).collect(),
        mail_reminders: reminders_mail,
    };
    assert_eq!(delivered[VERDI.cf], expect(&[APP_IO_NOTICE], vec![], 0, &[], vec![]), "Verdi applied: no reminder");
    assert_eq!(delivered[GALLI.cf], expect(&[APP_IO_NOTICE], vec![app_io_reminder(&GALLI)], 0, &[], vec![]));
    assert_eq!(delivered[FERRARI.cf], expect(&[], vec![], 0, &[MAIL_NOTICE], vec![mail_reminder(&FERRARI)]));
    assert_eq!(delivered[SARTORI.cf], expect(&[], vec![], 1, &[MAIL_NOTICE], vec![mail_reminder(&SARTORI)]), "rejected on App IO");
    assert_eq!(delivered[COLOMBO.cf], expect(&[], vec![], 0, &[MAIL_NOTICE], vec![]), "Colombo applied: no reminder");
    assert_eq!(delivered[ROSSI.cf], expect(&[APP_IO_NOTICE], vec![app_io_reminder(&ROSSI)], 0, &[], vec![]));
    for nobody in [&BIANCHI, &RICCI, &CONTI, &MARINO] {
        assert_eq!(delivered[nobody.cf], Delivered::default(), "{} is not eligible and was contacted", nobody.last);
    }
    for (cf, d) in &delivered {
        assert!(d.notices() <= 1 && d.reminders() <= d.notices(), "{cf}: {d:?}");
    }
    // Nothing was submitted to App IO twice under the same key.
    let io = w.sandbox.io_messages();
    let keys: BTreeSet<_> = io.iter().map(|m| m.idempotency_key.clone().expect("an Idempotency-Key")).collect();
    assert_eq!(keys.len(), io.len(), "{io:?}");

    // The register: one first registration per eligible citizen, with its notice id; every
    // later scan's registration of the same notice was answered `first: false`.
    let rows = w.instances().await;
    let inps = w.inps.lock();
    let eligible = [&VERDI, &GALLI, &FERRARI, &SARTORI, &COLOMBO, &ROSSI];
    let registered: BTreeSet<&str> = inps.notices.keys().map(String::as_str).collect();
    let expected: BTreeSet<String> = eligible.iter().map(|p| format!("naspi-deadline-{}-{}", p.cf, p.termination)).collect();
    assert_eq!(registered, expected.iter().map(String::as_str).collect());
    for p in eligible {
        let id = format!("naspi-deadline-{}-{}", p.cf, p.termination);
        let mine: Vec<&Registration> = inps.registrations.iter().filter(|r| r.notice_id == id).collect();
        assert!(mine.iter().all(|r| r.fiscal_code == p.cf));
        let first_keys: BTreeSet<&str> = mine.iter().filter(|r| r.first).map(|r| r.key.as_str()).collect();
        assert_eq!(first_keys.len(), 1, "{}: {mine:?}", p.last);
        assert!(mine.len() > 1, "{} was found again by later scans", p.last);
    }

    // One scan a day at 07:00 in Rome: 05:00Z before the change, 06:00Z after it; Tuesday's
    // ran late (the process was down) but once, for its 07:00. Plus the scan started by hand.
    let cron: Vec<&InstanceRow> = rows.iter().filter(|r| r.request_id.as_deref().is_some_and(|id| id.starts_with("cron:"))).collect();
    let mut expected_slots = vec!["2026-10-24T05:00:00.000Z".to_string()];
    let mut day = date("2026-10-25");
    while day <= date("2026-11-08") {
        expected_slots.push(format!("{day}T06:00:00.000Z"));
        day = day.checked_add_days(Days::new(1)).unwrap();
    }
    let slots: Vec<String> =
        cron.iter().map(|r| r.request_id.as_deref().unwrap().trim_start_matches("cron:proactive-notification:0:").to_string()).collect();
    assert_eq!(slots, expected_slots);
    assert_eq!(rows.len(), cron.len() + 1);
    for (row, slot) in cron.iter().zip(&expected_slots) {
        let late = slot.starts_with("2026-10-27");
        let started = if late { ms("2026-10-27T08:00:00Z") } else { ms(slot) };
        assert_eq!(row.started_at, started, "{slot}");
        assert_eq!(
            serde_json::from_str::<Value>(&row.input).unwrap(),
            json!({"benefit": "naspi", "deadline_within_days": 60, "limit": 1000})
        );
    }
    assert_eq!(inps.scans.len(), rows.len(), "one eligibility scan per instance, none repeated: {:?}", inps.scans);
    drop(inps);

    // Every instance completed; the days' reports add up.
    for row in &rows {
        assert_eq!(row.status, "completed", "{}: {:?}", row.request_id.as_deref().unwrap_or("by hand"), row.error);
    }
    let report = |slot: &str| output_of(cron[expected_slots.iter().position(|s| s.starts_with(slot)).unwrap()]);
    assert_eq!(
        report("2026-10-24"),
        json!({"as_of": "2026-10-24", "found": 3, "applied": 1, "reminded": 2, "unreachable": 0, "deadline_passed": 0, "already_notified": 0})
    );
    assert_eq!(
        report("2026-10-25"),
        json!({"as_of": "2026-10-25", "found": 4, "applied": 0, "reminded": 1, "unreachable": 0, "deadline_passed": 0, "already_notified": 3})
    );
    assert_eq!(report("2026-10-26")["applied"], 1);
    assert_eq!(report("2026-10-28")["reminded"], 1);
    let totals = |field: &str| rows.iter().map(|r| output_of(r)[field].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!((totals("applied"), totals("reminded"), totals("unreachable")), (2, 4, 0));
    assert_eq!(totals("found") - totals("already_notified"), 6, "six notices in all");
});
