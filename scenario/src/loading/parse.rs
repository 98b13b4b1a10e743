//! A test file's YAML text → [`TestFile`], with every problem as a [`Diagnostic`] that
//! carries its line and column. The YAML is parsed with the same bounded parser as workflow
//! files (serde-saphyr: limited aliases, depth and size; duplicate keys are errors), then
//! read field by field so that an unknown field, a wrong type or a bad duration is reported
//! where it is written, with a hint.

use std::collections::{BTreeMap, BTreeSet};

use pratica_engine::clock::Millis;
use pratica_engine::definition::{Diagnostic, Location, SourceMap};
use serde_json::Value;

use super::model::*;
use super::reader::{Reader, kind_of};
use crate::code;

pub use super::reader::escape;

/// Largest test file accepted, in bytes.
pub const MAX_TEST_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The simulated start time when neither the file nor the scenario gives `start_at`.
pub const DEFAULT_START_AT: &str = "2025-01-01T08:00:00Z";

/// The operator name used when a task entry has no `by`.
pub const DEFAULT_OPERATOR: &str = "operator";

/// Parses a test file. Returns the model when the file has no problem, and the positions of
/// its values (for later checks against the workflow), or every problem found.
pub fn parse(source: &str) -> (Result<TestFile, Vec<Diagnostic>>, SourceMap) {
    if source.len() > MAX_TEST_FILE_BYTES {
        let d =
            Diagnostic::new(code::FILE, format!("the file is {} bytes; a test file may have at most {MAX_TEST_FILE_BYTES}", source.len()))
                .hint("split the scenarios into several files");
        return (Err(vec![d]), SourceMap::default());
    }
    let value = match parse_yaml(source) {
        Ok(v) => v,
        Err(d) => return (Err(vec![d]), SourceMap::default()),
    };
    let map = SourceMap::index(source);
    let mut r = Reader { map: &map, out: Vec::new() };
    let file = r.test_file(&value);
    let mut diagnostics = r.out;
    diagnostics.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
    match file {
        Some(f) if diagnostics.is_empty() => (Ok(f), map),
        _ => (Err(diagnostics), map),
    }
}

fn parse_yaml(source: &str) -> Result<Value, Diagnostic> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_events: 1_000_000,
            max_nodes: 500_000,
            max_total_scalar_bytes: MAX_TEST_FILE_BYTES,
            max_documents: 1,
        },
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Value>(source, options).map_err(|e| {
        let e = e.without_snippet();
        let location = e.location().map(|l| Location { line: l.line() as usize, column: l.column() as usize, width: 1 });
        let mut message = e.to_string();
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        Diagnostic::new(code::YAML, format!("the test file is not valid YAML: {message}")).at(location)
    })
}

/// Escapes a key for a JSON pointer (RFC 6901).
const FILE_FIELDS: &[&str] = &["description", "start_at", "input", "mocks", "scenarios"];
const SCENARIO_FIELDS: &[&str] = &["name", "description", "start_at", "input", "mocks", "tasks", "messages", "expect"];

impl Reader<'_> {
    fn test_file(&mut self, v: &Value) -> Option<TestFile> {
        if v.is_null() {
            self.report(code::MISSING, "the test file is empty: it needs a list of `scenarios`".into(), "", None);
            return None;
        }
        let obj = self.fields(v, "", "the test file", FILE_FIELDS, &["scenarios"])?;
        if let Some(d) = obj.get("description") {
            self.text(d, "/description", "`description`");
        }
        let default_start = parse_time(DEFAULT_START_AT).expect("the default start time parses");
        let start_at = match obj.get("start_at") {
            Some(t) => self.time(t, "/start_at", "`start_at`").unwrap_or(default_start),
            None => default_start,
        };
        let base_input = obj.get("input").cloned().unwrap_or(Value::Null);
        let base_mocks = match obj.get("mocks") {
            Some(m) => self.mocks(m, "/mocks"),
            None => BTreeMap::new(),
        };
        let list = obj.get("scenarios")?;
        let Some(items) = list.as_array() else {
            self.report(
                code::WRONG_TYPE,
                format!("`scenarios` must be a list, found {}", kind_of(list)),
                "/scenarios",
                Some("write each scenario as `- name: ...`".into()),
            );
            return None;
        };
        if items.is_empty() {
            self.report(code::MISSING, "`scenarios` is empty: write at least one scenario".into(), "/scenarios", None);
        }
        let mut scenarios = Vec::new();
        let mut names = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let ptr = format!("/scenarios/{i}");
            if let Some(s) = self.scenario(item, &ptr, start_at, &base_input, &base_mocks) {
                if !names.insert(s.name.clone()) {
                    self.report(
                        code::DUPLICATE_NAME,
                        format!("two scenarios are named `{}`", s.name),
                        &format!("{ptr}/name"),
                        Some("give every scenario its own name".into()),
                    );
                }
                scenarios.push(s);
            }
        }
        Some(TestFile { scenarios })
    }

    fn scenario(
        &mut self,
        v: &Value,
        ptr: &str,
        default_start: Millis,
        base_input: &Value,
        base_mocks: &BTreeMap<String, Option<Located<Mock>>>,
    ) -> Option<Scenario> {
        let obj = self.fields(v, ptr, "a scenario", SCENARIO_FIELDS, &["name", "expect"])?;
        let name = obj.get("name").and_then(|n| self.non_empty_text(n, &format!("{ptr}/name"), "the scenario's `name`"));
        if let Some(d) = obj.get("description") {
            self.text(d, &format!("{ptr}/description"), "`description`");
        }
        let start_at = match obj.get("start_at") {
            Some(t) => self.time(t, &format!("{ptr}/start_at"), "`start_at`"),
            None => Some(default_start),
        };
        let input = match obj.get("input") {
            Some(i) => merge(base_input, i),
            None => base_input.clone(),
        };
        let mut mocks: BTreeMap<String, Located<Mock>> = base_mocks.iter().filter_map(|(k, m)| m.clone().map(|m| (k.clone(), m))).collect();
        if let Some(m) = obj.get("mocks") {
            for (step, mock) in self.mocks(m, &format!("{ptr}/mocks")) {
                match mock {
                    Some(mock) => mocks.insert(step, mock),
                    None => mocks.remove(&step),
                };
            }
        }
        let tasks = match obj.get("tasks") {
            Some(t) => self.entries(t, &format!("{ptr}/tasks"), "- { step: review, outcome: approve, by: anna }", Self::task_action),
            None => Vec::new(),
        };
        let messages = match obj.get("messages") {
            Some(m) => self.entries(m, &format!("{ptr}/messages"), "- { name: documents-received, payload: {...} }", Self::message_action),
            None => Vec::new(),
        };
        let expect = obj.get("expect").and_then(|e| self.expect(e, &format!("{ptr}/expect")));
        let line = self.map.value(ptr).map_or(0, |l| l.line);
        Some(Scenario { name: name?, line, pointer: ptr.to_string(), start_at: start_at?, input, mocks, tasks, messages, expect: expect? })
    }

    /// A list of the world's actions (`tasks`, `messages`) of a scenario, each read by `read`
    /// and kept with its pointer; `example` is the hint when the value is not a list.
    fn entries<T>(&mut self, v: &Value, ptr: &str, example: &str, read: fn(&mut Self, &Value, &str) -> Option<T>) -> Vec<Located<T>> {
        let Some(items) = v.as_array() else {
            let key = ptr.rsplit('/').next().unwrap_or(ptr);
            self.report(
                code::WRONG_TYPE,
                format!("`{key}` must be a list, found {}", kind_of(v)),
                ptr,
                Some(format!("for example: {example}")),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{ptr}/{i}");
            if let Some(value) = read(self, item, &p) {
                out.push(Located { pointer: p, value });
            }
        }
        out
    }
}

/// Merges `over` into `base`: mappings field by field (recursively), a `null` removes the
/// field, anything else replaces.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = match out.get(k) {
                        Some(existing) => merge(existing, v),
                        None => strip_nulls(v),
                    };
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, o) => strip_nulls(o),
    }
}

/// A new mapping written in an override keeps its nulls out, as the merge would.
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect()),
        other => other.clone(),
    }
}

/// An RFC 3339 date-time, or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(text: &str) -> Option<Millis> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn problems(source: &str) -> Vec<String> {
        match parse(source).0 {
            Ok(_) => Vec::new(),
            Err(ds) => ds
                .iter()
                .map(|d| format!("{} {}:{} {}", d.code, d.location.map_or(0, |l| l.line), d.location.map_or(0, |l| l.column), d.message))
                .collect(),
        }
    }

    #[test]
    fn reads_a_complete_scenario() {
        let src = r#"
start_at: 2025-04-05T09:00:00+02:00
input: { a: 1, nested: { b: 2, c: 3 } }
mocks:
  fetch: { output: { weeks: 156 } }
  flaky: [ { error: { code: x.down, retryable: true } }, { output: 1 } ]
scenarios:
  - name: first
    input: { nested: { c: null, d: 4 } }
    mocks:
      flaky: null
      pay: { error: payment.rejected }
    tasks:
      - { step: review, outcome: approve, by: anna, after: 2d }
    messages:
      - { name: docs, payload: { n: 1 }, after: 3d }
    expect:
      status: completed
      path: [a, b]
      error: some.code
      tasks: [ { step: review, office: 7000 } ]
      calls:
        fetch: { count: 1, input_includes: { years: 4 } }
        pay: []
"#;
        let (file, _) = parse(src);
        let file = file.unwrap();
        let s = &file.scenarios[0];
        assert_eq!(s.input, json!({"a": 1, "nested": {"b": 2, "d": 4}}));
        assert_eq!(s.start_at, parse_time("2025-04-05T07:00:00Z").unwrap());
        assert!(s.mocks.contains_key("fetch") && s.mocks.contains_key("pay") && !s.mocks.contains_key("flaky"));
        assert_eq!(s.tasks[0].value.by, "anna");
        assert_eq!(s.tasks[0].value.after, Duration::from_secs(2 * 86_400));
        assert_eq!(s.messages[0].value.payload, json!({"n": 1}));
        assert_eq!(s.expect.status, Some(Status::Completed));
        assert_eq!(s.expect.tasks.as_ref().unwrap()[0].value.office.as_deref(), Some("7000"));
        assert_eq!(s.expect.calls["pay"].value, CallsExpect::Each(vec![]));
        assert_eq!(s.line, 8);
    }

    #[test]
    fn reports_problems_with_positions_and_hints() {
        let src = "scenarios:\n  - name: x\n    inputs: {}\n    mocks:\n      a: { output: 1, error: x }\n      b: { error: { code: c, retry_after: soon } }\n    tasks:\n      - { outcome: approve }\n    expect:\n      status: done\n";
        let p = problems(src);
        assert!(p.iter().any(|m| m.starts_with("WT0102 3:5 unknown field `inputs`")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("WT0104 5:10 the mock of `a` needs exactly one")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("WT0104 6:43") && m.contains("not a duration")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("WT0101 8:9 a task entry is missing `step`")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("WT0104 10:15 `status`: `done`")), "{p:?}");
        let (Err(ds), _) = parse(src) else { panic!() };
        assert_eq!(ds.iter().find(|d| d.code == code::UNKNOWN_FIELD).unwrap().hint.as_deref(), Some("did you mean `input`?"));
    }

    #[test]
    fn yaml_errors_and_duplicates_have_positions() {
        let p = problems("scenarios:\n  - name: a\n    name: b\n");
        assert!(p[0].starts_with("WT0002 3:"), "{p:?}");
        let p = problems("scenarios:\n  - { name: a, expect: { status: completed } }\n  - { name: a, expect: { status: failed } }\n");
        assert!(p.iter().any(|m| m.starts_with("WT0105 3:")), "{p:?}");
        assert!(!problems("").is_empty());
    }

    #[test]
    fn merge_replaces_removes_and_recurses() {
        let base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        assert_eq!(
            merge(&base, &json!({"a": {"c": [3]}, "d": null, "e": {"f": null, "g": 1}})),
            json!({"a": {"b": 1, "c": [3]}, "e": {"g": 1}})
        );
        assert_eq!(merge(&Value::Null, &json!({"x": 1})), json!({"x": 1}));
    }
}
