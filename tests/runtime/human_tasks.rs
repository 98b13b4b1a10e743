//! Human tasks, complete, on both backends with a manual clock: escalation on a durable
//! timer (once, not after completion, across a restart) with its notification hook;
//! the `assigned` hook and a failing hook that does not block the case; claim, unclaim,
//! delegation and comments in the hash-chained history with their actors; four eyes.

use std::sync::Arc;
use std::time::Duration;

use pratica_engine::audit;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{Engine, EngineConfig, EngineError, StartRequest, TaskActor, TaskCompletion, TaskRefusal};
use pratica_engine::store::{HistoryRow, Store, TaskFilter, TaskRow, UserRow};
use pratica_tests::both_backends;
use pratica_tests::scripted::scripted_engine;
use serde_json::{Value, json};

const ESCALATING: &str = r#"workflow: escalating
version: 1
title: Escalating review
business_key: ${ .input.cf }
steps:
  - id: review
    human:
      title: "Review {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      outcomes: [approve, reject]
      due: 3d
      escalate: { after: 2d, to: { role: naspi-supervisor, office: '${ .input.office + "-SUP" }' } }
      notify:
        assigned: { call: test.email, with: { to: "naspi.{{ task.office }}@inps.example", subject: "New task {{ task.title }}" } }
        escalated: { call: test.email, with: { to: "{{ task.role }}.{{ task.office }}@inps.example", task: "${ .task.id }" } }
  - id: done
    end: { output: { outcome: "${ .steps.review.output.outcome }", by: "${ .steps.review.output.completed_by }" } }
"#;

const FOUR_EYES: &str = r#"workflow: four-eyes
version: 1
title: Payout with four eyes
steps:
  - id: prepare
    human:
      title: Prepare payout
      assign: { role: payout-officer, office: RM1 }
  - id: approve
    human:
      title: Approve payout
      assign: { role: payout-officer, office: RM1 }
      separate_from: [prepare]
  - id: done
    end: { output: { prepared: "${ .steps.prepare.output.completed_by }", approved: "${ .steps.approve.output.completed_by }" } }
"#;

const FAILING_HOOK: &str = r#"workflow: failing-hook
version: 1
title: A hook that fails
steps:
  - id: review
    human:
      title: Review
      assign: { user: anna }
      notify:
        assigned: { call: test.email, with: { fail: smtp.refused } }
  - id: done
    end: { output: { by: "${ .steps.review.output.completed_by }" } }
"#;

async fn start(engine: &Engine, workflow: &str, input: Value) -> String {
    engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id
}

async fn open_task(engine: &Engine, instance: &str) -> TaskRow {
    let tasks = engine.store().tasks(&TaskFilter { instance_id: Some(instance.into()), ..Default::default() }).await.unwrap();
    tasks.into_iter().find(|t| t.status == "open" || t.status == "claimed").expect("an open task")
}

async fn history(engine: &Engine, instance: &str) -> Vec<HistoryRow> {
    engine.store().history(instance).await.unwrap()
}

fn of_kind<'a>(rows: &'a [HistoryRow], kind: &str) -> Vec<&'a HistoryRow> {
    rows.iter().filter(|r| r.kind == kind).collect()
}

fn data(row: &HistoryRow) -> Value {
    serde_json::from_str(&row.data).unwrap()
}

async fn assert_chain_verifies(engine: &Engine, instance: &str) {
    let verdict = audit::verify_instance(engine.store(), instance).await.unwrap();
    assert!(verdict.is_ok(), "audit verify: {verdict:?}");
}

async fn add_user(store: &Store, name: &str, role: &str, offices: &[&str], task_roles: &[&str]) {
    store
        .insert_user(&UserRow {
            username: name.into(),
            password_hash: "unused".into(),
            role: role.into(),
            offices: json!(offices).to_string(),
            task_roles: json!(task_roles).to_string(),
            created_at: 0,
            disabled_at: None,
        })
        .await
        .unwrap();
}

fn as_user(name: &str) -> TaskActor<'_> {
    TaskActor::trusted(name, false)
}

both_backends!(escalation_fires_once_after_the_delay_and_notifies, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    t.engine.deploy(ESCALATING).await.unwrap();
    let id = start(&t.engine, "escalating", json!({"cf": "RSSMRA80A01H501U", "office": "RM1"})).await;
    t.engine.run_until_idle().await.unwrap();

    // The `assigned` hook ran once, with the task in its templates and a stable key.
    let task = open_task(&t.engine, &id).await;
    let calls = scripted.calls_to("review");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].input, json!({"to": "naspi.RM1@inps.example", "subject": "New task Review RSSMRA80A01H501U"}));
    assert_eq!(calls[0].idempotency_key, format!("{}:notify:assigned", task.id));
    assert_eq!(of_kind(&history(&t.engine, &id).await, "task.notified").len(), 1);

    // Someone claims it, but does not finish in time.
    t.engine.claim_task(&task.id, &as_user("anna")).await.unwrap();
    t.clock.advance(Duration::from_secs(2 * 86_400 - 60));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(open_task(&t.engine, &id).await.role.as_deref(), Some("naspi-operator"), "not before the delay");

    t.clock.advance(Duration::from_secs(60));
    t.engine.run_until_idle().await.unwrap();
    let escalated = open_task(&t.engine, &id).await;
    assert_eq!(
        (escalated.role.as_deref(), escalated.office.as_deref(), escalated.assignee.as_deref(), escalated.status.as_str()),
        (Some("naspi-supervisor"), Some("RM1-SUP"), None, "open")
    );
    assert!(escalated.escalated_at.is_some());
    assert_eq!(escalated.due_at, task.due_at, "the due date stays");
    let calls = scripted.calls_to("review");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].input, json!({"to": "naspi-supervisor.RM1-SUP@inps.example", "task": task.id}));
    assert_eq!(calls[1].idempotency_key, format!("{}:notify:escalated", task.id));

    // Much later: nothing more happens.
    t.clock.advance(Duration::from_secs(30 * 86_400));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("review").len(), 2);
    let rows = history(&t.engine, &id).await;
    let escalations = of_kind(&rows, "task.escalated");
    assert_eq!(escalations.len(), 1);
    assert_eq!(data(escalations[0])["from"], json!({"role": "naspi-operator", "office": "RM1", "assignee": "anna"}));
    assert_eq!(of_kind(&rows, "task.notified").len(), 2);

    // The supervisor completes it; the case goes on.
    t.engine
        .complete_task_as(&escalated.id, &as_user("sara"), TaskCompletion { outcome: Some("approve".into()), ..Default::default() })
        .await
        .unwrap();
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!(row.status, "completed");
    assert_chain_verifies(&t.engine, &id).await;
});

both_backends!(escalation_does_nothing_once_the_task_is_completed, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    t.engine.deploy(ESCALATING).await.unwrap();
    let id = start(&t.engine, "escalating", json!({"cf": "CF1", "office": "RM1"})).await;
    t.engine.run_until_idle().await.unwrap();
    let task = open_task(&t.engine, &id).await;
    t.clock.advance(Duration::from_secs(86_400));
    t.engine
        .complete_task_as(&task.id, &as_user("anna"), TaskCompletion { outcome: Some("reject".into()), ..Default::default() })
        .await
        .unwrap();
    t.engine.run_until_idle().await.unwrap();
    t.clock.advance(Duration::from_secs(5 * 86_400));
    t.engine.run_until_idle().await.unwrap();
    let done = t.engine.store().task(&task.id).await.unwrap();
    assert_eq!((done.status.as_str(), done.role.as_deref(), done.escalated_at), ("completed", Some("naspi-operator"), None));
    assert_eq!(scripted.calls_to("review").len(), 1, "only the assigned hook");
    assert!(of_kind(&history(&t.engine, &id).await, "task.escalated").is_empty());
    assert_eq!(t.engine.store().job_count().await.unwrap(), 0, "the timer fired and was dropped");
    assert_eq!(t.engine.store().instance(&id).await.unwrap().status, "completed");
});

both_backends!(escalation_survives_a_restart, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    t.engine.deploy(ESCALATING).await.unwrap();
    let id = start(&t.engine, "escalating", json!({"cf": "CF2", "office": "NA1"})).await;
    t.engine.run_until_idle().await.unwrap();
    let task = open_task(&t.engine, &id).await;
    drop(t.engine);

    // A new engine (a new process) on the same database, later.
    let store = Store::connect(&t.url).await.unwrap();
    let registry = Registry::builtin().with("test", scripted.clone());
    let engine = Engine::new(store, registry, Arc::new(t.clock.clone()), EngineConfig::default());
    t.clock.advance(Duration::from_secs(3 * 86_400));
    engine.run_until_idle().await.unwrap();
    engine.run_until_idle().await.unwrap();
    let escalated = engine.store().task(&task.id).await.unwrap();
    assert_eq!((escalated.role.as_deref(), escalated.office.as_deref()), (Some("naspi-supervisor"), Some("NA1-SUP")));
    assert_eq!(of_kind(&history(&engine, &id).await, "task.escalated").len(), 1);
    assert_eq!(scripted.calls_to("review").iter().filter(|c| c.idempotency_key.ends_with(":escalated")).count(), 1);

    // A second engine on the same database finds nothing left to do.
    let other = Engine::new(
        Store::connect(&t.url).await.unwrap(),
        Registry::builtin().with("test", scripted.clone()),
        Arc::new(t.clock.clone()),
        EngineConfig::default(),
    );
    t.clock.advance(Duration::from_secs(86_400));
    other.run_until_idle().await.unwrap();
    assert_eq!(of_kind(&history(&other, &id).await, "task.escalated").len(), 1);
    assert_eq!(scripted.calls_to("review").len(), 2);
    assert_chain_verifies(&other, &id).await;
});

both_backends!(a_failing_hook_is_recorded_and_does_not_block_the_case, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    t.engine.deploy(FAILING_HOOK).await.unwrap();
    let id = start(&t.engine, "failing-hook", json!({})).await;
    t.engine.run_until_idle().await.unwrap();
    let task = open_task(&t.engine, &id).await;
    assert_eq!(task.assignee.as_deref(), Some("anna"), "assign: user");
    let rows = history(&t.engine, &id).await;
    let failed = of_kind(&rows, "task.notification_failed");
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(data(failed[0])["error"]["code"], "smtp.refused");
    assert_eq!(scripted.calls_to("review").len(), 1, "a fatal error is not retried");
    assert_eq!(t.engine.store().instance(&id).await.unwrap().status, "running");
    // Someone else cannot complete a task assigned to anna; she can.
    let refused = t.engine.complete_task_as(&task.id, &as_user("bruno"), TaskCompletion::default()).await;
    assert!(matches!(refused, Err(EngineError::Task(TaskRefusal::Claimed { .. }))), "{refused:?}");
    t.engine.complete_task_as(&task.id, &as_user("anna"), TaskCompletion::default()).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(t.engine.store().instance(&id).await.unwrap().status, "completed");
    assert_chain_verifies(&t.engine, &id).await;
});

both_backends!(claim_unclaim_delegate_and_comment_are_in_the_history, |backend| async move {
    let Some((t, _)) = scripted_engine(backend).await else { return };
    add_user(t.engine.store(), "anna", "operator", &["RM1"], &["payout-officer"]).await;
    add_user(t.engine.store(), "bruno", "operator", &["RM1"], &["payout-officer"]).await;
    add_user(t.engine.store(), "carla", "operator", &["MI1"], &["payout-officer"]).await;
    add_user(t.engine.store(), "vera", "viewer", &["RM1"], &[]).await;
    t.engine.deploy(FOUR_EYES).await.unwrap();
    let id = start(&t.engine, "four-eyes", json!({})).await;
    t.engine.run_until_idle().await.unwrap();
    let task = open_task(&t.engine, &id).await;

    // Claim and unclaim, each with its actor.
    let claimed = t.engine.claim_task(&task.id, &as_user("anna")).await.unwrap();
    assert_eq!((claimed.assignee.as_deref(), claimed.status.as_str()), (Some("anna"), "claimed"));
    let again = t.engine.claim_task(&task.id, &as_user("bruno")).await;
    assert!(matches!(again, Err(EngineError::Task(TaskRefusal::Claimed { ref holder, .. })) if holder == "anna"), "{again:?}");
    let refused = t.engine.unclaim_task(&task.id, &as_user("bruno")).await;
    assert!(matches!(refused, Err(EngineError::Task(TaskRefusal::Claimed { .. }))), "{refused:?}");
    t.engine.unclaim_task(&task.id, &as_user("anna")).await.unwrap();
    t.engine.claim_task(&task.id, &as_user("anna")).await.unwrap();

    // Delegation: only the holder; only to a known operator of the office.
    let by_other = t.engine.delegate_task(&task.id, &as_user("bruno"), "bruno").await;
    assert!(matches!(by_other, Err(EngineError::Task(TaskRefusal::Claimed { .. }))), "{by_other:?}");
    for (to, why) in [("nobody", "no active user"), ("carla", "office RM1"), ("vera", "cannot work tasks")] {
        let bad = t.engine.delegate_task(&task.id, &as_user("anna"), to).await;
        assert!(matches!(&bad, Err(EngineError::Task(TaskRefusal::Delegation(m))) if m.contains(why)), "{to}: {bad:?}");
    }
    let delegated = t.engine.delegate_task(&task.id, &as_user("anna"), "bruno").await.unwrap();
    assert_eq!((delegated.assignee.as_deref(), delegated.delegated_by.as_deref()), (Some("bruno"), Some("anna")));

    // Comments, in the history and per task.
    t.engine.comment_task(&task.id, &as_user("bruno"), "  IBAN checked with the bank  ").await.unwrap();
    let empty = t.engine.comment_task(&task.id, &as_user("bruno"), "   ").await;
    assert!(matches!(empty, Err(EngineError::Invalid(_))), "{empty:?}");
    let comments = t.engine.task_comments(&task).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!((comments[0].actor.as_deref(), comments[0].text.as_str()), (Some("bruno"), "IBAN checked with the bank"));

    // The previous holder cannot complete it any more; the delegate can.
    let previous = t.engine.complete_task_as(&task.id, &as_user("anna"), TaskCompletion::default()).await;
    assert!(matches!(previous, Err(EngineError::Task(TaskRefusal::Claimed { .. }))), "{previous:?}");
    t.engine.complete_task_as(&task.id, &as_user("bruno"), TaskCompletion::default()).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let closed = t.engine.claim_task(&task.id, &as_user("anna")).await;
    assert!(matches!(closed, Err(EngineError::Task(TaskRefusal::Closed { .. }))), "{closed:?}");

    // Four eyes on the approval: bruno prepared, so he may neither approve nor receive it.
    let approval = open_task(&t.engine, &id).await;
    assert_eq!(approval.step_id, "approve");
    let same = t.engine.complete_task_as(&approval.id, &as_user("bruno"), TaskCompletion::default()).await;
    assert!(matches!(same, Err(EngineError::Forbidden(_))), "four eyes: {same:?}");
    t.engine.claim_task(&approval.id, &as_user("anna")).await.unwrap();
    let to_preparer = t.engine.delegate_task(&approval.id, &as_user("anna"), "bruno").await;
    assert!(matches!(to_preparer, Err(EngineError::Forbidden(_))), "{to_preparer:?}");
    t.engine.complete_task_as(&approval.id, &as_user("anna"), TaskCompletion::default()).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    let row = t.engine.store().instance(&id).await.unwrap();
    assert_eq!(
        row.output.as_deref().map(|o| serde_json::from_str::<Value>(o).unwrap()),
        Some(json!({"prepared": "bruno", "approved": "anna"}))
    );

    // Every action, with its actor, in order.
    let rows = history(&t.engine, &id).await;
    let actions: Vec<(String, Option<String>)> = rows
        .iter()
        .filter(|r| r.kind.starts_with("task.") && r.kind != "task.created")
        .map(|r| (r.kind.clone(), r.actor.clone()))
        .collect();
    let expected = [
        ("task.claimed", "anna"),
        ("task.unclaimed", "anna"),
        ("task.claimed", "anna"),
        ("task.delegated", "anna"),
        ("task.commented", "bruno"),
        ("task.completed", "bruno"),
        ("task.claimed", "anna"),
        ("task.completed", "anna"),
    ];
    let expected: Vec<(String, Option<String>)> = expected.iter().map(|(k, a)| (k.to_string(), Some(a.to_string()))).collect();
    assert_eq!(actions, expected);
    let delegation = of_kind(&rows, "task.delegated");
    assert_eq!(data(delegation[0]), json!({"task": task.id, "from": "anna", "to": "bruno"}));
    assert_chain_verifies(&t.engine, &id).await;
});

const FLAKY_HOOK: &str = r#"workflow: flaky-hook
version: 1
title: A hook that fails twice
steps:
  - id: review
    human:
      title: Review
      assign: { role: naspi-operator, office: RM1 }
      notify:
        assigned: { call: test.email, with: { retryable: smtp.busy, until_attempt: 3 } }
"#;

both_backends!(a_retryable_hook_is_retried_with_the_same_key, |backend| async move {
    let Some((t, scripted)) = scripted_engine(backend).await else { return };
    t.engine.deploy(FLAKY_HOOK).await.unwrap();
    let id = start(&t.engine, "flaky-hook", json!({})).await;
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("review").len(), 1);
    t.clock.advance(Duration::from_secs(9));
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(scripted.calls_to("review").len(), 1, "backoff: 10 s");
    t.clock.advance(Duration::from_secs(1));
    t.engine.run_until_idle().await.unwrap();
    t.clock.advance(Duration::from_secs(20));
    t.engine.run_until_idle().await.unwrap();
    let calls = scripted.calls_to("review");
    assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(calls.iter().all(|c| c.idempotency_key == calls[0].idempotency_key), "one key for every attempt");
    let rows = history(&t.engine, &id).await;
    let notified = of_kind(&rows, "task.notified");
    assert_eq!(notified.len(), 1);
    assert_eq!(data(notified[0])["attempt"], 3);
    assert!(of_kind(&rows, "task.notification_failed").is_empty());
    assert_eq!(open_task(&t.engine, &id).await.status, "open", "the task never waited for its hook");
    assert_chain_verifies(&t.engine, &id).await;
});
