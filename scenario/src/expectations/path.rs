//! The path of an instance: the steps it passed, read from its history, and whether an
//! expected path is included in it.

use pratica_engine::plan::{Action, BlockRole, Plan};
use pratica_engine::store::HistoryRow;
use serde_json::Value;

/// The steps the instance passed, in the order they finished: completed, failed (caught or
/// not; `fail` steps included), decided (`switch`), timed out (`receive`), and the `end`
/// steps reached (which the history does not record as such).
pub fn path_of(plan: &Plan, history: &[HistoryRow]) -> Vec<String> {
    let mut path = Vec::new();
    for h in history {
        let Some(id) = &h.step else { continue };
        let Some(ix) = plan.step_by_id(id) else { continue };
        let step = plan.step(ix);
        let data: Value = serde_json::from_str(&h.data).unwrap_or(Value::Null);
        let landing = match h.kind.as_str() {
            "step.completed" => {
                path.push(id.clone());
                step.next.or_else(|| match &plan.block(step.block).role {
                    BlockRole::Catch { step: owner, clause } => {
                        let owner = plan.step(*owner);
                        owner.catch.get(*clause).and_then(|c| c.goto).or(owner.next)
                    }
                    _ => None,
                })
            }
            "switch.chose" => {
                path.push(id.clone());
                data.get("next").and_then(Value::as_str).and_then(|n| plan.step_by_id(n))
            }
            "step.failed" => {
                path.push(id.clone());
                let caught = data.get("caught").and_then(Value::as_bool).unwrap_or(false);
                let code = data.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
                match step.catch.iter().find(|c| c.matches(code)) {
                    Some(c) if caught && c.handler.is_none() => c.goto,
                    _ => None,
                }
            }
            "message.timed_out" => match &step.action {
                Action::Receive(r) => {
                    path.push(id.clone());
                    r.timeout.map(|(_, target)| target)
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(l) = landing
            && matches!(plan.step(l).action, Action::End { .. })
        {
            path.push(plan.step(l).id.clone());
        }
    }
    path
}

/// Whether `expected` appears in `actual` in order (other items may come between).
pub(crate) fn is_subsequence(expected: &[String], actual: &[String]) -> bool {
    let mut it = actual.iter();
    expected.iter().all(|e| it.any(|a| a == e))
}

#[cfg(test)]
mod tests {
    use pratica_engine::definition::{self, Catalog};

    use super::*;

    fn row(seq: i64, kind: &str, step: Option<&str>, data: Value) -> HistoryRow {
        HistoryRow {
            instance_id: "i".into(),
            seq,
            at: 0,
            kind: kind.into(),
            step: step.map(String::from),
            data: data.to_string(),
            actor: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_path_includes_switches_fail_steps_and_the_end_reached() {
        let src = r#"workflow: p
version: 1
title: P
steps:
  - id: fetch
    call: noop
    catch:
      - error: x.down
        goto: gave_up
  - id: route
    switch:
      - when: ${ .input.a }
        goto: refused
  - id: done
    end: true
  - id: refused
    fail: { error: p.refused }
  - id: gave_up
    end: { output: none }
"#;
        let plan = definition::compile_source(src, &Catalog::builtin()).unwrap();
        let ok = [
            row(1, "instance.started", None, Value::Null),
            row(2, "call.scheduled", Some("fetch"), Value::Null),
            row(3, "step.completed", Some("fetch"), Value::Null),
            row(4, "switch.chose", Some("route"), serde_json::json!({"next": "done"})),
            row(5, "instance.completed", None, Value::Null),
        ];
        assert_eq!(path_of(&plan, &ok), ["fetch", "route", "done"]);
        let refused = [
            row(3, "step.completed", Some("fetch"), Value::Null),
            row(4, "switch.chose", Some("route"), serde_json::json!({"next": "refused"})),
            row(5, "step.failed", Some("refused"), serde_json::json!({"error": {"code": "p.refused"}, "caught": false})),
        ];
        assert_eq!(path_of(&plan, &refused), ["fetch", "route", "refused"]);
        let caught = [row(3, "step.failed", Some("fetch"), serde_json::json!({"error": {"code": "x.down"}, "caught": true}))];
        assert_eq!(path_of(&plan, &caught), ["fetch", "gave_up"]);
    }

    #[test]
    fn subsequences_keep_order() {
        let a: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert!(is_subsequence(&["a".into(), "c".into()], &a));
        assert!(!is_subsequence(&["c".into(), "a".into()], &a));
    }
}
