//! # THIS IS A SANDBOX
//!
//! Fake versions of the external systems Pratica's reference workflows call — the INPS
//! archives (contributions, employment records, registries, the benefit ledger, the
//! eligibility scan), a payment service, App IO, a PEC inbox and an SMTP server — with
//! fictitious citizens. State lives in memory and is lost when the process stops. Every HTTP
//! answer carries `X-Sandbox: true`. Nothing here is a real INPS, PagoPA or bank interface:
//! the paths and bodies are the ones Pratica's connectors send (see docs/CONNECTORS.md), so
//! the connectors talk to it over real HTTP and SMTP exactly as they would to real systems.
//!
//! Endpoints, scenarios and seeded citizens: `examples/sandbox/README.md`.

pub mod citizens;
pub mod ids;
pub mod smtp;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use chrono;
pub use citizens::{AppIo, Citizen, Scenario};
pub use smtp::Mail;

/// One payment made by the sandbox payment service.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub payment_id: String,
    pub idempotency_key: String,
    pub beneficiary_fiscal_code: String,
    pub beneficiary_name: String,
    pub method: String,
    pub iban: Option<String>,
    pub amount_cents: i64,
    pub remittance: String,
    pub status: String,
    pub execution_date: String,
    pub created_at: String,
    /// Requests that carried this payment's key (1 = never repeated).
    pub requests: u32,
    #[serde(skip)]
    request: Value,
}

/// One entry of the sandbox benefit ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub entry_id: String,
    pub idempotency_key: String,
    pub case_id: String,
    pub payment_id: String,
    pub fiscal_code: String,
    pub amount_cents: i64,
    pub registered_at: String,
}

/// One App IO message.
#[derive(Debug, Clone, Serialize)]
pub struct IoMessage {
    pub id: String,
    pub fiscal_code: String,
    pub subject: String,
    pub markdown: String,
    pub idempotency_key: Option<String>,
    pub created_at: String,
    pub status: String,
}

/// One message of the PEC inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PecMessage {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub received_at: String,
    /// `posta-certificata` for a message, or a receipt type (`avvenuta-consegna`, ...).
    #[serde(default = "posta_certificata")]
    pub kind: String,
    pub from: String,
    #[serde(default = "inps_pec")]
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

fn posta_certificata() -> String {
    "posta-certificata".into()
}

fn inps_pec() -> String {
    "direzione.provinciale.roma@postacert.inps.gov.it".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// Everything the sandbox remembers.
#[derive(Default)]
pub struct SandboxState {
    pub citizens: BTreeMap<String, Citizen>,
    /// Fiscal codes whose archives were read for an application (they have applied).
    pub applied: BTreeSet<String>,
    /// Last date the eligibility scan returned each fiscal code.
    pub contacted: BTreeMap<String, NaiveDate>,
    pub payments: Vec<Payment>,
    payment_keys: HashMap<String, usize>,
    pub refunds: Vec<Value>,
    refund_keys: HashMap<String, Value>,
    pub ledger: Vec<LedgerEntry>,
    ledger_keys: HashMap<String, usize>,
    pub io_messages: Vec<IoMessage>,
    /// Registered notices by `notice_id`: (registered_at, the key that registered it).
    pub notices: BTreeMap<String, (String, String)>,
    notice_keys: HashMap<String, Value>,
    pub pec: Vec<PecMessage>,
    pub mail: Vec<Mail>,
}

/// The state behind one lock; a panic in a handler does not poison it for the others.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<SandboxState>>);

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, SandboxState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// How to start a sandbox.
pub struct Options {
    /// HTTP address (port 0: any free port).
    pub http: SocketAddr,
    /// SMTP address (port 0: any free port).
    pub smtp: SocketAddr,
    pub citizens: Vec<Citizen>,
    /// Seed the PEC inbox with a few messages.
    pub seed_pec: bool,
}

impl Options {
    /// The seeded citizens (dates relative to today) and PEC messages; SMTP on any free port.
    pub fn seeded(http: SocketAddr) -> Self {
        Self { http, smtp: SocketAddr::from(([127, 0, 0, 1], 0)), citizens: citizens::seeded_citizens(today()), seed_pec: true }
    }

    /// No citizens, no PEC messages (tests add their own).
    pub fn empty(http: SocketAddr) -> Self {
        Self { http, smtp: SocketAddr::from(([127, 0, 0, 1], 0)), citizens: vec![], seed_pec: false }
    }
}

/// A running sandbox. Dropping it stops it.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub smtp_addr: SocketAddr,
    state: Shared,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the sandbox on `addr` with the seeded citizens.
pub async fn start(addr: SocketAddr) -> std::io::Result<Sandbox> {
    start_with(Options::seeded(addr)).await
}

/// Starts the sandbox.
pub async fn start_with(options: Options) -> std::io::Result<Sandbox> {
    let http = TcpListener::bind(options.http).await?;
    let smtp = TcpListener::bind(options.smtp).await?;
    let (addr, smtp_addr) = (http.local_addr()?, smtp.local_addr()?);
    let state = Shared::default();
    {
        let mut s = state.lock();
        for c in options.citizens {
            s.citizens.insert(c.fiscal_code.clone(), c);
        }
        if options.seed_pec {
            s.pec = seeded_pec();
        }
    }
    let app = router(state.clone());
    let http_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(http, app).await {
            tracing::error!(error = %e, "the sandbox HTTP server stopped");
        }
    });
    let smtp_task = tokio::spawn(smtp::serve(smtp, state.clone()));
    tracing::info!(%addr, %smtp_addr, "SANDBOX of the external systems listening (fictitious data)");
    Ok(Sandbox { addr, smtp_addr, state, tasks: vec![http_task, smtp_task] })
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Sandbox {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, SandboxState> {
        self.state.lock()
    }

    pub fn add_citizens(&self, citizens: impl IntoIterator<Item = Citizen>) {
        let mut s = self.state.lock();
        for c in citizens {
            s.citizens.insert(c.fiscal_code.clone(), c);
        }
    }

    /// Records that `fiscal_code` has applied (the eligibility scan leaves them out); reading
    /// their contributions for an application does the same.
    pub fn mark_applied(&self, fiscal_code: &str) {
        self.state.lock().applied.insert(fiscal_code.to_uppercase());
    }

    pub fn citizens(&self) -> Vec<Citizen> {
        self.state.lock().citizens.values().cloned().collect()
    }

    pub fn payments(&self) -> Vec<Payment> {
        self.state.lock().payments.clone()
    }

    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state.lock().ledger.clone()
    }

    pub fn mail(&self) -> Vec<Mail> {
        self.state.lock().mail.clone()
    }

    pub fn io_messages(&self) -> Vec<IoMessage> {
        self.state.lock().io_messages.clone()
    }

    /// `base` (the text of a `pratica.toml`) with only the connector instances named in
    /// `keep`, e.g. to leave out instances that need files of their own.
    pub fn retain_connectors(base: &str, keep: &[&str]) -> anyhow::Result<String> {
        let mut doc: toml::Table = toml::from_str(base)?;
        if let Some(toml::Value::Table(connectors)) = doc.get_mut("connectors") {
            connectors.retain(|name, _| keep.contains(&name));
        }
        Ok(toml::to_string(&doc)?)
    }

    /// A Pratica configuration whose connectors reach this sandbox: `base` (the text of a
    /// `pratica.toml`, e.g. the shipped one, or empty) with `inps`, `payments`, `email` and
    /// `appio` replaced. App IO's key is read from `appio_key_file`, which this writes.
    pub fn pratica_config(&self, base: &str, appio_key_file: &Path) -> anyhow::Result<String> {
        std::fs::write(appio_key_file, "sandbox-appio-key-not-a-secret\n")?;
        let mut doc: toml::Table = toml::from_str(base)?;
        let url = self.url();
        let http = |path: &str| {
            let mut t = toml::Table::new();
            t.insert("kind".into(), "http".into());
            t.insert("base_url".into(), format!("{url}/{path}").into());
            t.insert("allow_private".into(), true.into());
            toml::Value::Table(t)
        };
        let mut email = toml::Table::new();
        email.insert("kind".into(), "email".into());
        email.insert("host".into(), self.smtp_addr.ip().to_string().into());
        email.insert("port".into(), i64::from(self.smtp_addr.port()).into());
        email.insert("tls".into(), "none".into());
        email.insert("from".into(), "INPS Sandbox <noreply@inps.sandbox.example>".into());
        let mut appio = toml::Table::new();
        appio.insert("kind".into(), "appio".into());
        appio.insert("base_url".into(), format!("{url}/appio").into());
        appio.insert("api_key".into(), "secret:sandbox-appio-key".into());
        let connectors = doc.entry("connectors").or_insert_with(|| toml::Value::Table(Default::default()));
        let connectors = connectors.as_table_mut().ok_or_else(|| anyhow::anyhow!("`connectors` is not a table"))?;
        connectors.insert("inps".into(), http("inps"));
        connectors.insert("payments".into(), http("payments"));
        connectors.insert("email".into(), toml::Value::Table(email));
        connectors.insert("appio".into(), toml::Value::Table(appio));
        let secrets = doc.entry("secrets").or_insert_with(|| toml::Value::Table(Default::default()));
        let secrets = secrets.as_table_mut().ok_or_else(|| anyhow::anyhow!("`secrets` is not a table"))?;
        let mut key = toml::Table::new();
        key.insert("file".into(), appio_key_file.display().to_string().into());
        secrets.insert("sandbox-appio-key".into(), toml::Value::Table(key));
        Ok(format!("# Generated: Pratica's connectors pointed at the SANDBOX on {url} (fictitious systems).\n{}", toml::to_string(&doc)?))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

/// The sandbox's routes (every answer carries `X-Sandbox: true`).
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/sandbox", get(index))
        .route("/inps/contributions", post(contributions))
        .route("/inps/employment", post(employment))
        .route("/inps/registry", post(registry))
        .route("/inps/ledger", post(ledger))
        .route("/inps/eligibility", post(eligibility))
        .route("/inps/notices", post(notices))
        .route("/payments/pay", post(pay))
        .route("/payments/refund", post(refund))
        .route("/appio/profiles", post(profile_post))
        .route("/appio/profiles/{fiscal_code}", get(profile_get))
        .route("/appio/messages", post(io_send))
        .route("/appio/messages/{fiscal_code}/{id}", get(io_status))
        .route("/pec/messages", get(pec_list).post(pec_add))
        .route("/sandbox/citizens", get(citizens_list).post(citizens_add))
        .route("/sandbox/citizens/{fiscal_code}/application", get(citizen_application))
        .route("/sandbox/payments", get(payments_list))
        .route("/sandbox/messages", get(messages_list))
        .route("/sandbox/mail", get(mail_page))
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("x-sandbox", HeaderValue::from_static("true"));
            r
        }))
        .with_state(state)
}

type S = AxumState<Shared>;
type Answer = Result<Response, Problem>;

/// An RFC 9457 problem answer.
struct Problem {
    status: StatusCode,
    code: String,
    detail: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("urn:pratica-sandbox:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
}

fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
    Problem { status, code: code.to_string(), detail: detail.into() }
}

fn ok(status: StatusCode, body: Value) -> Answer {
    Ok((status, axum::Json(body)).into_response())
}

/// Reads a JSON object body; anything else is a 400 problem.
fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(problem(StatusCode::BAD_REQUEST, "invalid_body", "the body must be a JSON object")),
        Err(e) => Err(problem(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not JSON: {e}"))),
    }
}

fn text<'a>(m: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    m.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("`{name}` is required (a string)")))
}

fn a_date(m: &serde_json::Map<String, Value>, name: &str) -> Result<Option<NaiveDate>, Problem> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("`{name}` must be a date YYYY-MM-DD"))),
        Some(_) => Err(problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("`{name}` must be a date YYYY-MM-DD"))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or_else(|| problem(StatusCode::BAD_REQUEST, "idempotency_key_required", "an `Idempotency-Key` header is required"))
}

async fn contributions(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let m = object(&body)?;
    let cf = text(&m, "fiscal_code")?.to_uppercase();
    let until = a_date(&m, "until")?.ok_or_else(|| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`until` is required"))?;
    let from = a_date(&m, "from")?;
    let years = m.get("years").and_then(Value::as_u64).unwrap_or(4).clamp(1, 10) as u32;
    let mut s = state.lock();
    s.applied.insert(cf.clone());
    let answer = s.citizens.get(&cf).map(|c| c.contributions(from, until, years)).unwrap_or_else(citizens::no_contributions);
    ok(StatusCode::OK, answer)
}

async fn employment(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let m = object(&body)?;
    let cf = text(&m, "fiscal_code")?.to_uppercase();
    let employer = text(&m, "employer_fiscal_code")?;
    let start = a_date(&m, "start_date")?;
    let s = state.lock();
    let answer = s.citizens.get(&cf).map(|c| c.employment(employer, start)).unwrap_or_else(citizens::not_found_employment);
    ok(StatusCode::OK, answer)
}

async fn registry(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let m = object(&body)?;
    let cf = text(&m, "fiscal_code")?.to_uppercase();
    let iban = m.get("iban").and_then(Value::as_str);
    let s = state.lock();
    let answer = s.citizens.get(&cf).map(|c| c.registry(iban)).unwrap_or_else(citizens::unknown_registry);
    ok(StatusCode::OK, answer)
}

async fn ledger(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    let key = idempotency_key(&headers)?;
    let m = object(&body)?;
    let case_id = text(&m, "case_id")?.to_string();
    let payment_id = text(&m, "payment_id")?.to_string();
    let fiscal_code = text(&m, "fiscal_code")?.to_string();
    let amount_cents = m.get("amount_cents").and_then(Value::as_i64).unwrap_or(0);
    let mut s = state.lock();
    if !s.payments.iter().any(|p| p.payment_id == payment_id) {
        return Err(problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown_payment", format!("no payment {payment_id}")));
    }
    if let Some(&i) = s.ledger_keys.get(&key) {
        let e = &s.ledger[i];
        return ok(StatusCode::OK, json!({"entry_id": e.entry_id, "registered_at": e.registered_at}));
    }
    let entry = LedgerEntry {
        entry_id: format!("LED-{:08}", s.ledger.len() + 1),
        idempotency_key: key.clone(),
        case_id,
        payment_id,
        fiscal_code,
        amount_cents,
        registered_at: now_rfc3339(),
    };
    let answer = json!({"entry_id": entry.entry_id, "registered_at": entry.registered_at});
    s.ledger.push(entry);
    let i = s.ledger.len() - 1;
    s.ledger_keys.insert(key, i);
    ok(StatusCode::CREATED, answer)
}

const INVOLUNTARY: [&str; 7] = [
    "dismissal",
    "disciplinary_dismissal",
    "fixed_term_expiry",
    "just_cause_resignation",
    "protected_period_resignation",
    "conciliation_agreement",
    "transfer_refusal",
];

async fn eligibility(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let m = object(&body)?;
    let as_of = a_date(&m, "as_of")?.unwrap_or_else(today);
    let within = m.get("deadline_within_days").and_then(Value::as_u64).unwrap_or(60);
    let quiet = m.get("not_contacted_within_days").and_then(Value::as_u64).unwrap_or(60);
    let limit = m.get("limit").and_then(Value::as_u64).unwrap_or(1000) as usize;
    let s = state.lock();
    let mut found = vec![];
    for c in s.citizens.values() {
        let Some(job) = c.terminated_job() else { continue };
        let (Some(end), Some(reason)) = (job.termination_date, job.termination_reason.as_deref()) else { continue };
        let deadline = end.checked_add_days(Days::new(68)).unwrap_or(end);
        let open = deadline >= as_of && deadline <= as_of.checked_add_days(Days::new(within)).unwrap_or(as_of);
        let recently = s.contacted.get(&c.fiscal_code).is_some_and(|d| as_of.signed_duration_since(*d).num_days() < quiet as i64);
        if INVOLUNTARY.contains(&reason) && open && end <= as_of && !recently && !s.applied.contains(&c.fiscal_code) {
            found.push(json!({
                "fiscal_code": c.fiscal_code,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "email": c.email,
                "termination_date": end,
                "deadline": deadline,
            }));
        }
        if found.len() >= limit {
            break;
        }
    }
    // A read: the scan marks nobody as contacted (a retried scan finds the same citizens);
    // registering a notice does (`notices`).
    ok(StatusCode::OK, json!({"citizens": found}))
}

/// `inps.notices`: registers a notice once; `first` only for its first registration (a repeat
/// with the same `Idempotency-Key` gets the first answer again).
async fn notices(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    let key = idempotency_key(&headers)?;
    let m = object(&body)?;
    let notice_id = text(&m, "notice_id")?.to_string();
    let fiscal_code = text(&m, "fiscal_code")?.to_string();
    let mut s = state.lock();
    if let Some(answer) = s.notice_keys.get(&key) {
        return ok(StatusCode::OK, answer.clone());
    }
    let answer = match s.notices.get(&notice_id) {
        Some((at, _)) => json!({"first": false, "registered_at": at}),
        None => {
            let at = now_rfc3339();
            s.notices.insert(notice_id, (at.clone(), key.clone()));
            s.contacted.insert(fiscal_code, today());
            json!({"first": true, "registered_at": at})
        }
    };
    s.notice_keys.insert(key, answer.clone());
    ok(StatusCode::OK, answer)
}

async fn pay(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    let key = idempotency_key(&headers)?;
    let m = object(&body)?;
    let request = Value::Object(m.clone());
    let mut s = state.lock();
    if let Some(&i) = s.payment_keys.get(&key) {
        let p = &mut s.payments[i];
        if p.request != request {
            return Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different payment",
            ));
        }
        p.requests += 1;
        // The same key: the first receipt, nothing paid again.
        return ok(StatusCode::OK, receipt(p));
    }
    let cf = text(&m, "beneficiary_fiscal_code")?.to_string();
    let method = text(&m, "method")?.to_string();
    let amount_cents = m
        .get("amount_cents")
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(|| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`amount_cents` must be a positive integer"))?;
    if m.get("currency").and_then(Value::as_str).is_some_and(|c| c != "EUR") {
        return Err(problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "only EUR payments"));
    }
    let iban = m.get("iban").and_then(Value::as_str).map(str::to_string);
    if method != "post_office_cash" {
        match &iban {
            Some(i) if ids::is_valid_italian_iban(i) => {}
            _ => return Err(problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_iban", "the IBAN is missing or not a valid Italian IBAN")),
        }
    }
    let payment = Payment {
        payment_id: format!("PAY-{:08}", s.payments.len() + 1),
        idempotency_key: key.clone(),
        beneficiary_fiscal_code: cf,
        beneficiary_name: m.get("beneficiary_name").and_then(Value::as_str).unwrap_or_default().to_string(),
        method,
        iban,
        amount_cents,
        remittance: m.get("remittance").and_then(Value::as_str).unwrap_or_default().to_string(),
        status: "executed".into(),
        execution_date: today().checked_add_days(Days::new(1)).unwrap_or_else(today).to_string(),
        created_at: now_rfc3339(),
        requests: 1,
        request,
    };
    let answer = receipt(&payment);
    s.payments.push(payment);
    let i = s.payments.len() - 1;
    s.payment_keys.insert(key, i);
    ok(StatusCode::CREATED, answer)
}

fn receipt(p: &Payment) -> Value {
    json!({"payment_id": p.payment_id, "status": "executed", "execution_date": p.execution_date, "amount_cents": p.amount_cents})
}

async fn refund(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    let key = idempotency_key(&headers)?;
    let m = object(&body)?;
    let payment_id = text(&m, "payment_id")?.to_string();
    let mut s = state.lock();
    if let Some(r) = s.refund_keys.get(&key) {
        return ok(StatusCode::OK, r.clone());
    }
    let Some(p) = s.payments.iter_mut().find(|p| p.payment_id == payment_id) else {
        return Err(problem(StatusCode::NOT_FOUND, "unknown_payment", format!("no payment {payment_id}")));
    };
    if p.status == "refunded" {
        return Err(problem(StatusCode::CONFLICT, "already_refunded", format!("payment {payment_id} was already refunded")));
    }
    p.status = "refunded".into();
    let answer = json!({
        "refund_id": format!("REF-{:08}", s.refunds.len() + 1),
        "payment_id": payment_id,
        "status": "refunded",
        "reason": m.get("reason").cloned().unwrap_or(Value::Null),
    });
    s.refunds.push(answer.clone());
    s.refund_keys.insert(key, answer.clone());
    ok(StatusCode::CREATED, answer)
}

fn appio_key(headers: &HeaderMap) -> Result<(), Problem> {
    match headers.get("ocp-apim-subscription-key") {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(problem(StatusCode::UNAUTHORIZED, "unauthorized", "Ocp-Apim-Subscription-Key is missing")),
    }
}

fn profile(state: &Shared, cf: &str) -> Answer {
    let s = state.lock();
    match s.citizens.get(&cf.to_uppercase()).map(|c| c.app_io) {
        Some(AppIo::Enabled) => ok(StatusCode::OK, json!({"sender_allowed": true, "preferred_languages": ["it_IT"]})),
        Some(AppIo::SenderNotAllowed) => ok(StatusCode::OK, json!({"sender_allowed": false, "preferred_languages": ["it_IT"]})),
        _ => Err(problem(StatusCode::NOT_FOUND, "profile_not_found", "the citizen is not on App IO")),
    }
}

async fn profile_post(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    appio_key(&headers)?;
    let m = object(&body)?;
    profile(&state, text(&m, "fiscal_code")?)
}

async fn profile_get(AxumState(state): S, headers: HeaderMap, UrlPath(cf): UrlPath<String>) -> Answer {
    appio_key(&headers)?;
    profile(&state, &cf)
}

async fn io_send(AxumState(state): S, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    appio_key(&headers)?;
    let m = object(&body)?;
    let cf = text(&m, "fiscal_code")?.to_uppercase();
    let content = m
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| problem(StatusCode::BAD_REQUEST, "invalid_body", "`content` is required"))?;
    let subject = content.get("subject").and_then(Value::as_str).unwrap_or_default();
    let markdown = content.get("markdown").and_then(Value::as_str).unwrap_or_default();
    let units = |s: &str| s.encode_utf16().count();
    if !(10..=120).contains(&units(subject)) || !(80..=10_000).contains(&units(markdown)) {
        return Err(problem(StatusCode::BAD_REQUEST, "invalid_message", "subject 10-120 and markdown 80-10000 characters"));
    }
    let mut s = state.lock();
    match s.citizens.get(&cf).map(|c| c.app_io) {
        Some(AppIo::Enabled) => {}
        Some(AppIo::SenderNotAllowed) => {
            return Err(problem(StatusCode::FORBIDDEN, "sender_not_allowed", "the citizen turned INPS messages off"));
        }
        _ => return Err(problem(StatusCode::NOT_FOUND, "profile_not_found", "the citizen is not on App IO")),
    }
    let id = format!("01SANDBOX{:017}", s.io_messages.len() + 1);
    s.io_messages.push(IoMessage {
        id: id.clone(),
        fiscal_code: cf,
        subject: subject.to_string(),
        markdown: markdown.to_string(),
        idempotency_key: headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string),
        created_at: now_rfc3339(),
        status: "PROCESSED".into(),
    });
    let mut response = (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/appio/messages/{}/{id}", s.io_messages[s.io_messages.len() - 1].fiscal_code)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn io_status(AxumState(state): S, headers: HeaderMap, UrlPath((cf, id)): UrlPath<(String, String)>) -> Answer {
    appio_key(&headers)?;
    let s = state.lock();
    match s.io_messages.iter().find(|m| m.id == id && m.fiscal_code == cf.to_uppercase()) {
        Some(m) => ok(StatusCode::OK, json!({"id": m.id, "status": m.status, "notification": {"email": "SENT", "webhook": "SENT"}})),
        None => Err(problem(StatusCode::NOT_FOUND, "message_not_found", "no such message")),
    }
}

#[derive(Deserialize)]
struct Since {
    since: Option<String>,
}

async fn pec_list(AxumState(state): S, Query(q): Query<Since>) -> Answer {
    let since = match q.since.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`since` must be an RFC 3339 date-time"))?,
        ),
    };
    let s = state.lock();
    let messages: Vec<&PecMessage> =
        s.pec.iter().filter(|m| since.is_none_or(|t| chrono::DateTime::parse_from_rfc3339(&m.received_at).is_ok_and(|r| r > t))).collect();
    ok(StatusCode::OK, json!({"messages": messages, "now": now_rfc3339()}))
}

async fn pec_add(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let mut message: PecMessage = serde_json::from_slice(&body)
        .map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("not a PEC message: {e}")))?;
    let mut s = state.lock();
    message.id = format!("PEC-{:06}", s.pec.len() + 1);
    message.received_at = now_rfc3339();
    s.pec.push(message.clone());
    ok(StatusCode::CREATED, serde_json::to_value(message).unwrap_or(Value::Null))
}

async fn citizens_list(AxumState(state): S) -> Answer {
    let s = state.lock();
    let list: Vec<Value> = s
        .citizens
        .values()
        .map(|c| {
            json!({
                "fiscal_code": c.fiscal_code, "first_name": c.first_name, "last_name": c.last_name,
                "scenario": c.scenario, "app_io": c.app_io, "office": c.office, "email": c.email, "iban": c.iban,
                "applied": s.applied.contains(&c.fiscal_code),
            })
        })
        .collect();
    ok(StatusCode::OK, json!({"citizens": list}))
}

async fn citizens_add(AxumState(state): S, body: axum::body::Bytes) -> Answer {
    let list: Vec<Citizen> = match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Array(_)) => serde_json::from_value(v),
        Ok(v) => serde_json::from_value(v).map(|c| vec![c]),
        Err(e) => return Err(problem(StatusCode::BAD_REQUEST, "malformed_json", e.to_string())),
    }
    .map_err(|e| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("not a citizen: {e}")))?;
    let mut s = state.lock();
    let n = list.len();
    for c in list {
        s.citizens.insert(c.fiscal_code.clone(), c);
    }
    ok(StatusCode::CREATED, json!({"added": n}))
}

#[derive(Deserialize)]
struct ApplicationQuery {
    date: Option<String>,
    id: Option<String>,
}

/// The NASpI application a seeded citizen would file (to submit by hand with curl).
async fn citizen_application(AxumState(state): S, UrlPath(cf): UrlPath<String>, Query(q): Query<ApplicationQuery>) -> Answer {
    let date = match q.date.as_deref() {
        None => today(),
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "`date` must be YYYY-MM-DD"))?,
    };
    let s = state.lock();
    let c = s.citizens.get(&cf.to_uppercase()).ok_or_else(|| problem(StatusCode::NOT_FOUND, "unknown_citizen", "no such citizen"))?;
    let id = q.id.unwrap_or_else(|| {
        format!("NASPI-{}-{:06}", date.format("%Y"), 900_000 + s.citizens.keys().position(|k| *k == c.fiscal_code).unwrap_or(0))
    });
    match c.application(&id, date, "online") {
        Some(app) => ok(StatusCode::OK, app),
        None => Err(problem(StatusCode::NOT_FOUND, "no_application", "this citizen has not lost a job they could claim for")),
    }
}

async fn payments_list(AxumState(state): S) -> Answer {
    let s = state.lock();
    let mut per_beneficiary: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &s.payments {
        *per_beneficiary.entry(p.beneficiary_fiscal_code.as_str()).or_default() += 1;
    }
    ok(
        StatusCode::OK,
        json!({
            "payments": s.payments,
            "payments_per_beneficiary": per_beneficiary,
            "refunds": s.refunds,
            "ledger": s.ledger,
        }),
    )
}

async fn messages_list(AxumState(state): S) -> Answer {
    let s = state.lock();
    ok(StatusCode::OK, json!({"app_io": s.io_messages, "mail": s.mail, "pec": s.pec}))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const BANNER: &str = "<p style=\"background:#b00;color:#fff;padding:8px;font-weight:bold\">SANDBOX — fictitious systems and citizens, nothing here is real</p>";

async fn mail_page(AxumState(state): S) -> Html<String> {
    let s = state.lock();
    let mut html = format!(
        "<!doctype html><html lang=\"it\"><meta charset=\"utf-8\"><title>Sandbox mail</title><body style=\"font-family:sans-serif\">{BANNER}<h1>E-mail received by the sandbox SMTP server ({})</h1>",
        s.mail.len()
    );
    for m in s.mail.iter().rev() {
        html.push_str(&format!(
            "<article style=\"border:1px solid #ccc;margin:8px 0;padding:8px\"><h2 style=\"font-size:1.1em\">{}</h2><p><b>To:</b> {} &nbsp; <b>At:</b> {}{}</p><pre style=\"white-space:pre-wrap\">{}</pre></article>",
            escape(&m.subject),
            escape(&m.rcpt_to.join(", ")),
            escape(&m.received_at),
            if m.duplicate { " &nbsp; <b>(repeat: same Message-ID as an earlier one)</b>" } else { "" },
            escape(&m.body)
        ));
    }
    html.push_str("</body></html>");
    Html(html)
}

async fn index(AxumState(state): S) -> Html<String> {
    let s = state.lock();
    let mut rows = String::new();
    for c in s.citizens.values() {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{} {}</td><td>{:?}</td><td>{:?}</td><td>{}</td><td><a href=\"/sandbox/citizens/{}/application\">application JSON</a></td></tr>",
            c.fiscal_code,
            escape(&c.first_name),
            escape(&c.last_name),
            c.scenario,
            c.app_io,
            c.office,
            c.fiscal_code
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Pratica sandbox</title><body style=\"font-family:sans-serif\">{BANNER}\
         <h1>Pratica sandbox of the external systems</h1>\
         <p>{} payments, {} App IO messages, {} e-mails, {} PEC messages. Inspect: <a href=\"/sandbox/payments\">payments</a> · \
         <a href=\"/sandbox/messages\">messages</a> · <a href=\"/sandbox/mail\">mail</a> · <a href=\"/sandbox/citizens\">citizens (JSON)</a> · \
         <a href=\"/pec/messages\">PEC inbox</a></p>\
         <h2>Citizens ({})</h2><table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th>Codice fiscale</th><th>Name</th><th>Scenario</th><th>App IO</th><th>Office</th><th></th></tr>{rows}</table></body></html>",
        s.payments.len(),
        s.io_messages.len(),
        s.mail.len(),
        s.pec.len(),
        s.citizens.len()
    ))
}

fn seeded_pec() -> Vec<PecMessage> {
    let at = |minutes: i64| (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let pdf = |name: &str, size| Attachment { name: name.into(), content_type: "application/pdf".into(), size_bytes: size };
    vec![
        PecMessage {
            id: "PEC-000001".into(),
            received_at: at(180),
            kind: "posta-certificata".into(),
            from: "patronato.inca.roma@pec.example.it".into(),
            to: inps_pec(),
            subject: "Trasmissione documentazione domanda NASpI - RMNFNC90S43H501B".into(),
            body: "Spett.le INPS, per conto dell'assistita Francesca Romano (C.F. RMNFNC90S43H501B) trasmettiamo la lettera di dimissioni per giusta causa e la diffida al datore di lavoro, a integrazione della domanda NASpI. Cordiali saluti, Patronato INCA Roma.".into(),
            attachments: vec![pdf("lettera-dimissioni-giusta-causa.pdf", 182_344), pdf("diffida-datore.pdf", 96_512)],
        },
        PecMessage {
            id: "PEC-000002".into(),
            received_at: at(120),
            kind: "posta-certificata".into(),
            from: "amministrazione@pec.logisticatiberina.example.it".into(),
            to: inps_pec(),
            subject: "Rettifica UniEmens mese di competenza - matricola 7012345678".into(),
            body: "Con la presente si comunica la rettifica della denuncia UniEmens del mese scorso per il lavoratore Giuseppe Esposito, cessato per scadenza del termine. Restiamo a disposizione per chiarimenti.".into(),
            attachments: vec![pdf("uniemens-rettifica.pdf", 54_210)],
        },
        PecMessage {
            id: "PEC-000003".into(),
            received_at: at(60),
            kind: "posta-certificata".into(),
            from: "avv.bianchi@pec.ordineavvocatiroma.example.it".into(),
            to: inps_pec(),
            subject: "Ricorso amministrativo avverso reiezione domanda NASpI".into(),
            body: "Il sottoscritto avvocato, in nome e per conto del sig. Antonio Colombo, propone ricorso amministrativo al Comitato provinciale avverso il provvedimento di reiezione della domanda NASpI.".into(),
            attachments: vec![pdf("ricorso.pdf", 240_001), pdf("procura.pdf", 33_120)],
        },
        PecMessage {
            id: "PEC-000004".into(),
            received_at: at(30),
            kind: "avvenuta-consegna".into(),
            from: "posta-certificata@pec.example.it".into(),
            to: inps_pec(),
            subject: "CONSEGNA: Comunicazione esito domanda".into(),
            body: "Il giorno odierno il messaggio \"Comunicazione esito domanda\" è stato consegnato nella casella di destinazione.".into(),
            attachments: vec![],
        },
    ]
}
