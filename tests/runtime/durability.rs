//! Leases, fencing and the audit chain at the store level.

use std::time::Duration;

use pratica_engine::connector::Registry;
use pratica_engine::runtime::StartRequest;
use pratica_tests::backend::{Backend, test_engine};
use pratica_tests::both_backends;
use serde_json::json;

both_backends!(a_worker_that_lost_its_lease_cannot_commit, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy("workflow: w\nversion: 1\ntitle: W\nsteps:\n  - id: a\n    call: noop\n").await.unwrap();
    let id = t.engine.start(StartRequest { workflow: "w".into(), input: json!({}), ..Default::default() }).await.unwrap().id;
    let store = t.engine.store();
    use pratica_engine::clock::Clock;
    let now = t.clock.now();
    // Worker A claims the start job with a 1 s lease, then stalls.
    let claimed = store.claim_jobs("worker-a", now, now + 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // While the lease holds, nobody else gets the job.
    assert!(store.claim_jobs("worker-b", now, now + 1_000, 10).await.unwrap().is_empty());
    // The lease expires; the engine (another worker) takes the job over and finishes it.
    t.clock.advance(Duration::from_secs(2));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(store.instance(&id).await.unwrap().status, "completed");
    // Worker A wakes up: its result is refused (fencing).
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.finish_job(claimed[0].id, claimed[0].fence).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.history(&id).await.unwrap().iter().filter(|h| h.kind == "instance.started").count(), 1);
});

both_backends!(tampering_with_history_is_detected, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    t.engine.deploy("workflow: w\nversion: 1\ntitle: W\nsteps:\n  - id: a\n    call: noop\n    with: { amount: 100 }\n").await.unwrap();
    let id = t.engine.start(StartRequest { workflow: "w".into(), input: json!({}), ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    let store = t.engine.store();
    assert!(pratica_engine::audit::verify_instance(store, &id).await.unwrap().is_ok());
    // Someone with database access changes the amount recorded for the call.
    let changed = store
        .execute_raw(&format!(
            "UPDATE history SET data = REPLACE(data, '100', '900') WHERE instance_id = '{id}' AND kind = 'call.scheduled'"
        ))
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let broken = pratica_engine::audit::verify_instance(store, &id).await.unwrap().unwrap_err();
    assert_eq!(broken, pratica_engine::audit::ChainBreak::Altered { seq: 2 });
    // Deleting the last entry is caught too.
    store
        .execute_raw(&format!(
            "DELETE FROM history WHERE instance_id = '{id}' AND seq = (SELECT MAX(seq) FROM history WHERE instance_id = '{id}')"
        ))
        .await
        .unwrap();
    assert!(pratica_engine::audit::verify_instance(store, &id).await.unwrap().is_err());
});

#[tokio::test]
async fn postgres_is_required_in_ci() {
    // The helper itself panics in CI when PostgreSQL is unreachable; make sure it is tried.
    let scratch = pratica_tests::backend::ScratchDir::new();
    let url = pratica_tests::backend::fresh_database(Backend::Postgres, &scratch).await;
    if std::env::var("CI").is_ok() {
        assert!(url.is_some());
    }
}
