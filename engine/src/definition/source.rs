//! Where each value of a YAML document is: a map from JSON pointer (`/steps/0/goto`) to the
//! position of the value, and of the key that introduced it.
//!
//! Built from the parser's event stream after serde-saphyr accepted the document (so the
//! input is already known to be within the resource budget). Aliases are not expanded: an
//! alias node is located where the `*alias` is written.

use std::collections::HashMap;

use granit_parser::{Event, Parser, Span};

use super::diagnostic::Location;

/// Positions of the values and keys of one YAML document, by JSON pointer.
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
}

enum Frame {
    Mapping { pointer: String, key: Option<String> },
    Sequence { pointer: String, next: usize },
}

impl SourceMap {
    /// Indexes the first document of `source`. Parse errors end the index early; positions
    /// seen so far are kept.
    pub fn index(source: &str) -> Self {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(source) {
            let Ok((event, span)) = event else { break };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(pointer) = map.place_node(&mut stack, Some(&value), span) {
                        map.values.insert(pointer, location(span));
                    }
                }
                Event::Alias(_) => {
                    if let Some(pointer) = map.place_node(&mut stack, None, span) {
                        map.values.insert(pointer, location(span));
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let pointer = map.place_node(&mut stack, None, span).unwrap_or_else(|| "/?".into());
                    map.values.insert(pointer.clone(), location(span));
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Mapping { pointer, key: None },
                        _ => Frame::Sequence { pointer, next: 0 },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::DocumentEnd => break,
                _ => {}
            }
        }
        map
    }

    /// Works out the pointer of a node starting now. Returns `None` for a mapping key (whose
    /// position is recorded in `keys`).
    fn place_node(&mut self, stack: &mut [Frame], scalar: Option<&str>, span: Span) -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { pointer, next }) => {
                let p = format!("{pointer}/{next}");
                *next += 1;
                Some(p)
            }
            Some(Frame::Mapping { pointer, key }) => match key.take() {
                None => {
                    let name = scalar.unwrap_or("?").to_string();
                    let p = format!("{pointer}/{}", escape(&name));
                    self.keys.insert(p, location(span));
                    *key = Some(name);
                    // A complex key (a collection) still needs a frame; give it a dummy pointer.
                    if scalar.is_none() { Some(format!("{pointer}/?")) } else { None }
                }
                Some(name) => Some(format!("{pointer}/{}", escape(&name))),
            },
        }
    }

    /// The position of the value at `pointer`, or of its closest located ancestor.
    pub fn value(&self, pointer: &str) -> Option<Location> {
        let mut p = pointer;
        loop {
            if let Some(loc) = self.values.get(p) {
                return Some(*loc);
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// The position of the key that introduces `pointer` (e.g. `goto` in `/steps/0/goto`),
    /// falling back to the value's position.
    pub fn key(&self, pointer: &str) -> Option<Location> {
        self.keys.get(pointer).copied().or_else(|| self.value(pointer))
    }
}

fn location(span: Span) -> Location {
    let width = if span.end.line() == span.start.line() { span.end.index().saturating_sub(span.start.index()) } else { 1 };
    Location { line: span.start.line(), column: span.start.col() + 1, width: width.max(1) }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_values_and_keys_by_pointer() {
        let src = "workflow: x\nsteps:\n  - id: a\n    goto: b\n  - id: b\n    end: true\n";
        let map = SourceMap::index(src);
        assert_eq!(map.value("/steps/0/goto").map(|l| (l.line, l.column, l.width)), Some((4, 11, 1)));
        assert_eq!(map.key("/steps/0/goto").map(|l| (l.line, l.column)), Some((4, 5)));
        assert_eq!(map.value("/steps/1/id").map(|l| (l.line, l.column)), Some((5, 9)));
        // An unknown pointer falls back to the closest ancestor.
        assert_eq!(map.value("/steps/1/nothing").map(|l| l.line), Some(5));
    }
}
