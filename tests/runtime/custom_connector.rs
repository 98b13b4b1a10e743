//! The example custom connector (examples/custom-connector, `iban`) registered in a
//! registry and called by workflows: its outputs reach later steps, and its business error
//! is matched by `catch` (and fails the instance when nothing catches it).

use pratica_engine::connector::Registry;
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_engine::store::InstanceRow;
use pratica_example_connector::IbanConnector;
use pratica_tests::app::{AppOptions, TestEngine, start_engine};
use pratica_tests::backend::Backend;
use pratica_tests::{both_backends, repo_path};
use serde_json::{Value, json};

const VALID: &str = "IT60X0542811101000000123456";
/// Passes the mod-97 check, fails the CIN.
const WRONG_CIN: &str = "IT40S0542811101000000123456";

/// An engine with the example's `iban` connector and its workflows deployed.
async fn setup(backend: Backend) -> Option<TestEngine> {
    let example = std::fs::read_to_string(repo_path("examples/custom-connector/workflows/payout-account.yaml")).unwrap();
    let options = AppOptions::new(backend).registry(Registry::builtin().with("iban", IbanConnector));
    start_engine(options.deploy(&example).deploy(CHECK_ONLY).deploy(UNCAUGHT)).await
}

async fn run(t: &TestEngine, workflow: &str, input: Value) -> InstanceRow {
    let id = t.engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    t.engine.store().instance(&id).await.unwrap()
}

/// The connector's output used by later steps, without `require_valid`.
const CHECK_ONLY: &str = r#"workflow: iban-report
version: 1
title: Report on an IBAN
steps:
  - id: check
    call: iban.check
    with: { iban: "${ .input.iban }" }
  - id: route
    switch:
      - when: ${ .steps.check.output.valid }
        goto: ok
      - default: not_ok
  - id: ok
    end: { output: { bank: "${ .steps.check.output.bank_code }", branch: "${ .steps.check.output.branch_code }" } }
  - id: not_ok
    end: { output: { reason: "${ .steps.check.output.reason }" } }
"#;

/// Nothing catches the business error.
const UNCAUGHT: &str = r#"workflow: iban-strict
version: 1
title: Require a valid IBAN
steps:
  - id: check
    call: iban.check
    with: { iban: "${ .input.iban }", require_valid: true }
    retry: { attempts: 3 }
"#;

both_backends!(the_example_workflow_accepts_a_valid_iban_and_catches_iban_invalid, |backend| async move {
    let Some(t) = setup(backend).await else { return };
    let accepted = run(&t, "payout-account", json!({"fiscal_code": "RSSMRA80A01H501U", "iban": "it60 x054 2811 1010 0000 0123 456"})).await;
    assert_eq!(accepted.status, "completed", "{accepted:?}");
    assert_eq!(output_of(&accepted), json!({"account": "accepted", "bank_code": "05428", "branch_code": "11101"}));

    let rejected = run(&t, "payout-account", json!({"fiscal_code": "VRDLGU70B02F205X", "iban": WRONG_CIN})).await;
    assert_eq!(rejected.status, "completed", "the catch handles the business error: {rejected:?}");
    let out = output_of(&rejected);
    assert_eq!(out["account"], "new_iban_requested");
    assert_eq!(out["error"], "iban.invalid");
    assert!(out["reason"].as_str().unwrap().contains("CIN"), "{out}");
    let history = t.engine.store().history(&rejected.id).await.unwrap();
    let failed = history.iter().find(|h| h.kind == "call.failed").expect("the failure is in the history");
    let data: Value = serde_json::from_str(&failed.data).unwrap();
    assert_eq!((data["code"].as_str(), data["retryable"].as_bool()), (Some("iban.invalid"), Some(false)));
    assert!(!failed.data.contains("0542811101000000123456"), "the message does not repeat the IBAN: {}", failed.data);
    assert!(history.iter().any(|h| h.kind == "step.completed" && h.step.as_deref() == Some("note_invalid")));
});

both_backends!(the_output_feeds_later_steps, |backend| async move {
    let Some(t) = setup(backend).await else { return };
    let valid = run(&t, "iban-report", json!({"iban": VALID})).await;
    assert_eq!(output_of(&valid), json!({"bank": "05428", "branch": "11101"}));
    let bad_digits = run(&t, "iban-report", json!({"iban": "IT60X0542811101000000123457"})).await;
    assert_eq!(output_of(&bad_digits), json!({"reason": "check_digits"}));
    let foreign = run(&t, "iban-report", json!({"iban": "DE89370400440532013000"})).await;
    assert_eq!(output_of(&foreign), json!({"reason": "not_italian"}));
});

both_backends!(an_uncaught_business_error_fails_the_instance_without_retries, |backend| async move {
    let Some(t) = setup(backend).await else { return };
    let row = run(&t, "iban-strict", json!({"iban": WRONG_CIN})).await;
    assert_eq!(row.status, "failed", "{row:?}");
    assert!(row.error.as_deref().unwrap_or_default().contains("iban.invalid"), "{row:?}");
    let history = t.engine.store().history(&row.id).await.unwrap();
    assert_eq!(history.iter().filter(|h| h.kind == "call.failed").count(), 1, "a fatal error is not retried");
    // Bad input is a business error too, with its own code.
    let bad = run(&t, "iban-strict", json!({"iban": 12345})).await;
    assert!(bad.error.as_deref().unwrap_or_default().contains("iban.invalid_input"), "{bad:?}");
});
