//! The `pratica validate` and `pratica graph` commands, run as a user runs them.

use assert_cmd::Command;
use pratica_tests::{pratica_bin, repo_path, repo_root};

fn pratica() -> Command {
    let mut cmd = Command::new(pratica_bin());
    cmd.current_dir(repo_root());
    cmd
}

#[test]
fn validate_accepts_the_shipped_workflows() {
    let out = pratica().args(["validate", "workflows/"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("workflow file(s) valid"), "{stdout}");
}

#[test]
fn validate_reports_positions_and_carets_and_fails() {
    let out = pratica().args(["validate", "tests/fixtures/invalid/WF0202-unknown-step.yaml"]).assert().code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("error[WF0202]: there is no step `reveiw`"), "{stdout}");
    assert!(stdout.contains("--> tests/fixtures/invalid/WF0202-unknown-step.yaml:8:15"), "{stdout}");
    assert!(stdout.contains("^^^^^^"), "{stdout}");
    assert!(stdout.contains("did you mean `review`?"), "{stdout}");
}

#[test]
fn validate_json_is_machine_readable() {
    let out = pratica().args(["validate", "--format", "json", "tests/fixtures/invalid/many-mistakes.yaml", "workflows/"]).assert().code(1);
    let reports: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("valid JSON");
    let reports = reports.as_array().unwrap();
    let bad = reports.iter().find(|r| r["file"].as_str().unwrap().ends_with("many-mistakes.yaml")).unwrap();
    assert_eq!(bad["valid"], false);
    let first = &bad["diagnostics"][0];
    assert!(first["code"].as_str().unwrap().starts_with("WF"));
    assert!(first["line"].as_u64().unwrap() > 0 && first["column"].as_u64().unwrap() > 0);
    assert!(reports.iter().filter(|r| r["valid"] == true).count() >= 2);
}

#[test]
fn graph_draws_every_shipped_workflow_as_svg_with_a_node_per_step() {
    let config = pratica_api::config::Config::load(&repo_path("pratica.toml")).unwrap();
    let reports = pratica_api::cli::validate::validate_paths(&[repo_path("workflows")], &config, None).unwrap();
    for file in std::fs::read_dir(repo_path("workflows")).unwrap().map(|e| e.unwrap().path()) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".yaml") || name.contains(".test.") {
            continue;
        }
        let out = pratica().args(["graph", "--format", "svg"]).arg(&file).assert().success();
        let svg = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(svg.trim_start().starts_with("<svg") || svg.trim_start().starts_with("<?xml"), "{name}: not an SVG");
        let source = std::fs::read_to_string(&file).unwrap();
        let plan = pratica_engine::definition::compile_source(
            &source,
            &pratica_engine::definition::Catalog::builtin().with_connectors(config.connectors.keys().cloned()),
        )
        .unwrap();
        for step in &plan.steps {
            assert!(
                svg.contains(&format!(">{}", step.id)) || svg.contains(&format!("{}<", step.id)),
                "{name}: no node for step `{}`",
                step.id
            );
        }
    }
    assert!(!reports.is_empty());
}

#[test]
fn graph_formats_mermaid_and_dot() {
    let file = "tests/fixtures/valid/all-constructs.yaml";
    let out = pratica().args(["graph", "--format", "mermaid", file]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).starts_with("flowchart"));
    let out = pratica().args(["graph", "--format", "dot", file]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("digraph"));
}

#[test]
fn graph_of_an_invalid_file_shows_the_diagnostics() {
    let out = pratica().args(["graph", "tests/fixtures/invalid/WF0201-duplicate-step-id.yaml"]).assert().code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("WF0201"));
}
