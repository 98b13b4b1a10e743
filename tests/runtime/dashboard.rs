//! The director dashboard on both backends: a known history built through the engine with
//! a manual clock, then the exact figures from the store and the rendered page.
//!
//! Timeline (T0 = 2026-03-01T09:00Z, deadline 2 days, period 7 days ending on 03-07):
//! - day 0: `auto` A1 (input office RM1) starts and closes at once; `review` R1 (RM1) and R2
//!   (MI1) start, each with a human task due in 2 days.
//! - day 1: R1's task is completed on time (R1 closes after 1 day); `auto` A2 (MI1) runs.
//! - day 3: R2's task is completed late (R2 closes after 3 days); R3 (RM1) starts.
//! - day 6 (now): R3's task is open and overdue since day 5.

use std::time::Duration;

use pratica_api::console::dashboard::{DashboardQuery, content};
use pratica_api::console::i18n::Lang;
use pratica_api::http::AppState;
use pratica_engine::connector::Registry;
use pratica_engine::runtime::{StartRequest, TaskCompletion};
use pratica_engine::store::{DashboardFigures, ReportFilter, TaskFilter};
use pratica_tests::backend::{T0, TestEngine, test_engine};
use pratica_tests::both_backends;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

const AUTO: &str = r#"workflow: auto
version: 1
title: Automatic
steps:
  - id: decide
    set: { ok: true }
  - id: done
    end: { output: { ok: true } }
"#;

const REVIEW: &str = r#"workflow: review
version: 1
title: Review
steps:
  - id: look
    human:
      title: "Look at <{{ input.cf }}>"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      due: 2d
  - id: done
    end: { output: { ok: true } }
"#;

async fn start(t: &TestEngine, workflow: &str, input: Value) -> String {
    let id = t.engine.start(StartRequest { workflow: workflow.into(), input, ..Default::default() }).await.unwrap().id;
    t.engine.run_until_idle().await.unwrap();
    id
}

async fn complete_task_of(t: &TestEngine, instance: &str) {
    let tasks = t.engine.store().tasks(&TaskFilter { instance_id: Some(instance.into()), ..Default::default() }).await.unwrap();
    assert_eq!(tasks.len(), 1);
    t.engine.complete_task(&tasks[0].id, "anna", TaskCompletion::default()).await.unwrap();
    t.engine.run_until_idle().await.unwrap();
    assert_eq!(t.engine.store().instance(instance).await.unwrap().status, "completed");
}

async fn history(t: &TestEngine) {
    t.engine.deploy(AUTO).await.unwrap();
    t.engine.deploy(REVIEW).await.unwrap();
    start(t, "auto", json!({"office": "RM1"})).await;
    let r1 = start(t, "review", json!({"cf": "R1", "office": "RM1"})).await;
    let r2 = start(t, "review", json!({"cf": "R2", "office": "MI1"})).await;
    t.clock.advance(Duration::from_millis(DAY as u64));
    complete_task_of(t, &r1).await;
    start(t, "auto", json!({"office": "MI1"})).await;
    t.clock.advance(Duration::from_millis(2 * DAY as u64));
    complete_task_of(t, &r2).await;
    start(t, "review", json!({"cf": "R3", "office": "RM1"})).await;
    t.clock.advance(Duration::from_millis(3 * DAY as u64));
}

fn filter(workflow: Option<&str>, office: Option<&str>) -> ReportFilter {
    let query =
        DashboardQuery { workflow: workflow.map(Into::into), office: office.map(Into::into), days: Some(7), deadline_days: Some(2) };
    query.filter(T0 + 6 * DAY).unwrap()
}

fn per_day(f: &DashboardFigures) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    (
        f.buckets.iter().map(|b| b.started).collect(),
        f.buckets.iter().map(|b| b.closed).collect(),
        f.buckets.iter().map(|b| b.backlog).collect(),
    )
}

both_backends!(figures_from_a_known_history, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    history(&t).await;
    let store = t.engine.store();

    let all = store.dashboard_figures(&filter(None, None)).await.unwrap();
    let midnight = T0 - 9 * 3_600_000;
    assert_eq!(all.filter.from, midnight, "the period starts at midnight UTC of day 0");
    assert_eq!(all.buckets.len(), 7);
    assert_eq!(all.backlog_at_start, 0);
    let (started, closed, backlog) = per_day(&all);
    assert_eq!(started, [3, 1, 0, 1, 0, 0, 0]);
    assert_eq!(closed, [1, 2, 0, 1, 0, 0, 0]);
    assert_eq!(backlog, [2, 1, 1, 1, 1, 1, 1]);
    assert_eq!((all.closed, all.closed_within_deadline, all.automated), (4, 3, 2));
    assert_eq!(all.within_deadline_share(), Some(0.75));
    assert_eq!(all.automation_rate(), Some(0.5));
    // 0 + 0 + 1 + 3 days over 4 cases.
    assert_eq!(all.mean_decision, Some(DAY));
    // Nearest rank over [0, 0, 1, 3] days.
    assert_eq!((all.median_decision, all.p90_decision), (Some(0), Some(3 * DAY)));
    assert_eq!(all.outflow_ratio(), Some(0.8), "4 closed for 5 started");
    let bins: Vec<(i64, i64)> = all.decision_bins.iter().filter(|b| b.cases > 0).map(|b| (b.lower / DAY, b.cases)).collect();
    assert_eq!(bins, [(0, 2), (1, 1), (3, 1)], "one-day bins for a two-day deadline");
    assert_eq!(all.decision_bins.last().unwrap().upper, None);
    assert_eq!((all.sla.completed_late, all.sla.open_overdue), (1, 1));
    assert_eq!(all.sla.oldest.len(), 1);
    assert_eq!(all.sla.oldest[0].title, "Look at <R3>");
    assert_eq!(all.sla.oldest[0].due_at, T0 + 5 * DAY);
    let ages: Vec<(i64, i64)> = all.open_by_age.iter().map(|b| (b.min_days, b.cases)).collect();
    assert_eq!(ages, [(0, 1), (31, 0), (61, 0), (121, 0)], "R3 is open, 3 days old");

    // Office RM1: A1 by its input, R1 and R3 by their tasks.
    let rm1 = store.dashboard_figures(&filter(None, Some("RM1"))).await.unwrap();
    let (started, closed, backlog) = per_day(&rm1);
    assert_eq!(started, [2, 0, 0, 1, 0, 0, 0]);
    assert_eq!(closed, [1, 1, 0, 0, 0, 0, 0]);
    assert_eq!(backlog, [1, 0, 0, 1, 1, 1, 1]);
    assert_eq!((rm1.closed, rm1.closed_within_deadline, rm1.automated), (2, 2, 1));
    assert_eq!((rm1.sla.completed_late, rm1.sla.open_overdue), (0, 1));

    // Workflow `review`: no automation, one of two within the deadline.
    let review = store.dashboard_figures(&filter(Some("review"), None)).await.unwrap();
    assert_eq!((review.closed, review.closed_within_deadline, review.automated), (2, 1, 0));
    assert_eq!(review.started(), 3);
    assert_eq!(review.backlog_at_end(), 1);
    let auto_mi1 = store.dashboard_figures(&filter(Some("auto"), Some("MI1"))).await.unwrap();
    assert_eq!((auto_mi1.started(), auto_mi1.closed, auto_mi1.automated), (1, 1, 1));
    assert_eq!((auto_mi1.sla.completed_late, auto_mi1.sla.open_overdue), (0, 0));

    // A later period: the open case is the backlog at its start; nothing else happened.
    let later = ReportFilter { from: midnight + 4 * DAY, ..filter(None, None) };
    let later = store.dashboard_figures(&later).await.unwrap();
    assert_eq!(later.backlog_at_start, 1);
    assert_eq!(later.closed, 0);
    assert_eq!(later.within_deadline_share(), None);
    assert_eq!((later.median_decision, later.p90_decision, later.outflow_ratio()), (None, None, None));

    assert_eq!(store.report_offices().await.unwrap(), ["MI1", "RM1"]);
    let bad = ReportFilter { bucket: 0, ..filter(None, None) };
    assert!(store.dashboard_figures(&bad).await.is_err(), "a zero bucket is refused");
});

both_backends!(the_page_shows_the_figures, |backend| async move {
    let Some(t) = test_engine(backend, Registry::builtin()).await else { return };
    history(&t).await;
    let state = AppState::new(t.engine.clone());
    let query = DashboardQuery { days: Some(7), deadline_days: Some(2), ..Default::default() };

    let it = content(&state, &query, Lang::It).await.unwrap();
    assert!(it.contains("<h1>Cruscotto direzionale</h1>"), "{it}");
    assert_eq!(it.matches("<svg").count(), 6, "backlog, age, throughput, histogram and two shares");
    assert_eq!(it.matches(r#"role="img""#).count(), 6);
    for id in ["fig-backlog", "fig-age", "fig-throughput", "fig-decision", "fig-within", "fig-automation"] {
        assert!(it.contains(&format!(r#"<figcaption id="{id}">"#)), "{id} has a caption");
        assert!(it.contains(&format!(r#"aria-labelledby="{id}""#)), "{id} is labelled by it");
    }
    assert_eq!(it.matches("<details>").count(), 6, "every chart has its table");
    assert!(it.contains(r#"<th scope="row">0–30 gg</th><td>1</td>"#), "backlog by age");
    assert!(it.contains(r#"<th scope="row">&gt;120 gg</th><td>0</td>"#));
    // Backlog table: day and open cases; throughput: started and closed.
    assert!(it.contains(r#"<th scope="row">01/03/2026</th><td>2</td></tr>"#), "{it}");
    assert!(it.contains(r#"<th scope="row">02/03/2026</th><td>1</td></tr>"#));
    assert!(it.contains(r#"<th scope="row">01/03/2026</th><td>3</td><td>1</td></tr>"#));
    assert!(it.contains(r#"<th scope="row">02/03/2026</th><td>1</td><td>2</td></tr>"#));
    // Shares, Italian decimals.
    assert!(it.contains("<td>3</td><td>75,0%</td>"), "within the deadline");
    assert!(it.contains("<td>2</td><td>50,0%</td>"), "automation");
    assert!(it.contains(r#"<th scope="row">0–1 gg</th><td>2</td>"#), "histogram table");
    assert!(it.contains("Indice di deflusso") && it.contains("0,80"), "outflow ratio 4 ÷ 5");
    assert!(it.contains("mediana 0,0 gg · 90° percentile 3,0 gg"), "median and P90 of the closing times");
    // The overdue task is listed, its title escaped, linking to the task.
    assert!(it.contains("Look at &lt;R3&gt;"));
    assert!(!it.contains("<R3>"));
    assert!(it.contains(r#"href="/console/tasks/"#));
    // The filter form with labelled selects.
    for (id, name) in [("dash-workflow", "workflow"), ("dash-office", "office"), ("dash-days", "days")] {
        assert!(it.contains(&format!(r#"<label for="{id}">"#)), "{id}");
        assert!(it.contains(&format!(r#"<select id="{id}" name="{name}">"#)), "{id}");
    }
    assert!(it.contains(r#"<option value="review">review</option>"#));
    assert!(it.contains(r#"<option value="RM1">RM1</option>"#));

    let en = content(&state, &DashboardQuery { office: Some("RM1".into()), ..query }, Lang::En).await.unwrap();
    assert!(en.contains("<h1>Director dashboard</h1>"));
    assert!(en.contains(r#"<option value="RM1" selected>RM1</option>"#));
    assert!(en.contains("<td>2</td><td>100.0%</td>"), "both RM1 cases within the deadline: {en}");
    assert!(en.contains(r#"<th scope="row">2026-03-01</th><td>2</td><td>1</td></tr>"#));

    let bad = content(&state, &DashboardQuery { days: Some(9999), ..Default::default() }, Lang::En).await;
    assert!(bad.is_err());
});
