//! The workflow files of a deployment on disk: which files are workflows, which schemas
//! exist, and the [`Catalog`] a workflow is checked against.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pratica_engine::definition::{self, Catalog};

use crate::config::Config;

/// Suffix of analyst test files that sit beside workflows (they are not workflows).
pub const TEST_SUFFIXES: &[&str] = &[".test.yaml", ".test.yml"];

/// Workflow files named by `paths`: files as given, directories searched recursively for
/// `*.yaml`/`*.yml` (test files excluded), sorted for stable output.
pub fn workflow_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            pratica_scenario::discovery::collect_files(path, is_workflow_file, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn is_workflow_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !TEST_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Schema names (`<name>.schema.json`) in a directory.
pub fn schema_names(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".schema.json")) {
            names.insert(stem.to_string());
        }
    }
    Ok(names)
}

/// The schemas directory for a workflow file: `explicit` if given, else `./schemas`, else
/// `schemas/` beside the file's directory (`workflows/x.yaml` → `schemas/`).
pub fn schemas_dir(explicit: Option<&Path>, workflow_file: &Path) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    let beside = workflow_file.parent().and_then(Path::parent).map(|p| p.join("schemas"));
    [Some(PathBuf::from("schemas")), beside].into_iter().flatten().find(|p| p.is_dir())
}

/// Names of the workflows defined by the `.yaml` files in the same directories as `files`,
/// so sub-workflow references between shipped workflows can be checked. Files that do not
/// load are skipped here (they get their own diagnostics).
pub fn workflow_names(files: &[PathBuf]) -> BTreeSet<String> {
    let dirs: BTreeSet<PathBuf> = files.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    let mut siblings: Vec<PathBuf> = files.to_vec();
    for dir in dirs {
        if let Ok(found) = workflow_files(&[if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir }]) {
            siblings.extend(found);
        }
    }
    siblings
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| definition::load(&text).ok())
        .map(|(def, _)| def.workflow)
        .collect()
}

/// The catalog for checking `file`: built-in and configured connectors, the schemas found
/// beside it, and the given workflow names.
pub fn catalog_for(file: &Path, config: &Config, schemas: Option<&Path>, workflows: &BTreeSet<String>) -> Catalog {
    let mut catalog = Catalog::builtin().with_connectors(config.connectors.keys().cloned()).with_workflows(workflows.iter().cloned());
    if let Some(dir) = schemas_dir(schemas, file)
        && let Ok(names) = schema_names(&dir)
    {
        catalog = catalog.with_schemas(names);
    }
    catalog
}
