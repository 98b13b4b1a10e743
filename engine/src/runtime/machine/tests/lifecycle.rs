//! The instance as a whole: sub-workflows, cancel, abort, compensation, and determinism
//! (the same event applied to the same state gives the same transition).

use serde_json::json;

use super::*;
use crate::runtime::state::{Phase, StepError};

const PAYOUT: &str = r#"
workflow: naspi-decision
version: 1
title: Decide, then pay through the payout workflow
steps:
  - id: payout
    workflow:
      name: automated-payout
      version: 2
      input: { case_id: "${ .input.case_id }" }
  - id: done
    end:
      output: { paid: "${ .steps.payout.output.paid }" }
"#;

#[test]
fn a_sub_workflow_starts_a_child_whose_end_completes_the_step() {
    let mut case = Case::new(PAYOUT, json!({"case_id": "NASPI-1"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "child.started"]);
    let input = json!({"case_id": "NASPI-1"});
    assert_eq!(
        t.effects,
        [Effect::StartChild { token: 0, epoch: 0, workflow: "automated-payout".into(), version: Some(2), input: input.clone() }]
    );
    assert_eq!(entry(&t, HistoryKind::ChildStarted).data, json!({"workflow": "automated-payout", "input": input}));
    assert_eq!(case.waiting("payout"), &Waiting::Child);

    let t = case.apply(Event::ChildFinished { token: 0, epoch: 0, result: Ok(json!({"paid": true})) });
    assert_eq!(kinds(&t), ["step.completed", "instance.completed"]);
    assert_eq!(completed_output(&case), Some(&json!({"paid": true})));
}

#[test]
fn a_failed_child_fails_the_step_with_its_error() {
    let mut case = Case::new(PAYOUT, json!({"case_id": "NASPI-1"}));
    case.start();
    let error = StepError::new("payout.not_approved", "the payment was not approved");
    let t = case.apply(Event::ChildFinished { token: 0, epoch: 0, result: Err(error) });
    assert_eq!(kinds(&t), ["step.failed", "instance.failed"]);
    assert!(matches!(&case.state.phase, Phase::Failed { error, .. } if error.code == "payout.not_approved"));
}

#[test]
fn cancel_discards_every_token_and_later_events_are_ignored() {
    let mut case = Case::new(PAYOUT, json!({"case_id": "NASPI-1"}));
    case.start();
    let t = case.apply(Event::Cancel { actor: "director".into(), reason: "withdrawn".into() });
    assert_eq!(kinds(&t), ["instance.cancelled"]);
    let cancelled = entry(&t, HistoryKind::InstanceCancelled);
    assert_eq!((cancelled.actor.as_deref(), &cancelled.data), (Some("director"), &json!({"reason": "withdrawn"})));
    assert_eq!(t.effects, [Effect::Discard { tokens: vec![0] }]);
    assert_eq!(case.state.phase, Phase::Cancelled);

    let late = case.apply(Event::ChildFinished { token: 0, epoch: 0, result: Ok(json!({})) });
    assert_eq!(late, Transition::default());
    let again = case.apply(Event::Cancel { actor: "director".into(), reason: "twice".into() });
    assert_eq!(again, Transition::default(), "a finished instance cannot be cancelled again");
}

#[test]
fn abort_fails_the_instance_at_once_without_compensation() {
    let mut case = paid();
    let error = StepError::new("job.quarantined", "stopped");
    let t = case.apply(Event::Abort { error: error.clone() });
    assert_eq!(kinds(&t), ["instance.failed"]);
    assert_eq!(case.state.phase, Phase::Failed { error, resume_at: None });
    assert!(case.state.compensable.is_empty());
}

const PAY_AND_REGISTER: &str = r#"
workflow: pay-and-register
version: 1
title: Pay, then register; refund if registering fails
steps:
  - id: pay
    call: bank.pay
    compensate:
      - id: refund
        call: bank.refund
        with: { payment_id: "${ .steps.pay.output.payment_id }", because: "${ .error.code }" }
  - id: register
    call: inps.ledger
"#;

/// A `pay-and-register` case whose payment `P1` went through (so it can be compensated).
fn paid() -> Case {
    let mut case = Case::new(PAY_AND_REGISTER, json!({}));
    case.start();
    case.succeed("pay", json!({"payment_id": "P1"}));
    case
}

#[test]
fn an_uncaught_failure_compensates_completed_steps_then_fails_the_instance() {
    let mut case = paid();
    let t = case.fail_call("register", "ledger.refused", false);
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "compensation.started", "compensation.step", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::CompensationStep).step.as_deref(), Some("pay"));
    assert_eq!(calls(&t)[0].input, json!({"payment_id": "P1", "because": "ledger.refused"}), "the refund sees the payment and the error");
    assert!(matches!(case.state.phase, Phase::Compensating { .. }));

    let t = case.succeed("refund", json!({"refunded": true}));
    assert_eq!(kinds(&t), ["step.completed", "instance.failed"]);
    let Phase::Failed { error, resume_at } = &case.state.phase else { panic!("failed: {:?}", case.state.phase) };
    assert_eq!((error.code.as_str(), *resume_at), ("ledger.refused", None), "a compensated failure cannot be retried");
}

#[test]
fn a_failing_compensation_fails_the_instance_with_compensation_failed() {
    let mut case = paid();
    case.fail_call("register", "ledger.refused", false);
    let t = case.fail_call("refund", "bank.down", false);
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "instance.failed"]);
    let Phase::Failed { error, .. } = &case.state.phase else { panic!("failed: {:?}", case.state.phase) };
    assert_eq!(error.code, "compensation.failed");
    assert_eq!(error.message, "bank.down happened (while compensating: ledger.refused happened)");
}

/// Applies `event` to two copies of the same case and returns both results.
fn twice(case: &Case, event: Event) -> ((Transition, InstanceState), (Transition, InstanceState)) {
    let (mut a, mut b) = (case.clone(), case.clone());
    let ta = a.apply(event.clone());
    let tb = b.apply(event);
    ((ta, a.state), (tb, b.state))
}

#[test]
fn the_same_event_on_the_same_state_gives_the_same_transition() {
    let case = Case::new(super::tasks_yaml(), json!({"name": "Mario Rossi", "office": "roma", "fiscal_code": "RSSMRA80A01H501U"}));
    let (a, b) = twice(&case, Event::Start);
    assert_eq!(a, b, "start, with a task id from the caller");
    assert!(!a.0.history.is_empty());

    let case = paid();
    let (token, epoch) = case.at("register");
    let error = call_error("ledger.refused", false);
    let (a, b) = twice(&case, Event::CallFailed { token, epoch, attempt: 1, error });
    assert_eq!(a, b, "a failure with compensation");
    assert!(!a.0.effects.is_empty());
}
