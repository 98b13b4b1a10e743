//! `parallel` (fork, join, fail fast) and `foreach` (concurrency, results in order).

use serde_json::json;

use super::*;
use crate::runtime::state::Phase;

const CHECKS: &str = r#"
workflow: parallel-checks
version: 1
title: Two checks at once
steps:
  - id: checks
    parallel:
      branches:
        - name: registry
          steps:
            - id: registry
              call: inps.registry
        - name: iban
          steps:
            - id: iban
              call: bank.iban
  - id: result
    end:
      output: ${ .steps.checks.output }
"#;

#[test]
fn parallel_forks_a_token_per_branch_and_joins_when_all_end() {
    let mut case = Case::new(CHECKS, json!({}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "parallel.started", "call.scheduled", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::ParallelStarted).data, json!({"branches": ["registry", "iban"]}));
    let steps: Vec<(&str, u32)> = calls(&t).iter().map(|c| (c.step_id.as_str(), c.token)).collect();
    assert_eq!(steps, [("registry", 1), ("iban", 2)]);
    assert!(matches!(case.waiting("checks"), Waiting::Branches { pending, .. } if pending.len() == 2));

    let t = case.succeed("iban", json!({"holder": "RSSMRA"}));
    assert_eq!(kinds(&t), ["step.completed"], "one branch ended; the other still runs");
    assert!(completed_output(&case).is_none());

    let t = case.succeed("registry", json!({"status": 200}));
    assert_eq!(kinds(&t), ["step.completed", "step.completed", "instance.completed"]);
    assert_eq!(t.history[1].step.as_deref(), Some("checks"));
    let joined = json!({"registry": {"status": 200}, "iban": {"holder": "RSSMRA"}});
    assert_eq!(t.history[1].data, json!({"output": joined}));
    assert_eq!(completed_output(&case), Some(&joined));
}

#[test]
fn a_failing_branch_stops_its_siblings() {
    let mut case = Case::new(CHECKS, json!({}));
    case.start();
    let t = case.fail_call("iban", "iban.invalid", false);
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "step.failed", "instance.failed"]);
    assert_eq!(t.history[2].step.as_deref(), Some("checks"), "the parallel step fails with the branch's error");
    assert!(t.effects.contains(&Effect::Discard { tokens: vec![1, 2] }), "both branches are discarded: {:?}", t.effects);
    assert_eq!(case.state.tokens.len(), 0);
    assert!(matches!(&case.state.phase, Phase::Failed { error, .. } if error.code == "iban.invalid"));
}

const NOTIFY_ALL: &str = r#"
workflow: notify-list
version: 1
title: Notify every citizen in a list
steps:
  - id: notify_all
    foreach:
      over: ${ .input.citizens }
      as: citizen
      concurrency: 2
      steps:
        - id: notify
          call: noop
          with: { to: "${ .citizen }", position: "${ .index }" }
"#;

#[test]
fn foreach_runs_at_most_concurrency_iterations_and_keeps_results_in_item_order() {
    let mut case = Case::new(NOTIFY_ALL, json!({"citizens": ["anna", "bruno", "carla"]}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "foreach.started", "call.scheduled", "call.scheduled"]);
    assert_eq!(entry(&t, HistoryKind::ForeachStarted).data, json!({"items": 3, "concurrency": 2}));
    let keys: Vec<&str> = calls(&t).iter().map(|c| c.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["inst-1:notify[0]:1", "inst-1:notify[1]:1"], "one key per iteration");
    assert_eq!(calls(&t)[1].input, json!({"to": "bruno", "position": 1}));

    // The second iteration ends first: the third item starts in its place.
    let bruno = calls(&t)[1].token;
    let epoch = calls(&t)[1].epoch;
    let t = case.apply(Event::CallSucceeded { token: bruno, epoch, output: json!("sent to bruno") });
    assert_eq!(kinds(&t), ["step.completed", "call.scheduled"]);
    assert_eq!(calls(&t)[0].idempotency_key, "inst-1:notify[2]:1");
    assert_eq!(calls(&t)[0].input, json!({"to": "carla", "position": 2}));
    let carla = (calls(&t)[0].token, calls(&t)[0].epoch);

    let t = case.apply(Event::CallSucceeded { token: carla.0, epoch: carla.1, output: json!("sent to carla") });
    assert_eq!(kinds(&t), ["step.completed"], "anna's iteration still runs");
    let anna = case
        .state
        .tokens
        .values()
        .find(|t| matches!(t.role, crate::runtime::state::TokenRole::Iteration { index: 0 }))
        .map(|t| (t.id, t.epoch));
    let (token, epoch) = anna.expect("anna's iteration is running");
    let t = case.apply(Event::CallSucceeded { token, epoch, output: json!("sent to anna") });
    assert_eq!(kinds(&t), ["step.completed", "step.completed", "instance.completed"]);
    assert_eq!(completed_output(&case), Some(&json!(["sent to anna", "sent to bruno", "sent to carla"])));
    assert!(!case.state.steps.contains_key("notify"), "iteration outputs stay inside their iteration");
}

#[test]
fn foreach_over_nothing_completes_at_once() {
    let mut case = Case::new(NOTIFY_ALL, json!({"citizens": []}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "foreach.started", "step.completed", "instance.completed"]);
    assert_eq!(completed_output(&case), Some(&json!([])));
}
