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
use crate::loading::model::{Mock, MockItem, Scenario};

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

    /// Every problem of the test file against the workflows, in the order of the file.
    pub(crate) fn check(&self) -> Vec<Diagnostic> {
        let steps = self.steps();
        let of_kind = |kind: &str| -> Vec<String> {
            steps.iter().filter(|(_, infos)| infos.iter().any(|i| i.keyword == kind)).map(|(id, _)| id.clone()).collect()
        };
        let messages: BTreeSet<String> = self
            .workflows
            .iter()
            .flat_map(|w| w.plan.steps.iter())
            .filter_map(|s| match &s.action {
                Action::Receive(r) => Some(r.message.clone()),
                _ => None,
            })
            .collect();
        let mut checker = Checker {
            suite: self,
            calls: of_kind("call"),
            humans: of_kind("human"),
            main_ids: self.main().plan.steps.iter().map(|s| s.id.clone()).collect(),
            steps,
            messages,
            out: Vec::new(),
        };
        for s in &self.test.scenarios {
            checker.mocks(s);
            checker.tasks(s);
            checker.messages(s);
            checker.paths(s);
            checker.expected_steps(s);
        }
        let mut out = checker.out;
        out.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
        out
    }
}

/// What the checks of one test file know about its workflows, and the problems found.
struct Checker<'a> {
    suite: &'a Suite,
    steps: BTreeMap<String, Vec<StepInfo>>,
    /// Ids of `call` steps, of `human` steps, and of the steps of the workflow under test.
    calls: Vec<String>,
    humans: Vec<String>,
    main_ids: Vec<String>,
    /// Messages some `receive` step waits for.
    messages: BTreeSet<String>,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Records a problem, once per code and pointer.
    fn push(&mut self, d: Diagnostic) {
        if !self.out.iter().any(|o| o.code == d.code && o.pointer == d.pointer) {
            self.out.push(d);
        }
    }

    /// A step id of the right kind (`call` or `human`); the problem points at `at` (a key or
    /// a value).
    fn step_of_kind(&self, id: &str, kind: &str, at: Option<definition::Location>, pointer: &str) -> Option<Diagnostic> {
        let candidates: Vec<&str> = if kind == "call" { &self.calls } else { &self.humans }.iter().map(String::as_str).collect();
        match self.steps.get(id) {
            None => {
                let hint = did_you_mean(id, candidates.iter().copied()).map(|b| format!("did you mean `{b}`?")).unwrap_or_else(|| {
                    if candidates.is_empty() {
                        format!("the workflow has no `{kind}` step")
                    } else {
                        format!("the `{kind}` steps are: {}", candidates.join(", "))
                    }
                });
                let where_ = self.suite.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
                Some(Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {where_}")).at(at).pointer(pointer).hint(hint))
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
    }

    /// Mocks are for `call` steps; a list of lists only inside a foreach.
    fn mocks(&mut self, s: &Scenario) {
        let map = &self.suite.map;
        for (id, mock) in &s.mocks {
            if let Some(d) = self.step_of_kind(id, "call", map.key(&mock.pointer), &mock.pointer) {
                self.push(d);
                continue;
            }
            let nested = matches!(&mock.value, Mock::List(items) if items.iter().any(|i| matches!(i, MockItem::Attempts(_))));
            let looped = self.steps.get(id).is_some_and(|infos| infos.iter().any(|i| i.in_foreach));
            if nested && !looped {
                self.push(
                    Diagnostic::new(code::INVALID, format!("`{id}` is not inside a foreach, so its mock cannot be a list of lists"))
                        .at(map.value(&mock.pointer))
                        .pointer(mock.pointer.clone())
                        .hint("outside a foreach, a list gives one result per attempt: [ {error: ...}, {output: ...} ]"),
                );
            }
        }
    }

    /// Task entries are for `human` steps.
    fn tasks(&mut self, s: &Scenario) {
        for t in &s.tasks {
            let p = format!("{}/step", t.pointer);
            if let Some(d) = self.step_of_kind(&t.value.step, "human", self.suite.map.value(&p), &p) {
                self.push(d);
            }
        }
    }

    /// Messages are awaited by a `receive` step.
    fn messages(&mut self, s: &Scenario) {
        for m in &s.messages {
            if !self.messages.contains(&m.value.name) {
                let p = format!("{}/name", m.pointer);
                let hint = did_you_mean(&m.value.name, self.messages.iter().map(String::as_str))
                    .map(|b| format!("did you mean `{b}`?"))
                    .unwrap_or_else(|| format!("the workflows wait for: {}", self.messages.iter().cloned().collect::<Vec<_>>().join(", ")));
                let d = Diagnostic::new(code::UNKNOWN_MESSAGE, format!("no `receive` step waits for the message `{}`", m.value.name))
                    .at(self.suite.map.value(&p))
                    .pointer(p)
                    .hint(hint);
                self.push(d);
            }
        }
    }

    /// `path` and `path_includes` name steps of the workflow under test.
    fn paths(&mut self, s: &Scenario) {
        for path in [&s.expect.path, &s.expect.path_includes].into_iter().flatten() {
            for (i, id) in path.value.iter().enumerate() {
                if !self.main_ids.contains(id) {
                    let p = format!("{}/{i}", path.pointer);
                    let hint = did_you_mean(id, self.main_ids.iter().map(String::as_str))
                        .map(|b| format!("did you mean `{b}`?"))
                        .unwrap_or_else(|| "the path lists steps of the workflow under test (not of its sub-workflows)".to_string());
                    let d = Diagnostic::new(code::UNKNOWN_STEP, format!("there is no step `{id}` in {}", self.suite.main().name))
                        .at(self.suite.map.value(&p))
                        .pointer(p)
                        .hint(hint);
                    self.push(d);
                }
            }
        }
    }

    /// Expected tasks are of `human` steps, expected calls of `call` steps.
    fn expected_steps(&mut self, s: &Scenario) {
        for t in s.expect.tasks.iter().flatten() {
            let p = format!("{}/step", t.pointer);
            if let Some(d) = self.step_of_kind(&t.value.step, "human", self.suite.map.value(&p), &p) {
                self.push(d);
            }
        }
        for (id, c) in &s.expect.calls {
            if let Some(d) = self.step_of_kind(id, "call", self.suite.map.key(&c.pointer), &c.pointer) {
                self.push(d);
            }
        }
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
