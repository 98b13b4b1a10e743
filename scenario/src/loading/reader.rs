//! The field-by-field reader of a test file's YAML value: each primitive (a mapping with
//! known fields, text, a number, a duration, a date-time) reports a problem where it is
//! written, with a hint, and returns `None`; the readers of the file, the mocks and the
//! expectations are built on them.

use std::time::Duration;

use pratica_engine::clock::Millis;
use pratica_engine::definition::diagnostic::did_you_mean;
use pratica_engine::definition::{Diagnostic, SourceMap};
use serde_json::{Map, Value};

use super::parse::parse_time;
use crate::code;

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads a test file's value, collecting every problem found.
pub(super) struct Reader<'a> {
    pub(super) map: &'a SourceMap,
    pub(super) out: Vec<Diagnostic>,
}

impl Reader<'_> {
    pub(super) fn report(&mut self, code: &'static str, message: String, pointer: &str, hint: Option<String>) {
        let mut d = Diagnostic::new(code, message).at(self.map.value(pointer)).pointer(pointer);
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.out.push(d);
    }

    pub(super) fn report_key(&mut self, code: &'static str, message: String, pointer: &str, hint: Option<String>) {
        let mut d = Diagnostic::new(code, message).at(self.map.key(pointer)).pointer(pointer);
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.out.push(d);
    }

    /// `v` as a mapping with only `allowed` fields and all `required` ones.
    pub(super) fn fields<'v>(
        &mut self,
        v: &'v Value,
        ptr: &str,
        what: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(obj) = v.as_object() else {
            let fields = allowed.join(", ");
            self.report(
                code::WRONG_TYPE,
                format!("{what} must be a mapping, found {}", kind_of(v)),
                ptr,
                Some(format!("its fields are: {fields}")),
            );
            return None;
        };
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = match did_you_mean(key, allowed.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                self.report_key(
                    code::UNKNOWN_FIELD,
                    format!("unknown field `{key}` in {what}"),
                    &format!("{ptr}/{}", escape(key)),
                    Some(hint),
                );
            }
        }
        for name in required {
            if !obj.contains_key(*name) {
                self.report(code::MISSING, format!("{what} is missing `{name}`"), ptr, None);
            }
        }
        Some(obj)
    }

    /// Text; numbers and booleans are accepted and written as text (`office: 7000`).
    pub(super) fn text(&mut self, v: &Value, ptr: &str, what: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.report(code::WRONG_TYPE, format!("{what} must be text, found {}", kind_of(other)), ptr, None);
                None
            }
        }
    }

    pub(super) fn non_empty_text(&mut self, v: &Value, ptr: &str, what: &str) -> Option<String> {
        let t = self.text(v, ptr, what)?;
        if t.trim().is_empty() {
            self.report(code::INVALID, format!("{what} cannot be empty"), ptr, None);
            return None;
        }
        Some(t)
    }

    pub(super) fn boolean(&mut self, v: &Value, ptr: &str, what: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.report(code::WRONG_TYPE, format!("{what} must be true or false, found {}", kind_of(other)), ptr, None);
                None
            }
        }
    }

    pub(super) fn count(&mut self, v: &Value, ptr: &str, what: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.report(code::WRONG_TYPE, format!("{what} must be a whole number (0 or more), found {}", kind_of(v)), ptr, None);
                None
            }
        }
    }

    pub(super) fn duration(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Duration> {
        let text = self.text(v, ptr, what)?;
        match pratica_engine::duration::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.report(
                    code::INVALID,
                    format!("{what}: `{text}` is not a duration ({why})"),
                    ptr,
                    Some("write a number and a unit, e.g. 30s, 5m, 2h, 5d or 1h30m".into()),
                );
                None
            }
        }
    }

    pub(super) fn time(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Millis> {
        let text = self.text(v, ptr, what)?;
        match parse_time(&text) {
            Some(t) => Some(t),
            None => {
                self.report(
                    code::INVALID,
                    format!("{what}: `{text}` is not a date-time"),
                    ptr,
                    Some(
                        "write an RFC 3339 date-time such as 2025-04-05T09:30:00+02:00, or a date such as 2025-04-05 (midnight UTC)".into(),
                    ),
                );
                None
            }
        }
    }

    pub(super) fn text_list(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Vec<String>> {
        let Some(items) = v.as_array() else {
            self.report(
                code::WRONG_TYPE,
                format!("{what} must be a list of step ids, found {}", kind_of(v)),
                ptr,
                Some("for example: [received, route, paid]".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.text(item, &format!("{ptr}/{i}"), what)?);
        }
        Some(out)
    }
}
