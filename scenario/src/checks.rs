//! Load-time checks of a test file against its workflows, before anything runs: mocks are
//! for `call` steps that exist, task entries and expected tasks are for `human` steps,
//! messages are awaited by a `receive` step, paths name steps of the workflow under test.
//! Every problem points at the line of the test file, with a "did you mean" hint.

use std::collections::{BTreeMap, BTreeSet};

use pratica_engine::definition::diagnostic::did_you_mean;
use pratica_engine::definition::{self, Diagnostic};
use pratica_engine::plan::{Action, BlockRole, Plan, StepIx};

use crate::code;
use crate::loading::Suite;
use crate::loading::model::{Mock, MockItem};

/// What a step id refers to, in the workflows of a suite.
struct StepInfo {
    workflow: String,
    keyword: &'static str,
    in_foreach: bool,
}

fn in_foreach(plan: &Plan, step: StepIx) -> bool {
    match &plan.block(plan.step(step).block).role {
        BlockRole::Root => false,
        BlockRole::ForeachBody { .. } => true,
        BlockRole::Branch { step, .. } | BlockRole::Catch { step, .. } | BlockRole::Compensation { step } => in_foreach(plan, *step),
    }
}

impl Suite {
    fn steps(&self) -> BTreeMap<String, Vec<StepInfo>> {
        let mut out: BTreeMap<String, Vec<StepInfo>> = BTreeMap::new();
        for w in &self.workflows {
            for (i, s) in w.plan.steps.iter().enumerate() {
                out.entry(s.id.clone()).or_default().push(StepInfo {
                    workflow: w.name.clone(),
                    keyword: s.action.keyword(),
                    in_foreach: in_foreach(&w.plan, StepIx(i as u32)),
                });
            }
        }
        out
    }

    pub(crate) fn check(&self) -> Vec<Diagnostic> {
        let steps = self.steps();
        let of_kind = |kind: &str| -> Vec<&str> {
            steps.iter().filter(|(_, infos)| infos.iter().any(|i| i.keyword == kind)).map(|(id, _)| id.as_str()).collect()
        };
        let calls = of_kind("call");
        let humans = of_kind("human");
        let main_ids: Vec<&str> = self.main().plan.steps.iter().map(|s| s.id.as_str()).collect();
        let messages: BTreeSet<String> = self
            .workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Receive(r) => Some(r.message.clone()),
                _ => None,
            })
            .collect();
        let mut out: Vec<Diagnostic> = Vec::new();
        let mut push = |d: Diagnostic| {
            if !out.iter().any(|o| o.code == d.code && o.pointer == d.pointer) {
                out.push(d);
            }
        };
        // A step id of the right kind; the diagnostic points at `at` (a key or a value).
        let step_of_kind =
            |id: &str, kind: &str, candidates: &[&str], at: Option<definition::Location>, pointer: &str| -> Option<Diagnostic> {
                match steps.get(id) {
                    None => {
                        let hint =
                            did_you_mean(id, candidates.iter().copied()).map(|b| format!("did you mean `{b}`?")).unwrap_or_else(|| {
                                if candidates.is_empty() {
                                    format!("the workflow has no `{kind}` step")
                                } else {
                                    format!("the `{kind}` steps are: {}", candidates.join(", "))
                                }
                            });
                        let where_ = self.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
                        Some(
                            Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {where_}"))
                                .at(at)
                                .pointer(pointer)
                                .hint(hint),
                        )
                    }
                    Some(infos) if !infos.iter().any(|i| i.keyword == kind) => {
                        let i = &infos[0];
                        Some(
                            Diagnostic::new(
                                code::WRONG_STEP_KIND,
                                format!("`{id}` is a `{}` step of {}, not a `{kind}` step", i.keyword, i.workflow),
                            )
                            .at(at)
                            .pointer(pointer)
                            .hint(match kind {
                                "call" => "only `call` steps can be mocked; other steps run as written".to_string(),
                                _ if candidates.is_empty() => format!("the workflow has no `{kind}` step"),
                                _ => format!("the `{kind}` steps are: {}", candidates.join(", ")),
                            }),
                        )
                    }
                    _ => None,
                }
            };
        for s in &self.test.scenarios {
            for (id, mock) in &s.mocks {
                if let Some(d) = step_of_kind(id, "call", &calls, self.map.key(&mock.pointer), &mock.pointer) {
                    push(d);
                    continue;
                }
                let nested = matches!(&mock.value, Mock::List(items) if items.iter().any(|i| matches!(i, MockItem::Attempts(_))));
                let looped = steps.get(id).is_some_and(|infos| infos.iter().any(|i| i.in_foreach));
                if nested && !looped {
                    push(
                        Diagnostic::new(code::INVALID, format!("`{id}` is not inside a foreach, so its mock cannot be a list of lists"))
                            .at(self.map.value(&mock.pointer))
                            .pointer(mock.pointer.clone())
                            .hint("outside a foreach, a list gives one result per attempt: [ {error: ...}, {output: ...} ]"),
                    );
                }
            }
            for t in &s.tasks {
                let p = format!("{}/step", t.pointer);
                if let Some(d) = step_of_kind(&t.value.step, "human", &humans, self.map.value(&p), &p) {
                    push(d);
                }
            }
            for m in &s.messages {
                if !messages.contains(&m.value.name) {
                    let p = format!("{}/name", m.pointer);
                    let hint = did_you_mean(&m.value.name, messages.iter().map(String::as_str))
                        .map(|b| format!("did you mean `{b}`?"))
                        .unwrap_or_else(|| format!("the workflows wait for: {}", messages.iter().cloned().collect::<Vec<_>>().join(", ")));
                    push(
                        Diagnostic::new(code::UNKNOWN_MESSAGE, format!("no `receive` step waits for the message `{}`", m.value.name))
                            .at(self.map.value(&p))
                            .pointer(p)
                            .hint(hint),
                    );
                }
            }
            for path in [&s.expect.path, &s.expect.path_includes].into_iter().flatten() {
                for (i, id) in path.value.iter().enumerate() {
                    if !main_ids.contains(&id.as_str()) {
                        let p = format!("{}/{i}", path.pointer);
                        let hint = did_you_mean(id, main_ids.iter().copied())
                            .map(|b| format!("did you mean `{b}`?"))
                            .unwrap_or_else(|| "the path lists steps of the workflow under test (not of its sub-workflows)".to_string());
                        push(
                            Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {}", self.main().name))
                                .at(self.map.value(&p))
                                .pointer(p)
                                .hint(hint),
                        );
                    }
                }
            }
            for t in s.expect.tasks.iter().flatten() {
                let p = format!("{}/step", t.pointer);
                if let Some(d) = step_of_kind(&t.value.step, "human", &humans, self.map.value(&p), &p) {
                    push(d);
                }
            }
            for (id, c) in &s.expect.calls {
                if let Some(d) = step_of_kind(id, "call", &calls, self.map.key(&c.pointer), &c.pointer) {
                    push(d);
                }
            }
        }
        out.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::code;
    use crate::discovery::RunOptions;
    use crate::loading::load_suite;
    use crate::testing::{ROUTING, files};

    #[test]
    fn steps_checks_point_at_the_test_file() {
        let (_dir, test) = files(
            ROUTING,
            "scenarios:\n  - name: x\n    mocks:\n      clasify: { output: 1 }\n      confirm: { output: 1 }\n    messages:\n      - { name: routing-confirm }\n    expect: { status: completed, path: [eachh] }\n",
        );
        let Err(problem) = load_suite(&test, &RunOptions::default()) else { panic!("the file should not load") };
        let codes: Vec<(&str, usize)> = problem.diagnostics.iter().map(|d| (d.code, d.location.map_or(0, |l| l.line))).collect();
        assert_eq!(codes, [(code::UNKNOWN_STEP, 4), (code::WRONG_STEP_KIND, 5), (code::UNKNOWN_MESSAGE, 7), (code::UNKNOWN_STEP, 8)]);
        assert!(problem.rendered.contains("did you mean `classify`?"), "{}", problem.rendered);
        assert!(problem.rendered.contains("did you mean `routing-confirmed`?"), "{}", problem.rendered);
    }
}
