//! A test file's YAML text → [`TestFile`], with every problem as a [`Diagnostic`] that
//! carries its line and column. The YAML is parsed with the same bounded parser as workflow
//! files (serde-saphyr: limited aliases, depth and size; duplicate keys are errors), then
//! read field by field so that an unknown field, a wrong type or a bad duration is reported
//! where it is written, with a hint.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value};

use super::code;
use super::model::*;
use pratica_engine::clock::Millis;
use pratica_engine::definition::diagnostic::did_you_mean;
use pratica_engine::definition::{Diagnostic, Location, SourceMap};

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
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

const FILE_FIELDS: &[&str] = &["description", "start_at", "input", "mocks", "scenarios"];
const SCENARIO_FIELDS: &[&str] = &["name", "description", "start_at", "input", "mocks", "tasks", "messages", "expect"];
const RESULT_FIELDS: &[&str] = &["output", "error"];
const ERROR_FIELDS: &[&str] = &["code", "message", "retryable", "retry_after"];
const TASK_FIELDS: &[&str] = &["step", "outcome", "reason", "by", "form", "after", "refused"];
const MESSAGE_FIELDS: &[&str] = &["name", "key", "payload", "after"];
const EXPECT_FIELDS: &[&str] = &["status", "path", "path_includes", "output", "output_includes", "error", "tasks", "calls"];
const EXPECT_ERROR_FIELDS: &[&str] = &["code", "message", "step"];
const EXPECT_TASK_FIELDS: &[&str] = &["step", "title", "role", "office", "user"];
const EXPECT_CALL_FIELDS: &[&str] = &["count", "attempts", "input", "input_includes"];
const EXPECT_EACH_CALL_FIELDS: &[&str] = &["attempts", "input", "input_includes"];

struct Reader<'a> {
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn report(&mut self, code: &'static str, message: String, pointer: &str, hint: Option<String>) {
        let mut d = Diagnostic::new(code, message).at(self.map.value(pointer)).pointer(pointer);
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.out.push(d);
    }

    fn report_key(&mut self, code: &'static str, message: String, pointer: &str, hint: Option<String>) {
        let mut d = Diagnostic::new(code, message).at(self.map.key(pointer)).pointer(pointer);
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.out.push(d);
    }

    /// `v` as a mapping with only `allowed` fields and all `required` ones.
    fn fields<'v>(&mut self, v: &'v Value, ptr: &str, what: &str, allowed: &[&str], required: &[&str]) -> Option<&'v Map<String, Value>> {
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
    fn text(&mut self, v: &Value, ptr: &str, what: &str) -> Option<String> {
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

    fn non_empty_text(&mut self, v: &Value, ptr: &str, what: &str) -> Option<String> {
        let t = self.text(v, ptr, what)?;
        if t.trim().is_empty() {
            self.report(code::INVALID, format!("{what} cannot be empty"), ptr, None);
            return None;
        }
        Some(t)
    }

    fn boolean(&mut self, v: &Value, ptr: &str, what: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.report(code::WRONG_TYPE, format!("{what} must be true or false, found {}", kind_of(other)), ptr, None);
                None
            }
        }
    }

    fn count(&mut self, v: &Value, ptr: &str, what: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.report(code::WRONG_TYPE, format!("{what} must be a whole number (0 or more), found {}", kind_of(v)), ptr, None);
                None
            }
        }
    }

    fn duration(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Duration> {
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

    fn time(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Millis> {
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

    fn text_list(&mut self, v: &Value, ptr: &str, what: &str) -> Option<Vec<String>> {
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

    // ---- the file ----

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
        let mut tasks = Vec::new();
        if let Some(t) = obj.get("tasks") {
            let tp = format!("{ptr}/tasks");
            match t.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{tp}/{i}");
                        if let Some(task) = self.task_action(item, &p) {
                            tasks.push(Located { pointer: p, value: task });
                        }
                    }
                }
                None => self.report(
                    code::WRONG_TYPE,
                    format!("`tasks` must be a list, found {}", kind_of(t)),
                    &tp,
                    Some("for example: - { step: review, outcome: approve, by: anna }".into()),
                ),
            }
        }
        let mut messages = Vec::new();
        if let Some(m) = obj.get("messages") {
            let mp = format!("{ptr}/messages");
            match m.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{mp}/{i}");
                        if let Some(msg) = self.message_action(item, &p) {
                            messages.push(Located { pointer: p, value: msg });
                        }
                    }
                }
                None => self.report(
                    code::WRONG_TYPE,
                    format!("`messages` must be a list, found {}", kind_of(m)),
                    &mp,
                    Some("for example: - { name: documents-received, payload: {...} }".into()),
                ),
            }
        }
        let expect = obj.get("expect").and_then(|e| self.expect(e, &format!("{ptr}/expect")));
        let line = self.map.value(ptr).map_or(0, |l| l.line);
        Some(Scenario { name: name?, line, pointer: ptr.to_string(), start_at: start_at?, input, mocks, tasks, messages, expect: expect? })
    }

    // ---- mocks ----

    /// `step_id: result | [results]`; `null` removes a mock of the file's `mocks`.
    fn mocks(&mut self, v: &Value, ptr: &str) -> BTreeMap<String, Option<Located<Mock>>> {
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

    fn mock(&mut self, v: &Value, ptr: &str, step: &str) -> Option<Mock> {
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

    fn result(&mut self, v: &Value, ptr: &str, step: &str) -> Option<MockResult> {
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

    fn mock_error(&mut self, v: &Value, ptr: &str, step: &str) -> Option<MockError> {
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

    fn task_action(&mut self, v: &Value, ptr: &str) -> Option<TaskAction> {
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

    fn message_action(&mut self, v: &Value, ptr: &str) -> Option<MessageAction> {
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

    // ---- expectations ----

    fn expect(&mut self, v: &Value, ptr: &str) -> Option<Expect> {
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
            let tp = format!("{ptr}/tasks");
            match t.as_array() {
                Some(items) => {
                    let mut list = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{tp}/{i}");
                        match self.task_expect(item, &p) {
                            Some(te) => list.push(Located { pointer: p, value: te }),
                            None => ok = false,
                        }
                    }
                    e.tasks = Some(list);
                }
                None => {
                    self.report(code::WRONG_TYPE, format!("`tasks` must be a list of the tasks created, found {}", kind_of(t)), &tp, None);
                    ok = false;
                }
            }
        }
        if let Some(c) = obj.get("calls") {
            let cp = format!("{ptr}/calls");
            match c.as_object() {
                Some(steps) => {
                    for (step, spec) in steps {
                        let p = format!("{cp}/{}", escape(step));
                        match self.calls_expect(spec, &p, step) {
                            Some(ce) => {
                                e.calls.insert(step.clone(), Located { pointer: p, value: ce });
                            }
                            None => ok = false,
                        }
                    }
                }
                None => {
                    self.report(
                        code::WRONG_TYPE,
                        format!("`calls` must be a mapping from step id to what was sent, found {}", kind_of(c)),
                        &cp,
                        Some("for example: pay: { input_includes: { amount_cents: 125956 } }".into()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(e)
    }

    fn task_expect(&mut self, v: &Value, ptr: &str) -> Option<TaskExpect> {
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

    fn calls_expect(&mut self, v: &Value, ptr: &str, step: &str) -> Option<CallsExpect> {
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

    fn call_expect(&mut self, v: &Value, ptr: &str, step: &str, allowed: &[&str]) -> Option<CallExpect> {
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
