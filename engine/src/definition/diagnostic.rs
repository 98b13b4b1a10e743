//! Diagnostics: what is wrong in a workflow file, where, and what was expected.
//!
//! Every diagnostic has a stable code (documented in `docs/ERRORS.md`), a message, the
//! position in the file when one is known, the JSON pointer of the offending value, and an
//! optional hint.

use std::fmt::Write as _;

use serde::Serialize;

/// Stable diagnostic codes. Never renumber: tools and documentation depend on them.
pub mod code {
    pub const FILE_UNREADABLE: &str = "WF0001";
    pub const YAML_SYNTAX: &str = "WF0002";
    pub const YAML_LIMIT: &str = "WF0003";
    pub const DUPLICATE_KEY: &str = "WF0004";
    pub const NOT_A_WORKFLOW: &str = "WF0005";
    pub const MISSING_PROPERTY: &str = "WF0101";
    pub const UNKNOWN_PROPERTY: &str = "WF0102";
    pub const WRONG_TYPE: &str = "WF0103";
    pub const STEP_ACTION: &str = "WF0104";
    pub const INVALID_VALUE: &str = "WF0105";
    pub const DUPLICATE_STEP_ID: &str = "WF0201";
    pub const UNKNOWN_STEP: &str = "WF0202";
    pub const GOTO_OTHER_BLOCK: &str = "WF0203";
    pub const UNREACHABLE_STEP: &str = "WF0204";
    pub const UNKNOWN_CONNECTOR: &str = "WF0205";
    pub const EXTERNAL_TOPIC: &str = "WF0206";
    pub const GOTO_AFTER_END: &str = "WF0207";
    pub const UNKNOWN_WORKFLOW: &str = "WF0208";
    pub const BAD_EXPRESSION: &str = "WF0301";
    pub const BAD_TEMPLATE: &str = "WF0302";
    pub const MIXED_EXPRESSION: &str = "WF0303";
    pub const UNAVAILABLE_BUILTIN: &str = "WF0305";
    pub const UNBOUNDED: &str = "WF0306";
    pub const UNKNOWN_STEP_REFERENCE: &str = "WF0304";
    pub const UNKNOWN_INPUT_SCHEMA: &str = "WF0401";
    pub const UNKNOWN_FORM_SCHEMA: &str = "WF0402";
    pub const BAD_DURATION: &str = "WF0403";
    pub const BAD_CRON: &str = "WF0404";
    pub const UNKNOWN_TIMEZONE: &str = "WF0405";
    pub const BAD_OUTCOME: &str = "WF0406";
    pub const SEPARATE_FROM: &str = "WF0209";
    pub const RESERVED_NAME: &str = "WF0106";
    pub const NOTIFY_HOOK: &str = "WF0210";
    pub const WEBHOOK_SECRET: &str = "WF0211";
}

/// A position in the source: 1-based line and column (in characters), and the length of the
/// offending text on that line (at least 1) for the caret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub width: usize,
}

/// One problem found in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub message: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), location: None, pointer: None, hint: None }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the diagnostic for a terminal: the code and message, `file:line:column`, the
    /// source line with a caret under the offending text, and the hint.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = format!("error[{}]: {}\n", self.code, self.message);
        match self.location {
            Some(loc) => {
                let _ = writeln!(out, "  --> {file}:{}:{}", loc.line, loc.column);
                if let Some(text) = source.lines().nth(loc.line.saturating_sub(1)) {
                    let gutter = loc.line.to_string().len();
                    let text = text.trim_end();
                    let pad = " ".repeat(gutter);
                    let _ = writeln!(out, "{pad} |");
                    let _ = writeln!(out, "{} | {text}", loc.line);
                    let before: String =
                        text.chars().take(loc.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                    let available = text.chars().count().saturating_sub(loc.column.saturating_sub(1)).max(1);
                    let _ = writeln!(out, "{pad} | {before}{}", "^".repeat(loc.width.clamp(1, available)));
                }
            }
            None => {
                let _ = writeln!(out, "  --> {file}");
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("comput", ["compute", "reject"]), Some("compute"));
        assert_eq!(did_you_mean("xyz", ["compute", "reject"]), None);
    }

    #[test]
    fn renders_caret_under_the_offending_text() {
        let d = Diagnostic::new(code::UNKNOWN_STEP, "unknown step `comput`")
            .at(Some(Location { line: 2, column: 11, width: 6 }))
            .hint("did you mean `compute`?");
        let text = d.render("w.yaml", "steps:\n    goto: comput\n");
        assert!(text.contains("--> w.yaml:2:11"), "{text}");
        assert!(text.contains("  |           ^^^^^^"), "{text}");
    }
}
