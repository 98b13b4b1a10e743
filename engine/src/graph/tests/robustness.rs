//! Escaping, odd shapes of flow, size, and the small helpers.

use std::time::Duration;

use super::*;
use crate::graph::labels::MAX_LABEL;

#[test]
fn long_conditions_are_escaped_everywhere() {
    let plan = compile_source(
        r#"
workflow: escapes
version: 1
title: Escapes
steps:
  - id: pick
    switch:
      - when: '${ .a == "<&>\\" }'
        goto: done
  - id: other
    call: noop
  - id: done
    end: true
"#,
        &Catalog::builtin(),
    )
    .unwrap_or_else(|d| panic!("compiles: {d:#?}"));
    let svg = to_svg(&plan);
    assert_well_formed(&svg);
    assert!(svg.contains(r".a == &quot;&lt;&amp;&gt;\\&quot;"), "{svg}");
    assert!(to_dot(&plan).contains(r#"[label=".a == \"<&>\\\\\""]"#), "{}", to_dot(&plan));
    assert!(to_mermaid(&plan).contains(r#"|".a == #quot;#lt;#amp;#gt;\\#quot;"|"#), "{}", to_mermaid(&plan));
}

#[test]
fn helpers() {
    assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(shorten("a  b\n c"), "a b c");
    assert_eq!(shorten(&"x".repeat(40)).chars().count(), MAX_LABEL);
}

#[test]
fn tricky_shapes_render() {
    let cases = [
        "steps:\n  - id: only\n    call: noop\n",
        "steps:\n  - id: again\n    wait: { for: 1h }\n    goto: again\n",
        r#"steps:
  - id: pick
    switch:
      - when: ${ .a }
        goto: same
      - when: ${ .b }
        goto: same
      - default: same
  - id: same
    call: noop
"#,
        r#"steps:
  - id: outer
    foreach:
      over: ${ .input.xs }
      steps:
        - id: fan
          parallel:
            branches:
              - name: left
                steps:
                  - id: inner
                    foreach:
                      over: ${ .item }
                      steps:
                        - id: leaf
                          call: noop
                          catch:
                            - error: "*"
                              steps:
                                - id: stop
                                  end: true
              - name: right
                steps:
                  - id: boom
                    fail: { error: right.failed }
"#,
    ];
    for (k, steps) in cases.iter().enumerate() {
        let source = format!("workflow: tricky\nversion: 1\ntitle: Tricky\n{steps}");
        let plan = compile_source(&source, &Catalog::builtin()).unwrap_or_else(|d| panic!("case {k} compiles: {d:#?}"));
        let svg = to_svg_highlighting(&plan, &[StepIx(0)]);
        assert!(svg.starts_with("<svg") && svg.contains("pratica-current"), "case {k}");
        assert_well_formed(&svg);
        for step in &plan.steps {
            // The highlighted step's id follows its mark (`▶ only`).
            let shown = svg.contains(&format!(">{}</tspan>", step.id)) || svg.contains(&format!(">▶ {}</tspan>", step.id));
            assert!(shown, "case {k}: {}", step.id);
        }
    }
}

#[test]
fn large_workflow_renders() {
    let mut source = String::from("workflow: large\nversion: 1\ntitle: Large\nsteps:\n");
    for i in 0..150 {
        if i % 10 == 5 {
            source.push_str(&format!("  - id: s{i}\n    switch:\n      - when: ${{ .input.n > {i} }}\n        goto: s{}\n", i - 4));
        } else {
            source.push_str(&format!("  - id: s{i}\n    call: noop\n"));
        }
    }
    let plan = compile_source(&source, &Catalog::builtin()).unwrap_or_else(|d| panic!("compiles: {d:#?}"));
    let started = std::time::Instant::now();
    let svg = to_svg(&plan);
    assert!(svg.contains(">s149</tspan>"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
}
