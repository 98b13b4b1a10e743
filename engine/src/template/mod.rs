//! Text templates: `{{ ... }}` in workflow files, handlebars in strict mode.
//!
//! A template is parsed when the workflow loads; rendering a missing value is an error (not
//! an empty string), so a typo in a citizen's message fails the step visibly. Rendering is
//! budgeted like expressions ([`crate::budget`]): every write and every `#each` item is a
//! step, the text is bounded in size, and what could recurse or reach the server's log —
//! partials, inline partials, decorators, the `log` helper — is refused when the workflow
//! loads.

mod each;

use std::sync::{Arc, LazyLock};

use handlebars::{Context, Handlebars, Output, RenderContext, Renderable};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::budget::{self, Exceeded};

static REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    registry.unregister_helper("log");
    registry.register_helper("each", Box::new(each::MeteredEach));
    registry
});

/// Template constructs that are refused at load: they can recurse without end (partials)
/// or write to the server's log.
const REFUSED: &[(&str, &str)] = &[
    ("{{>", "partials are not available in Pratica templates"),
    ("{{#>", "partial blocks are not available in Pratica templates"),
    ("{{#*", "inline partials and decorators are not available in Pratica templates"),
    ("{{*", "decorators are not available in Pratica templates"),
    ("{{log", "the `log` helper is not available: use a `log` step"),
    ("{{#log", "the `log` helper is not available: use a `log` step"),
];

/// A parsed handlebars template.
#[derive(Clone)]
pub struct Template {
    source: String,
    compiled: Arc<handlebars::Template>,
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{message}")]
    Parse { message: String, line: Option<usize>, column: Option<usize> },
    /// A construct Pratica refuses (diagnostic WF0306), at this byte offset.
    #[error("{message}")]
    Refused { message: String, offset: usize },
    #[error("template failed: {0}")]
    Render(String),
    /// Rendering passed a limit of its budget (step error code `template.budget`).
    #[error("template stopped: {0}")]
    Budget(Exceeded),
}

impl TemplateError {
    /// The step error code a failed rendering gives.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::Budget(_) => "template.budget",
            _ => "template",
        }
    }
}

/// The rendered text, bounded in size; every write is a budget step.
struct BoundedOutput {
    text: String,
    max: usize,
}

impl Output for BoundedOutput {
    fn write(&mut self, seg: &str) -> Result<(), std::io::Error> {
        budget::tick();
        if self.text.len() + seg.len() > self.max {
            return Err(std::io::Error::other(OUTPUT_FULL));
        }
        self.text.push_str(seg);
        Ok(())
    }
}

const OUTPUT_FULL: &str = "pratica: template output limit";

impl Template {
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        let squeezed = |at: usize| source[at + 2..].trim_start();
        for (at, _) in source.match_indices("{{") {
            let after = squeezed(at);
            let opener = if let Some(rest) = after.strip_prefix('~') { rest.trim_start() } else { after };
            if let Some((_, why)) = REFUSED.iter().find(|(p, _)| {
                let p = &p[2..];
                opener.starts_with(p) && (!p.ends_with("log") || opener[p.len()..].starts_with([' ', '}', '~']))
            }) {
                return Err(TemplateError::Refused { message: (*why).to_string(), offset: at });
            }
        }
        let compiled = handlebars::Template::compile(source).map_err(|e| {
            let (line, column) = e.pos().map_or((None, None), |(l, c)| (Some(l), Some(c)));
            TemplateError::Parse { message: e.reason().to_string(), line, column }
        })?;
        Ok(Self { source: source.to_string(), compiled: Arc::new(compiled) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template with `data`, under the budget in force.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let max = budget::limits().output;
        let (compiled, data) = (Arc::clone(&self.compiled), data.clone());
        let rendered = budget::isolated(move || -> Result<String, TemplateError> {
            let ctx = Context::wraps(&data).map_err(|e| TemplateError::Render(e.to_string()))?;
            let mut rc = RenderContext::new(None);
            let mut out = BoundedOutput { text: String::new(), max };
            match compiled.render(&REGISTRY, &ctx, &mut rc, &mut out) {
                Ok(()) => Ok(out.text),
                Err(e) if e.to_string().contains(OUTPUT_FULL) || out.text.len() >= max => Err(TemplateError::Budget(Exceeded::Output(max))),
                Err(e) => Err(TemplateError::Render(e.reason().to_string())),
            }
        });
        rendered.unwrap_or_else(|exceeded| Err(TemplateError::Budget(exceeded)))
    }

    /// Step ids this template reads through `steps.<id>`, for static checks.
    pub fn step_references(&self) -> Vec<&str> {
        crate::expr::step_references(&self.source, "steps.")
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_without_html_escaping() {
        let t = Template::compile("Check {{ input.name }} & co").unwrap();
        assert_eq!(t.render(&json!({"input": {"name": "D'Amico <Anna>"}})).unwrap(), "Check D'Amico <Anna> & co");
    }

    #[test]
    fn strict_mode_rejects_missing_values() {
        let t = Template::compile("Hello {{ input.nmae }}").unwrap();
        assert!(t.render(&json!({"input": {"name": "Anna"}})).is_err());
    }

    #[test]
    fn what_could_recurse_or_log_is_refused_at_load() {
        for source in
            ["{{#*inline \"p\"}}{{> p}}{{/inline}}{{> p}}", "{{> header}}", "{{#> layout}}x{{/layout}}", "{{log input}}", "{{~ log input}}"]
        {
            assert!(matches!(Template::compile(source), Err(TemplateError::Refused { .. })), "{source}");
        }
        assert!(Template::compile("{{ login }} {{ input.log }}").is_ok());
    }

    #[test]
    fn each_is_budgeted_and_output_bounded() {
        let list: Vec<u32> = (0..2000).collect();
        let data = json!({"a": list});
        let nested = Template::compile("{{#each a}}{{#each ../a}}{{/each}}{{/each}}").unwrap();
        let limits = budget::Limits { fuel: 100_000, ..budget::Limits::default() };
        let err = budget::in_scope(limits, 0, || nested.render(&data)).unwrap_err();
        assert_eq!(err.code(), "template.budget", "{err}");
        let big = Template::compile("{{#each a}}{{#each ../a}}{{this}}{{/each}}{{/each}}").unwrap();
        let limits = budget::Limits { output: 1000, ..budget::Limits::default() };
        let err = budget::in_scope(limits, 0, || big.render(&data)).unwrap_err();
        assert_eq!(err, TemplateError::Budget(Exceeded::Output(1000)));
        let ok = Template::compile("{{#each a as |n i|}}{{#if @first}}{{n}}{{/if}}{{#if @last}}-{{i}}{{/if}}{{/each}}").unwrap();
        assert_eq!(ok.render(&data).unwrap(), "0-1999");
        let obj = Template::compile("{{#each o}}{{@key}}={{this}};{{/each}}").unwrap();
        assert_eq!(obj.render(&json!({"o": {"x": 1, "y": "b"}})).unwrap(), "x=1;y=b;");
    }

    #[test]
    fn parse_errors_have_positions() {
        let err = Template::compile("Hello {{ input.name").unwrap_err();
        assert!(matches!(err, TemplateError::Parse { line: Some(1), .. }), "{err:?}");
    }
}
