//! End to end, on both backends: 1,000 generated NASpI applications go through the real
//! `pratica serve` binary (a child process, its HTTP API) with the shipped workflows, whose
//! connectors reach the sandbox of the external systems (`examples/sandbox`, run in this
//! process) over real HTTP and SMTP. The server is killed with `kill -9` in the middle of the
//! batch and restarted. Then:
//!
//! - the split between automatic payout, office review and rejection equals an independent
//!   calculation of the rules (`pratica_tests::naspi::expected_outcome`), case by case;
//! - every case expected to be paid has exactly one payment in the sandbox, of the expected
//!   amount, and one ledger entry; no other case was paid; no payment key was used twice
//!   for two payments.
//!
//! Generated applications: clean cases, archive mismatches (termination reason, missing
//! employer returns), just-cause resignations (documents requested), rejections (voluntary
//! resignation, a pension, too few weeks, filed after 68 days, the 2025 anti-abuse rule),
//! invalid codici fiscali and IBANs, new activities. Dates are in the past so that every start
//! date (decorrenza) has come; amounts stay under the four-eyes threshold (5,000 euro: one
//! month of NASpI is at most the yearly cap).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pratica_engine::store::{InstanceFilter, Store, TaskFilter};
use pratica_sandbox::chrono::{Days, NaiveDate, Utc};
use pratica_sandbox::citizens::{self, ContributionPeriod, EmploymentRecord, Spec};
use pratica_sandbox::{AppIo, Citizen, Scenario};
use pratica_tests::backend::{Backend, ScratchDir, fresh_database};
use pratica_tests::naspi::{Archives, Outcome, earlier_voluntary_exit, expected_outcome};
use pratica_tests::wait::{eventually, eventually_every, wait_until};
use pratica_tests::{pratica_bin, repo_path};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const APPLICATIONS: usize = 1000;
/// Submissions accepted before the server is killed.
const KILL_AFTER: usize = 350;
/// ... and once this many payments were made, so that the kill falls among payouts.
const KILL_AMID_PAYMENTS: usize = 40;
/// Submissions in flight: more than SQLite's 4 pool connections, so that writers queue (the
/// store's write gate keeps waiting writers from holding every connection).
fn concurrency(_backend: Backend) -> usize {
    8
}

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MEN: [&str; 16] = [
    "Mario",
    "Giuseppe",
    "Antonio",
    "Luca",
    "Marco",
    "Paolo",
    "Andrea",
    "Francesco",
    "Stefano",
    "Roberto",
    "Davide",
    "Matteo",
    "Simone",
    "Fabio",
    "Giorgio",
    "Salvatore",
];
const WOMEN: [&str; 16] = [
    "Laura",
    "Francesca",
    "Giulia",
    "Sofia",
    "Chiara",
    "Elena",
    "Anna",
    "Sara",
    "Valentina",
    "Martina",
    "Alessia",
    "Federica",
    "Silvia",
    "Paola",
    "Roberta",
    "Ilaria",
];
const SURNAMES: [&str; 24] = [
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti",
    "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani",
];

/// One generated application with what the archives hold for its applicant.
struct Case {
    app: Value,
    citizen: Citizen,
}

fn day(d: NaiveDate, delta: i64) -> NaiveDate {
    if delta >= 0 { d.checked_add_days(Days::new(delta as u64)).unwrap() } else { d.checked_sub_days(Days::new((-delta) as u64)).unwrap() }
}

fn generate(today: NaiveDate, n: usize) -> Vec<Case> {
    let mut rng = Rng(0x5EED_2026);
    let mut fiscal_codes = HashSet::new();
    let mut cases = Vec::with_capacity(n);
    for i in 0..n {
        let roll = rng.below(100);
        let female = rng.below(2) == 0;
        let first = if female { WOMEN[rng.below(16) as usize] } else { MEN[rng.below(16) as usize] };
        let last = SURNAMES[rng.below(24) as usize];
        let mut birth = NaiveDate::from_ymd_opt(1960 + rng.below(40) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32).unwrap();
        let late = (86..89).contains(&roll);
        let termination = if late { day(today, -(100 + rng.below(20) as i64)) } else { day(today, -(20 + rng.below(40) as i64)) };
        let application_date = if late { day(termination, 69 + rng.below(10) as i64) } else { day(termination, rng.below(11) as i64) };
        // `serial % 2` picks the review variant, `serial % 3` the rejection variant.
        let (scenario, variant) = match roll {
            0..55 => (Scenario::Clean, 0),
            55..62 => (Scenario::Review, 0),
            62..67 => (Scenario::Review, 1),
            67..74 => (Scenario::Documents, 0),
            74..78 => (Scenario::Rejected, 0),
            78..82 => (Scenario::Rejected, 1),
            82..86 => (Scenario::Rejected, 2),
            _ => (Scenario::Clean, 0),
        };
        let serial = (i as u32) * 6 + [0, 1, 2, 3, 4, 5].into_iter().find(|s| s % 2 == variant % 2 && s % 3 == variant % 3).unwrap();
        let app_io = [AppIo::Enabled, AppIo::NoProfile, AppIo::SenderNotAllowed][rng.below(3) as usize];
        let monthly_pay = 900.0 + rng.below(2100) as f64 + rng.below(100) as f64 / 100.0;
        let mut citizen = loop {
            let c = citizens::make_citizen(&Spec {
                first_name: first,
                last_name: last,
                female,
                birth_date: birth,
                place: rng.below(6) as usize,
                scenario,
                app_io,
                with_email: true,
                termination_date: termination,
                monthly_pay,
                serial,
            });
            if fiscal_codes.insert(c.fiscal_code.clone()) {
                break c;
            }
            birth = day(birth, 1);
        };
        let mut iban_override = None;
        match roll {
            89..92 => {
                // A codice fiscale with a wrong check character (it still has the format).
                let cf = &citizen.fiscal_code;
                let wrong = (b'A' + ((cf.as_bytes()[15] - b'A' + 1) % 26)) as char;
                citizen.fiscal_code = format!("{}{wrong}", &cf[..15]);
            }
            92..95 => {
                // An IBAN with wrong check digits.
                let iban = citizen.iban.clone().unwrap();
                let digits: u32 = iban[2..4].parse().unwrap();
                iban_override = Some(format!("IT{:02}{}", (digits + 1) % 100, &iban[4..]));
            }
            95..98 => {
                // The 2025 rule: a voluntary exit from a permanent job in the 12 months before;
                // enough weeks since then, or not.
                let exit = day(termination, -200);
                let previous = EmploymentRecord {
                    employer_fiscal_code: format!("{:011}", 20_000_000_000u64 + i as u64),
                    employer_name: "Impresa Precedente S.r.l.".into(),
                    contract_type: "permanent".into(),
                    start_date: day(exit, -700),
                    termination_date: Some(exit),
                    termination_reason: Some("voluntary_resignation".into()),
                };
                let weeks_since = if rng.below(2) == 0 { 8 } else { 20 };
                citizen.contributions = vec![
                    ContributionPeriod {
                        from: day(exit, -700),
                        until: exit,
                        weeks: 100,
                        taxable_pay: (monthly_pay * 100.0 / 4.33 * 100.0).round() / 100.0,
                    },
                    ContributionPeriod {
                        from: day(exit, 1),
                        until: termination,
                        weeks: weeks_since,
                        taxable_pay: (monthly_pay * f64::from(weeks_since) / 4.33 * 100.0).round() / 100.0,
                    },
                ];
                citizen.employment[0].start_date = day(exit, 1);
                citizen.employment.insert(0, previous);
                if let Some(d) = citizen.declaration.as_mut() {
                    d.job = 1;
                }
            }
            98..100 => {
                if let Some(d) = citizen.declaration.as_mut() {
                    d.new_activity = true;
                }
            }
            _ => {}
        }
        let id = format!("NASPI-{}-{:06}", application_date.format("%Y"), 100_000 + i);
        let mut app = citizen.application(&id, application_date, ["online", "patronato", "contact_centre"][i % 3]).expect("an application");
        if let Some(iban) = iban_override {
            app["payment"]["iban"] = json!(iban);
        }
        cases.push(Case { app, citizen });
    }
    cases
}

/// What the archives answer for `case` (the sandbox's data), for the independent decision.
fn archives(case: &Case) -> Archives {
    let (app, c) = (&case.app, &case.citizen);
    let date = |p: &str| NaiveDate::parse_from_str(app.pointer(p).and_then(Value::as_str).unwrap(), "%Y-%m-%d").unwrap();
    let end = date("/employment/termination_date");
    let job = |j: &Value| {
        c.employment(
            j["employer_fiscal_code"].as_str().unwrap(),
            j["start_date"].as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()),
        )
    };
    let mut employment = vec![job(&app["employment"])];
    employment.extend(app["previous_jobs"].as_array().into_iter().flatten().map(job));
    let mut archives = Archives {
        contributions: c.contributions(None, end, 4),
        employment,
        registry: Some(c.registry(app.pointer("/payment/iban").and_then(Value::as_str))),
        weeks_since_exit: None,
    };
    if let Some(exit) = earlier_voluntary_exit(app, &archives) {
        let from = NaiveDate::parse_from_str(&exit, "%Y-%m-%d").unwrap();
        archives.weeks_since_exit = Some(c.contributions(Some(from), end, 4));
    }
    archives
}

fn serve(dir: &Path, url: &str, addr: &str) -> Child {
    let mut child = Command::new(pratica_bin())
        .current_dir(dir)
        .args(["serve", "--db", url, "--lease", "3s", "--config", "pratica.toml", "--workflows", "workflows", "--listen", addr])
        .env("RUST_LOG", std::env::var("E2E_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start pratica serve");
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::stderr()).await;
        });
    }
    child
}

async fn wait_healthy(http: &reqwest::Client, base: &str, server: &mut Child) {
    let healthy = eventually(Duration::from_secs(60), async || {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server stopped: {status}");
        }
        Err(())
    });
    assert!(healthy.await.is_ok(), "the server did not start");
}

/// Submits every application (idempotently, by application id) with a few in flight,
/// retrying while the server is down; `accepted` counts first acceptances.
async fn submit_all(
    http: reqwest::Client,
    base: String,
    token: String,
    apps: Arc<Vec<Value>>,
    next: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(app) = apps.get(i) else { return };
        let body = json!({"workflow": "naspi-preprocessing", "input": app, "request_id": app["application_id"]});
        loop {
            let answer = http.post(format!("{base}/api/v1/instances")).bearer_auth(&token).json(&body).send().await;
            match answer {
                Ok(r) if r.status().is_success() => break,
                Ok(r) if r.status().is_server_error() => {}
                Ok(r) => panic!("application {} refused: {} {}", app["application_id"], r.status(), r.text().await.unwrap_or_default()),
                Err(_) => {}
            }
            // Real time: the real server is down (killed on purpose) until it is restarted.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        accepted.fetch_add(1, Ordering::SeqCst);
    }
}

async fn naspi_instances(store: &Store) -> Vec<pratica_engine::store::InstanceRow> {
    let filter = InstanceFilter { workflow: Some("naspi-preprocessing".into()), limit: Some(100_000), ..Default::default() };
    store.instances(&filter).await.unwrap()
}

/// Every instance exists and nothing is due soon: what is left waits for people (tasks,
/// documents) or for long timers (deadlines, escalations).
async fn settled(store: &Store, n: usize) -> bool {
    if naspi_instances(store).await.len() < n {
        return false;
    }
    let soon = Utc::now().timestamp_millis() + 10 * 60 * 1000;
    store.next_wakeup().await.unwrap().is_none_or(|t| t > soon)
}

async fn thousand_applications(backend: Backend) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = ScratchDir::new();
    let Some(url) = fresh_database(backend, &scratch).await else { return };
    let sandbox = pratica_sandbox::start_with(pratica_sandbox::Options::empty("127.0.0.1:0".parse().unwrap())).await.unwrap();

    // The shipped workflows that take an application to payout, their schemas, and the
    // shipped configuration with the connectors pointed at the sandbox.
    let dir = &scratch.0;
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    for wf in ["naspi-preprocessing.yaml", "automated-payout.yaml"] {
        std::fs::copy(repo_path("workflows").join(wf), dir.join("workflows").join(wf)).unwrap();
    }
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    for entry in std::fs::read_dir(repo_path("schemas")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("schemas").join(entry.file_name())).unwrap();
    }
    let shipped = std::fs::read_to_string(repo_path("pratica.toml")).unwrap();
    let shipped = pratica_sandbox::Sandbox::retain_connectors(&shipped, &["settings"]).unwrap();
    std::fs::write(dir.join("pratica.toml"), sandbox.pratica_config(&shipped, &dir.join("appio-key")).unwrap()).unwrap();

    let today = Utc::now().date_naive();
    let cases = generate(today, APPLICATIONS);
    sandbox.add_citizens(cases.iter().map(|c| c.citizen.clone()));
    let expected: BTreeMap<String, Outcome> =
        cases.iter().map(|c| (c.app["application_id"].as_str().unwrap().to_string(), expected_outcome(&c.app, &archives(c)))).collect();
    let mut expected_split = BTreeMap::<&str, usize>::new();
    for o in expected.values() {
        *expected_split.entry(o.kind()).or_default() += 1;
    }
    eprintln!("{backend:?}: expected split {expected_split:?}");
    assert!(expected_split.values().all(|n| *n >= 50), "the generated mix covers every path: {expected_split:?}");

    let token = {
        let out = std::process::Command::new(pratica_bin())
            .current_dir(dir)
            .args(["token", "create", "--name", "e2e", "--role", "admin", "--db", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().split_whitespace().find(|w| w.starts_with("prt_")).expect("a token").to_string()
    };
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut server = serve(dir, &url, &addr);
    wait_healthy(&http, &base, &mut server).await;

    let apps: Arc<Vec<Value>> = Arc::new(cases.iter().map(|c| c.app.clone()).collect());
    let (next, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let submitters: Vec<_> = (0..concurrency(backend))
        .map(|_| tokio::spawn(submit_all(http.clone(), base.clone(), token.clone(), apps.clone(), next.clone(), accepted.clone())))
        .collect();
    wait_until("the first applications to be accepted", Duration::from_secs(600), async || accepted.load(Ordering::SeqCst) >= KILL_AFTER)
        .await;
    // Kill while payouts are being made (or after 60 s whatever happens).
    let _ =
        eventually(Duration::from_secs(60), async || if sandbox.payments().len() >= KILL_AMID_PAYMENTS { Ok(()) } else { Err(()) }).await;
    server.kill().await.expect("kill -9 the server");
    let paid_at_kill = sandbox.payments().len();
    eprintln!("{backend:?}: killed with {} applications accepted and {paid_at_kill} payments made", accepted.load(Ordering::SeqCst));
    // Real time: a real process was killed with kill -9; let the OS release its port.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut server = serve(dir, &url, &addr);
    for s in submitters {
        s.await.unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    let limit = Duration::from_secs(600);
    let settle = eventually_every(Duration::from_millis(500), limit.saturating_sub(started.elapsed()), async || {
        if settled(&store, APPLICATIONS).await {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the restarted server stopped: {status}");
        }
        Err(())
    });
    assert!(settle.await.is_ok(), "not settled within {limit:?}");
    eprintln!("{backend:?}: {APPLICATIONS} applications settled in {:?}", started.elapsed());

    // The decisions, case by case.
    let open_tasks = store.tasks(&TaskFilter { status: Some("open".into()), limit: Some(100_000), ..Default::default() }).await.unwrap();
    let with_task: BTreeSet<&str> = open_tasks.iter().map(|t| t.instance_id.as_str()).collect();
    let instances = naspi_instances(&store).await;
    assert_eq!(instances.len(), APPLICATIONS, "one instance per application, even with submissions repeated across the crash");
    let mut actual_split = BTreeMap::<&str, usize>::new();
    let mut mismatches = vec![];
    for row in &instances {
        let input: Value = serde_json::from_str(&row.input).unwrap();
        let id = input["application_id"].as_str().unwrap();
        let output: Value = row.output.as_deref().map(|o| serde_json::from_str(o).unwrap()).unwrap_or(Value::Null);
        let actual = match (row.status.as_str(), output["outcome"].as_str()) {
            ("completed", Some("accepted")) => "payout",
            ("completed", Some("rejected")) => "rejected",
            (status, _) if status != "completed" && status != "failed" && status != "cancelled" => "review",
            (status, outcome) => panic!("{id}: unexpected end {status} {outcome:?} {:?}", row.error),
        };
        *actual_split.entry(actual).or_default() += 1;
        let want = &expected[id];
        if want.kind() != actual {
            mismatches.push(format!("{id}: expected {want:?}, got {actual} ({})", row.output.as_deref().unwrap_or("")));
        }
        if let Outcome::Review { documents_requested: false, .. } = want {
            assert!(with_task.contains(row.id.as_str()), "{id}: a review case waits with an open task for its office");
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} decisions differ from the rules, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
    assert_eq!(actual_split, expected_split);

    // Payments: exactly once per paid case, of the expected amount; nothing else paid.
    let payments = sandbox.payments();
    let mut per_beneficiary = BTreeMap::<&str, Vec<&pratica_sandbox::Payment>>::new();
    for p in &payments {
        per_beneficiary.entry(p.beneficiary_fiscal_code.as_str()).or_default().push(p);
    }
    let repeats: u32 = payments.iter().map(|p| p.requests - 1).sum();
    eprintln!("{backend:?}: {} payments, {repeats} repeated pay requests answered with the first receipt", payments.len());
    for case in &cases {
        let id = case.app["application_id"].as_str().unwrap();
        let cf = case.app["applicant"]["fiscal_code"].as_str().unwrap();
        let made = per_beneficiary.get(cf).map_or(&[][..], Vec::as_slice);
        match &expected[id] {
            Outcome::Payout { first_payment_cents, .. } => {
                assert_eq!(made.len(), 1, "{id}: exactly one payment");
                assert_eq!(made[0].amount_cents, *first_payment_cents, "{id}: the amount");
                assert!(made[0].remittance.contains(id), "{id}: the remittance names the case");
            }
            other => assert!(made.is_empty(), "{id}: no payment for a {} case", other.kind()),
        }
    }
    assert_eq!(payments.len(), expected_split.get("payout").copied().unwrap_or(0));
    let ledger = sandbox.ledger();
    assert_eq!(ledger.len(), payments.len(), "one ledger entry per payment");
    assert_eq!(ledger.iter().map(|e| &e.payment_id).collect::<BTreeSet<_>>().len(), payments.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_applications_sqlite() {
    thousand_applications(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_applications_postgres() {
    thousand_applications(Backend::Postgres).await;
}

/// The sandbox's payment service as the connectors see it: the same key returns the first
/// receipt (200, nothing paid again), a different key with the same body is a new payment, a
/// reused key with another body is refused; a notice registers once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_payments_are_once_per_key() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sandbox = pratica_sandbox::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", sandbox.url());
    let body = json!({"beneficiary_fiscal_code": "RSSMRA80A01H501U", "beneficiary_name": "Mario Rossi", "method": "bank_account",
                      "iban": "IT60X0542811101000000123456", "amount_cents": 117836, "currency": "EUR", "remittance": "INPS NASPI X"});
    let pay = async |key: Option<&str>, body: &Value| {
        let mut r = http.post(url("/payments/pay")).json(body);
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.headers()["x-sandbox"], "true");
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, first) = pay(Some("k1"), &body).await;
    assert_eq!(status, 201);
    let (status, again) = pay(Some("k1"), &body).await;
    assert_eq!((status, &again), (200, &first), "the same key: the first receipt");
    let (status, other) = pay(Some("k2"), &body).await;
    assert_eq!(status, 201);
    assert_ne!(other["payment_id"], first["payment_id"], "another key: a new payment");
    let mut changed = body.clone();
    changed["amount_cents"] = json!(1);
    assert_eq!(pay(Some("k1"), &changed).await.0, 422, "a key reused for another payment");
    assert_eq!(pay(None, &body).await.0, 400, "no key");
    let mut bad_iban = body.clone();
    bad_iban["iban"] = json!("IT65A0542811101000000123456");
    assert_eq!(pay(Some("k3"), &bad_iban).await.0, 422, "a wrong CIN");
    let payments = sandbox.payments();
    assert_eq!(payments.len(), 2);
    assert_eq!(payments[0].requests, 2);

    let notice = json!({"notice_id": "naspi-deadline-X", "fiscal_code": "RSSMRA80A01H501U", "benefit": "naspi", "deadline": "2026-12-01"});
    let register = async |key: &str| {
        let r = http.post(url("/inps/notices")).header("Idempotency-Key", key).json(&notice).send().await.unwrap();
        r.json::<Value>().await.unwrap()["first"].clone()
    };
    assert_eq!(register("n1").await, true);
    assert_eq!(register("n1").await, true, "a retried registration gets the same answer");
    assert_eq!(register("n2").await, false, "another registration of the same notice");

    // App IO: a citizen not on App IO is 404; one who is gets a message id.
    let profile =
        |cf: &str| http.post(url("/appio/profiles")).header("Ocp-Apim-Subscription-Key", "k").json(&json!({"fiscal_code": cf})).send();
    assert_eq!(profile("RSSMRA80A01H501U").await.unwrap().status().as_u16(), 200);
    let not_on_io = sandbox.citizens().into_iter().find(|c| c.app_io == AppIo::NoProfile).unwrap();
    assert_eq!(profile(&not_on_io.fiscal_code).await.unwrap().status().as_u16(), 404);
}
