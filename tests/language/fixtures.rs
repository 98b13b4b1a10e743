//! One invalid workflow per diagnostic code in tests/fixtures/invalid, named after the code
//! it must produce; the rendered diagnostics (positions included) are snapshot-tested.

use pratica_engine::definition::{Catalog, compile_bytes};
use pratica_tests::repo_path;

fn fixture_catalog() -> Catalog {
    Catalog::builtin()
        .with_connectors(["inps", "payments"])
        .with_schemas(["naspi-application", "naspi-review"])
        .with_workflows(["automated-payout", "fixture"])
}

fn render(name: &str, bytes: &[u8]) -> (Vec<&'static str>, String) {
    let diagnostics = compile_bytes(bytes, &fixture_catalog()).expect_err("an invalid fixture must not compile");
    let source = String::from_utf8_lossy(bytes);
    let rendered = diagnostics.iter().map(|d| d.render(name, &source)).collect::<Vec<_>>().join("\n");
    (diagnostics.iter().map(|d| d.code).collect(), rendered)
}

#[test]
fn every_invalid_fixture_reports_its_code_with_positions() {
    let dir = repo_path("tests/fixtures/invalid");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut codes_seen = std::collections::BTreeSet::new();
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (codes, rendered) = render(name, &bytes);
        if let Some(expected) = name.split('-').next().filter(|p| p.starts_with("WF")) {
            assert!(codes.contains(&expected), "{name} should report {expected}, got {codes:?}:\n{rendered}");
            codes_seen.insert(expected.to_string());
        }
        insta::assert_snapshot!(name.trim_end_matches(".yaml").to_string(), rendered);
    }
    // Every documented code has a fixture (except the size limit, tested in `hostile`).
    let documented = std::fs::read_to_string(repo_path("docs/ERRORS.md")).unwrap();
    for code in documented.split("## ").skip(1).filter_map(|s| s.get(..6)).filter(|c| c.starts_with("WF")) {
        if code != "WF0001" {
            assert!(codes_seen.contains(code), "no fixture in tests/fixtures/invalid for {code}");
        }
    }
}

#[test]
fn several_mistakes_are_all_reported_with_their_lines() {
    let bytes = std::fs::read(repo_path("tests/fixtures/invalid/many-mistakes.yaml")).unwrap();
    let diagnostics = compile_bytes(&bytes, &fixture_catalog()).unwrap_err();
    let found: Vec<(&str, usize)> = diagnostics.iter().map(|d| (d.code, d.location.map_or(0, |l| l.line))).collect();
    for expected in [
        ("WF0401", 5),  // unknown input schema
        ("WF0403", 9),  // 30 secs
        ("WF0102", 10), // retyr
        ("WF0301", 13), // incomplete expression
        ("WF0202", 15), // revew
        ("WF0303", 19), // ${ } inside text
        ("WF0201", 20), // compute twice
        ("WF0302", 24), // unclosed {{
    ] {
        assert!(found.contains(&expected), "expected {expected:?} in {found:?}");
    }
}
