//! Text templates: `{{ ... }}` in workflow files, handlebars in strict mode.
//!
//! A template is parsed when the workflow loads; rendering a missing value is an error (not
//! an empty string), so a typo in a citizen's message fails the step visibly.

use std::sync::{Arc, LazyLock};

use handlebars::{Context, Handlebars, RenderContext, Renderable, StringOutput};
use serde::{Serialize, Serializer};
use serde_json::Value;

static REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    registry
});

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
    #[error("template failed: {0}")]
    Render(String),
}

impl Template {
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        let compiled = handlebars::Template::compile(source).map_err(|e| {
            let (line, column) = e.pos().map_or((None, None), |(l, c)| (Some(l), Some(c)));
            TemplateError::Parse { message: e.reason().to_string(), line, column }
        })?;
        Ok(Self { source: source.to_string(), compiled: Arc::new(compiled) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let ctx = Context::wraps(data).map_err(|e| TemplateError::Render(e.to_string()))?;
        let mut rc = RenderContext::new(None);
        let mut out = StringOutput::new();
        self.compiled.render(&REGISTRY, &ctx, &mut rc, &mut out).map_err(|e| TemplateError::Render(e.reason().to_string()))?;
        out.into_string().map_err(|e| TemplateError::Render(e.to_string()))
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
    fn parse_errors_have_positions() {
        let err = Template::compile("Hello {{ input.name").unwrap_err();
        assert!(matches!(err, TemplateError::Parse { line: Some(1), .. }), "{err:?}");
    }
}
