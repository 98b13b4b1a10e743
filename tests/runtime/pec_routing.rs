//! PEC routing: the classifier connector trained on the shipped sample (data/pec/), the choice
//! of alpha and threshold by cross-validation inside the training part, the held-out
//! evaluation at the chosen values, determinism, uncertain mail going to a person, and
//! workflows/pec-routing.yaml end to end on both backends with the real classifier.

use std::sync::OnceLock;

use assert_cmd::Command;
use pratica_classifier::{
    Assessment, ClassifierConnector, Example, Model, Settings, THRESHOLDS, assess, evaluate, fold_of, is_held_out, load_sample, split, tune,
};
use pratica_engine::connector::{Connector, ConnectorError, Invocation, Registry};
use pratica_engine::runtime::{StartRequest, TaskCompletion, output_of};
use pratica_engine::store::{TaskFilter, TaskRow};
use pratica_tests::app::{AppOptions, TestEngine, start_engine};
use pratica_tests::backend::ScratchDir;
use pratica_tests::{both_backends, pratica_bin, repo_path};
use serde_json::{Value, json};

/// The routing threshold of workflows/pec-routing.yaml (chosen by `tune`, checked below).
const THRESHOLD: f64 = 0.5;

fn sample() -> Vec<Example> {
    load_sample(&repo_path("data/pec/sample.jsonl")).expect("the shipped sample loads")
}

/// The connector as `pratica.toml` configures it (trained once for the whole test binary).
fn classifier() -> &'static ClassifierConnector {
    static CLASSIFIER: OnceLock<ClassifierConnector> = OnceLock::new();
    CLASSIFIER
        .get_or_init(|| ClassifierConnector::new(Model::from_sample(&repo_path("data/pec/sample.jsonl"), Settings::default()).unwrap()))
}

const NASPI_SUBJECT: &str = "NASpI non ancora pagata";
const NASPI_BODY: &str = "Gentili signori, sono stata licenziata il 12 gennaio e ho presentato domanda di indennità di disoccupazione NASpI \
    il 20 gennaio. A oggi non ho ricevuto alcun pagamento sul mio conto corrente. Cordiali saluti";

/// Mail a person must read: vague, off-topic or garbage.
/// (Not here: "Comunicazione" / "In riferimento alla pratica in oggetto resto in attesa di
/// vostre notizie." gets 0.53 for naspi and is routed automatically at 0.5; the office sends
/// it back to triage. A known limit, docs/PROCESSES.md "PEC routing".)
const UNCERTAIN: &[(&str, &str)] =
    &[("", ""), ("Urgente", "Vi prego di contattarmi al più presto. Grazie."), ("qwerty", "asdkjh zxcv lkjhg poiuy 1234")];

/// The cross-validation and held-out evaluation of the shipped sample (computed once: 26 trainings).
fn assessment() -> &'static Assessment {
    static ASSESSMENT: OnceLock<Assessment> = OnceLock::new();
    ASSESSMENT.get_or_init(|| assess(&sample(), Settings::default()).unwrap())
}

#[test]
fn the_sample_is_large_labelled_and_split_by_a_fixed_hash() {
    let sample = sample();
    assert!(sample.len() >= 400, "{} messages", sample.len());
    let labels: std::collections::BTreeSet<_> = sample.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            "altro",
            "certificazioni",
            "contributi-aziende",
            "invalidita-civile",
            "naspi",
            "pensioni",
            "prestazioni-famiglia",
            "ricorsi-legale"
        ]
    );
    let ids: std::collections::BTreeSet<_> = sample.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), sample.len(), "ids are unique");
    let (train, held_out) = split(&sample);
    assert_eq!(train.len() + held_out.len(), sample.len());
    let share = held_out.len() as f64 / sample.len() as f64;
    assert!((0.18..0.32).contains(&share), "about a quarter held out, got {share}");
    assert!(held_out.iter().all(|e| is_held_out(&e.id)) && train.iter().all(|e| !is_held_out(&e.id)));
    // The connector's model never saw the held-out messages.
    assert_eq!(classifier().model().trained_on(), train.len());
}

#[test]
fn alpha_and_threshold_are_chosen_by_cross_validation_inside_the_training_part() {
    let t = &assessment().tuning;
    let (train, _) = split(&sample());
    assert_eq!((t.folds, t.train), (5, train.len()));
    // The configured alpha and the workflow's threshold are the chosen ones.
    assert_eq!(t.alpha, Settings::default().alpha);
    assert_eq!(t.threshold, THRESHOLD);
    let workflow = std::fs::read_to_string(repo_path("workflows/pec-routing.yaml")).unwrap();
    assert!(workflow.contains(&format!("\n      threshold: {THRESHOLD}\n")), "workflows/pec-routing.yaml routes from {THRESHOLD}");
    // The rule: 95 % lower bound of the cross-validated precision >= 98 %, the most mail routed.
    assert!(t.cv_precision_lower_bound >= t.target_precision, "{t:?}");
    let best_routed =
        t.grid.iter().flat_map(|g| &g.sweep).filter(|p| p.precision_lower_bound >= t.target_precision).map(|p| p.routed).max().unwrap();
    let chosen = t.grid.iter().find(|g| g.alpha == t.alpha).unwrap().sweep.iter().find(|p| p.threshold == t.threshold).unwrap();
    assert_eq!(chosen.routed, best_routed);
    // Measured: 97.2 % accuracy, 93.8 % routed, precision 99.7 % (lower bound 98.3 %).
    assert!(t.cv_accuracy >= 0.93 && t.cv_auto_share >= 0.88 && t.cv_auto_precision >= 0.98, "{t:?}");
    for g in &t.grid {
        assert_eq!(g.sweep.len(), THRESHOLDS.len());
        // A higher threshold never routes more mail automatically.
        assert!(g.sweep.windows(2).all(|w| w[0].routed >= w[1].routed), "{g:?}");
        assert!(g.sweep.iter().all(|p| p.routed <= train.len() && p.precision_lower_bound <= p.auto_precision), "{g:?}");
    }
    // Folds are fixed by the ids and roughly even.
    for fold in 0..5 {
        let n = train.iter().filter(|e| fold_of(&e.id) == fold).count();
        assert!((50..95).contains(&n), "fold {fold}: {n} messages");
    }
}

#[test]
fn the_choice_never_reads_the_held_out_part() {
    // Scrambling every held-out label (and text) leaves the choice exactly as it was.
    let mut scrambled = sample();
    for e in scrambled.iter_mut().filter(|e| is_held_out(&e.id)) {
        e.label = "altro".into();
        e.subject = "qwerty".into();
        e.body.clear();
    }
    let again = serde_json::to_value(tune(&scrambled, Settings::default()).unwrap()).unwrap();
    assert_eq!(again, serde_json::to_value(&assessment().tuning).unwrap());
}

#[test]
fn held_out_evaluation_at_the_chosen_values_meets_the_routing_targets() {
    let e = &assessment().held_out;
    assert_eq!(e.threshold, THRESHOLD);
    // Measured once (docs/PROCESSES.md, "PEC routing"): accuracy 94.3 %, 95.7 % routed
    // automatically at 0.5 with a precision of 97.8 %. Asserted with a margin.
    assert!(e.auto_precision >= 0.95, "precision of automatic routing {}", e.auto_precision);
    assert!(e.auto_share >= 0.9, "share routed automatically {}", e.auto_share);
    assert!(e.accuracy >= 0.9, "accuracy {}", e.accuracy);
    assert_eq!(e.per_label.len(), 8);
    for l in &e.per_label {
        assert!(l.support > 0 && l.recall >= 0.75 && l.precision >= 0.75, "{l:?}");
    }
    let confused: usize = e.confusion.values().flat_map(|row| row.values()).sum();
    assert_eq!(confused, e.held_out);
    // The same as evaluating the connector's settings directly.
    let direct = evaluate(&sample(), Settings::default(), THRESHOLD).unwrap();
    assert_eq!(serde_json::to_value(&direct).unwrap(), serde_json::to_value(e).unwrap());
}

#[test]
fn training_and_classification_are_deterministic() {
    let again = Model::from_sample(&repo_path("data/pec/sample.jsonl"), Settings::default()).unwrap();
    for e in sample().iter().filter(|e| is_held_out(&e.id)).take(40) {
        let a = classifier().model().classify(&e.subject, &e.body);
        assert_eq!(a, again.classify(&e.subject, &e.body), "{}", e.id);
        assert_eq!(a, classifier().model().classify(&e.subject, &e.body), "{}", e.id);
    }
    let first = serde_json::to_value(evaluate(&sample(), Settings::default(), THRESHOLD).unwrap()).unwrap();
    assert_eq!(first, serde_json::to_value(&assessment().held_out).unwrap());
}

#[test]
fn a_clear_message_is_routed_with_an_explanation() {
    let c = classifier().model().classify(NASPI_SUBJECT, NASPI_BODY);
    assert_eq!(c.label, "naspi");
    assert!(c.confidence >= THRESHOLD, "{c:?}");
    assert_eq!(c.alternatives.len(), 3);
    assert!(c.alternatives.iter().all(|a| a.confidence <= c.confidence && a.label != "naspi"));
    let sum: f64 = c.confidence + c.alternatives.iter().map(|a| a.confidence).sum::<f64>();
    assert!(sum <= 1.0001, "probabilities: {sum}");
    assert!(!c.explanation.words.is_empty() && c.explanation.words.len() <= 5);
    assert!(
        c.explanation.words.iter().any(|w| w.contains("nasp") || w.contains("disoccup") || w.contains("licenz")),
        "{:?}",
        c.explanation
    );
    assert!(c.explanation.weights.windows(2).all(|w| w[0].weight >= w[1].weight));
    assert!(c.explanation.text_it.contains("«naspi»") && c.explanation.text_en.contains("\"naspi\""), "{:?}", c.explanation);

    let pensione = classifier()
        .model()
        .classify("Rateo di pensione non accreditato", "Il rateo della mia pensione di vecchiaia di marzo non è arrivato.");
    assert_eq!(pensione.label, "pensioni");
    let lawyer = classifier().model().classify(
        "Diffida e messa in mora",
        "In nome e per conto del mio assistito diffido codesto Istituto, in difetto adirò le vie legali dinanzi al Tribunale.",
    );
    assert_eq!(lawyer.label, "ricorsi-legale");
}

#[test]
fn vague_or_garbage_mail_is_not_confident() {
    for (subject, body) in UNCERTAIN {
        let c = classifier().model().classify(subject, body);
        assert!(c.confidence < THRESHOLD, "{subject:?} / {body:?} would be routed automatically: {c:?}");
    }
    let nothing = classifier().model().classify("", "zzz qqq");
    assert_eq!(nothing.explanation.known_terms, 0);
    assert!(nothing.explanation.text_en.contains("not reliable"), "{:?}", nothing.explanation);
}

fn call(operation: Option<&str>, input: Value) -> Invocation {
    Invocation { connector: "classifier".into(), operation: operation.map(String::from), input, ..Default::default() }
}

#[tokio::test]
async fn the_connector_answers_classify_and_refuses_bad_input() {
    let out = classifier().invoke(&call(Some("classify"), json!({"subject": NASPI_SUBJECT, "body": NASPI_BODY}))).await.unwrap();
    assert_eq!(out["label"], "naspi");
    assert!(out["confidence"].as_f64().unwrap() >= THRESHOLD);
    assert_eq!(out["alternatives"].as_array().unwrap().len(), 3);
    assert!(out["explanation"]["text_it"].as_str().unwrap().starts_with("Classificata come «naspi»"));
    // The body alone is enough; a missing subject is empty text.
    assert_eq!(classifier().invoke(&call(None, json!({"body": NASPI_BODY}))).await.unwrap()["label"], "naspi");
    // A huge body is cut, not refused.
    let huge = "disoccupazione ".repeat(50_000);
    assert_eq!(classifier().invoke(&call(None, json!({"body": huge}))).await.unwrap()["label"], "naspi");
    for bad in [json!({"subject": 3, "body": "x"}), json!("text"), json!({"body": ["a"]})] {
        match classifier().invoke(&call(Some("classify"), bad.clone())).await {
            Err(ConnectorError::Fatal { code, .. }) => assert_eq!(code, "invalid-input", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    match classifier().invoke(&call(Some("train"), json!({}))).await {
        Err(ConnectorError::Fatal { code, message }) => assert!(code == "unknown-operation" && message.contains("classify")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cli_evaluates_and_classifies_with_the_configured_connector() {
    // From another directory: `training` is relative to the configuration file.
    let elsewhere = ScratchDir::new();
    let out = Command::new(pratica_bin())
        .current_dir(&elsewhere.0)
        .args(["classify", "evaluate", "--json", "--config"])
        .arg(repo_path("pratica.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, serde_json::to_value(assessment()).unwrap(), "the command reports the library's assessment");

    let text = Command::new(pratica_bin())
        .current_dir(&elsewhere.0)
        .args(["classify", "text", "--subject", NASPI_SUBJECT, NASPI_BODY, "--config"])
        .arg(repo_path("pratica.toml"))
        .output()
        .unwrap();
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let answer: Value = serde_json::from_slice(&text.stdout).unwrap();
    assert_eq!(answer["label"], "naspi");

    let report = Command::new(pratica_bin()).current_dir(repo_path(".")).args(["classify", "evaluate"]).output().unwrap();
    let report = String::from_utf8(report.stdout).unwrap();
    for part in [
        "5-fold cross-validation",
        "chosen: alpha 0.01, threshold 0.5",
        "measured once on the",
        "precision of the automatic routing",
        "confusion",
    ] {
        assert!(report.contains(part), "{part:?} in {report}");
    }

    let missing =
        Command::new(pratica_bin()).current_dir(repo_path(".")).args(["classify", "evaluate", "--connector", "inps"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not classifier"));
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    // `pratica classify evaluate | head -1`: the reader is gone before the first line is written.
    for args in [&["classify", "evaluate"][..], &["classify", "evaluate", "--json"], &["classify", "text", "NASpI non pagata"]] {
        let mut child = std::process::Command::new(pratica_bin())
            .current_dir(repo_path("."))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("error"), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn message(id: &str, subject: &str, body: &str) -> Value {
    json!({
        "message_id": id,
        "from": "mittente@pec.example.it",
        "to": "direzione.provinciale.roma@postacert.inps.gov.it",
        "received_at": "2026-03-02T09:15:00+01:00",
        "subject": subject,
        "body": body,
        "office": "7000"
    })
}

async fn open_tasks(t: &TestEngine, instance: &str) -> Vec<TaskRow> {
    t.engine
        .store()
        .tasks(&TaskFilter { status: Some("open".into()), instance_id: Some(instance.into()), ..Default::default() })
        .await
        .unwrap()
}

async fn complete(t: &TestEngine, task: &TaskRow, by: &str, outcome: &str) {
    let completion = TaskCompletion { outcome: Some(outcome.into()), ..Default::default() };
    t.engine.complete_task(&task.id, by, completion).await.unwrap_or_else(|e| panic!("complete {}: {e:?}", task.step_id));
    t.engine.run_until_idle().await.unwrap();
}

both_backends!(pec_routing_end_to_end_with_the_real_classifier, |backend| async move {
    let source = std::fs::read_to_string(repo_path("workflows/pec-routing.yaml")).unwrap();
    let registry = Registry::builtin().with("classifier", classifier().clone());
    let Some(t) = start_engine(AppOptions::new(backend).registry(registry).deploy(&source)).await else { return };
    let schemas = pratica_engine::schemas::SchemaSet::from_dir(repo_path("schemas"));

    // A clear message: straight to the NASpI office's queue.
    let clear = message("<naspi.1@pec.example.it>", NASPI_SUBJECT, NASPI_BODY);
    schemas.validate("pec-message", &clear).unwrap();
    let id = t.engine.start(StartRequest { workflow: "pec-routing".into(), input: clear, ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let tasks = open_tasks(&t, &id).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0].step_id.as_str(), tasks[0].office.as_deref(), tasks[0].role.as_deref()),
        ("office_queue", Some("pec-naspi"), Some("pec-operator"))
    );
    assert!(
        tasks[0].description.as_deref().unwrap().contains("Routed automatically: Classified as \"naspi\""),
        "{:?}",
        tasks[0].description
    );
    complete(&t, &tasks[0], "marco.conti", "taken").await;
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!(row.status, "completed");
    let out = output_of(&row);
    assert_eq!(out["queue"], "naspi");
    assert_eq!(out["taken_by"], "marco.conti");
    assert_eq!(out["routing"]["automatic"], true);
    assert_eq!(out["routing"]["decided_by"], "classifier");
    assert!(out["routing"]["confidence"].as_f64().unwrap() >= THRESHOLD);
    assert_eq!(out["routing"]["alternatives"].as_array().unwrap().len(), 3);
    assert!(!out["routing"]["explanation"]["words"].as_array().unwrap().is_empty());

    // Uncertain mail: a person in "smistamento" chooses, seeing the suggestion; the choice routes it.
    for (n, (subject, body)) in UNCERTAIN.iter().enumerate() {
        let input = message(&format!("<vague.{n}@pec.example.it>"), subject, body);
        let id = t.engine.start(StartRequest { workflow: "pec-routing".into(), input, ..Default::default() }).await.unwrap().id;
        t.engine.run_until_idle().await.unwrap();
        let tasks = open_tasks(&t, &id).await;
        assert_eq!(tasks.len(), 1, "{subject:?}");
        let triage = &tasks[0];
        assert_eq!((triage.step_id.as_str(), triage.office.as_deref()), ("triage", Some("smistamento")), "{subject:?}");
        assert!(triage.description.as_deref().unwrap().contains("Classifier: "), "{:?}", triage.description);
        let outcomes: Vec<String> = serde_json::from_str(&triage.outcomes).unwrap();
        assert_eq!(outcomes.len(), 8);
        if n > 0 {
            continue;
        }
        complete(&t, triage, "anna.marino", "prestazioni_famiglia").await;
        let tasks = open_tasks(&t, &id).await;
        assert_eq!((tasks[0].step_id.as_str(), tasks[0].office.as_deref()), ("office_queue", Some("pec-prestazioni-famiglia")));
        complete(&t, &tasks[0], "elena.fontana", "taken").await;
        let out = output_of(&t.engine.store().instance(&id).await.unwrap());
        assert_eq!(out["queue"], "prestazioni-famiglia");
        assert_eq!(out["routing"]["automatic"], false);
        assert_eq!(out["routing"]["decided_by"], "anna.marino");
        assert!(out["routing"]["classifier"]["confidence"].as_f64().unwrap() < THRESHOLD);
        assert!(out["routing"]["classifier"]["explanation"]["text_it"].is_string());
    }
});
