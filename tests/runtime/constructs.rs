use std::time::Duration;

use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Delivery, Engine, EngineError, StartRequest, TaskCompletion, output_of};
use pratica_engine::store::{InstanceRow, TaskFilter};
use pratica_tests::backend::TestEngine;
use pratica_tests::both_backends;
use pratica_tests::scripted::scripted_engine;
use serde_json::{Value, json};

const HEADER: &str = "version: 1\ntitle: Test\n";

async fn deploy(engine: &Engine, name: &str, steps: &str) {
    let source = format!("workflow: {name}\n{HEADER}{steps}");
    if let Err(e) = engine.deploy(&source).await {
        panic!("deploy {name}: {e}: {e:?}");
    }
}

async fn start(engine: &Engine, workflow: &str, input: Value) -> String {
    engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id
}

async fn finished(t: &TestEngine, id: &str) -> InstanceRow {
    t.engine.run_until_idle().await.unwrap();
    t.engine.store().instance(id).await.unwrap()
}

fn history_kinds(rows: &[pratica_engine::store::HistoryRow]) -> Vec<String> {
    rows.iter().map(|r| format!("{}{}", r.kind, r.step.as_deref().map(|s| format!(":{s}")).unwrap_or_default())).collect()
}

both_backends!(linear_calls_set_switch_and_end, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "linear",
        r#"business_key: ${ .input.cf }
steps:
  - id: fetch
    call: test.fetch
    with: { output: { weeks: "${ .input.weeks }" } }
  - id: remember
    set: { weeks: "${ .steps.fetch.output.weeks }" }
  - id: route
    switch:
      - when: ${ .vars.weeks < 13 }
        goto: reject
      - default: accept
  - id: accept
    end: { output: { decision: accepted, weeks: "${ .vars.weeks }" } }
  - id: reject
    end: { output: { decision: rejected } }
"#,
    )
    .await;
    let a = start(&t.engine, "linear", json!({"cf": "RSSMRA80A01H501U", "weeks": 20})).await;
    let b = start(&t.engine, "linear", json!({"cf": "VRDLGU70B02F205X", "weeks": 5})).await;
    let (ra, rb) = (finished(&t, &a).await, finished(&t, &b).await);
    assert_eq!((ra.status.as_str(), output_of(&ra)), ("completed", json!({"decision": "accepted", "weeks": 20})));
    assert_eq!((rb.status.as_str(), output_of(&rb)), ("completed", json!({"decision": "rejected"})));
    assert_eq!(ra.business_key.as_deref(), Some("RSSMRA80A01H501U"));
    let mut keys: Vec<String> = scripted.calls().iter().map(|c| c.idempotency_key.clone()).collect();
    keys.sort();
    let mut expected = vec![format!("{a}:fetch:1"), format!("{b}:fetch:1")];
    expected.sort();
    assert_eq!(keys, expected);
    let history = t.engine.store().history(&a).await.unwrap();
    assert_eq!(
        history_kinds(&history),
        [
            "instance.started",
            "call.scheduled:fetch",
            "step.completed:fetch",
            "step.completed:remember",
            "switch.chose:route",
            "instance.completed"
        ]
    );
    let report = pratica_engine::audit::verify_instance(t.engine.store(), &a).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
});

both_backends!(parallel_joins_and_foreach_collects_in_order, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "fanout",
        r#"steps:
  - id: checks
    parallel:
      branches:
        - name: archive
          steps:
            - id: archive_call
              call: test
              with: { output: A }
        - name: registry
          steps:
            - id: registry_call
              call: test
              with: { output: R }
  - id: each
    foreach:
      over: ${ .input.items }
      concurrency: 2
      steps:
        - id: double
          call: test
          with: { output: "${ .item * 2 }" }
        - id: label
          set: { last_index: "${ .index }" }
  - id: done
    end: { output: { checks: "${ .steps.checks.output }", doubled: "${ .steps.each.output }" } }
"#,
    )
    .await;
    let id = start(&t.engine, "fanout", json!({"items": [1, 2, 3, 4, 5]})).await;
    let row = finished(&t, &id).await;
    assert_eq!(row.status, "completed", "{row:?}");
    // The last step of each iteration is `label` (a set), so its output is the set object.
    let out = output_of(&row);
    assert_eq!(out["checks"], json!({"archive": "A", "registry": "R"}));
    assert_eq!(out["doubled"].as_array().unwrap().len(), 5);
    assert_eq!(out["doubled"][4], json!({"last_index": 4}));
    let doubled: Vec<Value> = scripted.calls_to("double").iter().map(|c| c.input["output"].clone()).collect();
    assert_eq!(doubled.len(), 5);
    let mut keys: Vec<String> = scripted.calls_to("double").iter().map(|c| c.idempotency_key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5, "each iteration has its own idempotency key: {keys:?}");
});

both_backends!(parallel_fails_fast_and_withdraws_sibling_work, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "failfast",
        r#"steps:
  - id: both
    parallel:
      branches:
        - name: review
          steps:
            - id: review
              human: { title: Review, assign: { role: operator } }
        - name: check
          steps:
            - id: check
              call: test
              with: { fail: check.broken }
    catch:
      - error: check.*
        goto: fallback
  - id: unreachable_without_catch
    end: true
  - id: fallback
    end: { output: "${ .error.code }" }
"#,
    )
    .await;
    let id = start(&t.engine, "failfast", json!({})).await;
    let row = finished(&t, &id).await;
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!("check.broken")));
    let tasks = t.engine.store().tasks(&TaskFilter { instance_id: Some(id.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].status, "cancelled", "the sibling's task is withdrawn");
});

both_backends!(durable_wait_uses_the_clock, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "pause", "steps:\n  - id: pause\n    wait: { for: 5d }\n  - id: after\n    end: { output: done }\n").await;
    let id = start(&t.engine, "pause", json!({})).await;
    assert_eq!(finished(&t, &id).await.status, "running");
    t.clock.advance(Duration::from_secs(5 * 86_400 - 1));
    assert_eq!(finished(&t, &id).await.status, "running", "not a second early");
    t.clock.advance(Duration::from_secs(1));
    assert_eq!(finished(&t, &id).await.status, "completed");
});

both_backends!(messages_are_correlated_kept_and_time_out, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "docs",
        r#"business_key: ${ .input.cf }
steps:
  - id: documents
    receive: { message: documents-received, correlate: "${ .business_key }", timeout: { after: 30d, goto: reminder } }
  - id: got
    end: { output: "${ .steps.documents.output.files }" }
  - id: reminder
    end: { output: timed-out }
"#,
    )
    .await;
    // Published before the instance waits: kept, then consumed.
    let early = t.engine.publish("documents-received", "AAA", json!({"files": 2})).await.unwrap();
    assert!(matches!(early, Delivery::Buffered { .. }));
    let a = start(&t.engine, "docs", json!({"cf": "AAA"})).await;
    assert_eq!(output_of(&finished(&t, &a).await), json!(2));
    // Published while waiting: delivered at once, only to the right key.
    let b = start(&t.engine, "docs", json!({"cf": "BBB"})).await;
    let c = start(&t.engine, "docs", json!({"cf": "CCC"})).await;
    t.engine.run_until_idle().await.unwrap();
    let delivered = t.engine.publish("documents-received", "BBB", json!({"files": 5})).await.unwrap();
    assert_eq!(delivered, Delivery::Delivered { instance: b.clone() });
    assert_eq!(output_of(&finished(&t, &b).await), json!(5));
    assert_eq!(finished(&t, &c).await.status, "running");
    // No message within 30 days: the timeout path.
    t.clock.advance(Duration::from_secs(30 * 86_400));
    assert_eq!(output_of(&finished(&t, &c).await), json!("timed-out"));
});

both_backends!(buffered_messages_expire, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "late", "steps:\n  - id: wait_msg\n    receive: { message: m, correlate: \"${ .input.k }\" }\n").await;
    t.engine.publish("m", "K", json!(1)).await.unwrap();
    t.clock.advance(t.engine.config().message_retention + Duration::from_secs(1));
    let id = start(&t.engine, "late", json!({"k": "K"})).await;
    assert_eq!(finished(&t, &id).await.status, "running", "an expired message is not delivered");
});

both_backends!(human_tasks_outcomes_reasons_and_four_eyes, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "approve",
        r#"steps:
  - id: review
    human:
      title: "Review {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      outcomes: [approve, reject]
      reason_required: [reject]
      due: 5d
  - id: second
    human:
      title: Second approval
      assign: { role: naspi-operator }
      separate_from: [review]
  - id: done
    end: { output: { first: "${ .steps.review.output.outcome }", by: "${ .steps.second.output.completed_by }" } }
"#,
    )
    .await;
    let id = start(&t.engine, "approve", json!({"cf": "RSSMRA80A01H501U", "office": "RM1"})).await;
    t.engine.run_until_idle().await.unwrap();
    let tasks = t
        .engine
        .store()
        .tasks(&TaskFilter { status: Some("open".into()), office: Some("RM1".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title, "Review RSSMRA80A01H501U");
    assert_eq!(tasks[0].due_at, Some(t.clock_now() + 5 * 86_400_000));
    let task = tasks[0].id.clone();
    let bad = t.engine.complete_task(&task, "anna", TaskCompletion { outcome: Some("maybe".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(EngineError::Invalid(_))), "{bad:?}");
    let no_reason = t.engine.complete_task(&task, "anna", TaskCompletion { outcome: Some("reject".into()), ..Default::default() }).await;
    assert!(matches!(no_reason, Err(EngineError::Invalid(m)) if m.contains("reason")));
    t.engine.complete_task(&task, "anna", TaskCompletion { outcome: Some("approve".into()), ..Default::default() }).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let second = t
        .engine
        .store()
        .tasks(&TaskFilter { status: Some("open".into()), instance_id: Some(id.clone()), ..Default::default() })
        .await
        .unwrap();
    let second = second[0].id.clone();
    let same = t.engine.complete_task(&second, "anna", TaskCompletion::default()).await;
    assert!(matches!(same, Err(EngineError::Forbidden(_))), "four eyes: {same:?}");
    t.engine.complete_task(&second, "bruno", TaskCompletion::default()).await.unwrap();
    let row = finished(&t, &id).await;
    assert_eq!(output_of(&row), json!({"first": "approve", "by": "bruno"}));
    let history = t.engine.store().history(&id).await.unwrap();
    let actors: Vec<_> = history.iter().filter(|h| h.kind == "task.completed").map(|h| h.actor.clone().unwrap()).collect();
    assert_eq!(actors, ["anna", "bruno"], "human actions carry the actor");
});

both_backends!(sub_workflows_return_and_fail_to_the_parent, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "child", "steps:\n  - id: work\n    call: test\n    with: \"${ .input }\"\n").await;
    deploy(
        &t.engine,
        "parent",
        r#"steps:
  - id: ok_child
    workflow: { name: child, input: { output: 42 } }
  - id: bad_child
    workflow: { name: child, input: { fail: child.broken } }
    catch:
      - error: child.broken
        goto: done
  - id: never
    end: { output: never }
  - id: done
    end: { output: { ok: "${ .steps.ok_child.output }", error: "${ .steps.bad_child.error.code }" } }
"#,
    )
    .await;
    let id = start(&t.engine, "parent", json!({})).await;
    let row = finished(&t, &id).await;
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!({"ok": 42, "error": "child.broken"})));
    let children = t
        .engine
        .store()
        .instances(&pratica_engine::store::InstanceFilter { workflow: Some("child".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|c| c.parent_id.as_deref() == Some(id.as_str())));
});

both_backends!(retries_back_off_then_succeed_or_give_up, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "flaky",
        r#"steps:
  - id: call
    call: test
    with: { retryable: service.unavailable, until_attempt: "${ .input.until }", output: ok }
    retry: { attempts: 3, backoff: exponential, delay: 10s, max_delay: 1m, jitter: false }
"#,
    )
    .await;
    let ok = start(&t.engine, "flaky", json!({"until": 3})).await;
    let gives_up = start(&t.engine, "flaky", json!({"until": 99})).await;
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("call").len(), 2, "one attempt each so far");
    t.clock.advance(Duration::from_secs(9));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("call").len(), 2, "the 10 s backoff has not passed");
    t.clock.advance(Duration::from_secs(1));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("call").len(), 4);
    t.clock.advance(Duration::from_secs(20));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("call").len(), 6, "third attempts after 20 s (exponential)");
    assert_eq!(finished(&t, &ok).await.status, "completed");
    let failed = finished(&t, &gives_up).await;
    assert_eq!(failed.status, "failed");
    assert!(failed.error.unwrap().contains("service.unavailable"));
    let keys: std::collections::BTreeSet<_> =
        scripted.calls().iter().filter(|c| c.instance_id == ok).map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "retries keep the idempotency key");
    let attempts: Vec<u32> = scripted.calls().iter().filter(|c| c.instance_id == ok).map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    t.clock.advance(Duration::from_secs(3600));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("call").len(), 6, "never more than `attempts`");
});

both_backends!(step_timeouts_are_retryable_errors, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "slow",
        r#"steps:
  - id: slow
    call: test
    with: { sleep_ms: 2000 }
    timeout: 50ms
    catch:
      - error: timeout
        goto: gave_up
  - id: fine
    end: { output: fine }
  - id: gave_up
    end: { output: timeout }
"#,
    )
    .await;
    let id = start(&t.engine, "slow", json!({})).await;
    assert_eq!(output_of(&finished(&t, &id).await), json!("timeout"));
    assert_eq!(scripted.calls_to("slow").len(), 1);
});

both_backends!(catch_handlers_and_compensation, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "pay",
        r#"steps:
  - id: pay
    call: test.pay
    with: { output: { receipt: R1 } }
    compensate:
      - id: refund
        call: test.refund
        with: { receipt: "${ .steps.pay.output.receipt }", why: "${ .error.code }" }
  - id: notify
    call: test.notify
    with: { fail: "${ .input.notify_error }" }
    catch:
      - error: notify.soft
        steps:
          - id: note
            call: test.note
            with: { error: "${ .error.message }" }
  - id: ledger
    call: test.ledger
    with: { fail: ledger.down }
"#,
    )
    .await;
    let id = start(&t.engine, "pay", json!({"notify_error": "notify.soft"})).await;
    let row = finished(&t, &id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(scripted.calls_to("note").len(), 1, "the catch handler ran");
    let refunds = scripted.calls_to("refund");
    assert_eq!(refunds.len(), 1, "the completed payment was compensated");
    assert_eq!(refunds[0].input, json!({"receipt": "R1", "why": "ledger.down"}));
    let kinds = history_kinds(&t.engine.store().history(&id).await.unwrap());
    assert!(kinds.contains(&"compensation.started".to_string()) && kinds.last().unwrap() == "instance.failed", "{kinds:?}");
});

both_backends!(cancel_withdraws_work, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "long", "steps:\n  - id: review\n    human: { title: Review, assign: { role: operator } }\n").await;
    let id = start(&t.engine, "long", json!({})).await;
    t.engine.run_until_idle().await.unwrap();
    t.engine.cancel(&id, "admin", "withdrawn by the citizen").await.unwrap();
    assert_eq!(t.engine.store().instance(&id).await.unwrap().status, "cancelled");
    let tasks = t.engine.store().tasks(&TaskFilter { instance_id: Some(id.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(tasks[0].status, "cancelled");
    let late = t.engine.complete_task(&tasks[0].id, "anna", TaskCompletion::default()).await;
    assert!(late.is_err(), "a finished instance accepts nothing");
});

both_backends!(starts_are_idempotent_by_request_id, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "once", "steps:\n  - id: a\n    call: noop\n").await;
    let req = StartRequest { workflow: "once".into(), input: json!({}), request_id: Some("req-1".into()), ..Default::default() };
    let first = t.engine.start(req.clone()).await.unwrap();
    let again = t.engine.start(req).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.id, again.id);
});

both_backends!(deploy_versions_by_content, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    let v1 = "workflow: w\nversion: 1\ntitle: W\nsteps:\n  - id: a\n    call: noop\n";
    assert!(t.engine.deploy(v1).await.unwrap().created);
    assert!(!t.engine.deploy(&format!("# a comment\n{v1}")).await.unwrap().created, "formatting does not make a new version");
    let changed = v1.replace("noop", "log");
    assert!(matches!(t.engine.deploy(&changed).await, Err(EngineError::VersionConflict { .. })));
    assert!(t.engine.deploy(&changed.replace("version: 1", "version: 2")).await.unwrap().created);
    let bad = t.engine.deploy("workflow: w\nversion: 3\ntitle: W\nsteps:\n  - id: a\n    call: nosuch\n").await;
    assert!(matches!(bad, Err(EngineError::Definition(d)) if d[0].code == "WF0205"));
});

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for TestEngine {
    fn clock_now(&self) -> i64 {
        use pratica_engine::clock::Clock;
        self.clock.now()
    }
}

both_backends!(fail_steps_and_waits_until_a_date, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "dated",
        r#"steps:
  - id: check
    switch:
      - when: ${ .input.reject }
        goto: refuse
  - id: until
    wait: { until: "${ .input.date }" }
  - id: done
    end: { output: waited }
  - id: refuse
    fail: { error: naspi.rejected, message: "Rejected: {{ input.why }}" }
"#,
    )
    .await;
    let refused = start(&t.engine, "dated", json!({"reject": true, "why": "late application", "date": "2026-03-02"})).await;
    let row = finished(&t, &refused).await;
    assert_eq!(row.status, "failed");
    let error: Value = serde_json::from_str(row.error.as_deref().unwrap()).unwrap();
    assert_eq!((error["code"].as_str(), error["message"].as_str()), (Some("naspi.rejected"), Some("Rejected: late application")));
    // T0 is 2026-03-01T09:00Z; midnight of 2026-03-02 in Rome is 2026-03-01T23:00Z.
    let waiting = start(&t.engine, "dated", json!({"reject": false, "date": "2026-03-02"})).await;
    assert_eq!(finished(&t, &waiting).await.status, "running");
    t.clock.advance(Duration::from_secs(14 * 3600 - 1));
    assert_eq!(finished(&t, &waiting).await.status, "running");
    t.clock.advance(Duration::from_secs(1));
    assert_eq!(output_of(&finished(&t, &waiting).await), json!("waited"));
    // A date in the past does not wait.
    let past = start(&t.engine, "dated", json!({"reject": false, "date": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(finished(&t, &past).await.status, "completed");
});

both_backends!(a_catch_handler_supplies_the_fallback_output, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "fallback",
        r#"steps:
  - id: lookup
    call: test
    with: { fail: registry.down }
    catch:
      - error: registry.*
        steps:
          - id: default_office
            call: test
            with: { output: { office: "RM-EUR", source: fallback } }
  - id: done
    end: { output: { office: "${ .steps.lookup.output.office }", error: "${ .steps.lookup.error.code }" } }
"#,
    )
    .await;
    let id = start(&t.engine, "fallback", json!({})).await;
    assert_eq!(output_of(&finished(&t, &id).await), json!({"office": "RM-EUR", "error": "registry.down"}));
});

both_backends!(start_inputs_are_checked_against_the_input_schema, |backend| async move {
    let Some((mut t, _)) = scripted_engine(backend).await else { return };
    let schemas_dir = pratica_tests::repo_path("schemas");
    let store = t.engine.store().clone();
    let config = pratica_engine::runtime::EngineConfig {
        schemas: pratica_engine::schemas::SchemaSet::from_dir(&schemas_dir),
        ..pratica_engine::runtime::EngineConfig::default()
    };
    t.engine = Engine::new(store, Registry::builtin(), std::sync::Arc::new(t.clock.clone()), config);
    deploy(&t.engine, "typed", "input: naspi-review\nsteps:\n  - id: a\n    call: noop\n").await;
    let bad = t.engine.start(StartRequest { workflow: "typed".into(), input: json!({"outcome": 12}), ..Default::default() }).await;
    match bad {
        Err(EngineError::Schema(pratica_engine::schemas::SchemaError::Invalid { errors, .. })) => assert!(!errors.is_empty()),
        other => panic!("expected a schema error, got {other:?}"),
    }
});

both_backends!(a_failed_instance_can_be_retried_from_the_failed_step, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    deploy(
        &t.engine,
        "flaky-archive",
        r#"steps:
  - id: before
    call: test.before
  - id: archive
    call: test
    with: { fail_calls: 1, code: archive.down, output: archived }
  - id: done
    end: { output: "${ .steps.archive.output }" }
"#,
    )
    .await;
    let id = start(&t.engine, "flaky-archive", json!({})).await;
    assert_eq!(finished(&t, &id).await.status, "failed");
    assert!(matches!(t.engine.retry("no-such-instance", "admin").await, Err(EngineError::NotFound { .. })));
    // The archive is back: the operator retries; the failed step runs again, not the ones before.
    t.engine.retry(&id, "admin").await.unwrap();
    let row = finished(&t, &id).await;
    assert_eq!((row.status.as_str(), output_of(&row)), ("completed", json!("archived")));
    assert!(row.ended_at.is_some() && row.error.is_none());
    assert_eq!(scripted.calls_to("before").len(), 1);
    let keys: Vec<String> = scripted.calls_to("archive").iter().map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys, [format!("{id}:archive:1"), format!("{id}:archive:2")], "a retry is a new visit");
    let history = t.engine.store().history(&id).await.unwrap();
    let retried: Vec<_> = history.iter().filter(|h| h.kind == "instance.retried").collect();
    assert_eq!((retried.len(), retried[0].actor.as_deref(), retried[0].step.as_deref()), (1, Some("admin"), Some("archive")));
    assert!(matches!(t.engine.retry(&id, "admin").await, Err(EngineError::Invalid(_))), "a completed instance is not retried");
    assert!(pratica_engine::audit::verify_instance(t.engine.store(), &id).await.unwrap().is_ok());
});

both_backends!(a_compensated_failure_is_not_retryable, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    deploy(&t.engine, "undo", "steps:\n  - id: pay\n    call: test\n    compensate:\n      - id: refund\n        call: test\n  - id: boom\n    fail: { error: x.y }\n").await;
    let id = start(&t.engine, "undo", json!({})).await;
    assert_eq!(finished(&t, &id).await.status, "failed");
    assert!(matches!(t.engine.retry(&id, "admin").await, Err(EngineError::Invalid(m)) if m.contains("compensated")));
});
