//! The `pratica` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pratica_api::cli::graph::{self, GraphFormat};
use pratica_api::cli::validate;
use pratica_api::config::Config;

#[derive(Parser)]
#[command(name = "pratica", version, about = "Pratica: durable workflows for public-administration case processing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files (or directories of them) and report every problem with its position.
    Validate {
        /// Workflow files or directories (searched recursively for *.yaml, *.yml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output for people (text) or tools (json).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Configuration file declaring connector instances (default: ./pratica.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of JSON Schemas for inputs and forms (default: ./schemas, or schemas/ beside the workflows directory).
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
    /// Draw a workflow as a diagram.
    Graph {
        /// The workflow file.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Svg)]
        format: GraphFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths, format, config, schemas } => {
            let config = Config::discover(config.as_deref())?;
            let reports = validate::validate_paths(&paths, &config, schemas.as_deref()).context("cannot list the workflow files")?;
            let mut out = std::io::stdout().lock();
            match format {
                OutputFormat::Text => validate::write_human(&reports, &mut out)?,
                OutputFormat::Json => validate::write_json(&reports, &mut out)?,
            }
            let all_valid = !reports.is_empty() && reports.iter().all(|r| r.valid);
            Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Graph { file, format, output } => match graph::draw(&file, format) {
            Ok(diagram) => {
                match output {
                    Some(path) => std::fs::write(&path, diagram).with_context(|| format!("cannot write {}", path.display()))?,
                    None => print!("{diagram}"),
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(graph::GraphError::Invalid { rendered, .. }) => {
                eprint!("{rendered}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        },
    }
}
