//! The workflows shipped in workflows/ are valid, by our loader and by an independent
//! JSON Schema validator.

use std::process::Command;

use pratica_api::cli::validate::validate_paths;
use pratica_api::config::Config;
use pratica_tests::repo_path;

#[test]
fn shipped_workflows_are_valid() {
    let config = Config::load(&repo_path("pratica.toml")).unwrap();
    let reports = validate_paths(&[repo_path("workflows")], &config, Some(&repo_path("schemas"))).unwrap();
    assert!(reports.len() >= 2, "at least two shipped workflows");
    for r in &reports {
        assert!(r.valid, "{} is invalid: {:#?}", r.file, r.diagnostics);
    }
}

/// Python's `jsonschema` (a different implementation) agrees that every shipped workflow
/// matches schemas/workflow.schema.json. In CI the tool must be present.
#[test]
fn shipped_workflows_match_the_schema_by_an_independent_validator() {
    let script = repo_path("tests/tools/validate_schema.py");
    let output = Command::new("python3").arg(&script).arg(repo_path("schemas/workflow.schema.json")).arg(repo_path("workflows")).output();
    match output {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("valid"), "{stdout}");
        }
        Ok(out) if out.status.code() == Some(3) && std::env::var("CI").is_err() => {
            eprintln!("skipping: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out) => {
            panic!("independent validation failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => panic!("cannot run python3: {e}"),
    }
}

/// The embedded schema is the file in schemas/ (single source of truth).
#[test]
fn the_engine_embeds_the_published_schema() {
    let published = std::fs::read_to_string(repo_path("schemas/workflow.schema.json")).unwrap();
    assert_eq!(published, pratica_engine::definition::WORKFLOW_SCHEMA);
}

/// Every complete workflow example in docs/LANGUAGE.md (a ```yaml block that starts a
/// workflow) compiles, and so runs as documented.
#[test]
fn language_reference_examples_are_valid() {
    let doc = std::fs::read_to_string(repo_path("docs/LANGUAGE.md")).unwrap();
    let config = Config::load(&repo_path("pratica.toml")).unwrap();
    let schemas = pratica_api::workspace::schema_names(&repo_path("schemas")).unwrap();
    let catalog = pratica_engine::definition::Catalog::builtin().with_connectors(config.connectors.keys().cloned()).with_schemas(schemas);
    let mut checked = 0;
    for block in doc.split("```yaml\n").skip(1).filter_map(|b| b.split("```").next()) {
        let is_workflow = block.lines().any(|l| l.starts_with("workflow:"));
        if !is_workflow {
            continue;
        }
        if let Err(d) = pratica_engine::definition::compile_source(block, &catalog) {
            panic!("docs/LANGUAGE.md example does not compile:\n{block}\n{d:#?}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} complete examples found");
}
