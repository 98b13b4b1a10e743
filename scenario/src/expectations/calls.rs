//! Expectations on what the workflow sent to connectors: calls grouped with their retries,
//! counted, and their inputs compared.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::diff;
use crate::loading::model::{CallExpect, CallsExpect, Expect};
use crate::report::Failure;
use crate::simulation::facts::Facts;
use crate::simulation::mock::RecordedCall;

/// A call of a step, its retries folded together.
pub(super) struct CallGroup<'a> {
    pub(super) attempts: Vec<&'a RecordedCall>,
}

impl CallGroup<'_> {
    fn input(&self) -> &Value {
        &self.attempts[0].input
    }
}

/// The calls of `step`, one group per call (same instance and idempotency key), ordered
/// by instance, visit and iteration.
pub(super) fn calls_of<'a>(facts: &Facts, calls: &'a [RecordedCall], step: &str) -> Vec<CallGroup<'a>> {
    let rank: HashMap<&str, usize> = facts.instances.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let mut groups: BTreeMap<(usize, u32, Vec<usize>, String), Vec<&RecordedCall>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.step_id == step) {
        let mut iterations = c.position.iterations.clone();
        iterations.reverse();
        let r = rank.get(c.instance_id.as_str()).copied().unwrap_or(usize::MAX);
        groups.entry((r, c.position.visit, iterations, c.idempotency_key.clone())).or_default().push(c);
    }
    groups
        .into_values()
        .map(|mut attempts| {
            attempts.sort_by_key(|c| (c.attempt, c.seq));
            CallGroup { attempts }
        })
        .collect()
}

/// The calls made, one line each, for a failure about how many there were.
pub(super) fn describe_calls(groups: &[CallGroup]) -> String {
    if groups.is_empty() {
        return "no call was made".into();
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut input = diff::normalize(g.input()).to_string();
            if input.chars().count() > 200 {
                input = input.chars().take(197).collect::<String>() + "...";
            }
            let c = g.attempts[0];
            format!("call {} ({}, {} attempt(s)): {input}", i + 1, c.connector, g.attempts.len())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn check_call(step: &str, which: &str, group: &CallGroup, e: &CallExpect, out: &mut Vec<Failure>) {
    if let Some(n) = e.attempts
        && group.attempts.len() != n as usize
    {
        out.push(Failure::new(format!("{which} of `{step}` took {} attempt(s), expected {n}", group.attempts.len())));
    }
    if let Some(input) = &e.input
        && !diff::json_equal(input, group.input())
    {
        out.push(Failure::diff(
            format!("input of {which} of `{step}` differs (- expected, + actual)"),
            diff::diff_json(input, group.input()),
        ));
    }
    if let Some(input) = &e.input_includes
        && !diff::json_includes(input, group.input())
    {
        out.push(Failure::diff(
            format!("input of {which} of `{step}` does not include what was expected (- expected, + actual)"),
            diff::diff_json(input, &diff::project(input, group.input())),
        ));
    }
}

/// What the workflow sent to each connector, by step.
pub(super) fn check_calls(e: &Expect, facts: &Facts, out: &mut Vec<Failure>) {
    let calls = &facts.calls;
    for (step, expected) in &e.calls {
        let groups = calls_of(facts, calls, step);
        match &expected.value {
            CallsExpect::Every(c) => {
                if let Some(n) = c.count
                    && groups.len() != n
                {
                    out.push(Failure::text(format!("`{step}` was called {} time(s), expected {n}", groups.len()), describe_calls(&groups)));
                }
                if groups.is_empty() && (c.input.is_some() || c.input_includes.is_some() || c.attempts.is_some()) {
                    out.push(Failure::new(format!("`{step}` was never called")));
                    continue;
                }
                if let Some(n) = c.attempts {
                    let total: usize = groups.iter().map(|g| g.attempts.len()).sum();
                    if total != n as usize {
                        out.push(Failure::new(format!("`{step}` was attempted {total} time(s) in all, expected {n}")));
                    }
                }
                let per_call = CallExpect { attempts: None, ..c.clone() };
                for (i, g) in groups.iter().enumerate() {
                    let which = if groups.len() == 1 { "the call".to_string() } else { format!("call {}", i + 1) };
                    check_call(step, &which, g, &per_call, out);
                }
            }
            CallsExpect::Each(list) => {
                if list.len() != groups.len() {
                    out.push(Failure::text(
                        format!("`{step}` was called {} time(s), expected {}", groups.len(), list.len()),
                        describe_calls(&groups),
                    ));
                }
                for (i, (g, c)) in groups.iter().zip(list).enumerate() {
                    check_call(step, &format!("call {}", i + 1), g, c, out);
                }
            }
        }
    }
}
