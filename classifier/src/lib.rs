//! The `classifier` connector: routes incoming certified mail (PEC) to the competent office.
//!
//! A multinomial logistic regression (linfa-logistic) over TF-IDF features of normalised
//! Italian text: lowercase, accents folded, stop words out, a light suffix stemmer, word
//! unigrams and bigrams (the subject counts twice). It trains at start-up from a labelled
//! JSON-lines sample (`{"id", "subject", "body", "label"}` per line), deterministically: the
//! same sample gives the same model and the same answers.
//!
//! `classify` answers `{label, confidence, alternatives, explanation}`; the explanation names
//! the words that weighed most for the chosen office against the runner-up. Whether the
//! confidence is enough to route automatically is the workflow's decision (its threshold).
//!
//! A fixed part of the sample (about 25 %, chosen by hashing each message's id) is held out.
//! [`tune`] chooses the regularisation and the routing threshold by 5-fold cross-validation
//! inside the training part only; [`evaluate`] then measures once on the held-out part with
//! the chosen values ([`assess`] does both: `pratica classify evaluate`).

mod text;

use std::collections::BTreeMap;
use std::path::Path;

use linfa::Dataset;
use linfa::traits::Fit;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2, ArrayView1};
use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use text::{features, normalise, tokens};

/// Texts longer than this are cut before classification (a PEC body is rarely longer).
pub const MAX_TEXT_CHARS: usize = 20_000;

/// One labelled message of the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("cannot read the training sample {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error("the training sample needs at least two labels with messages, found {0}")]
    TooFewLabels(usize),
    #[error("training failed: {0}")]
    Training(String),
}

/// Reads a JSON-lines sample; blank lines and lines starting with `#` are skipped.
pub fn load_sample(path: &Path) -> Result<Vec<Example>, ClassifierError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClassifierError::Read { path: path.display().to_string(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let example: Example = serde_json::from_str(line).map_err(|e| ClassifierError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if example.label.trim().is_empty() {
            return Err(ClassifierError::Parse { path: path.display().to_string(), line: i + 1, message: "empty `label`".into() });
        }
        out.push(example);
    }
    Ok(out)
}

/// Whether a message belongs to the fixed held-out part (about a quarter, by the SHA-256 of its id).
pub fn is_held_out(id: &str) -> bool {
    Sha256::digest(id.as_bytes())[0] < 64
}

/// The training part and the held-out part of a sample.
pub fn split(sample: &[Example]) -> (Vec<Example>, Vec<Example>) {
    sample.iter().cloned().partition(|e| !is_held_out(&e.id))
}

/// Model settings (`pratica.toml`: `alpha`, `max_iterations`, `min_count`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// L2 regularisation strength.
    pub alpha: f64,
    pub max_iterations: u64,
    /// A term must occur in at least this many training messages to be a feature.
    pub min_count: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { alpha: 0.01, max_iterations: 150, min_count: 2 }
    }
}

/// Terms to TF-IDF vectors.
struct Vectorizer {
    terms: Vec<String>,
    index: BTreeMap<String, usize>,
    idf: Vec<f64>,
}

impl Vectorizer {
    /// Sub-linear TF-IDF, L2-normalised.
    fn vector(&self, doc: &[String]) -> Array1<f64> {
        let mut v = Array1::<f64>::zeros(self.terms.len());
        for t in doc {
            if let Some(&i) = self.index.get(t) {
                v[i] += 1.0;
            }
        }
        for (i, x) in v.iter_mut().enumerate() {
            if *x > 0.0 {
                *x = (1.0 + x.ln()) * self.idf[i];
            }
        }
        let norm = v.dot(&v).sqrt();
        if norm > 0.0 {
            v /= norm;
        }
        v
    }
}

/// A trained model.
pub struct Model {
    vectorizer: Vectorizer,
    labels: Vec<String>,
    regression: MultiFittedLogisticRegression<f64, usize>,
    trained_on: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("labels", &self.labels)
            .field("terms", &self.vectorizer.terms.len())
            .field("trained_on", &self.trained_on)
            .finish()
    }
}

/// A label with its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub label: String,
    pub confidence: f64,
}

/// A word (or pair of words) and how much it pushed towards the chosen label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weighed {
    pub word: String,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The words that weighed most for the chosen label against the runner-up, strongest first.
    pub words: Vec<String>,
    pub weights: Vec<Weighed>,
    /// How many of the message's terms the model knows.
    pub known_terms: usize,
    pub text_it: String,
    pub text_en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub label: String,
    pub confidence: f64,
    /// The other labels, most likely first (at most three).
    pub alternatives: Vec<Scored>,
    pub explanation: Explanation,
}

impl Model {
    /// Trains on `examples` (in a deterministic order: the same examples give the same model).
    pub fn train(examples: &[Example], settings: Settings) -> Result<Model, ClassifierError> {
        let labels: Vec<String> = {
            let mut l: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
            l.sort();
            l.dedup();
            l
        };
        if labels.len() < 2 {
            return Err(ClassifierError::TooFewLabels(labels.len()));
        }
        let docs: Vec<Vec<String>> = examples.iter().map(|e| features(&e.subject, &e.body)).collect();
        let mut document_count: BTreeMap<&str, usize> = BTreeMap::new();
        for doc in &docs {
            let mut seen: Vec<&str> = doc.iter().map(String::as_str).collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                *document_count.entry(t).or_default() += 1;
            }
        }
        let n = docs.len() as f64;
        let mut terms = Vec::new();
        let mut idf = Vec::new();
        for (term, count) in &document_count {
            if *count >= settings.min_count.max(1) {
                terms.push(term.to_string());
                idf.push(((1.0 + n) / (1.0 + *count as f64)).ln() + 1.0);
            }
        }
        let index: BTreeMap<String, usize> = terms.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let vectorizer = Vectorizer { terms, index, idf };
        let mut x = Array2::<f64>::zeros((docs.len(), vectorizer.terms.len()));
        for (row, doc) in docs.iter().enumerate() {
            x.row_mut(row).assign(&vectorizer.vector(doc));
        }
        let y: Array1<usize> = examples.iter().map(|e| labels.binary_search(&e.label).unwrap_or(0)).collect();
        let regression = MultiLogisticRegression::default()
            .alpha(settings.alpha)
            .max_iterations(settings.max_iterations)
            .fit(&Dataset::new(x, y))
            .map_err(|e| ClassifierError::Training(e.to_string()))?;
        Ok(Model { vectorizer, labels, regression, trained_on: examples.len() })
    }

    /// Trains on the training part of the sample at `path` (the held-out part is left out so
    /// that `evaluate` measures the same model the connector uses).
    pub fn from_sample(path: &Path, settings: Settings) -> Result<Model, ClassifierError> {
        let sample = load_sample(path)?;
        let (train, _) = split(&sample);
        Model::train(&train, settings)
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vectorizer.terms.len()
    }

    pub fn trained_on(&self) -> usize {
        self.trained_on
    }

    /// Classifies one message.
    pub fn classify(&self, subject: &str, body: &str) -> Classification {
        let subject: String = subject.chars().take(MAX_TEXT_CHARS).collect();
        let body: String = body.chars().take(MAX_TEXT_CHARS).collect();
        let v = self.vectorizer.vector(&features(&subject, &body));
        let known_terms = v.iter().filter(|x| **x > 0.0).count();
        let mut scored = self.probabilities(&v);
        // Highest probability first; ties by label order, so the answer is deterministic.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let (best, confidence) = scored[0];
        let runner_up = scored.get(1).map(|s| s.0);
        let weights = self.weigh(&v, best, runner_up);
        let label = self.labels[best].clone();
        let alternatives: Vec<Scored> =
            scored.iter().skip(1).take(3).map(|(c, p)| Scored { label: self.labels[*c].clone(), confidence: round(*p) }).collect();
        let explanation = explain(&label, confidence, &alternatives, weights, known_terms);
        Classification { label, confidence: round(confidence), alternatives, explanation }
    }

    /// `(label index, probability)` of every label for a vector.
    fn probabilities(&self, v: &Array1<f64>) -> Vec<(usize, f64)> {
        let probabilities = self.regression.predict_probabilities(&v.view().insert_axis(ndarray::Axis(0)));
        let row = probabilities.row(0);
        self.regression.classes().iter().enumerate().map(|(col, class)| (*class, row[col])).collect()
    }

    /// Classifies one message and also gives the probability the model assigns to `label`
    /// (0 for a label it does not know): for the log-loss of the cross-validation.
    fn classify_with_probability_of(&self, subject: &str, body: &str, label: &str) -> (Classification, f64) {
        let c = self.classify(subject, body);
        let v = self.vectorizer.vector(&features(subject, body));
        let p = match self.labels.binary_search_by(|l| l.as_str().cmp(label)) {
            Ok(i) => self.probabilities(&v).into_iter().find(|(c, _)| *c == i).map_or(0.0, |(_, p)| p),
            Err(_) => 0.0,
        };
        (c, p)
    }

    /// The terms of `v` that pushed most towards `best` against `other`: the term's value
    /// times the difference of the two labels' coefficients.
    fn weigh(&self, v: &Array1<f64>, best: usize, other: Option<usize>) -> Vec<Weighed> {
        let column = |class: usize| -> Option<ArrayView1<'_, f64>> {
            let col = self.regression.classes().iter().position(|c| *c == class)?;
            Some(self.regression.params().column(col))
        };
        let Some(w_best) = column(best) else { return Vec::new() };
        let w_other = other.and_then(column);
        let mut contributions: Vec<(usize, f64)> = v
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > 0.0)
            .map(|(i, x)| (i, x * (w_best[i] - w_other.as_ref().map_or(0.0, |w| w[i]))))
            .filter(|(_, c)| *c > 0.0)
            .collect();
        contributions.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        contributions
            .into_iter()
            .take(6)
            .map(|(i, c)| Weighed { word: self.vectorizer.terms[i].replace('_', " "), weight: round(c) })
            .collect()
    }
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn explain(label: &str, confidence: f64, alternatives: &[Scored], weights: Vec<Weighed>, known_terms: usize) -> Explanation {
    let words: Vec<String> = weights.iter().take(5).map(|w| w.word.clone()).collect();
    let quoted_it = words.iter().map(|w| format!("«{w}»")).collect::<Vec<_>>().join(", ");
    let quoted_en = words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ");
    let pct = |p: f64| format!("{:.0}%", p * 100.0);
    let (text_it, text_en) = if known_terms == 0 {
        (
            format!("Nessuna parola del messaggio è nota al modello: la stima per «{label}» ({}) non è affidabile.", pct(confidence)),
            format!("The model knows none of the message's words: the estimate for \"{label}\" ({}) is not reliable.", pct(confidence)),
        )
    } else {
        let alt_it =
            alternatives.first().map(|a| format!(" Alternativa più vicina: «{}» ({}).", a.label, pct(a.confidence))).unwrap_or_default();
        let alt_en =
            alternatives.first().map(|a| format!(" Closest alternative: \"{}\" ({}).", a.label, pct(a.confidence))).unwrap_or_default();
        let why_it = if words.is_empty() { String::new() } else { format!(" Le parole che hanno pesato di più: {quoted_it}.") };
        let why_en = if words.is_empty() { String::new() } else { format!(" The words that weighed most: {quoted_en}.") };
        (
            format!("Classificata come «{label}» con confidenza {}.{why_it}{alt_it}", pct(confidence)),
            format!("Classified as \"{label}\" with confidence {}.{why_en}{alt_en}", pct(confidence)),
        )
    };
    Explanation { words, weights, known_terms, text_it, text_en }
}

/// Measures of a model on the held-out part of a sample at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub train: usize,
    pub held_out: usize,
    pub threshold: f64,
    /// Share of held-out messages whose predicted label is right (all of them, routed or not).
    pub accuracy: f64,
    /// Share of held-out messages routed automatically (confidence ≥ threshold).
    pub auto_share: f64,
    /// Share of the automatically routed messages that went to the right office.
    pub auto_precision: f64,
    pub per_label: Vec<LabelMeasures>,
    /// `confusion[actual][predicted]` = messages.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelMeasures {
    pub label: String,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdPoint {
    pub threshold: f64,
    pub auto_share: f64,
    pub auto_precision: f64,
    /// Messages routed automatically (confidence ≥ threshold), and how many of them wrongly.
    pub routed: usize,
    pub misrouted: usize,
    /// The lower end of the 95 % Wilson score interval of `auto_precision`: with this few
    /// messages, the precision one can count on.
    pub precision_lower_bound: f64,
}

/// Trains on the training part of `sample` and measures on its held-out part at one threshold.
/// Choose `settings.alpha` and `threshold` beforehand without the held-out part ([`tune`]),
/// otherwise the figures are optimistic; [`assess`] does both.
pub fn evaluate(sample: &[Example], settings: Settings, threshold: f64) -> Result<Evaluation, ClassifierError> {
    let (train, held_out) = split(sample);
    let model = Model::train(&train, settings)?;
    let predictions: Vec<(String, String, f64)> = held_out
        .iter()
        .map(|e| {
            let c = model.classify(&e.subject, &e.body);
            (e.label.clone(), c.label, c.confidence)
        })
        .collect();
    let n = predictions.len().max(1) as f64;
    let point = sweep_of(&predictions)(threshold);
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (actual, predicted, _) in &predictions {
        *confusion.entry(actual.clone()).or_default().entry(predicted.clone()).or_default() += 1;
    }
    let per_label = model
        .labels()
        .iter()
        .map(|l| {
            let tp = predictions.iter().filter(|p| &p.0 == l && &p.1 == l).count();
            let predicted = predictions.iter().filter(|p| &p.1 == l).count();
            let support = predictions.iter().filter(|p| &p.0 == l).count();
            LabelMeasures {
                label: l.clone(),
                support,
                precision: if predicted == 0 { 0.0 } else { round(tp as f64 / predicted as f64) },
                recall: if support == 0 { 0.0 } else { round(tp as f64 / support as f64) },
            }
        })
        .collect();
    let accuracy = round(predictions.iter().filter(|p| p.0 == p.1).count() as f64 / n);
    Ok(Evaluation {
        train: train.len(),
        held_out: held_out.len(),
        threshold,
        accuracy,
        auto_share: point.auto_share,
        auto_precision: point.auto_precision,
        per_label,
        confusion,
    })
}

/// Cross-validation folds inside the training part.
pub const FOLDS: usize = 5;

/// The regularisation strengths tried by [`tune`].
pub const ALPHAS: [f64; 5] = [0.001, 0.003, 0.01, 0.03, 0.1];

/// The routing thresholds tried by [`tune`] (and reported in the sweeps).
pub const THRESHOLDS: [f64; 11] = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9];

/// What [`tune`] aims at: the mail routed automatically goes to the right office at least this
/// often (the lower end of the 95 % interval of the cross-validated precision must reach it).
pub const TARGET_PRECISION: f64 = 0.98;

/// The cross-validation fold (0..[`FOLDS`]) of a training message: by the SHA-256 of its id,
/// independently of the held-out split (which uses the first byte).
pub fn fold_of(id: &str) -> usize {
    let digest = Sha256::digest(id.as_bytes());
    usize::from(u16::from_be_bytes([digest[1], digest[2]])) % FOLDS
}

/// Cross-validated measures of one regularisation strength (out-of-fold predictions of the
/// whole training part, pooled).
#[derive(Debug, Clone, Serialize)]
pub struct CvAlpha {
    pub alpha: f64,
    pub accuracy: f64,
    /// Mean negative log-probability of the right label (lower is better calibrated).
    pub log_loss: f64,
    pub sweep: Vec<ThresholdPoint>,
}

/// The choice of `alpha` and the threshold by cross-validation inside the training part.
#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    pub folds: usize,
    /// Training messages (the held-out part is not used).
    pub train: usize,
    pub target_precision: f64,
    pub alpha: f64,
    pub threshold: f64,
    /// The cross-validated estimates at the chosen values.
    pub cv_accuracy: f64,
    pub cv_auto_share: f64,
    pub cv_auto_precision: f64,
    pub cv_precision_lower_bound: f64,
    pub grid: Vec<CvAlpha>,
}

fn sweep_of(predictions: &[(String, String, f64)]) -> impl Fn(f64) -> ThresholdPoint + '_ {
    let n = predictions.len().max(1) as f64;
    move |t: f64| {
        let routed: Vec<_> = predictions.iter().filter(|p| p.2 >= t).collect();
        let right = routed.iter().filter(|p| p.0 == p.1).count();
        ThresholdPoint {
            threshold: t,
            auto_share: round(routed.len() as f64 / n),
            auto_precision: if routed.is_empty() { 1.0 } else { round(right as f64 / routed.len() as f64) },
            routed: routed.len(),
            misrouted: routed.len() - right,
            precision_lower_bound: round(wilson_lower_bound(right, routed.len())),
        }
    }
}

/// The lower end of the 95 % Wilson score interval of `successes` out of `trials` (0 without trials).
pub fn wilson_lower_bound(successes: usize, trials: usize) -> f64 {
    if trials == 0 {
        return 0.0;
    }
    let (n, z) = (trials as f64, 1.959_964);
    let p = successes as f64 / n;
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (centre - spread) / (1.0 + z * z / n)
}

/// Chooses `alpha` and the routing threshold using only the training part of `sample`:
/// [`FOLDS`]-fold cross-validation (deterministic folds, [`fold_of`]) for every alpha of
/// [`ALPHAS`] and every threshold of [`THRESHOLDS`], the out-of-fold predictions of the whole
/// training part are pooled; among the (alpha, threshold) pairs where the lower end of the
/// 95 % Wilson interval of the automatic routing's precision reaches [`TARGET_PRECISION`],
/// the one that routes the most mail automatically (ties: the higher threshold, then the
/// higher alpha). When none does, the pair with the highest lower bound. The held-out part is
/// never read.
pub fn tune(sample: &[Example], settings: Settings) -> Result<Tuning, ClassifierError> {
    let (train, _) = split(sample);
    let mut grid = Vec::new();
    for alpha in ALPHAS {
        let s = Settings { alpha, ..settings };
        let mut predictions: Vec<(String, String, f64)> = Vec::new();
        let mut log_loss = 0.0;
        for fold in 0..FOLDS {
            let (rest, part): (Vec<Example>, Vec<Example>) = train.iter().cloned().partition(|e| fold_of(&e.id) != fold);
            if part.is_empty() {
                continue;
            }
            let model = Model::train(&rest, s)?;
            for e in &part {
                let (c, p_right) = model.classify_with_probability_of(&e.subject, &e.body, &e.label);
                log_loss -= p_right.max(1e-12).ln();
                predictions.push((e.label.clone(), c.label, c.confidence));
            }
        }
        let n = predictions.len().max(1) as f64;
        let accuracy = round(predictions.iter().filter(|p| p.0 == p.1).count() as f64 / n);
        let sweep = THRESHOLDS.into_iter().map(sweep_of(&predictions)).collect();
        grid.push(CvAlpha { alpha, accuracy, log_loss: round(log_loss / n), sweep });
    }
    let candidates = || grid.iter().flat_map(|g| g.sweep.iter().map(move |p| (g, p)));
    let meets = candidates()
        .filter(|(_, p)| p.precision_lower_bound >= TARGET_PRECISION)
        .max_by(|a, b| a.1.routed.cmp(&b.1.routed).then(a.1.threshold.total_cmp(&b.1.threshold)).then(a.0.alpha.total_cmp(&b.0.alpha)));
    let chosen = meets.or_else(|| {
        candidates().max_by(|a, b| {
            a.1.precision_lower_bound
                .total_cmp(&b.1.precision_lower_bound)
                .then(a.1.routed.cmp(&b.1.routed))
                .then(a.0.alpha.total_cmp(&b.0.alpha))
        })
    });
    let (alpha, cv_accuracy, p) = chosen
        .map(|(g, p)| (g.alpha, g.accuracy, p.clone()))
        .ok_or_else(|| ClassifierError::Training("nothing to cross-validate".into()))?;
    Ok(Tuning {
        folds: FOLDS,
        train: train.len(),
        target_precision: TARGET_PRECISION,
        alpha,
        threshold: p.threshold,
        cv_accuracy,
        cv_auto_share: p.auto_share,
        cv_auto_precision: p.auto_precision,
        cv_precision_lower_bound: p.precision_lower_bound,
        grid,
    })
}

/// The honest evaluation of a sample: the choice of alpha and threshold by cross-validation
/// inside the training part, then one measure on the held-out part with the chosen values.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub tuning: Tuning,
    pub held_out: Evaluation,
}

/// [`tune`], then [`evaluate`] once with the chosen alpha and threshold.
pub fn assess(sample: &[Example], settings: Settings) -> Result<Assessment, ClassifierError> {
    let tuning = tune(sample, settings)?;
    let held_out = evaluate(sample, Settings { alpha: tuning.alpha, ..settings }, tuning.threshold)?;
    Ok(Assessment { tuning, held_out })
}

/// The `classifier` connector: operation `classify` with `{subject, body}`.
#[derive(Debug, Clone)]
pub struct ClassifierConnector {
    model: std::sync::Arc<Model>,
}

impl ClassifierConnector {
    pub fn new(model: Model) -> Self {
        ClassifierConnector { model: std::sync::Arc::new(model) }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The connector's answer to an input (also used by `pratica classify text`).
    pub fn answer(&self, input: &Value) -> Result<Value, ConnectorError> {
        let field = |name: &str| -> Result<String, ConnectorError> {
            match input.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(ConnectorError::fatal("invalid-input", format!("`{name}` must be text, not {other}"))),
            }
        };
        if !input.is_object() {
            return Err(ConnectorError::fatal("invalid-input", "classify needs an object with `subject` and `body`"));
        }
        let (subject, body) = (field("subject")?, field("body")?);
        let c = self.model.classify(&subject, &body);
        serde_json::to_value(&c).map_err(|e| ConnectorError::fatal("internal", e.to_string()))
    }
}

impl Connector for ClassifierConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            match call.operation.as_deref() {
                None | Some("classify") => self.answer(&call.input),
                Some(other) => {
                    Err(ConnectorError::fatal("unknown-operation", format!("the classifier has no operation `{other}` (known: classify)")))
                }
            }
        })
    }
}

/// A short JSON description of a model (for logs and `pratica classify`).
pub fn describe(model: &Model) -> Value {
    json!({"labels": model.labels(), "vocabulary": model.vocabulary_size(), "trained_on": model.trained_on()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Example> {
        load_sample(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/pec/sample.jsonl")).unwrap()
    }

    #[test]
    fn held_out_evaluation_of_the_shipped_sample() {
        // The figures are asserted in tests/runtime/pec_routing.rs; here: the split and the shape.
        let e = evaluate(&sample(), Settings::default(), 0.5).unwrap();
        assert_eq!(e.train + e.held_out, sample().len());
        assert_eq!(e.per_label.len(), 8);
        assert!(e.accuracy > 0.8 && e.auto_share <= 1.0);
    }

    #[test]
    fn wilson_lower_bound_is_below_the_proportion_and_tightens_with_more_trials() {
        assert_eq!(wilson_lower_bound(0, 0), 0.0);
        assert!((wilson_lower_bound(10, 10) - 0.7225).abs() < 1e-3, "{}", wilson_lower_bound(10, 10));
        assert!((wilson_lower_bound(99, 100) - 0.9455).abs() < 1e-3, "{}", wilson_lower_bound(99, 100));
        assert!(wilson_lower_bound(990, 1000) > wilson_lower_bound(99, 100));
        assert!(wilson_lower_bound(0, 5) >= 0.0 && wilson_lower_bound(0, 5) < 1e-9);
    }

    #[test]
    fn folds_depend_on_the_id_only() {
        assert_eq!(fold_of("pec-naspi-001"), fold_of("pec-naspi-001"));
        let counts = (0..1000).fold([0usize; FOLDS], |mut c, i| {
            c[fold_of(&format!("id-{i}"))] += 1;
            c
        });
        assert!(counts.iter().all(|n| (150..250).contains(n)), "{counts:?}");
    }
}
