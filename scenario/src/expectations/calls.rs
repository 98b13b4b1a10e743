//! Expectations on what the workflow sent to connectors: calls grouped with their retries,
//! counted, and their inputs compared.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::diff;
use crate::loading::model::CallExpect;
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
