//! `pratica classify`: the `classifier` connector from the command line, and its held-out
//! evaluation; and the set-up of `kind = "classifier"` instances from `pratica.toml`:
//!
//! ```toml
//! [connectors.classifier]
//! kind = "classifier"
//! training = "data/pec/sample.jsonl"   # relative to this file; JSON lines {id, subject, body, label}
//! alpha = 0.01                         # optional: L2 regularisation (higher: less confident)
//! max_iterations = 150                 # optional
//! min_count = 2                        # optional: messages a term must occur in to be a feature
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use pratica_classifier::{ClassifierConnector, Evaluation, Model, Settings, evaluate, load_sample};

use crate::config::{Config, ConnectorConfig};

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(subcommand)]
    pub command: ClassifyCommand,
    /// Configuration file declaring the classifier (default: ./pratica.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The classifier connector instance in the configuration.
    #[arg(long, global = true, default_value = "classifier")]
    pub connector: String,
}

#[derive(Subcommand)]
pub enum ClassifyCommand {
    /// Train on the training part of the sample and measure on the held-out part.
    Evaluate {
        /// Confidence from which mail is routed automatically (the workflow's threshold).
        #[arg(long, default_value_t = 0.7)]
        threshold: f64,
        /// Print the measures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Classify one message and print the connector's answer (JSON).
    Text {
        /// The message body (and subject with --subject).
        body: String,
        #[arg(long, default_value = "")]
        subject: String,
    },
}

/// The settings and training sample of a `kind = "classifier"` instance.
pub fn settings(config: &Config, c: &ConnectorConfig) -> Result<(PathBuf, Settings), String> {
    let mut training = None;
    let mut settings = Settings::default();
    for (key, value) in &c.settings {
        match (key.as_str(), value) {
            ("training", toml::Value::String(s)) => training = Some(s.clone()),
            ("alpha", toml::Value::Float(a)) if *a > 0.0 && a.is_finite() => settings.alpha = *a,
            ("max_iterations", toml::Value::Integer(n)) if *n > 0 => settings.max_iterations = *n as u64,
            ("min_count", toml::Value::Integer(n)) if *n > 0 => settings.min_count = *n as usize,
            (other, _) => return Err(format!("`{other}` is not a classifier setting, or has the wrong type or value")),
        }
    }
    let training = training.ok_or("a classifier needs `training = \"path/to/sample.jsonl\"` (relative to the configuration file)")?;
    let path = Path::new(&training);
    let path = if path.is_absolute() { path.to_path_buf() } else { config.dir.clone().unwrap_or_default().join(path) };
    Ok((path, settings))
}

/// Trains the connector of a `kind = "classifier"` instance (deterministic: same sample, same model).
pub fn connector(config: &Config, c: &ConnectorConfig) -> Result<ClassifierConnector, String> {
    let (path, settings) = settings(config, c)?;
    let model = Model::from_sample(&path, settings).map_err(|e| e.to_string())?;
    tracing::info!(training = %path.display(), labels = model.labels().len(), vocabulary = model.vocabulary_size(), "classifier trained");
    Ok(ClassifierConnector::new(model))
}

fn instance<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a ConnectorConfig> {
    let c = config.connectors.get(name).with_context(|| format!("the configuration has no connector `{name}`"))?;
    anyhow::ensure!(c.kind == "classifier", "connector `{name}` is of kind `{}`, not classifier", c.kind);
    Ok(c)
}

/// Runs `pratica classify`.
pub fn run(args: ClassifyArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = Config::discover(args.config.as_deref())?;
    let c = instance(&config, &args.connector)?;
    match args.command {
        ClassifyCommand::Evaluate { threshold, json } => {
            anyhow::ensure!((0.0..=1.0).contains(&threshold), "--threshold must be between 0 and 1");
            let (path, settings) = settings(&config, c).map_err(anyhow::Error::msg)?;
            let sample = load_sample(&path)?;
            let e = evaluate(&sample, settings, threshold)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &e)?;
                writeln!(out)?;
            } else {
                write_report(&path, &e, out)?;
            }
        }
        ClassifyCommand::Text { body, subject } => {
            let connector = connector(&config, c).map_err(anyhow::Error::msg)?;
            let answer = connector.answer(&serde_json::json!({"subject": subject, "body": body})).map_err(|e| anyhow::anyhow!("{e}"))?;
            serde_json::to_writer_pretty(&mut *out, &answer)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The evaluation for people.
pub fn write_report(sample: &Path, e: &Evaluation, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "sample: {} ({} messages for training, {} held out)", sample.display(), e.train, e.held_out)?;
    writeln!(out, "accuracy on the held-out part:        {}", pct(e.accuracy))?;
    writeln!(out, "routed automatically (confidence >= {}): {}", e.threshold, pct(e.auto_share))?;
    writeln!(out, "precision of the automatic routing:   {}", pct(e.auto_precision))?;
    writeln!(out, "\nper label:\n  {:<22} {:>7} {:>9} {:>7}", "label", "support", "precision", "recall")?;
    for l in &e.per_label {
        writeln!(out, "  {:<22} {:>7} {:>9} {:>7}", l.label, l.support, pct(l.precision), pct(l.recall))?;
    }
    let labels: Vec<&String> = e.per_label.iter().map(|l| &l.label).collect();
    writeln!(out, "\nconfusion (rows: actual, columns: predicted, in label order):")?;
    for actual in &labels {
        let row = e.confusion.get(*actual);
        let cells: Vec<String> = labels.iter().map(|p| format!("{:>3}", row.and_then(|r| r.get(*p)).copied().unwrap_or(0))).collect();
        writeln!(out, "  {:<22} {}", actual, cells.join(" "))?;
    }
    writeln!(out, "\nthreshold sweep:\n  {:>9} {:>10} {:>10}", "threshold", "automatic", "precision")?;
    for p in &e.sweep {
        writeln!(out, "  {:>9} {:>10} {:>10}", p.threshold, pct(p.auto_share), pct(p.auto_precision))?;
    }
    Ok(())
}
