//! Expressions: `${ ... }` in workflow files, jq programs evaluated by jaq.
//!
//! An expression is compiled once, when the workflow is loaded, so a syntax error or an
//! unknown function is a load error with a position. Evaluation takes the step's data
//! (`{input, steps, vars, business_key, instance, ...}`) as `.` and returns one JSON value.

use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq expression. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Expr {
    source: String,
    filter: Arc<Filter>,
}

/// Why an expression could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("{message}")]
    Compile { message: String, offset: usize },
    #[error("expression `{expression}` failed: {message}")]
    Eval { expression: String, message: String },
}

impl Expr {
    /// Compiles jq source (without the `${ }` wrapper).
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let offset_of = |s: &str| (s.as_ptr() as usize).saturating_sub(source.as_ptr() as usize).min(source.len());
        let modules = Loader::new(defs).load(&arena, File { code: source, path: () }).map_err(|errors| {
            let (message, offset) = match errors.into_iter().next().map(|(_, e)| e) {
                Some(jaq_core::load::Error::Lex(errs)) => errs
                    .first()
                    .map(|(expect, at)| (format!("expected {}", expect.as_str()), offset_of(at)))
                    .unwrap_or_else(|| ("cannot read the expression".into(), 0)),
                Some(jaq_core::load::Error::Parse(errs)) => errs
                    .first()
                    .map(|(expect, at)| {
                        let found = if at.is_empty() { "the end of the expression".to_string() } else { format!("`{}`", first_token(at)) };
                        (format!("expected {}, found {found}", expect.as_str()), offset_of(at))
                    })
                    .unwrap_or_else(|| ("cannot parse the expression".into(), 0)),
                Some(jaq_core::load::Error::Io(errs)) => {
                    (errs.first().map(|(_, m)| m.clone()).unwrap_or_else(|| "cannot load a module".into()), 0)
                }
                None => ("cannot parse the expression".into(), 0),
            };
            ExprError::Compile { message, offset }
        })?;
        let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let (message, offset) = errors
                .into_iter()
                .flat_map(|(_, errs)| errs)
                .next()
                .map(|(name, undefined)| (format!("unknown {} `{name}`", undefined.as_str()), offset_of(name)))
                .unwrap_or_else(|| ("cannot compile the expression".into(), 0));
            ExprError::Compile { message, offset }
        })?;
        Ok(Self { source: source.to_string(), filter: Arc::new(filter) })
    }

    /// The jq source as written (without `${ }`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with `input` as `.`. Produces exactly one value: no output
    /// is `null`; several outputs are an error (collect them with `[ ... ]`).
    pub fn eval(&self, input: &Value) -> Result<Value, ExprError> {
        let fail = |message: String| ExprError::Eval { expression: self.source.clone(), message };
        let input = Val::deserialize(input).map_err(|e| fail(e.to_string()))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match outputs.next() {
            None => return Ok(Value::Null),
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(fail(e.to_string())),
        };
        if outputs.next().is_some() {
            return Err(fail("it produced more than one value; collect them with [ ... ]".into()));
        }
        Ok(to_json(&first))
    }

    /// Evaluates a condition: `false` and `null` are false, everything else is true (jq's rule).
    pub fn test(&self, input: &Value) -> Result<bool, ExprError> {
        Ok(!matches!(self.eval(input)?, Value::Null | Value::Bool(false)))
    }

    /// Step ids this expression reads through `.steps.<id>`, for static checks.
    pub fn step_references(&self) -> Vec<&str> {
        step_references(&self.source, ".steps.")
    }
}

/// Names following `prefix` in `text` (e.g. `.steps.` → `contributions`).
pub(crate) fn step_references<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_ident = text.len() - rest.len() + at > 0
            && text[..text.len() - rest.len() + at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + prefix.len()..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if len > 0 && !preceded_by_ident {
            out.push(&rest[..len]);
        }
    }
    out
}

fn first_token(s: &str) -> &str {
    let end = s.find(char::is_whitespace).unwrap_or(s.len()).min(20);
    let end = (0..=end).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    if end == 0 { s.chars().next().map(|c| &s[..c.len_utf8()]).unwrap_or("") } else { &s[..end] }
}

/// Converts a jaq value to JSON. Non-finite numbers become `null`; byte strings and
/// non-string object keys are written as text.
pub fn to_json(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => serde_json::from_str::<Value>(&n.to_string()).ok().filter(Value::is_number).unwrap_or(Value::Null),
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("${{ {} }}", self.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_conditions_and_mappings_with_types() {
        let data = json!({"steps": {"contributions": {"output": {"weeks": 12}}}, "input": {"items": [1, 2, 3]}});
        assert!(Expr::compile(".steps.contributions.output.weeks < 13").unwrap().test(&data).unwrap());
        assert_eq!(Expr::compile("{count: (.input.items | length)}").unwrap().eval(&data).unwrap(), json!({"count": 3}));
        assert_eq!(Expr::compile(".input.items | map(. * 1.5)").unwrap().eval(&data).unwrap(), json!([1.5, 3.0, 4.5]));
        assert_eq!(Expr::compile("empty").unwrap().eval(&data).unwrap(), Value::Null);
    }

    #[test]
    fn compile_errors_say_what_and_where() {
        let err = Expr::compile(".a | nosuchfn(1)").unwrap_err();
        assert!(matches!(&err, ExprError::Compile { message, offset: 5 } if message.contains("nosuchfn")), "{err:?}");
        let err = Expr::compile(".a +").unwrap_err();
        assert!(matches!(err, ExprError::Compile { .. }));
        assert!(Expr::compile("(.a").is_err());
    }

    #[test]
    fn several_outputs_are_an_error() {
        let err = Expr::compile(".[]").unwrap().eval(&json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("more than one value"));
    }

    #[test]
    fn finds_step_references() {
        let e = Expr::compile(".steps.a.output.x + .steps.b_2.output.y + .notsteps.c").unwrap();
        assert_eq!(e.step_references(), vec!["a", "b_2"]);
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Expr>();
    }
}
