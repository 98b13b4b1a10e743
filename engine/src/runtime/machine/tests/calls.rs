//! `call`: scheduling with the idempotency key, success, retries with backoff, failure.

use serde_json::json;

use super::*;
use crate::runtime::state::{Phase, StepError};

const TWO_CALLS: &str = r#"
workflow: contributions-check
version: 1
title: Check contributions
steps:
  - id: contributions
    call: inps.contributions
    with: { fiscal_code: "${ .input.fiscal_code }", years: 4 }
    timeout: 30s
    retry: { attempts: 3, backoff: exponential, delay: 10s, jitter: false }
  - id: notify
    call: log
    with: { message: "weeks: {{ steps.contributions.output.weeks }}" }
"#;

#[test]
fn start_schedules_the_first_call_with_its_idempotency_key() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::InstanceStarted).data["business_key"], json!("RSSMRA80A01H501U"));
    let call = calls(&t)[0];
    assert_eq!((call.connector.as_str(), call.operation.as_deref()), ("inps", Some("contributions")));
    assert_eq!(call.idempotency_key, "inst-1:contributions:1");
    assert_eq!(call.input, json!({"fiscal_code": "RSSMRA80A01H501U", "years": 4}));
    assert_eq!((call.attempt, call.due_at, call.timeout_ms), (1, T0, Some(30_000)));
    assert_eq!((call.token, call.epoch), (0, 0));
    let scheduled = entry(&t, HistoryKind::CallScheduled);
    assert_eq!(scheduled.step.as_deref(), Some("contributions"));
    assert_eq!(scheduled.data["idempotency_key"], json!("inst-1:contributions:1"));
    assert_eq!(t.effects.len(), 1, "{:?}", t.effects);
}

#[test]
fn call_success_records_the_output_and_schedules_the_next_step() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    let t = case.succeed("contributions", json!({"weeks": 52}));
    assert_eq!(kinds(&t), ["step.completed", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::StepCompleted).data, json!({"output": {"weeks": 52}}));
    assert_eq!(case.state.steps["contributions"], json!({"output": {"weeks": 52}}));
    let next = calls(&t)[0];
    assert_eq!((next.step_id.as_str(), next.connector.as_str()), ("notify", "log"));
    assert_eq!(next.input, json!({"message": "weeks: 52"}));
    assert_eq!(next.idempotency_key, "inst-1:notify:1");
    assert_eq!(next.epoch, 1, "moving on starts a new epoch");

    let t = case.succeed("notify", json!({"logged": true}));
    assert_eq!(kinds(&t), ["step.completed", "instance.completed"]);
    assert_eq!(completed_output(&case), Some(&json!({"logged": true})));
}

#[test]
fn a_retryable_failure_schedules_the_same_call_after_its_backoff_then_fails_the_instance() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    let (token, epoch) = case.at("contributions");

    case.advance(1_000);
    let t = case.apply(Event::CallFailed { token, epoch, attempt: 1, error: call_error("timeout", true) });
    assert_eq!(kinds(&t), ["call.failed", "call.retry_scheduled"]);
    let retry = calls(&t)[0];
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.due_at, T0 + 1_000 + 10_000, "the first backoff is `delay`");
    assert_eq!(retry.idempotency_key, "inst-1:contributions:1", "a retry keeps the key");
    assert_eq!(retry.input["fiscal_code"], json!("RSSMRA80A01H501U"));
    assert_eq!(entry(&t, HistoryKind::CallRetryScheduled).data["attempt"], json!(2));

    let t = case.apply(Event::CallFailed { token, epoch, attempt: 2, error: call_error("timeout", true) });
    assert_eq!(calls(&t)[0].due_at, T0 + 1_000 + 20_000, "exponential: twice the delay");
    assert_eq!(calls(&t)[0].attempt, 3);

    let t = case.apply(Event::CallFailed { token, epoch, attempt: 3, error: call_error("timeout", true) });
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "instance.failed"]);
    assert!(calls(&t).is_empty(), "no attempt is left");
    let Phase::Failed { error, resume_at } = &case.state.phase else { panic!("failed: {:?}", case.state.phase) };
    assert_eq!(error, &StepError { code: "timeout".into(), message: "timeout happened".into(), step: Some("contributions".into()) });
    assert!(resume_at.is_some(), "an uncompensated failure can be retried");
}

#[test]
fn a_business_error_is_not_retried_unless_listed() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    let t = case.fail_call("contributions", "person.unknown", false);
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "instance.failed"]);
}

#[test]
fn retry_after_from_the_service_lengthens_the_wait() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    let (token, epoch) = case.at("contributions");
    let error = CallError { retry_after_ms: Some(60_000), ..call_error("unavailable", true) };
    let t = case.apply(Event::CallFailed { token, epoch, attempt: 1, error });
    assert_eq!(calls(&t)[0].due_at, T0 + 60_000);
}

#[test]
fn retrying_a_failed_instance_runs_the_step_again_as_a_new_visit() {
    let mut case = Case::new(TWO_CALLS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    case.fail_call("contributions", "person.unknown", false);
    let t = case.apply(Event::Retry { actor: "admin".into() });
    assert_eq!(kinds(&t), ["instance.retried", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::InstanceRetried).actor.as_deref(), Some("admin"));
    assert_eq!(calls(&t)[0].idempotency_key, "inst-1:contributions:2");
    assert_eq!(case.state.phase, Phase::Running);
}
