//! Reading the world's answers of a scenario: the mocks (results by step id, per attempt or
//! per foreach iteration), the operators' decisions on tasks and the messages that arrive.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::model::*;
use super::parse::DEFAULT_OPERATOR;
use super::reader::{Reader, escape, kind_of};
use crate::code;

const RESULT_FIELDS: &[&str] = &["output", "error"];
const ERROR_FIELDS: &[&str] = &["code", "message", "retryable", "retry_after"];
const TASK_FIELDS: &[&str] = &["step", "outcome", "reason", "by", "form", "after", "refused"];
const MESSAGE_FIELDS: &[&str] = &["name", "key", "payload", "after"];

impl Reader<'_> {
    /// `step_id: result | [results]`; `null` removes a mock of the file's `mocks`.
    pub(super) fn mocks(&mut self, v: &Value, ptr: &str) -> BTreeMap<String, Option<Located<Mock>>> {
        let mut out = BTreeMap::new();
        let Some(obj) = v.as_object() else {
            self.report(
                code::WRONG_TYPE,
                format!("`mocks` must be a mapping from step id to result, found {}", kind_of(v)),
                ptr,
                Some("for example: fetch_contributions: { output: { weeks: 156 } }".into()),
            );
            return out;
        };
        for (step, spec) in obj {
            let p = format!("{ptr}/{}", escape(step));
            if spec.is_null() {
                out.insert(step.clone(), None);
                continue;
            }
            if let Some(mock) = self.mock(spec, &p, step) {
                out.insert(step.clone(), Some(Located { pointer: p, value: mock }));
            }
        }
        out
    }

    pub(super) fn mock(&mut self, v: &Value, ptr: &str, step: &str) -> Option<Mock> {
        match v {
            Value::Array(items) => {
                if items.is_empty() {
                    self.report(
                        code::INVALID,
                        format!("the mock of `{step}` is an empty list"),
                        ptr,
                        Some("give at least one result".into()),
                    );
                    return None;
                }
                let mut list = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{ptr}/{i}");
                    match item {
                        Value::Array(attempts) => {
                            let mut results = Vec::new();
                            for (j, a) in attempts.iter().enumerate() {
                                results.push(self.result(a, &format!("{p}/{j}"), step));
                            }
                            if attempts.is_empty() {
                                self.report(code::INVALID, format!("the mock of `{step}` has an empty list of attempts"), &p, None);
                            }
                            list.push(MockItem::Attempts(results.into_iter().collect::<Option<_>>()?));
                        }
                        Value::Null => list.push(MockItem::Nothing),
                        other => list.push(MockItem::One(self.result(other, &p, step)?)),
                    }
                }
                Some(Mock::List(list))
            }
            other => Some(Mock::One(self.result(other, ptr, step)?)),
        }
    }

    pub(super) fn result(&mut self, v: &Value, ptr: &str, step: &str) -> Option<MockResult> {
        let what = format!("the mock of `{step}`");
        if !v.is_object() {
            self.report(
                code::WRONG_TYPE,
                format!("{what} must be `output: ...` or `error: ...` (or a list of them), found {}", kind_of(v)),
                ptr,
                Some("for example: { output: { weeks: 156 } } or { error: { code: inps.unavailable, retryable: true } }".into()),
            );
            return None;
        }
        let obj = self.fields(v, ptr, &what, RESULT_FIELDS, &[])?;
        match (obj.get("output"), obj.get("error")) {
            (Some(o), None) => Some(MockResult::Output(o.clone())),
            (None, Some(e)) => self.mock_error(e, &format!("{ptr}/error"), step).map(MockResult::Error),
            _ => {
                self.report(code::INVALID, format!("{what} needs exactly one of `output` and `error`"), ptr, None);
                None
            }
        }
    }

    pub(super) fn mock_error(&mut self, v: &Value, ptr: &str, step: &str) -> Option<MockError> {
        if let Value::String(c) = v {
            return Some(MockError { code: c.clone(), message: format!("mocked error {c}"), retryable: false, retry_after: None });
        }
        let obj = self.fields(v, ptr, &format!("the error of the mock of `{step}`"), ERROR_FIELDS, &["code"])?;
        let code = obj.get("code").and_then(|c| self.non_empty_text(c, &format!("{ptr}/code"), "the error `code`"));
        let message = match obj.get("message") {
            Some(m) => self.text(m, &format!("{ptr}/message"), "the error `message`"),
            None => code.as_ref().map(|c| format!("mocked error {c}")),
        };
        let retryable = match obj.get("retryable") {
            Some(r) => self.boolean(r, &format!("{ptr}/retryable"), "`retryable`"),
            None => Some(false),
        };
        let retry_after = match obj.get("retry_after") {
            Some(d) => Some(self.duration(d, &format!("{ptr}/retry_after"), "`retry_after`")?),
            None => None,
        };
        Some(MockError { code: code?, message: message?, retryable: retryable?, retry_after })
    }

    // ---- the world's actions ----

    pub(super) fn task_action(&mut self, v: &Value, ptr: &str) -> Option<TaskAction> {
        let obj = self.fields(v, ptr, "a task entry", TASK_FIELDS, &["step"])?;
        let step = obj.get("step").and_then(|s| self.non_empty_text(s, &format!("{ptr}/step"), "the task's `step`"));
        let opt_text = |r: &mut Self, key: &str| match obj.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(t) => r.text(t, &format!("{ptr}/{key}"), &format!("`{key}`")).map(Some),
        };
        let outcome = opt_text(self, "outcome");
        let reason = opt_text(self, "reason");
        let by = opt_text(self, "by");
        let refused = opt_text(self, "refused");
        let after = match obj.get("after") {
            Some(d) => self.duration(d, &format!("{ptr}/after"), "`after`"),
            None => Some(Duration::ZERO),
        };
        let form = obj.get("form").cloned().unwrap_or(Value::Object(Map::new()));
        if !form.is_object() {
            self.report(
                code::WRONG_TYPE,
                format!("the task's `form` must be a mapping of the form's fields, found {}", kind_of(&form)),
                &format!("{ptr}/form"),
                None,
            );
            return None;
        }
        Some(TaskAction {
            step: step?,
            outcome: outcome?,
            reason: reason?,
            by: by?.unwrap_or_else(|| DEFAULT_OPERATOR.into()),
            form,
            after: after?,
            refused: refused?,
        })
    }

    pub(super) fn message_action(&mut self, v: &Value, ptr: &str) -> Option<MessageAction> {
        let obj = self.fields(v, ptr, "a message", MESSAGE_FIELDS, &["name"])?;
        let name = obj.get("name").and_then(|n| self.non_empty_text(n, &format!("{ptr}/name"), "the message's `name`"));
        let key = match obj.get("key") {
            None | Some(Value::Null) => Some(None),
            Some(k) => self.text(k, &format!("{ptr}/key"), "the message's `key`").map(Some),
        };
        let after = match obj.get("after") {
            Some(d) => self.duration(d, &format!("{ptr}/after"), "`after`"),
            None => Some(Duration::ZERO),
        };
        Some(MessageAction { name: name?, key: key?, payload: obj.get("payload").cloned().unwrap_or(Value::Null), after: after? })
    }
}
