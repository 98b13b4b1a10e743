//! The text formats: Mermaid `flowchart TD` and Graphviz DOT.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Diagram, NodeKind};

/// Renders a Mermaid flowchart; labels are quoted, with `"`, `<`, `>`, `&`, `#`, `|` and
/// backticks written as Mermaid entity codes and lines joined with `<br>`.
pub(super) fn mermaid(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    for node in &diagram.nodes {
        let (open, close) = mermaid_shape(node.kind);
        let label = node.lines.iter().map(|line| mermaid_escape(line)).collect::<Vec<_>>().join("<br>");
        writeln!(out, "    {}{open}\"{label}\"{close}", node.id).expect("writing to a String cannot fail");
    }
    for edge in &diagram.edges {
        let (from, to) = (&diagram.nodes[edge.from].id, &diagram.nodes[edge.to].id);
        let arrow = if edge.dashed { "-.->" } else { "-->" };
        let line = match edge.label.as_str() {
            "" => format!("    {from} {arrow} {to}"),
            label => format!("    {from} {arrow}|\"{}\"| {to}", mermaid_escape(label)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let mut classes: BTreeMap<NodeKind, Vec<&str>> = BTreeMap::new();
    for node in &diagram.nodes {
        classes.entry(node.kind).or_default().push(&node.id);
    }
    for (kind, ids) in classes {
        let name = kind.name();
        writeln!(out, "    classDef {name} fill:{},stroke:#555555", kind.fill()).expect("writing to a String cannot fail");
        writeln!(out, "    class {} {name}", ids.join(",")).expect("writing to a String cannot fail");
    }
    out
}

fn mermaid_shape(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Start => ("((", "))"),
        NodeKind::Finish | NodeKind::Failed => ("(((", ")))"),
        NodeKind::Parallel => ("[/", "\\]"),
        NodeKind::Join => ("[\\", "/]"),
        NodeKind::Switch => ("{", "}"),
        NodeKind::Foreach => ("{{", "}}"),
        NodeKind::Wait | NodeKind::Receive | NodeKind::End => ("([", "])"),
        NodeKind::Human => ("(", ")"),
        NodeKind::Subworkflow => ("[[", "]]"),
        NodeKind::Fail => (">", "]"),
        NodeKind::Call | NodeKind::Set => ("[", "]"),
    }
}

/// Escapes text for inside a quoted Mermaid label.
pub(super) fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Renders a Graphviz digraph; every label is a quoted string with `\` and `"` escaped.
pub(super) fn dot(diagram: &Diagram) -> String {
    let mut out = String::from("digraph workflow {\n");
    out.push_str("    graph [rankdir=TB, fontname=\"Helvetica\"];\n");
    out.push_str("    node [fontname=\"Helvetica\", fontsize=11, style=filled, fillcolor=\"#ffffff\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    for node in &diagram.nodes {
        let (shape, style) = dot_shape(node.kind);
        let label = node.lines.iter().map(|line| dot_escape(line)).collect::<Vec<_>>().join("\\n");
        writeln!(out, "    {} [label=\"{label}\", shape={shape}, style=\"{style}\", fillcolor=\"{}\"];", node.id, node.kind.fill())
            .expect("writing to a String cannot fail");
    }
    for edge in &diagram.edges {
        let (from, to) = (&diagram.nodes[edge.from].id, &diagram.nodes[edge.to].id);
        let mut attrs = Vec::new();
        if !edge.label.is_empty() {
            attrs.push(format!("label=\"{}\"", dot_escape(&edge.label)));
        }
        if edge.dashed {
            attrs.push("style=dashed".to_string());
        }
        match attrs.is_empty() {
            true => writeln!(out, "    {from} -> {to};"),
            false => writeln!(out, "    {from} -> {to} [{}];", attrs.join(", ")),
        }
        .expect("writing to a String cannot fail");
    }
    out.push_str("}\n");
    out
}

/// Graphviz shape and style per kind.
fn dot_shape(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Start => ("circle", "filled"),
        NodeKind::Finish | NodeKind::Failed => ("doublecircle", "filled"),
        NodeKind::Parallel => ("trapezium", "filled"),
        NodeKind::Join => ("invtrapezium", "filled"),
        NodeKind::Switch => ("diamond", "filled"),
        NodeKind::Foreach => ("hexagon", "filled"),
        NodeKind::Wait | NodeKind::Receive | NodeKind::Human | NodeKind::End => ("box", "rounded,filled"),
        NodeKind::Subworkflow => ("box3d", "filled"),
        NodeKind::Fail => ("octagon", "filled"),
        NodeKind::Call | NodeKind::Set => ("box", "filled"),
    }
}

/// Escapes text for inside a double-quoted DOT string: `\` (which would start an escape
/// such as `\n` or `\N`) and `"`; line breaks become spaces.
pub(super) fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
