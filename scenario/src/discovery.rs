//! Finding test files: the `*.test.yaml` files named on the command line or under a
//! directory, the workflow each one tests, the workflow files of a directory (for
//! sub-workflows), the `schemas/` directory that applies, and which scenarios the filter
//! selects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pratica_engine::definition;

/// Suffixes of test files.
pub const TEST_SUFFIXES: &[&str] = &[".test.yaml", ".test.yml"];

/// What to run and where to find the schemas.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only the scenarios whose name contains this text.
    pub filter: Option<String>,
    /// Directory of JSON Schemas for inputs and forms (default: the nearest `schemas/`
    /// directory beside or above the test file).
    pub schemas_dir: Option<PathBuf>,
}

impl RunOptions {
    /// Whether the filter selects the scenario named `name` (no filter selects every one).
    pub fn selects(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// Whether `path` is named like a test file.
pub(crate) fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    TEST_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The test files named by `paths`: test files as given, a workflow file's test file beside
/// it, directories searched recursively; sorted for stable output.
pub fn find_test_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_files(path, is_test_file, &mut out)?;
        } else if is_test_file(path) {
            if !path.is_file() {
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} does not exist", path.display())));
            }
            out.push(path.clone());
        } else {
            let beside = test_file_of(path);
            match beside {
                Some(t) if t.is_file() => out.push(t),
                _ if !path.exists() => {
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} does not exist", path.display())));
                }
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "{} has no test file beside it (expected {})",
                            path.display(),
                            test_file_of(path).unwrap_or_default().display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The files below `dir` (recursively, sorted) that `keep` accepts.
pub fn collect_files(dir: &Path, keep: fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, keep, out)?;
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// `x.yaml` → `x.test.yaml`.
fn test_file_of(workflow: &Path) -> Option<PathBuf> {
    let name = workflow.file_name()?.to_str()?;
    let stem = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml"))?;
    Some(workflow.with_file_name(format!("{stem}.test.yaml")))
}

/// `x.test.yaml` → `x.yaml` (or `x.yml`) beside it.
pub(crate) fn workflow_file_of(test: &Path) -> Option<PathBuf> {
    let name = test.file_name()?.to_str()?;
    let stem = TEST_SUFFIXES.iter().find_map(|s| name.strip_suffix(s))?;
    let yaml = test.with_file_name(format!("{stem}.yaml"));
    let yml = test.with_file_name(format!("{stem}.yml"));
    Some(if !yaml.is_file() && yml.is_file() { yml } else { yaml })
}

/// Workflow name → file, for the workflow files of a directory.
pub(crate) fn workflows_in(dir: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for path in entries.flatten().map(|e| e.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !is_test_file(&path)
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok((def, _)) = definition::load(&text)
        {
            out.entry(def.workflow).or_insert(path);
        }
    }
    out
}

/// The nearest `schemas/` directory beside or above the test file's directory.
pub(crate) fn find_schemas_dir(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let start = dir.canonicalize().ok()?;
    start.ancestors().map(|a| a.join("schemas")).find(|p| p.is_dir())
}
