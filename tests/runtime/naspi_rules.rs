//! The real `workflows/naspi-preprocessing.yaml` (with `automated-payout.yaml` as its
//! sub-workflow) decides a table of applications checked by hand, on both backends: amount,
//! duration, reduction schedule, start date and path (payout, office review with the failed
//! checks, reasoned rejection). Every expectation is written out by hand from the rules
//! (../shared/domain/inps.md §1.9 and docs/PROCESSES.md) and is also compared with the
//! independent Rust implementation in `tests/support/naspi.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pratica_engine::connector::identity::codice_fiscale_check_char;
use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation, Registry};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_engine::schemas::SchemaSet;
use pratica_engine::store::TaskFilter;
use pratica_scenario::path_of;
use pratica_tests::backend::test_engine;
use pratica_tests::both_backends;
use pratica_tests::naspi::{Archives, Outcome, expected_outcome};
use pratica_tests::repo_path;
use serde_json::{Value, json};

/// A valid fictitious codice fiscale, different for each `n`.
fn fiscal_code(n: u32) -> String {
    let first15 = format!("RSSMRA87C12H{:03}", 100 + n);
    format!("{first15}{}", codice_fiscale_check_char(&first15).unwrap())
}

/// The INPS archives, the payment service, App IO and e-mail, answering from a table keyed by
/// codice fiscale, recording every call.
#[derive(Clone, Default)]
struct World {
    archives: Arc<Mutex<BTreeMap<String, Archives>>>,
    calls: Arc<Mutex<Vec<Invocation>>>,
}

impl World {
    fn calls_of(&self, operation: &str, fiscal_code: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.operation.as_deref() == Some(operation))
            .filter(|c| {
                c.input.get("fiscal_code").or_else(|| c.input.get("beneficiary_fiscal_code")).and_then(Value::as_str) == Some(fiscal_code)
            })
            .map(|c| c.input.clone())
            .collect()
    }
}

impl Connector for World {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(call.clone());
            let cf = call.input.get("fiscal_code").or_else(|| call.input.get("beneficiary_fiscal_code")).and_then(Value::as_str);
            let archives = cf.and_then(|cf| self.archives.lock().unwrap().get(cf).cloned());
            let op = format!("{}.{}", call.connector, call.operation.as_deref().unwrap_or(""));
            match op.as_str() {
                "inps.contributions" => {
                    let a = archives.ok_or_else(|| ConnectorError::fatal("inps.not_found", "unknown citizen"))?;
                    if call.input.get("from").is_some() {
                        Ok(a.weeks_since_exit
                            .unwrap_or(json!({"weeks": 0, "weeks_already_used": 0, "taxable_pay": 0, "missing_months": []})))
                    } else {
                        Ok(a.contributions)
                    }
                }
                "inps.employment" => {
                    let a = archives.ok_or_else(|| ConnectorError::fatal("inps.not_found", "unknown citizen"))?;
                    let employer = call.input.get("employer_fiscal_code").and_then(Value::as_str).unwrap_or("");
                    let start = call.input.get("start_date").and_then(Value::as_str).unwrap_or("");
                    Ok(a.employment
                        .iter()
                        .find(|r| r.get("employer_fiscal_code").and_then(Value::as_str) == Some(employer) && r["start_date"] == start)
                        .map(|r| {
                            let mut r = r.clone();
                            r.as_object_mut().unwrap().remove("employer_fiscal_code");
                            r
                        })
                        .unwrap_or(json!({"found": false})))
                }
                "inps.registry" => archives
                    .and_then(|a| a.registry)
                    .ok_or_else(|| ConnectorError::fatal("inps.unavailable", "registry not available in this test")),
                "inps.ledger" => Ok(json!({"entry_id": format!("LED-{}", call.input["case_id"].as_str().unwrap_or(""))})),
                "payments.pay" => Ok(json!({"payment_id": format!("PAY-{}", call.idempotency_key), "status": "executed"})),
                "appio.send" => Ok(json!({"id": "01JR2K7Q9V3M8X4T6B1N5C0D2E"})),
                "email.send" => Ok(json!({"message_id": "<test@inps.it>"})),
                other => Err(ConnectorError::fatal("test.unexpected_call", format!("unexpected call {other}"))),
            }
        })
    }
}

/// The worked example's application (inps.md §1.9) for citizen `n`, changed by `patch`.
fn application(n: u32, patch: Value) -> Value {
    let mut app = json!({
        "application_id": format!("NASPI-2025-{:06}", 100 + n),
        "application_date": "2025-04-05",
        "channel": "online",
        "office": "7000",
        "applicant": {
            "fiscal_code": fiscal_code(n),
            "first_name": "Mario",
            "last_name": "Rossi",
            "birth_date": "1987-03-12",
            "email": "mario.rossi@example.it",
            "residence": {"address": "Via Appia Nuova 112", "postal_code": "00183", "municipality": "Roma", "province": "RM"}
        },
        "employment": {
            "employer_fiscal_code": "01234567897",
            "employer_name": "Logistica Tiburtina S.r.l.",
            "contract_type": "fixed_term",
            "start_date": "2023-04-01",
            "termination_date": "2025-03-31",
            "termination_reason": "fixed_term_expiry"
        },
        "payment": {"method": "bank_account", "iban": "IT60X0542811101000000123456"},
        "declarations": {"work_abroad": false, "deadline_suspended": false, "new_activity": false}
    });
    merge(&mut app, patch);
    app
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// What the archives answer for `app`: its declared jobs as found, the given contributions.
fn archives_for(app: &Value, contributions: Value, weeks_since_exit: Option<u32>) -> Archives {
    let jobs: Vec<Value> = std::iter::once(app["employment"].clone())
        .chain(app.get("previous_jobs").and_then(Value::as_array).cloned().unwrap_or_default())
        .map(|j| {
            json!({"found": true, "employer_fiscal_code": j["employer_fiscal_code"], "contract_type": j["contract_type"],
                   "start_date": j["start_date"], "termination_date": j["termination_date"], "termination_reason": j["termination_reason"]})
        })
        .collect();
    Archives {
        contributions,
        employment: jobs,
        registry: Some(json!({"pension_in_payment": false, "active_employment": false, "iban_holder_match": true})),
        weeks_since_exit: weeks_since_exit
            .map(|w| json!({"weeks": w, "weeks_already_used": 0, "taxable_pay": 500 * w, "missing_months": []})),
    }
}

fn contributions(weeks: u32, used: u32, taxable_pay: f64) -> Value {
    json!({"weeks": weeks, "weeks_already_used": used, "taxable_pay": taxable_pay, "missing_months": []})
}

/// What a case must come to, written by hand.
enum Expected {
    Payout {
        monthly_amount: f64,
        start_date: &'static str,
        duration_weeks: i64,
        duration_months: i64,
        /// (month, amount) pairs of the schedule, checked by hand.
        months: &'static [(usize, f64)],
        reduction_from_month: i64,
        threshold: f64,
    },
    Review(&'static [&'static str]),
    Rejected(&'static str),
}

struct Case {
    name: &'static str,
    app: Value,
    archives: Archives,
    expected: Expected,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut case = |name: &'static str, patch: Value, contrib: Value, exit_weeks: Option<u32>, expected: Expected| {
        n += 1;
        let app = application(n, patch);
        let archives = archives_for(&app, contrib, exit_weeks);
        out.push(Case { name, app, archives, expected });
    };
    let example = || contributions(156, 0, 78000.0);
    // inps.md §1.9: 78,000 / 156 x 4.33 = 2,165.00; 0.75 x 1,436.61 + 0.25 x 728.39 = 1,259.56.
    case(
        "worked example",
        json!({}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-04-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(1, 1259.56), (5, 1259.56), (6, 1221.77), (7, 1185.12), (8, 1149.57), (18, 847.72)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    case(
        "worked example aged 55 or more",
        json!({"applicant": {"birth_date": "1968-01-15"}}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-04-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(7, 1259.56), (8, 1221.77), (18, 900.97)],
            reduction_from_month: 8,
            threshold: 1436.61,
        },
    );
    // 28,822.17 / 104 x 4.33 = 1,200.00, under the threshold: 75% = 900.00; 52 weeks = 364
    // days = 12 months; month 6 = 900 x 0.97 = 873.00, month 12 = 900 x 0.97^7 = 727.18.
    case(
        "average pay under the threshold",
        json!({}),
        contributions(104, 0, 28822.17),
        None,
        Expected::Payout {
            monthly_amount: 900.0,
            start_date: "2025-04-08",
            duration_weeks: 52,
            duration_months: 12,
            months: &[(5, 900.0), (6, 873.0), (7, 846.81), (12, 727.18)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    // Average 4,000.00: the formula gives 1,718.31, capped at the 2025 maximum 1,562.82;
    // 208 weeks -> 104 weeks (the maximum) = 728 days = 24 months.
    case(
        "average pay above the cap, maximum duration",
        json!({}),
        contributions(208, 0, 192147.80),
        None,
        Expected::Payout {
            monthly_amount: 1562.82,
            start_date: "2025-04-08",
            duration_weeks: 104,
            duration_months: 24,
            months: &[(6, 1515.94), (24, 876.14)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    // Application in 2024: threshold 1,425.21 -> 1,068.9075 + 184.9475 = 1,253.855 -> 1,253.86.
    case(
        "application in 2024 uses the 2024 figures",
        json!({"application_date": "2024-04-05", "employment": {"start_date": "2022-04-01", "termination_date": "2024-03-31"}}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1253.86,
            start_date: "2024-04-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(6, 1216.24), (18, 843.88)],
            reduction_from_month: 6,
            threshold: 1425.21,
        },
    );
    // Terminated 31 December 2025, applied 5 January 2026: the 2026 figures (application year),
    // 0.75 x 1,456.72 + 0.25 x 708.28 = 1,092.54 + 177.07 = 1,269.61.
    case(
        "application in 2026 uses the 2026 figures even for a 2025 termination",
        json!({"application_date": "2026-01-05", "employment": {"start_date": "2023-01-01", "termination_date": "2025-12-31"}}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1269.61,
            start_date: "2026-01-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(6, 1231.52), (18, 854.48)],
            reduction_from_month: 6,
            threshold: 1456.72,
        },
    );
    // 208 weeks of which 60 already used: 148 useful -> 74 weeks = 518 days -> 18 months.
    case(
        "weeks already used do not count for the duration",
        json!({}),
        contributions(208, 60, 100000.0),
        None,
        Expected::Payout {
            monthly_amount: 1238.74,
            start_date: "2025-04-08",
            duration_weeks: 74,
            duration_months: 18,
            months: &[(6, 1201.58), (18, 833.71)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    // 31 March + 68 days = 7 June: still in time; the start is the day after the application.
    case(
        "filed on day 68",
        json!({"application_date": "2025-06-07"}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-06-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(18, 847.72)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    case(
        "filed on day 69",
        json!({"application_date": "2025-06-08"}),
        example(),
        None,
        Expected::Rejected("La domanda è stata presentata 69 giorni dopo la cessazione, oltre il termine di 68 giorni."),
    );
    case(
        "filed on the 8th day starts on the 8th day",
        json!({"application_date": "2025-04-08"}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-04-08",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(6, 1221.77)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    case(
        "filed on the 9th day starts the day after",
        json!({"application_date": "2025-04-09"}),
        example(),
        None,
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-04-10",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(6, 1221.77)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    // 26 weeks of which 13 already used: exactly the minimum of 13 useful weeks; duration
    // 13 / 2 = 6 weeks (rounded down) = 42 days = 2 months, no reduction. The average pay
    // counts all 26 weeks: 15,000 / 26 x 4.33 = 2,498.08 -> 1,077.4575 + 265.3675 -> 1,342.83.
    case(
        "13 useful weeks are enough",
        json!({}),
        contributions(26, 13, 15000.0),
        None,
        Expected::Payout {
            monthly_amount: 1342.83,
            start_date: "2025-04-08",
            duration_weeks: 6,
            duration_months: 2,
            months: &[(1, 1342.83), (2, 1342.83)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    case(
        "12 useful weeks are not",
        json!({}),
        contributions(26, 14, 15000.0),
        None,
        Expected::Rejected("Risultano 12 settimane di contribuzione utile negli ultimi 4 anni; ne servono almeno 13."),
    );
    let anti_abuse = |fired: &str, applied: &str| {
        json!({
            "application_date": applied,
            "employment": {"employer_fiscal_code": "07654321095", "employer_name": "Magazzini Prenestini S.r.l.", "contract_type": "fixed_term",
                           "start_date": "2025-02-03", "termination_date": fired, "termination_reason": "dismissal"},
            "previous_jobs": [{"employer_fiscal_code": "01234567897", "employer_name": "Logistica Tiburtina S.r.l.", "contract_type": "permanent",
                               "start_date": "2019-05-02", "termination_date": "2025-01-20", "termination_reason": "voluntary_resignation"}]
        })
    };
    // inps.md §1.2 / §1.9: resigned 20 January 2025, hired 3 February, fired 25 April: 11 weeks.
    case(
        "2025 anti-abuse variant is rejected",
        anti_abuse("2025-04-25", "2025-04-28"),
        example(),
        Some(11),
        Expected::Rejected(
            "Dopo le dimissioni volontarie del 2025-01-20 risultano 11 settimane di contribuzione; ne servono almeno 13 (L. 207/2024).",
        ),
    );
    case(
        "2025 anti-abuse rule met with 24 weeks",
        anti_abuse("2025-07-10", "2025-07-14"),
        example(),
        Some(24),
        Expected::Payout {
            monthly_amount: 1259.56,
            start_date: "2025-07-18",
            duration_weeks: 78,
            duration_months: 18,
            months: &[(6, 1221.77)],
            reduction_from_month: 6,
            threshold: 1436.61,
        },
    );
    case(
        "voluntary resignation is rejected",
        json!({"employment": {"contract_type": "permanent", "termination_reason": "voluntary_resignation"}}),
        example(),
        None,
        Expected::Rejected("Le dimissioni volontarie non danno diritto alla NASpI (art. 3 D.Lgs. 22/2015)."),
    );
    // Wrong check character (the correct one for this code is different).
    let mut bad_cf = fiscal_code(90);
    let last = bad_cf.pop().unwrap();
    bad_cf.push(if last == 'A' { 'B' } else { 'A' });
    case(
        "invalid codice fiscale goes to review",
        json!({"applicant": {"fiscal_code": bad_cf}}),
        example(),
        None,
        Expected::Review(&["fiscal_code_invalid"]),
    );
    // Passes mod-97 but the CIN should be X (inps.md §3.2).
    case(
        "IBAN with a wrong CIN goes to review",
        json!({"payment": {"iban": "IT65A0542811101000000123456"}}),
        example(),
        None,
        Expected::Review(&["iban_invalid"]),
    );
    case(
        "IBAN failing mod-97 goes to review",
        json!({"payment": {"iban": "IT60X0542811101000000123457"}}),
        example(),
        None,
        Expected::Review(&["iban_invalid"]),
    );
    out
}

fn schedule_amounts(decision: &Value) -> Vec<f64> {
    decision["schedule"].as_array().unwrap().iter().map(|m| m["amount"].as_f64().unwrap()).collect()
}

both_backends!(naspi_decisions_match_the_hand_checked_table, |backend| async move {
    let world = World::default();
    let registry = Registry::builtin()
        .with("inps", world.clone())
        .with("payments", world.clone())
        .with("appio", world.clone())
        .with("email", world.clone());
    let Some(t) = test_engine(backend, registry).await else { return };
    for file in ["workflows/automated-payout.yaml", "workflows/naspi-preprocessing.yaml"] {
        let source = std::fs::read_to_string(repo_path(file)).unwrap();
        t.engine.deploy(&source).await.unwrap_or_else(|e| panic!("deploy {file}: {e:?}"));
    }
    let plan = t.engine.plan("naspi-preprocessing", None).await.unwrap();
    let schemas = SchemaSet::from_dir(repo_path("schemas"));
    let cases = cases();
    let mut ids = Vec::new();
    for case in &cases {
        schemas.validate("naspi-application", &case.app).unwrap_or_else(|e| panic!("{}: the application fits the schema: {e}", case.name));
        let cf = case.app["applicant"]["fiscal_code"].as_str().unwrap().to_string();
        world.archives.lock().unwrap().insert(cf, case.archives.clone());
        let started = t
            .engine
            .start(StartRequest { workflow: "naspi-preprocessing".into(), input: case.app.clone(), ..Default::default() })
            .await
            .unwrap();
        ids.push(started.id);
    }
    t.engine.run_until_idle().await.unwrap();

    for (case, id) in cases.iter().zip(&ids) {
        let name = case.name;
        let cf = case.app["applicant"]["fiscal_code"].as_str().unwrap();
        let row = t.engine.store().instance(id).await.unwrap();
        let output = output_of(&row);
        let path = path_of(&plan, &t.engine.store().history(id).await.unwrap());
        let independent = expected_outcome(&case.app, &case.archives);
        let pays = world.calls_of("pay", cf);
        match &case.expected {
            Expected::Payout { monthly_amount, start_date, duration_weeks, duration_months, months, reduction_from_month, threshold } => {
                assert_eq!(row.status, "completed", "{name}: {output}");
                assert_eq!(output["outcome"], "accepted", "{name}: {output}");
                assert!(
                    path.ends_with(&["route".into(), "notify_acceptance".into(), "wait_for_start".into(), "payout".into(), "paid".into()]),
                    "{name}: {path:?}"
                );
                assert_eq!(output["monthly_amount"].as_f64(), Some(*monthly_amount), "{name}");
                assert_eq!(output["start_date"], *start_date, "{name}");
                assert_eq!(output["duration_weeks"], *duration_weeks, "{name}");
                let d = &output["decision"];
                schemas.validate("naspi-decision", d).unwrap_or_else(|e| panic!("{name}: the decision fits its schema: {e}"));
                assert_eq!(d["duration_months"], *duration_months, "{name}: {d}");
                assert_eq!(d["reduction_from_month"], *reduction_from_month, "{name}");
                assert_eq!(d["parameters"]["threshold"].as_f64(), Some(*threshold), "{name}");
                assert!(d["rule_version"].as_str().unwrap().starts_with("naspi-2025.1"), "{name}");
                let schedule = schedule_amounts(d);
                assert_eq!(schedule.len() as i64, *duration_months, "{name}");
                for (month, amount) in *months {
                    assert_eq!(schedule[month - 1], *amount, "{name}: month {month} of {schedule:?}");
                }
                // One payment of the first month, exactly once.
                assert_eq!(pays.len(), 1, "{name}: {pays:?}");
                assert_eq!(pays[0]["amount_cents"].as_i64(), Some((monthly_amount * 100.0).round() as i64), "{name}");
                assert_eq!(output["payout"]["status"], "paid", "{name}");
                let explanation = output["explanation"].as_str().unwrap();
                assert!(explanation.contains(&format!("{:.2}", monthly_amount).replace('.', ",")), "{name}: {explanation}");
                match independent {
                    Outcome::Payout { monthly_amount: m, first_payment_cents, figures } => {
                        assert_eq!(m, *monthly_amount, "{name}: independent amount");
                        assert_eq!(Some(first_payment_cents), pays[0]["amount_cents"].as_i64(), "{name}");
                        assert_eq!(figures.schedule, schedule, "{name}: independent schedule");
                        assert_eq!(figures.start_date, *start_date, "{name}");
                        assert_eq!(figures.duration_weeks, *duration_weeks, "{name}");
                        assert_eq!(figures.duration_months, *duration_months, "{name}");
                    }
                    other => panic!("{name}: the independent rules say {other:?}"),
                }
            }
            Expected::Review(codes) => {
                assert_eq!(row.status, "running", "{name}: waiting for the operator: {output}");
                assert!(path.contains(&"route".to_string()) && !path.contains(&"payout".to_string()), "{name}: {path:?}");
                let tasks = t.engine.store().tasks(&TaskFilter { instance_id: Some(id.clone()), ..Default::default() }).await.unwrap();
                assert_eq!(tasks.len(), 1, "{name}");
                assert_eq!(tasks[0].step_id, "review", "{name}");
                let description = tasks[0].description.clone().unwrap_or_default();
                let found: Vec<&str> = description
                    .lines()
                    .filter_map(|l| l.trim().strip_suffix(']').and_then(|l| l.rsplit_once('[')).map(|(_, c)| c))
                    .collect();
                assert_eq!(found, *codes, "{name}: {description}");
                assert!(pays.is_empty(), "{name}");
                match independent {
                    Outcome::Review { failed_checks, documents_requested: false, .. } => assert_eq!(failed_checks, *codes, "{name}"),
                    other => panic!("{name}: the independent rules say {other:?}"),
                }
            }
            Expected::Rejected(reason) => {
                assert_eq!(row.status, "completed", "{name}: {output}");
                assert_eq!(output["outcome"], "rejected", "{name}");
                assert_eq!(output["reasons"], json!([reason]), "{name}");
                assert_eq!(output["decided_by"], "automatic", "{name}");
                assert!(path.ends_with(&["rejection".into(), "notify_rejection".into(), "rejected".into()]), "{name}: {path:?}");
                schemas
                    .validate("naspi-decision", &output["decision"])
                    .unwrap_or_else(|e| panic!("{name}: the decision fits its schema: {e}"));
                assert!(pays.is_empty(), "{name}");
                match independent {
                    Outcome::Rejected { reasons, .. } => assert_eq!(reasons, vec![reason.to_string()], "{name}"),
                    other => panic!("{name}: the independent rules say {other:?}"),
                }
            }
        }
    }
});

/// A small deterministic generator (xorshift64*), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A generated application and what the archives answer for it: every kind of case the
/// workflow distinguishes, in random combinations.
fn generated_case(rng: &mut Rng, n: u32) -> (Value, Archives) {
    use pratica_tests::naspi::{date_of, day_number};
    let termination = day_number("2024-01-10") + rng.below(700) as i64;
    let applied = termination + 1 + rng.below(75) as i64;
    let reason = rng.pick(&[
        "dismissal",
        "dismissal",
        "fixed_term_expiry",
        "fixed_term_expiry",
        "conciliation_agreement",
        "just_cause_resignation",
        "voluntary_resignation",
        "consensual_termination",
    ]);
    let mut cf = fiscal_code(200 + n);
    if rng.chance(8) {
        let last = cf.pop().unwrap();
        cf.push(if last == 'Z' { 'A' } else { ((last as u8) + 1) as char });
    }
    let iban = match rng.below(100) {
        0..=5 => "IT65A0542811101000000123456",
        6..=10 => "IT60X0542811101000000123457",
        11..=50 => "IT87D9999999999000000123456",
        _ => "IT60X0542811101000000123456",
    };
    let mut app = application(
        n,
        json!({
            "application_id": format!("NASPI-2025-{:06}", 500 + n),
            "application_date": date_of(applied),
            "applicant": {"fiscal_code": cf, "birth_date": format!("{}-0{}-1{}", 1958 + rng.below(45), 1 + rng.below(9), rng.below(10))},
            "employment": {"contract_type": "fixed_term", "start_date": date_of(termination - 400), "termination_date": date_of(termination),
                           "termination_reason": reason},
            "payment": {"method": "bank_account", "iban": iban},
            "declarations": {"work_abroad": rng.chance(5), "deadline_suspended": rng.chance(10), "new_activity": rng.chance(5)}
        }),
    );
    let exit = rng.chance(20).then(|| termination - 20 - rng.below(330) as i64);
    if let Some(exit) = exit {
        app["previous_jobs"] = json!([{"employer_fiscal_code": "07654321095", "employer_name": "Magazzini Prenestini S.r.l.", "contract_type": "permanent",
                                       "start_date": date_of(exit - 900), "termination_date": date_of(exit), "termination_reason": "voluntary_resignation"}]);
    }
    let weeks = 5 + rng.below(204);
    let used = rng.below(weeks.min(40) + 1);
    let pay_per_week = 150 + rng.below(1050);
    let missing = if rng.chance(10) { json!(["2024-11"]) } else { json!([]) };
    let contributions =
        json!({"weeks": weeks, "weeks_already_used": used, "taxable_pay": (weeks * pay_per_week) as f64 + 0.37, "missing_months": missing});
    let mut archives = archives_for(&app, contributions, exit.map(|_| rng.below(30) as u32));
    match rng.below(100) {
        0..=4 => archives.employment[0] = json!({"found": false}),
        5..=9 => archives.employment[0]["termination_reason"] = json!("fixed_term_expiry"),
        10..=13 => archives.employment[0]["termination_date"] = json!(date_of(termination - 3)),
        _ => {}
    }
    if archives.employment[0]["termination_reason"] == "fixed_term_expiry" && reason == "fixed_term_expiry" && rng.chance(30) {
        archives.employment[0]["termination_reason"] = json!("dismissal");
    }
    archives.registry = match rng.below(100) {
        0..=4 => None,
        5..=9 => Some(json!({"pension_in_payment": true, "active_employment": false, "iban_holder_match": true})),
        10..=14 => Some(json!({"pension_in_payment": false, "active_employment": true, "iban_holder_match": true})),
        15..=19 => Some(json!({"pension_in_payment": false, "active_employment": false, "iban_holder_match": false})),
        _ => archives.registry,
    };
    (app, archives)
}

/// The workflow and the independent implementation agree on generated applications: same
/// path, same amount, schedule and start date, same failed checks, same reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_and_the_independent_rules_agree_on_generated_applications() {
    let world = World::default();
    let registry = Registry::builtin()
        .with("inps", world.clone())
        .with("payments", world.clone())
        .with("appio", world.clone())
        .with("email", world.clone());
    let Some(t) = test_engine(pratica_tests::backend::Backend::Sqlite, registry).await else { return };
    for file in ["workflows/automated-payout.yaml", "workflows/naspi-preprocessing.yaml"] {
        t.engine.deploy(&std::fs::read_to_string(repo_path(file)).unwrap()).await.unwrap();
    }
    let schemas = SchemaSet::from_dir(repo_path("schemas"));
    let mut rng = Rng(0x5EED_2025_0405);
    let mut cases = Vec::new();
    for n in 0..120 {
        let (app, archives) = generated_case(&mut rng, n);
        schemas.validate("naspi-application", &app).unwrap_or_else(|e| panic!("case {n} fits the schema: {e}"));
        world.archives.lock().unwrap().insert(app["applicant"]["fiscal_code"].as_str().unwrap().to_string(), archives.clone());
        let id = t
            .engine
            .start(StartRequest { workflow: "naspi-preprocessing".into(), input: app.clone(), ..Default::default() })
            .await
            .unwrap()
            .id;
        cases.push((n, app, archives, id));
    }
    t.engine.run_until_idle().await.unwrap();
    let mut kinds = BTreeMap::new();
    for (n, app, archives, id) in &cases {
        let expected = expected_outcome(app, archives);
        *kinds.entry(expected.kind()).or_insert(0) += 1;
        let row = t.engine.store().instance(id).await.unwrap();
        let output = output_of(&row);
        let history = t.engine.store().history(id).await.unwrap();
        let context = format!("case {n}: {app}\narchives: {archives:?}\noutput: {output}");
        match &expected {
            Outcome::Payout { monthly_amount, first_payment_cents, figures } => {
                assert_eq!((row.status.as_str(), &output["outcome"]), ("completed", &json!("accepted")), "{context}");
                assert_eq!(output["monthly_amount"].as_f64(), Some(*monthly_amount), "{context}");
                assert_eq!(output["start_date"], figures.start_date, "{context}");
                assert_eq!(schedule_amounts(&output["decision"]), figures.schedule, "{context}");
                let pays = world.calls_of("pay", app["applicant"]["fiscal_code"].as_str().unwrap());
                assert_eq!(pays.len(), 1, "{context}");
                assert_eq!(pays[0]["amount_cents"].as_i64(), Some(*first_payment_cents), "{context}");
            }
            Outcome::Rejected { reasons, .. } => {
                assert_eq!((row.status.as_str(), &output["outcome"]), ("completed", &json!("rejected")), "{context}");
                assert_eq!(output["reasons"], json!(reasons), "{context}");
            }
            Outcome::Review { failed_checks, documents_requested, .. } => {
                assert_eq!(row.status, "running", "{context}");
                let checks = history
                    .iter()
                    .find(|h| h.kind == "step.completed" && h.step.as_deref() == Some("checks"))
                    .map(|h| serde_json::from_str::<Value>(&h.data).unwrap())
                    .expect("the checks ran");
                let codes: Vec<String> =
                    checks["output"]["failed_checks"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap().to_string()).collect();
                assert_eq!(&codes, failed_checks, "{context}");
                let asked = history.iter().any(|h| h.step.as_deref() == Some("request_documents"));
                assert_eq!(asked, *documents_requested, "{context}");
            }
        }
    }
    // The generator reaches every outcome.
    for kind in ["payout", "review", "rejected"] {
        assert!(kinds.get(kind).copied().unwrap_or(0) >= 10, "{kinds:?}");
    }
}
