//! Property tests of the pure state machine: random (including stale, repeated and
//! out-of-order) events never break its invariants.

use pratica_engine::definition::{Catalog, compile_source};
use pratica_engine::runtime::machine::{CallError, Effect, Event, InstanceInfo, UuidV7Ids, apply};
use pratica_engine::runtime::{InstanceState, StepError};
use proptest::prelude::*;
use serde_json::{Value, json};

const WORKFLOW: &str = r#"workflow: props
version: 1
title: Properties
steps:
  - id: first
    call: noop
    retry: { attempts: 3, delay: 1s }
  - id: fork
    parallel:
      branches:
        - name: left
          steps:
            - id: left_call
              call: noop
              retry: { attempts: 2 }
        - name: right
          steps:
            - id: right_wait
              wait: { for: 1h }
  - id: each
    foreach:
      over: ${ [1, 2, 3] }
      concurrency: 2
      steps:
        - id: item_call
          call: noop
  - id: review
    human: { title: Review, assign: { role: operator } }
  - id: last
    call: noop
    catch:
      - error: "*"
        goto: done
  - id: done
    end: true
"#;

#[derive(Debug, Clone)]
enum Pick {
    Succeed,
    FailRetryable,
    FailFatal,
    Timer,
    Task,
    Message,
    Cancel,
}

fn pick() -> impl Strategy<Value = (Pick, u8, bool)> {
    let kind = prop_oneof![
        6 => Just(Pick::Succeed),
        3 => Just(Pick::FailRetryable),
        1 => Just(Pick::FailFatal),
        2 => Just(Pick::Timer),
        2 => Just(Pick::Task),
        1 => Just(Pick::Message),
        1 => Just(Pick::Cancel),
    ];
    (kind, any::<u8>(), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_event_sequence(picks in proptest::collection::vec(pick(), 1..80)) {
        let plan = compile_source(WORKFLOW, &Catalog::builtin()).unwrap();
        let info = InstanceInfo { id: "i".into(), workflow: "props".into(), version: 1, business_key: None, input: json!({}), started_at: 0 };
        let mut state = InstanceState::default();
        let mut completed: Vec<String> = Vec::new();
        let mut calls_per_key: std::collections::BTreeMap<String, u32> = Default::default();
        let mut now = 0;
        let t = apply(&plan, &info, &mut state, Event::Start, now, &mut UuidV7Ids);
        let mut effects = t.effects;
        for (kind, which, stale) in picks {
            now += 1000;
            for e in &effects {
                if let Effect::Call(c) = e {
                    *calls_per_key.entry(c.idempotency_key.clone()).or_default() += 1;
                    // Retries never exceed the step's limit.
                    let limit = if c.step_id == "first" { 3 } else if c.step_id == "left_call" { 2 } else { 1 };
                    prop_assert!(c.attempt <= limit, "{} attempt {} > {}", c.step_id, c.attempt, limit);
                }
            }
            let tokens: Vec<(u32, u32)> = state.tokens.values().map(|t| (t.id, t.epoch)).collect();
            let (token, epoch) = if tokens.is_empty() { (which as u32 % 8, 0) } else { tokens[which as usize % tokens.len()] };
            let epoch = if stale { epoch.wrapping_sub(1) } else { epoch };
            let attempt = match state.tokens.get(&token).map(|t| &t.wait) {
                Some(pratica_engine::runtime::state::Waiting::Call { attempt, .. }) => *attempt,
                _ => 1,
            };
            let event = match kind {
                Pick::Succeed => Event::CallSucceeded { token, epoch, output: json!(which) },
                Pick::FailRetryable => Event::CallFailed { token, epoch, attempt, error: CallError { code: "x".into(), message: "m".into(), retryable: true, retry_after_ms: None } },
                Pick::FailFatal => Event::CallFailed { token, epoch, attempt, error: CallError { code: "y".into(), message: "m".into(), retryable: false, retry_after_ms: None } },
                Pick::Timer => Event::TimerFired { token, epoch },
                Pick::Task => Event::TaskCompleted { token, epoch, output: json!({"outcome": "done"}), actor: "a".into() },
                Pick::Message => Event::ChildFinished { token, epoch, result: Err(StepError::new("c", "m")) },
                Pick::Cancel => Event::Cancel { actor: "a".into(), reason: "r".into() },
            };
            let was_finished = state.phase.is_finished();
            let before = state.clone();
            let t = apply(&plan, &info, &mut state, event, now, &mut UuidV7Ids);
            if was_finished {
                // A finished instance accepts no further transitions.
                prop_assert!(t.effects.is_empty() && t.history.is_empty());
                prop_assert_eq!(&state, &before);
            }
            for h in &t.history {
                if h.kind == "step.completed" {
                    completed.push(h.step.clone().unwrap());
                }
            }
            effects = t.effects;
        }
        // No step completes twice (item_call runs once per item: three distinct iterations).
        for step in ["first", "left_call", "right_wait", "review", "last"] {
            prop_assert!(completed.iter().filter(|s| *s == step).count() <= 1, "{step} completed twice: {completed:?}");
        }
        prop_assert!(completed.iter().filter(|s| *s == "item_call").count() <= 3);
        // Each idempotency key is scheduled at most `attempts` times.
        for (key, n) in calls_per_key {
            prop_assert!(n <= 3, "{key} scheduled {n} times");
        }
        let _ = Value::Null;
    }
}
