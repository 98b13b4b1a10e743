//! Pass 1 and 2: YAML text → JSON Schema validation → [`WorkflowDef`].

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, code, did_you_mean};
use super::source::{SourceMap, escape};
use super::{WORKFLOW_SCHEMA, WorkflowDef};

/// Largest workflow file accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(WORKFLOW_SCHEMA).expect("the embedded workflow schema is valid JSON");
    jsonschema::draft202012::new(&schema).expect("the embedded workflow schema is a valid JSON Schema")
});

static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(WORKFLOW_SCHEMA).expect("the embedded workflow schema is valid JSON"));

/// Parses and schema-validates a workflow file. Returns the model of what was written and the
/// positions of its values, or every diagnostic found.
pub fn load(source: &str) -> Result<(WorkflowDef, SourceMap), Vec<Diagnostic>> {
    match load_partial(source) {
        (Some(loaded), diagnostics) if diagnostics.is_empty() => Ok(loaded),
        (_, diagnostics) => Err(diagnostics),
    }
}

/// Like [`load`], but when the file has schema errors that still leave a usable model (bad
/// values, unknown properties), returns that model too, so that semantic checks can report
/// their problems in the same run.
pub(super) fn load_partial(source: &str) -> (Option<(WorkflowDef, SourceMap)>, Vec<Diagnostic>) {
    if source.len() > MAX_SOURCE_BYTES {
        let d = Diagnostic::new(
            code::FILE_UNREADABLE,
            format!("the file is {} bytes; a workflow file may have at most {MAX_SOURCE_BYTES} bytes", source.len()),
        )
        .hint("split the process into sub-workflows");
        return (None, vec![d]);
    }
    let mut value = match parse_yaml(source) {
        Ok(v) => v,
        Err(d) => return (None, vec![d]),
    };
    let map = SourceMap::index(source);
    if !value.is_object() {
        let found = kind_of(&value);
        let d = Diagnostic::new(
            code::NOT_A_WORKFLOW,
            format!("expected a workflow (a mapping with workflow, version, title and steps), found {found}"),
        )
        .at(map.value(""))
        .pointer("");
        return (None, vec![d]);
    }
    let diagnostics = schema_diagnostics(&value, &map);
    // Drop unknown properties (already reported) so the rest can still be checked.
    for d in diagnostics.iter().filter(|d| d.code == code::UNKNOWN_PROPERTY) {
        if let Some((parent, key)) = d.pointer.as_deref().and_then(|p| p.rsplit_once('/'))
            && let Some(Value::Object(fields)) = value.pointer_mut(parent)
        {
            fields.remove(&key.replace("~1", "/").replace("~0", "~"));
        }
    }
    match serde_json::from_value::<WorkflowDef>(value) {
        Ok(def) => (Some((def, map)), diagnostics),
        Err(_) if !diagnostics.is_empty() => (None, diagnostics),
        Err(e) => {
            let d = Diagnostic::new(code::WRONG_TYPE, format!("the workflow does not have the expected shape: {e}")).at(map.value(""));
            (None, vec![d])
        }
    }
}

fn parse_yaml(source: &str) -> Result<Value, Diagnostic> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_aliases: 200,
            max_anchors: 200,
            max_events: 200_000,
            max_nodes: 100_000,
            max_total_scalar_bytes: MAX_SOURCE_BYTES,
            max_documents: 1,
        },
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Value>(source, options).map_err(|e| {
        let e = e.without_snippet();
        let code = classify(e);
        let location = e.location().map(|l| super::Location { line: l.line() as usize, column: l.column() as usize, width: 1 });
        let mut message = e.to_string();
        // The position is shown separately; drop the crate's own " at line X column Y" suffix.
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        if code == code::YAML_LIMIT {
            message = format!("the YAML exceeds a resource limit ({message})");
        }
        let diagnostic = Diagnostic::new(code, message).at(location);
        match code {
            code::DUPLICATE_KEY => diagnostic.hint("each key may appear once in a mapping; remove or rename one of them"),
            code::YAML_LIMIT => diagnostic.hint("workflow files are limited in nesting depth (64), aliases (200) and size (1 MiB)"),
            _ => diagnostic,
        }
    })
}

/// Which diagnostic a YAML error is: a duplicate key, a resource limit, or a syntax error.
fn classify(e: &serde_saphyr::Error) -> &'static str {
    use serde_saphyr::Error as E;
    match e {
        E::DuplicateMappingKey { .. } => code::DUPLICATE_KEY,
        E::AliasError { error, .. } => classify(error),
        E::Budget { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => code::YAML_LIMIT,
        // The parser's nesting guard has no variant of its own.
        other if other.to_string().contains("recursion limit") => code::YAML_LIMIT,
        _ => code::YAML_SYNTAX,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (an empty document)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Every schema violation, translated into analyst language with a position.
fn schema_diagnostics(value: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    for error in VALIDATOR.iter_errors(value) {
        let diagnostic = translate(&error, value, map);
        if !out.contains(&diagnostic) {
            out.push(diagnostic);
        }
    }
    out.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
    out
}

fn translate(error: &ValidationError<'_>, root: &Value, map: &SourceMap) -> Diagnostic {
    let pointer = error.instance_path().as_str().to_string();
    let field = describe(&pointer);
    let keyword_location = error.schema_path().as_str();
    let is_duration = keyword_location.contains("/$defs/duration") || schema_ref_is(&pointer, "duration");
    let is_expression = schema_ref_is(&pointer, "expression");
    let at = map.value(&pointer);
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            Diagnostic::new(code::MISSING_PROPERTY, format!("{field} is missing `{name}`"))
                .at(at)
                .pointer(pointer.clone())
                .hint(required_hint(&pointer, name))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let name = unexpected.first().cloned().unwrap_or_default();
            let key_pointer = format!("{pointer}/{}", escape(&name));
            let allowed = allowed_properties(&pointer);
            let mut d = Diagnostic::new(code::UNKNOWN_PROPERTY, format!("unknown property `{name}` in {field}"))
                .at(map.key(&key_pointer))
                .pointer(key_pointer);
            if let Some(best) = did_you_mean(&name, allowed.iter().map(String::as_str)) {
                d = d.hint(format!("did you mean `{best}`?"));
            } else if !allowed.is_empty() {
                d = d.hint(format!("expected one of: {}", allowed.join(", ")));
            }
            d
        }
        ValidationErrorKind::Type { kind } => {
            let found = root.pointer(&pointer).map(kind_of).unwrap_or("something else");
            Diagnostic::new(code::WRONG_TYPE, format!("{field} must be {}, found {found}", type_words(&format!("{kind:?}"))))
                .at(at)
                .pointer(pointer)
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. } if is_step(&pointer) => {
            let actions = ["call", "switch", "parallel", "foreach", "wait", "receive", "human", "workflow", "set", "fail", "end"];
            let present: Vec<&str> = actions.iter().copied().filter(|a| root.pointer(&pointer).and_then(|s| s.get(a)).is_some()).collect();
            let message = if present.is_empty() {
                format!("{field} has no action: a step needs exactly one of {}", actions.join(", "))
            } else {
                format!("{field} has several actions ({}): a step needs exactly one", present.join(", "))
            };
            Diagnostic::new(code::STEP_ACTION, message).at(at).pointer(pointer).hint("split it into several steps, one action each")
        }
        ValidationErrorKind::Pattern { .. } if is_duration => {
            let text = root.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            let why = crate::duration::parse_duration(text).err().unwrap_or_else(|| "not a duration".into());
            Diagnostic::new(code::BAD_DURATION, format!("{field}: `{text}` is not a duration ({why})"))
                .at(at)
                .pointer(pointer)
                .hint("write a number and a unit, e.g. 30s, 5m, 2h, 5d or 1h30m")
        }
        ValidationErrorKind::Pattern { .. } if is_expression => {
            Diagnostic::new(code::INVALID_VALUE, format!("{field} must be an expression written as ${{ ... }}"))
                .at(at)
                .pointer(pointer)
                .hint("for example: ${ .input.applicant.fiscal_code }")
        }
        ValidationErrorKind::Pattern { pattern } => {
            let text = root.pointer(&pointer).map(|v| v.to_string()).unwrap_or_default();
            Diagnostic::new(code::INVALID_VALUE, format!("{field}: {text} is not allowed here (expected to match {pattern})"))
                .at(at)
                .pointer(pointer.clone())
                .hint(pattern_hint(&pointer))
        }
        ValidationErrorKind::Enum { options } => {
            let text = root.pointer(&pointer).map(|v| v.to_string()).unwrap_or_default();
            let choices: Vec<String> = options.as_array().map(|a| a.iter().map(|o| o.to_string()).collect()).unwrap_or_default();
            Diagnostic::new(code::INVALID_VALUE, format!("{field}: {text} is not one of {}", choices.join(", "))).at(at).pointer(pointer)
        }
        _ => Diagnostic::new(code::INVALID_VALUE, format!("{field}: {}", error.masked())).at(at).pointer(pointer),
    }
}

/// Whether the schema node for `pointer` is a `$ref` to `#/$defs/<name>`.
fn schema_ref_is(pointer: &str, name: &str) -> bool {
    schema_for(pointer).and_then(|s| s.get("$ref")).and_then(Value::as_str) == Some(&format!("#/$defs/{name}"))
}

/// Walks the workflow schema along an instance pointer (following `$ref`, `properties`,
/// `items` and `additionalProperties`) to the schema that describes that value.
fn schema_for(pointer: &str) -> Option<&'static Value> {
    let mut node: &Value = &SCHEMA;
    for segment in pointer.split('/').skip(1) {
        let resolved = resolve(node);
        node = if let Some(p) = resolved.get("properties").and_then(|p| p.get(segment)) {
            p
        } else if let Some(items) = resolved.get("items") {
            items
        } else {
            resolved.get("additionalProperties").filter(|a| a.is_object())?
        };
    }
    Some(node)
}

fn resolve(mut node: &'static Value) -> &'static Value {
    while let Some(name) = node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        match SCHEMA.get("$defs").and_then(|d| d.get(name)) {
            Some(next) => node = next,
            None => break,
        }
    }
    node
}

fn allowed_properties(pointer: &str) -> Vec<String> {
    schema_for(pointer)
        .map(resolve)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn is_step(pointer: &str) -> bool {
    schema_for(pointer).and_then(|s| s.get("$ref")).and_then(Value::as_str) == Some("#/$defs/step")
}

/// Human words for a JSON pointer: `/steps/2/retry` → "`steps[2].retry`".
fn describe(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the workflow".into();
    }
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        if segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    format!("`{out}`")
}

fn type_words(kind: &str) -> String {
    let lower = kind.to_lowercase();
    ["object", "array", "string", "integer", "number", "boolean", "null"]
        .iter()
        .filter(|t| lower.contains(*t))
        .map(|t| match *t {
            "object" => "a mapping",
            "array" => "a list",
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "true or false",
            _ => "null",
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn required_hint(pointer: &str, name: &str) -> String {
    let description = schema_for(pointer)
        .map(resolve)
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.get(name))
        .and_then(|p| p.get("description").or_else(|| resolve(p).get("description")))
        .and_then(Value::as_str);
    match description {
        Some(d) => format!("`{name}`: {d}"),
        None => format!("add `{name}`"),
    }
}

fn pattern_hint(pointer: &str) -> String {
    let last = pointer.rsplit('/').next().unwrap_or("");
    match last {
        "id" | "goto" | "default" | "name" | "as" => {
            "step ids use lower case letters, digits and underscores, starting with a letter (e.g. check_iban)".into()
        }
        "workflow" => "workflow names use lower case letters, digits and dashes (e.g. naspi-preprocessing)".into(),
        _ => schema_for(pointer)
            .map(resolve)
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("see docs/LANGUAGE.md")
            .to_string(),
    }
}
