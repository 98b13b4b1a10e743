use super::*;
use crate::definition::{Catalog, compile_source};

mod robustness;

/// Uses every kind of step, catch (with a handler and with a goto), compensation, a receive
/// timeout that loops back, and a condition with characters every format must escape.
const SAMPLE: &str = r#"
workflow: graph-sample
version: 1
title: Every construct
steps:
  - id: contributions
    call: http
    with: { url: "https://example.org/contributions" }
    catch:
      - error: "http.*"
        steps:
          - id: log_failure
            call: log
      - error: [timeout, unavailable]
        goto: reject
    compensate:
      - id: undo_contributions
        call: noop
  - id: check
    switch:
      - when: '${ .input.weeks < 13 and .input.note == "a&b" }'
        goto: reject
      - default: mark
  - id: mark
    set: { checked: true }
  - id: fetch
    parallel:
      branches:
        - name: registry
          steps:
            - id: registry_lookup
              call: http
        - name: papers
          steps:
            - id: documents
              receive:
                message: documents-received
                correlate: ${ .business_key }
                timeout: { after: 30d, goto: remind }
            - id: documents_ok
              end: true
            - id: remind
              call: log
              goto: documents
  - id: per_child
    foreach:
      over: ${ .input.children }
      as: child
      concurrency: 4
      steps:
        - id: notify_child
          call: log
  - id: pause
    wait: { for: 5d }
  - id: review
    human:
      title: "Review {{ input.name }}"
      assign: { role: naspi-operator }
      outcomes: [approve, reject]
  - id: decide
    switch:
      - when: ${ .steps.review.output.outcome == "reject" }
        goto: reject
  - id: done
    end: true
  - id: reject
    fail: { error: naspi.rejected }
"#;

fn sample() -> Plan {
    compile_source(SAMPLE, &Catalog::builtin()).unwrap_or_else(|d| panic!("the sample compiles: {d:#?}"))
}

/// Checks that `svg` is well-formed XML as far as these diagrams go: balanced tags, quoted
/// attributes without `<`, and `&` only in the five predefined entities.
pub(super) fn assert_well_formed(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        assert_entities(&rest[..start]);
        let end = rest[start..].find('>').expect("every tag is closed") + start;
        let tag = &rest[start + 1..end];
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(closing), "mismatched </{closing}>");
        } else {
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
            assert_entities(tag);
            if !tag.ends_with('/') {
                open.push(tag.split(|c: char| c.is_whitespace()).next().unwrap_or(tag));
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed {open:?}");
}

#[test]
#[should_panic(expected = "bare `&`")]
fn the_xml_check_catches_raw_ampersands() {
    assert_well_formed("<svg><text>a & b</text></svg>");
}

fn assert_entities(text: &str) {
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)), "bare `&` in {text}");
    }
}

fn node_of(plan: &Plan, id: &str) -> String {
    format!("s{}", plan.step_by_id(id).expect("the step exists").0)
}

#[test]
fn svg_is_xml_with_every_step() {
    let plan = sample();
    let svg = to_svg(&plan);
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_well_formed(&svg);
    for step in &plan.steps {
        let label = format!(">{}</tspan>", step.id);
        assert!(svg.split("<text").skip(1).any(|text| text.contains(&label)), "no <text> for step {}", step.id);
    }
    for label in ["timeout 30d", "compensate", "catch http.*", "for each", "default", "end", "failed"] {
        assert!(svg.contains(label), "missing {label}");
    }
    // The condition `.input.weeks < 13 and .input.note == "a&b"`, escaped and wrapped.
    assert!(svg.contains(".input.weeks &lt;"), "the condition's `<` is escaped");
    assert!(!svg.contains(" < 13"), "no raw `<` from labels");
}

#[test]
fn svg_highlights_current_steps() {
    let plan = sample();
    let review = plan.step_by_id("review").expect("review exists");
    let svg = to_svg_highlighting(&plan, &[review, StepIx(10_000)]);
    assert_eq!(svg.matches("pratica-current").count(), 1);
    assert!(svg.contains(&format!("pratica-current\" data-node=\"s{}\"", review.0)));
    assert!(!to_svg(&plan).contains("pratica-current"));
}

#[test]
fn svg_marks_done_failed_and_current_steps_with_a_symbol() {
    let plan = sample();
    let (contributions, review) = (plan.step_by_id("contributions").unwrap(), plan.step_by_id("review").unwrap());
    let marks = [(contributions, StepMark::Done), (review, StepMark::Done), (review, StepMark::Current), (StepIx(9_999), StepMark::Failed)];
    let svg = to_svg_marked(&plan, &marks);
    assert!(svg.contains(&format!("pratica-done\" data-node=\"s{}\"", contributions.0)), "{svg}");
    assert!(svg.contains(&format!("pratica-current\" data-node=\"s{}\"", review.0)), "current wins over done");
    assert_eq!(svg.matches("pratica-done").count(), 1);
    assert!(!svg.contains("pratica-failed-step"));
    let failed = to_svg_marked(&plan, &[(contributions, StepMark::Failed)]);
    assert!(failed.contains(&format!("pratica-failed-step\" data-node=\"s{}\"", contributions.0)) && failed.contains("✗ contributions"));
    assert!(svg.contains("✓ contributions") && svg.contains("▶ review"), "a symbol, not only a colour");
    assert!(svg.contains(StepMark::Done.color()) && svg.contains(StepMark::Current.color()));
}

#[test]
fn mermaid_has_nodes_and_labelled_edges() {
    let plan = sample();
    let mermaid = to_mermaid(&plan);
    assert!(mermaid.starts_with("flowchart TD\n"));
    for step in &plan.steps {
        assert!(mermaid.contains(&format!("    {}", node_of(&plan, &step.id))), "missing node for {}", step.id);
        assert!(mermaid.contains(&format!("\"{}<br>", step.id)), "missing label for {}", step.id);
    }
    let (contributions, review, reject) = (node_of(&plan, "contributions"), node_of(&plan, "review"), node_of(&plan, "reject"));
    assert!(mermaid.contains(&format!("{contributions}[\"contributions<br>call http\"]")));
    assert!(mermaid.contains(&format!("{review}(\"review<br>human task\")")));
    assert!(mermaid.contains(&format!("{reject}>\"reject<br>fail naspi.rejected\"]")));
    assert!(mermaid.contains("start --> s0"));
    assert!(mermaid.contains(&format!("{reject} --> failed")));
    assert!(mermaid.contains("-->|\"timeout 30d\"|"));
    assert!(mermaid.contains(&format!("{contributions} -.->|\"compensate\"| {}", node_of(&plan, "undo_contributions"))));
    assert!(mermaid.contains(&format!("{contributions} -.->|\"catch timeout, unavailable\"| {reject}")));
    assert!(mermaid.contains("-->|\"for each (concurrency 4)\"|"));
    assert!(mermaid.contains("-->|\"default\"|"));
    // `.input.weeks < 13 and .input.note == "a&b"`, cut to 30 characters.
    assert!(mermaid.contains("-->|\".input.weeks #lt; 13 and .input.…\"|"), "{mermaid}");
    assert!(!mermaid.contains("\"a&b"));
    assert!(!mermaid.contains("classDef end "), "`end` is a Mermaid keyword");
}

#[test]
fn mermaid_escapes_quotes() {
    assert_eq!(text::mermaid_escape(r#"a "b" <c> & #d | `e`"#), "a #quot;b#quot; #lt;c#gt; #amp; #35;d #124; #96;e#96;");
}

#[test]
fn dot_has_nodes_and_labelled_edges() {
    let plan = sample();
    let dot = to_dot(&plan);
    assert!(dot.starts_with("digraph workflow {\n") && dot.trim_end().ends_with('}'));
    for step in &plan.steps {
        assert!(dot.contains(&format!("    {} [label=\"{}\\n", node_of(&plan, &step.id), step.id)), "missing {}", step.id);
    }
    let (check, reject) = (node_of(&plan, "check"), node_of(&plan, "reject"));
    assert!(dot.contains(&format!("{check} -> {reject} [label=\".input.weeks < 13 and .input.…\"];")), "{dot}");
    assert!(dot.contains("[label=\"timeout 30d\"]"));
    assert!(dot.contains("[label=\"compensate\", style=dashed]"));
    assert!(dot.contains("[label=\"catch http.*\", style=dashed]"));
    assert!(dot.contains(&format!("{check} [label=\"check\\nswitch\", shape=diamond")));
    assert!(dot.contains("start -> s0;"));
}

#[test]
fn dot_escapes_quotes_and_backslashes() {
    assert_eq!(text::dot_escape(r#"say "hi" \n"#), r#"say \"hi\" \\n"#);
}

#[test]
fn structure_follows_blocks() {
    let plan = sample();
    let diagram = Diagram::of(&plan);
    let has = |from: &str, to: &str| {
        let ix = |id: &str| diagram.nodes.iter().position(|n| n.id == id).expect("node exists");
        diagram.edges.iter().any(|e| e.from == ix(from) && e.to == ix(to))
    };
    let fetch = plan.step_by_id("fetch").expect("fetch").0;
    let join = format!("j{fetch}");
    // Branch ends (and `end` in a branch) meet at the join, which continues after the parallel step.
    assert!(has(&node_of(&plan, "registry_lookup"), &join));
    assert!(has(&node_of(&plan, "documents_ok"), &join));
    assert!(has(&join, &node_of(&plan, "per_child")));
    // The receive's timeout loops back through `remind`.
    assert!(has(&node_of(&plan, "remind"), &node_of(&plan, "documents")));
    // The foreach body repeats, then the flow continues.
    assert!(has(&node_of(&plan, "notify_child"), &node_of(&plan, "per_child")));
    assert!(has(&node_of(&plan, "per_child"), &node_of(&plan, "pause")));
    // A handler without goto continues after the failed step; a compensation just ends.
    assert!(has(&node_of(&plan, "log_failure"), &node_of(&plan, "check")));
    assert!(!diagram.edges.iter().any(|e| diagram.nodes[e.from].id == node_of(&plan, "undo_contributions")));
    // A switch without default falls through; `end` goes to the finish.
    assert!(has(&node_of(&plan, "decide"), &node_of(&plan, "done")));
    assert!(has(&node_of(&plan, "done"), "finish"));
}
