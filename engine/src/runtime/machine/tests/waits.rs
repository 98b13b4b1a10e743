//! Waiting for the outside world: `wait` timers, `receive` messages and their timeouts,
//! and events that arrive for a position the token has already left.

use serde_json::json;

use super::*;
use crate::runtime::machine::TimerPurpose;

const WAIT_THEN_CALL: &str = r#"
workflow: wait-a-day
version: 1
title: Wait a day, then log
steps:
  - id: one_day
    wait:
      for: 1d
  - id: report
    call: log
    with: { message: "a day later" }
"#;

const HOUR: Millis = 3_600_000;

#[test]
fn a_wait_arms_a_timer_and_its_firing_moves_on() {
    let mut case = Case::new(WAIT_THEN_CALL, json!({}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "timer.armed"]);
    assert_eq!(entry(&t, HistoryKind::TimerArmed).data, json!({"due_at": "2025-04-08T08:00:00.000Z"}));
    assert_eq!(t.effects, [Effect::Timer { token: 0, epoch: 0, due_at: T0 + 24 * HOUR, purpose: TimerPurpose::Wait }]);
    assert_eq!(case.waiting("one_day"), &Waiting::Timer);

    case.advance(24 * HOUR);
    let t = case.apply(Event::TimerFired { token: 0, epoch: 0 });
    assert_eq!(kinds(&t), ["timer.fired", "step.completed", "call.scheduled"]);
    assert_eq!(calls(&t)[0].step_id, "report");
}

#[test]
fn a_late_timer_or_a_repeated_delivery_is_ignored() {
    let mut case = Case::new(WAIT_THEN_CALL, json!({}));
    case.start();
    case.apply(Event::TimerFired { token: 0, epoch: 0 });
    let before = case.state.clone();

    let late = case.apply(Event::TimerFired { token: 0, epoch: 0 });
    assert_eq!(late, Transition::default(), "the token left the wait: epoch 0 is stale");
    assert_eq!(case.state, before);

    let (token, epoch) = case.at("report");
    case.apply(Event::CallSucceeded { token, epoch, output: json!("logged") });
    let finished = case.state.clone();
    let repeated = case.apply(Event::CallSucceeded { token, epoch, output: json!("logged") });
    assert_eq!(repeated, Transition::default(), "a duplicate delivery changes nothing");
    assert_eq!(case.state, finished);
}

#[test]
fn a_wait_until_a_past_date_does_not_wait() {
    let yaml = r#"
workflow: until-start
version: 1
title: Wait until the start date
steps:
  - id: until_start
    wait:
      until: ${ .input.start_date }
"#;
    let mut case = Case::new(yaml, json!({"start_date": "2025-01-01"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "step.completed", "instance.completed"]);

    let mut case = Case::new(yaml, json!({"start_date": "2025-05-01"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "timer.armed"]);
    assert_eq!(entry(&t, HistoryKind::TimerArmed).data, json!({"due_at": "2025-04-30T22:00:00.000Z"}), "midnight in Rome");
}

const DOCUMENTS: &str = r#"
workflow: await-documents
version: 1
title: Wait 30 days for the citizen's documents
business_key: ${ .input.fiscal_code }
steps:
  - id: documents
    receive:
      message: documents-received
      correlate: ${ .business_key }
      timeout:
        after: 30d
        goto: missing
  - id: received
    end:
      output:
        documents: ${ .steps.documents.output.documents }
  - id: missing
    end:
      output: { documents: [] }
"#;

#[test]
fn receive_subscribes_by_correlation_key_and_the_message_completes_it() {
    let mut case = Case::new(DOCUMENTS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "message.awaited"]);
    assert_eq!(entry(&t, HistoryKind::MessageAwaited).data, json!({"message": "documents-received", "key": "RSSMRA80A01H501U"}));
    assert_eq!(
        t.effects,
        [
            Effect::Subscribe { token: 0, epoch: 0, message: "documents-received".into(), key: "RSSMRA80A01H501U".into() },
            Effect::Timer { token: 0, epoch: 0, due_at: T0 + 30 * 24 * HOUR, purpose: TimerPurpose::ReceiveTimeout },
        ]
    );

    let payload = json!({"documents": ["id-card.pdf"]});
    let t = case.apply(Event::MessageReceived { token: 0, epoch: 0, payload: payload.clone() });
    assert_eq!(kinds(&t), ["message.received", "step.completed", "instance.completed"]);
    assert_eq!(entry(&t, HistoryKind::MessageReceived).data, json!({"payload": payload}));
    assert_eq!(completed_output(&case), Some(&json!({"documents": ["id-card.pdf"]})));

    let t = case.apply(Event::ReceiveTimedOut { token: 0, epoch: 0 });
    assert_eq!(t, Transition::default(), "the timeout after the message is stale");
}

#[test]
fn a_receive_timeout_drops_the_subscription_and_goes_to_its_target() {
    let mut case = Case::new(DOCUMENTS, json!({"fiscal_code": "RSSMRA80A01H501U"}));
    case.start();
    case.advance(30 * 24 * HOUR);
    let t = case.apply(Event::ReceiveTimedOut { token: 0, epoch: 0 });
    assert_eq!(kinds(&t), ["message.timed_out", "instance.completed"]);
    assert_eq!(t.effects[0], Effect::Discard { tokens: vec![0] });
    assert_eq!(completed_output(&case), Some(&json!({"documents": []})));

    let t = case.apply(Event::MessageReceived { token: 0, epoch: 0, payload: json!({}) });
    assert_eq!(t, Transition::default(), "a message after the timeout is stale");
}
