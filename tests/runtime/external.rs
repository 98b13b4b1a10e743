//! External tasks at the engine level: fetch-and-lock, lock expiry and takeover, refused
//! stale results, extension, retryable and business failures.

use std::time::Duration;

use pratica_engine::connector::Registry;
use pratica_engine::runtime::{EngineError, ExternalFailure, StartRequest, output_of};
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

both_backends!(locks_expire_and_stale_results_are_refused, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    let id =
        t.engine.start(StartRequest { workflow: "ocr".into(), input: json!({"document": "d1"}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let a = t.engine.fetch_and_lock("worker-a", "documents.ocr", 5, lock, Duration::ZERO).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].input.clone(), a[0].attempt, a[0].idempotency_key.clone()), (json!({"document": "d1"}), 1, format!("{id}:ocr:1")));
    assert!(t.engine.fetch_and_lock("worker-b", "documents.ocr", 5, lock, Duration::ZERO).await.unwrap().is_empty(), "locked");
    assert!(t.engine.fetch_and_lock("worker-b", "other.topic", 5, lock, Duration::ZERO).await.unwrap().is_empty());
    // Worker A extends its lock once, then goes silent past the extension.
    t.clock.advance(Duration::from_secs(20));
    t.engine.extend_external_lock(a[0].id, a[0].lock, "worker-a", lock).await.unwrap();
    t.clock.advance(Duration::from_secs(20));
    assert!(t.engine.fetch_and_lock("worker-b", "documents.ocr", 5, lock, Duration::ZERO).await.unwrap().is_empty(), "extended");
    t.clock.advance(Duration::from_secs(11));
    let b = t.engine.fetch_and_lock("worker-b", "documents.ocr", 5, lock, Duration::ZERO).await.unwrap();
    assert_eq!(b.len(), 1, "the expired lock made the task available again");
    let stale = t.engine.complete_external(a[0].id, a[0].lock, "worker-a", json!({"pages": 99})).await;
    assert!(matches!(stale, Err(EngineError::LockLost(_))), "{stale:?}");
    assert!(matches!(t.engine.extend_external_lock(a[0].id, a[0].lock, "worker-a", lock).await, Err(EngineError::LockLost(_))));
    t.engine.complete_external(b[0].id, b[0].lock, "worker-b", json!({"pages": 3})).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"pages": 3})));
    // A result after completion is refused too.
    assert!(t.engine.complete_external(b[0].id, b[0].lock, "worker-b", json!({})).await.is_err());
});

both_backends!(external_failures_retry_or_are_caught, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy(WORKFLOW).await.unwrap();
    let id =
        t.engine.start(StartRequest { workflow: "ocr".into(), input: json!({"document": "d2"}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let lock = Duration::from_secs(30);
    let first = t.engine.fetch_and_lock("w", "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().remove(0);
    let busy = ExternalFailure { code: "ocr.busy".into(), message: "try later".into(), retryable: true, retry_after_ms: None };
    t.engine.fail_external(first.id, first.lock, "w", busy).await.unwrap();
    assert!(t.engine.fetch_and_lock("w", "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().is_empty(), "backoff");
    t.clock.advance(Duration::from_secs(10));
    let second = t.engine.fetch_and_lock("w", "documents.ocr", 1, lock, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!((second.attempt, second.idempotency_key.clone()), (2, first.idempotency_key.clone()), "same key, next attempt");
    let unreadable =
        ExternalFailure { code: "document.unreadable".into(), message: "blank scan".into(), retryable: false, retry_after_ms: None };
    t.engine.fail_external(second.id, second.lock, "w", unreadable).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(output_of(&t.engine.store().instance(&id).await.unwrap()), json!("unreadable"));
});
