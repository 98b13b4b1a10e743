//! `pratica graph FILE --format svg|mermaid|dot`: draw a workflow.

use std::path::Path;

use pratica_engine::definition::{self, Catalog, Diagnostic};
use pratica_engine::graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Svg,
    Mermaid,
    Dot,
}

/// Why a diagram could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{file} is not a valid workflow:\n{rendered}")]
    Invalid { file: String, rendered: String, diagnostics: Vec<Diagnostic> },
}

/// Draws the workflow in `file`. Connector, schema and workflow names are not checked: a
/// diagram helps most while the workflow is still being written.
pub fn draw(file: &Path, format: GraphFormat) -> Result<String, GraphError> {
    let bytes = std::fs::read(file).map_err(|e| GraphError::Read(file.display().to_string(), e))?;
    let catalog = Catalog { any_connector: true, ..Catalog::builtin() };
    let plan = definition::compile_bytes(&bytes, &catalog).map_err(|diagnostics| {
        let source = String::from_utf8_lossy(&bytes);
        let rendered = diagnostics.iter().map(|d| d.render(&file.display().to_string(), &source)).collect::<Vec<_>>().join("\n");
        GraphError::Invalid { file: file.display().to_string(), rendered, diagnostics }
    })?;
    Ok(match format {
        GraphFormat::Svg => graph::to_svg(&plan),
        GraphFormat::Mermaid => graph::to_mermaid(&plan),
        GraphFormat::Dot => graph::to_dot(&plan),
    })
}
