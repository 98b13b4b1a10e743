//! `human`: the task request (with the caller's id, escalation and notification hooks),
//! its completion, and separation of duties.

use serde_json::json;

use super::*;
use crate::runtime::machine::TaskRequest;

const REVIEW: &str = r#"
workflow: naspi-review
version: 1
title: Review a NASpI application
steps:
  - id: review
    human:
      title: "Review {{ input.name }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      outcomes: [approve, reject]
      due: 5d
      escalate: { after: 3d, to: { role: naspi-supervisor } }
      notify:
        assigned:
          call: email.send
          with: { to: "naspi.{{ task.office }}@inps.example", subject: "Task {{ task.id }}", body: "{{ task.title }}" }
  - id: second_review
    human:
      title: "Second review of {{ input.name }}"
      assign: { role: naspi-operator }
      separate_from: [review]
"#;

const DAY: Millis = 24 * 3_600_000;

fn created(t: &Transition) -> &TaskRequest {
    t.effects
        .iter()
        .find_map(|e| match e {
            Effect::CreateTask(task) => Some(task.as_ref()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a task is created: {:?}", t.effects))
}

#[test]
fn a_human_step_creates_a_task_with_the_callers_id() {
    let mut case = Case::new(REVIEW, json!({"name": "Mario Rossi", "office": "roma"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "task.created"]);
    let task = created(&t);
    let id = "00000000-0000-7000-8000-000000000001";
    assert_eq!(task.id, id, "the id comes from the caller's IdSource");
    assert_eq!(task.title, "Review Mario Rossi");
    assert_eq!((task.role.as_deref(), task.office.as_deref()), (Some("naspi-operator"), Some("roma")));
    assert_eq!(task.outcomes, ["approve", "reject"]);
    assert_eq!(task.due_at, Some(T0 + 5 * DAY));
    let escalation = task.escalation.as_ref().expect("an escalation");
    assert_eq!((escalation.due_at, escalation.role.as_str()), (T0 + 3 * DAY, "naspi-supervisor"));
    let notify = task.notify_assigned.as_ref().expect("an assigned notification");
    assert_eq!(notify.idempotency_key, format!("{id}:notify:assigned"));
    assert_eq!(notify.input["subject"], json!(format!("Task {id}")));
    assert_eq!(notify.input["to"], json!("naspi.roma@inps.example"));
    assert_eq!(entry(&t, HistoryKind::TaskCreated).data["id"], json!(id));
    assert_eq!(case.waiting("review"), &Waiting::Task);
}

#[test]
fn completing_the_task_completes_the_step_with_the_operators_output() {
    let mut case = Case::new(REVIEW, json!({"name": "Mario Rossi", "office": "roma"}));
    case.start();
    let (token, epoch) = case.at("review");
    let output = json!({"outcome": "approve", "reason": null, "form": {}, "completed_by": "anna"});
    let t = case.apply(Event::TaskCompleted { token, epoch, output: output.clone(), actor: "anna".into() });
    assert_eq!(kinds(&t), ["task.completed", "step.completed", "task.created"]);
    let completed = entry(&t, HistoryKind::TaskCompleted);
    assert_eq!((completed.actor.as_deref(), &completed.data), (Some("anna"), &json!({"output": output})));
    assert_eq!(case.state.steps["review"], json!({"output": output}));

    let second = created(&t);
    assert_eq!(second.id, "00000000-0000-7000-8000-000000000002", "each task gets the next id");
    assert_eq!(second.excluded_actors, ["anna"], "four eyes: the first reviewer cannot complete the second");
}

#[test]
fn a_notification_that_cannot_be_rendered_is_recorded_and_the_task_still_created() {
    let yaml = REVIEW.replace("{{ task.title }}", "{{ task.missing_field }}");
    let mut case = Case::new(&yaml, json!({"name": "Mario Rossi", "office": "roma"}));
    let t = case.start();
    assert_eq!(kinds(&t), ["instance.started", "task.created", "task.notification_failed"]);
    assert_eq!(entry(&t, HistoryKind::TaskNotificationFailed).data["hook"], json!("assigned"));
    assert!(created(&t).notify_assigned.is_none());
}
