//! External tasks at the engine level: fetch-and-lock, lock expiry and takeover, refused
//! stale results, extension, retryable and business failures, locks bound to the API token
//! that fetched them, topic-limited tokens, and the worker's identity in history.

use std::time::Duration;

use pratica_engine::connector::Registry;
use pratica_engine::runtime::{EngineError, ExternalFailure, ExternalRefusal, ExternalWorker, StartRequest, output_of};
use pratica_tests::backend::test_engine;
use pratica_tests::both_backends;
use serde_json::json;

const WORKFLOW: &str = r#"workflow: ocr
version: 1
title: OCR by an external worker
steps:
  - id: ocr
    call: external
    topic: documents.ocr
    with: { document: "${ .input.document }" }
    retry: { attempts: 2, delay: 10s, jitter: false }
    catch:
      - error: document.unreadable
        goto: unreadable
  - id: done
    end: { output: "${ .steps.ocr.output }" }
  - id: unreadable
    end: { output: unreadable }
"#;

/// A worker on its own API token (token and declared name alike), any topic.
fn worker(name: &str) -> ExternalWorker<'_> {
    ExternalWorker { token: name, name, topics: &[] }
}

both_backends!(locks_expire_and_stale_results_are_refused, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    let id =
        t.engine.start(StartRequest { workflow: "ocr".into(), input: json!({"document": "d1"}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let a = t.engine.fetch_and_lock(&worker("worker-a"), "documents.ocr", 5, lock, Duration::ZERO).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].input.clone(), a[0].attempt, a[0].idempotency_key.clone()), (json!({"document": "d1"}), 1, format!("{id}:ocr:1")));
    assert!(t.engine.fetch_and_lock(&worker("worker-b"), "documents.ocr", 5, lock, Duration::ZERO).await.unwrap().is_empty(), "locked");
    assert!(t.engine.fetch_and_lock(&worker("worker-b"), "other.topic", 5, lock, Duration::ZERO).await.unwrap().is_empty());
    // Worker A extends its lock once, then goes silent past the extension.
    t.clock.advance(Duration::from_secs(20));
    t.engine.extend_external_lock(a[0].id, &a[0].lock, &worker("worker-a"), lock).await.unwrap();
    t.clock.advance(Duration::from_secs(20));
    assert!(t.engine.fetch_and_lock(&worker("worker-b"), "documents.ocr", 5, lock, Duration::ZERO).await.unwrap().is_empty(), "extended");
    t.clock.advance(Duration::from_secs(11));
    let b = t.engine.fetch_and_lock(&worker("worker-b"), "documents.ocr", 5, lock, Duration::ZERO).await.unwrap();
    assert_eq!(b.len(), 1, "the expired lock made the task available again");
    let stale = t.engine.complete_external(a[0].id, &a[0].lock, &worker("worker-a"), json!({"pages": 99})).await;
    assert!(matches!(stale, Err(EngineError::LockLost(_))), "{stale:?}");
    assert!(matches!(t.engine.extend_external_lock(a[0].id, &a[0].lock, &worker("worker-a"), lock).await, Err(EngineError::LockLost(_))));
    t.engine.complete_external(b[0].id, &b[0].lock, &worker("worker-b"), json!({"pages": 3})).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"pages": 3})));
    // A result after completion is refused too.
    assert!(t.engine.complete_external(b[0].id, &b[0].lock, &worker("worker-b"), json!({})).await.is_err());
});

both_backends!(external_failures_retry_or_are_caught, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    let id =
        t.engine.start(StartRequest { workflow: "ocr".into(), input: json!({"document": "d2"}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let first = t.engine.fetch_and_lock(&worker("w"), "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().remove(0);
    let busy = ExternalFailure { code: "ocr.busy".into(), message: "try later".into(), retryable: true, retry_after_ms: None };
    t.engine.fail_external(first.id, &first.lock, &worker("w"), busy).await.unwrap();
    assert!(t.engine.fetch_and_lock(&worker("w"), "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().is_empty(), "backoff");
    t.clock.advance(Duration::from_secs(10));
    let second = t.engine.fetch_and_lock(&worker("w"), "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!((second.attempt, second.idempotency_key.clone()), (2, first.idempotency_key.clone()), "same key, next attempt");
    let unreadable =
        ExternalFailure { code: "document.unreadable".into(), message: "blank scan".into(), retryable: false, retry_after_ms: None };
    t.engine.fail_external(second.id, &second.lock, &worker("w"), unreadable).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(output_of(&t.engine.store().instance(&id).await.unwrap()), json!("unreadable"));
});

both_backends!(locks_are_random_and_bound_to_the_token_that_fetched_them, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    for document in ["d3", "d4"] {
        let input = json!({ "document": document });
        t.engine.start(StartRequest { workflow: "ocr".into(), input, ..Default::default() }).await.unwrap();
    }
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let owner = ExternalWorker { token: "ocr-token-a", name: "ocr-1", topics: &[] };
    let tasks = t.engine.fetch_and_lock(&owner, "documents.ocr", 5, lock, Duration::ZERO).await.unwrap();
    assert_eq!(tasks.len(), 2);
    for task in &tasks {
        assert!(task.lock.len() == 32 && task.lock.chars().all(|c| c.is_ascii_hexdigit()), "128 random bits as hex: {}", task.lock);
    }
    assert_ne!(tasks[0].lock, tasks[1].lock, "every task has its own lock");
    let task = &tasks[0];

    // Another token with the right lock and even the same declared worker name is refused.
    let forger = ExternalWorker { token: "ocr-token-b", name: "ocr-1", topics: &[] };
    let refused = t.engine.complete_external(task.id, &task.lock, &forger, json!({"pages": 1})).await;
    assert!(matches!(&refused, Err(EngineError::External(ExternalRefusal::NotOwned(_)))), "{refused:?}");
    let refused = t.engine.extend_external_lock(task.id, &task.lock, &forger, lock).await;
    assert!(matches!(&refused, Err(EngineError::External(ExternalRefusal::NotOwned(_)))), "{refused:?}");
    let failure = ExternalFailure { code: "x".into(), message: String::new(), retryable: false, retry_after_ms: None };
    let refused = t.engine.fail_external(task.id, &task.lock, &forger, failure).await;
    assert!(matches!(&refused, Err(EngineError::External(ExternalRefusal::NotOwned(_)))), "{refused:?}");
    // The owner's token with another declared name, or a made-up lock: a lost lock.
    let renamed = ExternalWorker { name: "ocr-2", ..owner };
    assert!(matches!(t.engine.complete_external(task.id, &task.lock, &renamed, json!({})).await, Err(EngineError::LockLost(_))));
    let guessed = format!("{:032x}", 1);
    assert!(matches!(t.engine.complete_external(task.id, &guessed, &owner, json!({})).await, Err(EngineError::LockLost(_))));

    // The owner completes; history names its token as the actor.
    t.engine.complete_external(task.id, &task.lock, &owner, json!({"pages": 2})).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let history = t.engine.store().history(&task.instance_id).await.unwrap();
    let entry = history.iter().find(|h| h.kind == "external.completed").expect("the worker's report is in history");
    assert_eq!((entry.step.as_deref(), entry.actor.as_deref()), (Some("ocr"), Some("ocr-token-a")));
    let data: serde_json::Value = serde_json::from_str(&entry.data).unwrap();
    assert_eq!(data, json!({"task": task.id, "topic": "documents.ocr", "attempt": 1, "token": "ocr-token-a", "worker": "ocr-1"}));
    let completed = history.iter().position(|h| h.kind == "step.completed" && h.step.as_deref() == Some("ocr")).unwrap();
    assert!(history.iter().position(|h| h.kind == "external.completed").unwrap() < completed, "recorded before the step's result");
    assert_eq!(output_of(&t.engine.store().instance(&task.instance_id).await.unwrap()), json!({"pages": 2}));
});

both_backends!(topic_limited_workers_fetch_and_report_only_their_topics, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    t.engine.start(StartRequest { workflow: "ocr".into(), input: json!({"document": "d5"}), ..Default::default() }).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let scoring = ["naspi.scoring".to_string()];
    let limited = ExternalWorker { token: "scorer", name: "scorer-1", topics: &scoring };
    let refused = t.engine.fetch_and_lock(&limited, "documents.ocr", 5, lock, Duration::ZERO).await;
    assert!(
        matches!(&refused, Err(EngineError::External(ExternalRefusal::TopicForbidden(m))) if m.contains("naspi.scoring")),
        "{refused:?}"
    );
    assert!(t.engine.fetch_and_lock(&limited, "naspi.scoring", 5, lock, Duration::ZERO).await.unwrap().is_empty());
    let both = ["naspi.scoring".to_string(), "documents.ocr".to_string()];
    let allowed = ExternalWorker { token: "scorer", name: "scorer-1", topics: &both };
    let task = t.engine.fetch_and_lock(&allowed, "documents.ocr", 5, lock, Duration::ZERO).await.unwrap().remove(0);
    // Had the token's topics changed, its lock would not let it report on the task.
    let refused = t.engine.complete_external(task.id, &task.lock, &limited, json!({})).await;
    assert!(matches!(&refused, Err(EngineError::External(ExternalRefusal::TopicForbidden(_)))), "{refused:?}");
    let refused = t.engine.extend_external_lock(task.id, &task.lock, &limited, lock).await;
    assert!(matches!(&refused, Err(EngineError::External(ExternalRefusal::TopicForbidden(_)))), "{refused:?}");
    // Refusals changed nothing: the lock still holds, and its owner completes.
    t.engine.complete_external(task.id, &task.lock, &allowed, json!({"pages": 5})).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(output_of(&t.engine.store().instance(&task.instance_id).await.unwrap()), json!({"pages": 5}));
});
