//! Hostile input: the loader answers quickly with a diagnostic, never a panic, with bounded
//! memory (the YAML budget stops alias expansion and nesting before they grow).

use std::time::{Duration, Instant};

use pratica_engine::definition::{Catalog, MAX_SOURCE_BYTES, code, compile_bytes};
use proptest::prelude::*;

fn assert_fast_error(bytes: &[u8], expected: &str) {
    let start = Instant::now();
    let diagnostics = compile_bytes(bytes, &Catalog::builtin()).expect_err("hostile input must be refused");
    // Generous for a loaded CI machine; an unbounded expansion would take far longer (or exhaust memory).
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(diagnostics.iter().any(|d| d.code == expected), "expected {expected}, got {diagnostics:?}");
}

#[test]
fn alias_bombs_are_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..40 {
        let p = i - 1;
        yaml.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    assert_fast_error(yaml.as_bytes(), code::YAML_LIMIT);
}

#[test]
fn deep_nesting_is_refused() {
    let flow = format!("steps: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_fast_error(flow.as_bytes(), code::YAML_LIMIT);
    let mut block = String::new();
    for depth in 0..500 {
        block.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    assert_fast_error(block.as_bytes(), code::YAML_LIMIT);
}

#[test]
fn huge_files_and_scalars_are_refused() {
    let huge = format!("workflow: x\ntitle: \"{}\"\n", "a".repeat(MAX_SOURCE_BYTES + 1));
    assert_fast_error(huge.as_bytes(), code::FILE_UNREADABLE);
}

#[test]
fn binary_garbage_is_refused() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let diagnostics = compile_bytes(&garbage, &Catalog::builtin()).unwrap_err();
    assert!(!diagnostics.is_empty());
    assert_fast_error(b"\x00\x01\x02workflow", code::YAML_SYNTAX);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the loader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = compile_bytes(&bytes, &Catalog::builtin());
    }

    /// Arbitrary YAML-ish text (keys, indentation, flow markers, expressions) never panics,
    /// and every diagnostic it yields has a stable code.
    #[test]
    fn arbitrary_yamlish_text_never_panics(text in "(workflow: x\nversion: 1\ntitle: t\n)?(steps:\n)?([ -]{0,6}(id|call|goto|switch|when|default|with|foreach|over|steps|end|fail|human|title|assign|role|\\$\\{ \\.[a-z.]{0,8} \\}|\\{\\{ [a-z.]{0,6} \\}\\}|[a-z_]{1,6})(: ?)?([\\[\\]{}&*|>!,'\"0-9a-z ]{0,12})\n){0,24}") {
        if let Err(diagnostics) = compile_bytes(text.as_bytes(), &Catalog::builtin()) {
            for d in diagnostics {
                prop_assert!(d.code.starts_with("WF") && d.code.len() == 6);
            }
        }
    }
}
