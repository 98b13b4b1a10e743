//! Reading a scenario's `expect`: the status, the path, the output, the error, the tasks
//! created and the calls made.

use std::collections::BTreeMap;

use pratica_engine::definition::diagnostic::did_you_mean;
use serde_json::Value;

use super::model::*;
use super::reader::{Reader, escape, kind_of};
use crate::code;

const EXPECT_FIELDS: &[&str] = &["status", "path", "path_includes", "output", "output_includes", "error", "tasks", "calls"];
const EXPECT_ERROR_FIELDS: &[&str] = &["code", "message", "step"];
const EXPECT_TASK_FIELDS: &[&str] = &["step", "title", "role", "office", "user"];
const EXPECT_CALL_FIELDS: &[&str] = &["count", "attempts", "input", "input_includes"];
const EXPECT_EACH_CALL_FIELDS: &[&str] = &["attempts", "input", "input_includes"];

impl Reader<'_> {
    pub(super) fn expect(&mut self, v: &Value, ptr: &str) -> Option<Expect> {
        let obj = self.fields(v, ptr, "`expect`", EXPECT_FIELDS, &["status"])?;
        let mut ok = true;
        let mut e = Expect::default();
        if let Some(s) = obj.get("status") {
            let p = format!("{ptr}/status");
            match self.text(s, &p, "`status`") {
                Some(t) => match Status::parse(&t) {
                    Some(st) => e.status = Some(st),
                    None => {
                        let hint = did_you_mean(&t, Status::NAMES.iter().copied()).map(|b| format!("did you mean `{b}`?"));
                        self.report(code::INVALID, format!("`status`: `{t}` is not one of {}", Status::NAMES.join(", ")), &p, hint);
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        for (key, slot) in [("path", &mut e.path), ("path_includes", &mut e.path_includes)] {
            if let Some(p) = obj.get(key) {
                let pp = format!("{ptr}/{key}");
                match self.text_list(p, &pp, &format!("`{key}`")) {
                    Some(list) => *slot = Some(Located { pointer: pp, value: list }),
                    None => ok = false,
                }
            }
        }
        e.output = obj.get("output").cloned();
        e.output_includes = obj.get("output_includes").cloned();
        if let Some(err) = obj.get("error") {
            let p = format!("{ptr}/error");
            match err {
                Value::String(c) => e.error = Some(ErrorExpect { code: Some(c.clone()), ..Default::default() }),
                other => match self.fields(other, &p, "the expected `error`", EXPECT_ERROR_FIELDS, &[]) {
                    Some(f) => {
                        let get = |r: &mut Self, k: &str| f.get(k).and_then(|v| r.text(v, &format!("{p}/{k}"), &format!("`{k}`")));
                        e.error = Some(ErrorExpect { code: get(self, "code"), message: get(self, "message"), step: get(self, "step") });
                    }
                    None => ok = false,
                },
            }
        }
        if let Some(t) = obj.get("tasks") {
            match self.expected_tasks(t, &format!("{ptr}/tasks")) {
                Some(list) => e.tasks = Some(list),
                None => ok = false,
            }
        }
        if let Some(c) = obj.get("calls") {
            match self.expected_calls(c, &format!("{ptr}/calls")) {
                Some(calls) => e.calls = calls,
                None => ok = false,
            }
        }
        ok.then_some(e)
    }

    /// `tasks`: every task created, in order.
    fn expected_tasks(&mut self, t: &Value, tp: &str) -> Option<Vec<Located<TaskExpect>>> {
        let Some(items) = t.as_array() else {
            self.report(code::WRONG_TYPE, format!("`tasks` must be a list of the tasks created, found {}", kind_of(t)), tp, None);
            return None;
        };
        let mut ok = true;
        let mut list = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{tp}/{i}");
            match self.task_expect(item, &p) {
                Some(te) => list.push(Located { pointer: p, value: te }),
                None => ok = false,
            }
        }
        ok.then_some(list)
    }

    /// `calls`: what was sent, by step id.
    fn expected_calls(&mut self, c: &Value, cp: &str) -> Option<BTreeMap<String, Located<CallsExpect>>> {
        let Some(steps) = c.as_object() else {
            self.report(
                code::WRONG_TYPE,
                format!("`calls` must be a mapping from step id to what was sent, found {}", kind_of(c)),
                cp,
                Some("for example: pay: { input_includes: { amount_cents: 125956 } }".into()),
            );
            return None;
        };
        let mut ok = true;
        let mut calls = BTreeMap::new();
        for (step, spec) in steps {
            let p = format!("{cp}/{}", escape(step));
            match self.calls_expect(spec, &p, step) {
                Some(ce) => {
                    calls.insert(step.clone(), Located { pointer: p, value: ce });
                }
                None => ok = false,
            }
        }
        ok.then_some(calls)
    }

    pub(super) fn task_expect(&mut self, v: &Value, ptr: &str) -> Option<TaskExpect> {
        let obj = self.fields(v, ptr, "an expected task", EXPECT_TASK_FIELDS, &["step"])?;
        let get = |r: &mut Self, k: &str| match obj.get(k) {
            None => Some(None),
            Some(t) => r.text(t, &format!("{ptr}/{k}"), &format!("`{k}`")).map(Some),
        };
        let step = get(self, "step");
        let title = get(self, "title");
        let role = get(self, "role");
        let office = get(self, "office");
        let user = get(self, "user");
        Some(TaskExpect { step: step??, title: title?, role: role?, office: office?, user: user? })
    }

    pub(super) fn calls_expect(&mut self, v: &Value, ptr: &str, step: &str) -> Option<CallsExpect> {
        match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.call_expect(item, &format!("{ptr}/{i}"), step, EXPECT_EACH_CALL_FIELDS));
                }
                Some(CallsExpect::Each(out.into_iter().collect::<Option<_>>()?))
            }
            other => self.call_expect(other, ptr, step, EXPECT_CALL_FIELDS).map(CallsExpect::Every),
        }
    }

    pub(super) fn call_expect(&mut self, v: &Value, ptr: &str, step: &str, allowed: &[&str]) -> Option<CallExpect> {
        let obj = self.fields(v, ptr, &format!("the expected calls of `{step}`"), allowed, &[])?;
        let count = match obj.get("count") {
            Some(c) => Some(self.count(c, &format!("{ptr}/count"), "`count`")? as usize),
            None => None,
        };
        let attempts = match obj.get("attempts") {
            Some(c) => Some(self.count(c, &format!("{ptr}/attempts"), "`attempts`")? as u32),
            None => None,
        };
        Some(CallExpect { count, attempts, input: obj.get("input").cloned(), input_includes: obj.get("input_includes").cloned() })
    }
}
