//! Pure steps: `set`, `switch` (a case and the default), `end`, `fail`, `catch`. They run
//! inside the transition that reaches them.

use serde_json::json;

use super::*;
use crate::runtime::state::Phase;

const ROUTE: &str = r#"
workflow: route-by-weeks
version: 1
title: Route an application by contribution weeks
steps:
  - id: route
    switch:
      - when: ${ .input.weeks < 13 }
        goto: too_few
      - when: ${ .input.weeks >= 104 }
        goto: maximum
      - default: standard
  - id: too_few
    end:
      output: { eligible: false }
  - id: maximum
    set:
      duration_weeks: 104
    goto: accepted
  - id: standard
    set:
      duration_weeks: ${ .input.weeks / 2 | floor }
  - id: accepted
    end:
      output:
        eligible: true
        duration_weeks: ${ .vars.duration_weeks }
"#;

#[test]
fn switch_takes_the_first_case_that_holds() {
    let mut case = Case::new(ROUTE, json!({"weeks": 5}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "switch.chose", "instance.completed"]);
    assert_eq!(entry(&t, HistoryKind::SwitchChose).data, json!({"next": "too_few"}));
    assert_eq!(completed_output(&case), Some(&json!({"eligible": false})));
    assert!(t.effects.iter().all(|e| matches!(e, Effect::Discard { .. })), "pure steps need nothing outside: {:?}", t.effects);
}

#[test]
fn set_then_goto_skips_the_steps_between() {
    let mut case = Case::new(ROUTE, json!({"weeks": 200}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "switch.chose", "step.completed", "instance.completed"]);
    assert_eq!(entry(&t, HistoryKind::SwitchChose).data, json!({"next": "maximum"}));
    assert_eq!(entry(&t, HistoryKind::StepCompleted).step.as_deref(), Some("maximum"));
    assert_eq!(case.state.vars["duration_weeks"], json!(104));
    assert_eq!(completed_output(&case), Some(&json!({"eligible": true, "duration_weeks": 104})));
}

#[test]
fn switch_falls_back_to_the_default() {
    let mut case = Case::new(ROUTE, json!({"weeks": 50}));
    let t = case.start();
    assert_eq!(entry(&t, HistoryKind::SwitchChose).data, json!({"next": "standard"}));
    assert_eq!(entry(&t, HistoryKind::StepCompleted).data, json!({"output": {"duration_weeks": 25}}));
    assert_eq!(completed_output(&case), Some(&json!({"eligible": true, "duration_weeks": 25})));
}

#[test]
fn a_fail_step_fails_the_instance_with_its_code_and_message() {
    let yaml = r#"
workflow: deadline
version: 1
title: Refuse late applications
steps:
  - id: too_late
    fail:
      error: application.late
      message: "Submitted {{ input.days }} days late"
"#;
    let mut case = Case::new(yaml, json!({"days": 3}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "step.failed", "instance.failed"]);
    assert_eq!(entry(&t, HistoryKind::StepFailed).data["caught"], json!(false));
    let Phase::Failed { error, .. } = &case.state.phase else { panic!("failed: {:?}", case.state.phase) };
    assert_eq!((error.code.as_str(), error.message.as_str()), ("application.late", "Submitted 3 days late"));
}

#[test]
fn a_catch_handler_supplies_the_failed_steps_output_and_continues() {
    let yaml = r#"
workflow: lookup-with-fallback
version: 1
title: Look up a person, with a fallback
steps:
  - id: lookup
    call: inps.registry
    catch:
      - error: "registry.*"
        steps:
          - id: unknown_person
            set:
              found: false
  - id: found
    end:
      output: { person: "${ .steps.lookup.output }", code: "${ .steps.lookup.error.code }" }
"#;
    let mut case = Case::new(yaml, json!({}));
    case.start();
    let t = case.fail_call("lookup", "registry.down", false);
    assert_eq!(kinds(&t), ["call.failed", "step.failed", "step.completed", "instance.completed"]);
    assert_eq!(entry(&t, HistoryKind::StepFailed).data["caught"], json!(true));
    assert_eq!(completed_output(&case), Some(&json!({"person": {"found": false}, "code": "registry.down"})));
}
