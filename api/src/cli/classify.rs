//! `pratica classify`: the `classifier` connector from the command line, and its evaluation
//! (alpha and threshold chosen by cross-validation inside the training part, then one measure
//! on the held-out part); and the set-up of `kind = "classifier"` instances from `pratica.toml`:
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
use pratica_classifier::{Assessment, ClassifierConnector, Model, Settings, assess, load_sample};

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
    /// Choose alpha and the routing threshold by 5-fold cross-validation inside the training
    /// part, then measure once on the held-out part with the chosen values.
    Evaluate {
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

/// Runs `pratica classify`. Output cut short by its reader (`pratica classify evaluate | head`)
/// ends quietly: a closed standard output is not an error.
pub fn run(args: ClassifyArgs, out: &mut impl Write) -> anyhow::Result<()> {
    match run_inner(args, out).and_then(|()| out.flush().map_err(anyhow::Error::from)) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Whether an error is the reader of standard output having gone away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run_inner(args: ClassifyArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = Config::discover(args.config.as_deref())?;
    let c = instance(&config, &args.connector)?;
    match args.command {
        ClassifyCommand::Evaluate { json } => {
            let (path, settings) = settings(&config, c).map_err(anyhow::Error::msg)?;
            let sample = load_sample(&path)?;
            let a = assess(&sample, settings)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &a)?;
                writeln!(out)?;
            } else {
                write_report(&path, settings, &a, out)?;
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

/// The evaluation for people: the cross-validation inside the training part, the choice,
/// then the held-out figures at the chosen values.
pub fn write_report(sample: &Path, configured: Settings, a: &Assessment, out: &mut impl Write) -> std::io::Result<()> {
    let (t, e) = (&a.tuning, &a.held_out);
    writeln!(out, "sample: {} ({} messages for training, {} held out)", sample.display(), e.train, e.held_out)?;
    writeln!(out, "\n1. choice by {}-fold cross-validation inside the {} training messages (held-out part not used):", t.folds, t.train)?;
    write!(out, "  {:>7} {:>9} {:>8}", "alpha", "accuracy", "log-loss")?;
    let thresholds: Vec<f64> = t.grid.first().map(|g| g.sweep.iter().map(|p| p.threshold).collect()).unwrap_or_default();
    for th in &thresholds {
        write!(out, " {:>12}", format!("auto@{th}"))?;
    }
    writeln!(out, "\n  {:>36} (share routed automatically / precision)", "")?;
    for g in &t.grid {
        write!(out, "  {:>7} {:>9} {:>8.3}", g.alpha, pct(g.accuracy), g.log_loss)?;
        for p in &g.sweep {
            write!(out, " {:>12}", format!("{:.0}/{:.1}", p.auto_share * 100.0, p.auto_precision * 100.0))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "  rule: the most mail routed automatically where the 95% lower bound of the cross-validated precision is >= {}",
        pct(t.target_precision)
    )?;
    writeln!(out, "  chosen: alpha {}, threshold {}", t.alpha, t.threshold)?;
    writeln!(
        out,
        "  cross-validated estimate: accuracy {}, routed automatically {}, precision {} (95% lower bound {})",
        pct(t.cv_accuracy),
        pct(t.cv_auto_share),
        pct(t.cv_auto_precision),
        pct(t.cv_precision_lower_bound)
    )?;
    if configured.alpha != t.alpha {
        writeln!(out, "  note: the configuration sets alpha {}; the connector uses that, not the chosen value", configured.alpha)?;
    }
    writeln!(out, "\n2. measured once on the {} held-out messages (alpha {}, threshold {}):", e.held_out, t.alpha, e.threshold)?;
    writeln!(out, "  accuracy:                              {}", pct(e.accuracy))?;
    writeln!(out, "  routed automatically (confidence >= {}): {}", e.threshold, pct(e.auto_share))?;
    writeln!(out, "  precision of the automatic routing:    {}", pct(e.auto_precision))?;
    writeln!(out, "\n  per label:\n    {:<22} {:>7} {:>9} {:>7}", "label", "support", "precision", "recall")?;
    for l in &e.per_label {
        writeln!(out, "    {:<22} {:>7} {:>9} {:>7}", l.label, l.support, pct(l.precision), pct(l.recall))?;
    }
    let labels: Vec<&String> = e.per_label.iter().map(|l| &l.label).collect();
    writeln!(out, "\n  confusion (rows: actual, columns: predicted, in label order):")?;
    for actual in &labels {
        let row = e.confusion.get(*actual);
        let cells: Vec<String> = labels.iter().map(|p| format!("{:>3}", row.and_then(|r| r.get(*p)).copied().unwrap_or(0))).collect();
        writeln!(out, "    {:<22} {}", actual, cells.join(" "))?;
    }
    Ok(())
}
