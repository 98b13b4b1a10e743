//! Expressions: `${ ... }` in workflow files, jq programs evaluated by jaq.
//!
//! An expression is compiled once, when the workflow is loaded, so a syntax error or an
//! unknown function is a load error with a position. Evaluation takes the step's data
//! (`{input, steps, vars, business_key, instance, ...}`) as `.` and returns one JSON value.

use std::fmt;
use std::sync::Arc;

use jaq_core::box_iter::box_once;
use jaq_core::data::HasLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::native::{Fun, v};
use jaq_core::{Compiler, Ctx, Cv, DataT, Exn, ValXs, Vars, unwrap_valr};
use jaq_json::Val;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::budget::{self, Exceeded};

/// Expressions run on [`Sandboxed`] data: the case data only, metered at every step.
type Filter = jaq_core::Filter<Sandboxed>;
type Lut = jaq_core::Lut<Sandboxed>;
/// The value type natives see, spelled as jaq projects it (so their fn pointers unify).
type V<'a> = <Sandboxed as DataT>::V<'a>;

/// The kind of data Pratica's expressions run on: JSON values, and a lookup table whose
/// every use is one step of the expression's budget ([`budget::tick`]).
pub struct Sandboxed;

impl DataT for Sandboxed {
    type V<'a> = Val;
    type Data<'a> = Metered<'a>;
}

/// The compiled expression's lookup table; jaq reads it at every term it evaluates, which
/// is where the budget is charged.
#[derive(Clone)]
pub struct Metered<'a>(&'a Lut);

impl<'a> HasLut<'a, Sandboxed> for Metered<'a> {
    fn lut(&self) -> &'a Lut {
        budget::tick();
        self.0
    }
}

/// Builtins that would reach outside the case data: the environment, the process, input
/// files, the server's time zone. They do not compile (see [`Expr::compile`]); their
/// natives are replaced by an error too, for the standard definitions that call them.
pub const UNAVAILABLE: &[&str] = &[
    "env",
    "$ENV",
    "halt",
    "halt_error",
    "input",
    "inputs",
    "input_filename",
    "localtime",
    "strflocaltime",
    "$__prog_args",
    "get_search_list",
];

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
    /// It calls a builtin that reaches outside the case data (diagnostic WF0305).
    #[error("`{name}` is not available in Pratica expressions: they see only the case data")]
    Unavailable { name: &'static str, offset: usize },
    /// It can be seen not to terminate (diagnostic WF0306).
    #[error("{message}")]
    Unbounded { message: String, offset: usize },
    #[error("expression `{expression}` failed: {message}")]
    Eval { expression: String, message: String },
    /// The evaluation passed a limit of its budget (step error code `expression.budget`).
    #[error("expression `{expression}` stopped: {exceeded}")]
    Budget { expression: String, exceeded: Exceeded },
}

impl ExprError {
    /// The step error code a failed evaluation gives: `expression.budget` when a limit
    /// stopped it, `expression` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            ExprError::Budget { .. } => "expression.budget",
            _ => "expression",
        }
    }
}

/// The natives expressions may call: jaq's, with what reaches outside replaced.
fn natives() -> impl Iterator<Item = Fun<Sandboxed>> {
    jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs()).map(|(name, arity, native)| match name {
        "env" | "halt" | "input" | "inputs" | "localtime" | "strflocaltime" => {
            (name, arity, jaq_core::Native::<Sandboxed>::new(unavailable))
        }
        // `debug` and `stderr` are the identity: nothing reaches the server's log.
        "debug_empty" | "stderr_empty" => (name, arity, jaq_core::Native::<Sandboxed>::new(|_| Box::new(std::iter::empty()))),
        "now" => (name, arity, jaq_core::Native::<Sandboxed>::new(engine_now)),
        "range" => (name, v(3), jaq_core::Native::<Sandboxed>::new(metered_range)),
        _ => (name, arity, native),
    })
}

fn unavailable<'a>(_: Cv<'a, Sandboxed>) -> ValXs<'a, V<'a>> {
    box_once(Err(Exn::from(jaq_core::Error::str("this builtin is not available in Pratica expressions"))))
}

/// `now`: the engine's clock at the transition (so a replay computes the same), never the
/// server's.
fn engine_now<'a>(_: Cv<'a, Sandboxed>) -> ValXs<'a, V<'a>> {
    box_once(match budget::now_ms() {
        Some(ms) => Ok(Val::from(ms as f64 / 1000.0)),
        None => Err(Exn::from(jaq_core::Error::str("`now` is only available while a case runs"))),
    })
}

/// `range($from; $to; $by)`, charging one budget step per value (jaq's native yields a
/// billion values without evaluating a term).
fn metered_range<'a>(mut cv: Cv<'a, Sandboxed>) -> ValXs<'a, V<'a>> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let by = cv.0.pop_var();
    let to = cv.0.pop_var();
    let from = cv.0.pop_var();
    let direction = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
    let mut next = Some(from);
    Box::new(std::iter::from_fn(move || {
        let x = next.take()?;
        let more = match direction {
            Greater => x < to,
            Less => x > to,
            Equal => x != to,
        };
        if !more {
            return None;
        }
        budget::tick();
        match x.clone() + by.clone() {
            Ok(following) => next = Some(following),
            Err(e) => return Some(Err(Exn::from(e))),
        }
        Some(Ok(x))
    }))
}

impl Expr {
    /// Compiles jq source (without the `${ }` wrapper). A builtin that reaches outside the
    /// case data ([`UNAVAILABLE`]) is a compile error at its position.
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        if let Some((name, offset)) = unavailable_builtin(source) {
            return Err(ExprError::Unavailable { name, offset });
        }
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
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
        let filter = Compiler::default().with_funs(natives()).compile(modules).map_err(|errors| {
            let (message, offset) = errors
                .into_iter()
                .flat_map(|(_, errs)| errs)
                .next()
                .map(|(name, undefined)| (format!("unknown {} `{name}`", undefined.as_str()), offset_of(name)))
                .unwrap_or_else(|| ("cannot compile the expression".into(), 0));
            ExprError::Compile { message, offset }
        })?;
        if let Some((message, offset)) = budget::never_terminates(source) {
            return Err(ExprError::Unbounded { message, offset });
        }
        Ok(Self { source: source.to_string(), filter: Arc::new(filter) })
    }

    /// The jq source as written (without `${ }`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with `input` as `.`, under the budget in force
    /// ([`budget::limits`]). Produces exactly one value: no output is `null`; several
    /// outputs are an error (collect them with `[ ... ]`).
    pub fn eval(&self, input: &Value) -> Result<Value, ExprError> {
        /// The start of jaq-json's error for `string * n` past `MAX_REPEAT_LEN` (see vendor/jaq-json).
        const REPETITION_REFUSED: &str = "string repetition would exceed";
        let fail = |message: String| ExprError::Eval { expression: self.source.clone(), message };
        let limits = budget::limits();
        let (filter, input) = (Arc::clone(&self.filter), input.clone());
        let outcome = budget::isolated(move || -> Result<Result<Value, Exceeded>, String> {
            let input = Val::deserialize(&input).map_err(|e| e.to_string())?;
            let ctx = Ctx::<Sandboxed>::new(Metered(&filter.lut), Vars::new([]));
            let mut outputs = filter.id.run((ctx, input)).map(unwrap_valr);
            let first = match outputs.next() {
                None => return Ok(Ok(Value::Null)),
                Some(Ok(v)) => v,
                // The vendored jaq-json refuses oversized repetitions with this error.
                Some(Err(e)) if e.to_string().contains(REPETITION_REFUSED) => {
                    return Ok(Err(Exceeded::Repetition(jaq_json::MAX_REPEAT_LEN)));
                }
                Some(Err(e)) => return Err(e.to_string()),
            };
            if outputs.next().is_some() {
                return Err("it produced more than one value; collect them with [ ... ]".into());
            }
            Ok(to_json_within(&first, limits.output, limits.depth))
        });
        match outcome {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(exceeded))) | Err(exceeded) => Err(ExprError::Budget { expression: self.source.clone(), exceeded }),
            Ok(Err(message)) => Err(fail(message)),
        }
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

/// The first builtin of [`UNAVAILABLE`] that `source` calls, with its byte offset. Field
/// names (`.env`), object keys (`{env: 1}`) and text inside strings are not calls.
fn unavailable_builtin(source: &str) -> Option<(&'static str, usize)> {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let starts_word = c.is_ascii_alphabetic() || c == b'_' || c == b'$';
        if !starts_word {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let word = &source[start..i];
        let after_dot = source[..start].trim_end().ends_with('.') && !source[..start].trim_end().ends_with("..");
        let is_key = source[i..].trim_start().starts_with(':') && !source[i..].trim_start().starts_with("::");
        if after_dot || is_key {
            continue;
        }
        if let Some(name) = UNAVAILABLE.iter().find(|n| **n == word) {
            return Some((name, start));
        }
    }
    None
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

/// Converts a jaq value to JSON, refusing one larger than `max_bytes` (roughly, as JSON
/// text) or nested deeper than `max_depth`.
fn to_json_within(v: &Val, max_bytes: usize, max_depth: usize) -> Result<Value, Exceeded> {
    fn size_of(v: &Val, depth: usize, budget: &mut usize, max_depth: usize) -> Result<(), Exceeded> {
        if depth > max_depth {
            return Err(Exceeded::Depth(max_depth));
        }
        let own = match v {
            Val::TStr(b) | Val::BStr(b) => b.len() + 2,
            Val::Arr(items) => {
                for item in items.iter() {
                    size_of(item, depth + 1, budget, max_depth)?;
                }
                items.len() + 2
            }
            Val::Obj(map) => {
                for (k, item) in map.iter() {
                    size_of(k, depth + 1, budget, max_depth)?;
                    size_of(item, depth + 1, budget, max_depth)?;
                }
                map.len() * 2 + 2
            }
            _ => 8,
        };
        *budget = budget.checked_sub(own).ok_or(Exceeded::Output(0))?;
        Ok(())
    }
    let mut left = max_bytes;
    size_of(v, 0, &mut left, max_depth).map_err(|e| if e == Exceeded::Output(0) { Exceeded::Output(max_bytes) } else { e })?;
    Ok(to_json(v))
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
    fn nothing_outside_the_case_data_compiles() {
        for (source, name) in [
            ("env.PRATICA_SECRET", "env"),
            ("$ENV.HOME", "$ENV"),
            ("halt", "halt"),
            (".a | halt_error(1)", "halt_error"),
            ("[inputs]", "inputs"),
            ("localtime", "localtime"),
        ] {
            match Expr::compile(source) {
                Err(ExprError::Unavailable { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{source}: {other:?}"),
            }
        }
        // Fields, keys and strings named like them are fine.
        let e = Expr::compile(r#"{env: .env, halt: "halt"} | .env"#).unwrap();
        assert_eq!(e.eval(&json!({"env": "prod"})).unwrap(), json!("prod"));
    }

    #[test]
    fn debug_and_stderr_pass_through_and_now_is_the_engines_clock() {
        let e = Expr::compile("debug | stderr | debug(\"x\") | . + 1").unwrap();
        assert_eq!(e.eval(&json!(1)).unwrap(), json!(2));
        let now = Expr::compile("now").unwrap();
        assert!(now.eval(&json!(null)).is_err(), "no clock outside a case");
        let at = budget::in_scope(budget::Limits::default(), 1_772_355_600_000, || now.eval(&json!(null))).unwrap();
        assert_eq!(at, json!(1_772_355_600.0));
    }

    #[test]
    fn hostile_expressions_end_with_a_budget_error() {
        let limits = budget::Limits { fuel: 200_000, time: std::time::Duration::from_secs(5), ..budget::Limits::default() };
        for source in [
            "def f: 1 + f; f",
            "last(range(1e12))",
            "[range(1e9)]",
            "[limit(1e9; repeat(1))] | length",
            "reduce range(1e9) as $i (0; . + $i)",
            "def f(x): f(x + 1); f(0)",
        ] {
            let e = Expr::compile(source).unwrap();
            let err = budget::in_scope(limits, 0, || e.eval(&json!(null))).unwrap_err();
            assert_eq!(err.code(), "expression.budget", "{source}: {err}");
        }
        let deep = Expr::compile("reduce range(1000) as $i (null; [.])").unwrap();
        assert!(matches!(deep.eval(&json!(null)), Err(ExprError::Budget { exceeded: Exceeded::Depth(128), .. })));
        let huge = Expr::compile("\"x\" * 1000000000000").unwrap();
        assert!(
            matches!(huge.eval(&json!(null)), Err(ExprError::Budget { exceeded: Exceeded::Repetition(_), .. })),
            "string repetition is bounded"
        );
        let wide = Expr::compile("[range(100000)] | map(tostring)").unwrap();
        let limits = budget::Limits { output: 10_000, ..budget::Limits::default() };
        let err = budget::in_scope(limits, 0, || wide.eval(&json!(null))).unwrap_err();
        assert!(matches!(err, ExprError::Budget { exceeded: Exceeded::Output(10_000), .. }), "{err}");
    }

    #[test]
    fn what_never_terminates_is_refused_at_compile_time() {
        for source in ["def f: f; f", "until(false; .)", "while(true; .)", "[repeat(.)]"] {
            assert!(matches!(Expr::compile(source), Err(ExprError::Unbounded { .. })), "{source}");
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Expr>();
    }
}
