//! `GET /console/inbox`: the tasks the user can work — their own and their offices' queues —
//! sorted by due date (overdue first, highlighted with a badge), with filters.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use maud::html;
use pratica_engine::store::{TaskQuery, TaskRow};

use super::i18n::query_param;
use super::layout::{Nav, time};
use super::{Ctx, status_badge};
use crate::app::tasks::{self, MAX_TASKS};
use crate::app::{AppError, AppState, Permission, Role};

/// The inbox filters (query parameters).
#[derive(Debug, Default, Clone)]
pub struct Filters {
    /// `mine` (claimed by me), `queue` (unclaimed), or all (default).
    pub view: String,
    pub office: String,
    /// Text in the title or the case's business key.
    pub q: String,
    pub overdue_only: bool,
}

impl Filters {
    fn from_query(query: Option<&str>) -> Self {
        let get = |name| query_param(query, name).unwrap_or_default().trim().to_string();
        Filters { view: get("view"), office: get("office"), q: get("q"), overdue_only: get("overdue") == "1" }
    }
}

/// The open and claimed tasks `ctx`'s user may see, most urgent first: for operators the same
/// rule as the API (assigned to them, or in their offices with one of their task roles).
pub async fn visible_tasks(state: &AppState, ctx: &Ctx, office: Option<&str>) -> Result<Vec<TaskRow>, AppError> {
    let mut tasks = Vec::new();
    for status in ["open", "claimed"] {
        let query = TaskQuery {
            status: Some(status.into()),
            offices: office.map(|o| vec![o.to_string()]),
            role: None,
            assignee: None,
            limit: MAX_TASKS,
        };
        tasks.extend(tasks::list(state, &ctx.session.caller, &query).await?);
    }
    tasks.sort_by(|a, b| (a.due_at.is_none(), a.due_at, a.created_at, &a.id).cmp(&(b.due_at.is_none(), b.due_at, b.created_at, &b.id)));
    Ok(tasks)
}

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    if let Err(e) = ctx.session.caller.require(Permission::ReadTasks) {
        return ctx.api_error(e);
    }
    let filters = Filters::from_query(ctx.uri.query());
    let office = Some(filters.office.as_str()).filter(|o| !o.is_empty());
    let tasks = match visible_tasks(&state, &ctx, office).await {
        Ok(tasks) => tasks,
        Err(e) => return ctx.api_error(e),
    };
    let me = ctx.session.caller.name.clone();
    let now = state.engine().now();
    // The business key of each task's case.
    let mut ids: Vec<String> = tasks.iter().map(|t| t.instance_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let keys: HashMap<String, Option<String>> = match state.engine().store().business_keys_of(&ids).await {
        Ok(keys) => keys,
        Err(e) => return ctx.api_error(AppError::internal(e)),
    };
    let needle = filters.q.to_lowercase();
    let shown: Vec<&TaskRow> = tasks
        .iter()
        .filter(|t| match filters.view.as_str() {
            "mine" => t.assignee.as_deref() == Some(me.as_str()),
            "queue" => t.assignee.is_none(),
            _ => true,
        })
        .filter(|t| !filters.overdue_only || t.due_at.is_some_and(|d| d < now))
        .filter(|t| {
            needle.is_empty()
                || t.title.to_lowercase().contains(&needle)
                || keys.get(&t.instance_id).cloned().flatten().is_some_and(|k| k.to_lowercase().contains(&needle))
        })
        .collect();
    let overdue = shown.iter().filter(|t| t.due_at.is_some_and(|d| d < now)).count();
    let can_work = ctx.session.caller.require(Permission::WorkTasks).is_ok();
    let offices: Vec<String> = match ctx.session.caller.role {
        Role::Operator => ctx.session.caller.offices.clone(),
        _ => {
            let mut all: Vec<String> = tasks.iter().filter_map(|t| t.office.clone()).collect();
            all.sort();
            all.dedup();
            all
        }
    };
    let lang = ctx.lang;
    let t = |it, en| lang.pick(it, en);
    let main = html! {
        h1 { (t("Attività", "Inbox")) }
        form .filters method="get" action="/console/inbox" role="search" aria-label=(t("Filtra le attività", "Filter tasks")) {
            div .field {
                label for="filter-view" { (t("Mostra", "Show")) }
                select #filter-view name="view" {
                    option value="" selected[filters.view.is_empty()] { (t("Tutte", "All")) }
                    option value="mine" selected[filters.view == "mine"] { (t("Prese in carico da me", "Claimed by me")) }
                    option value="queue" selected[filters.view == "queue"] { (t("Da prendere in carico", "Unclaimed")) }
                }
            }
            div .field {
                label for="filter-office" { (t("Ufficio", "Office")) }
                select #filter-office name="office" {
                    option value="" { (t("Tutti i miei uffici", "All my offices")) }
                    @for o in &offices { option value=(o) selected[filters.office == *o] { (o) } }
                }
            }
            div .field {
                label for="filter-q" { (t("Cerca (titolo o codice fiscale)", "Search (title or tax code)")) }
                input #filter-q type="search" name="q" value=(filters.q);
            }
            div .field.checkbox {
                input #filter-overdue type="checkbox" name="overdue" value="1" checked[filters.overdue_only];
                label for="filter-overdue" { (t("Solo scadute", "Overdue only")) }
            }
            button type="submit" { (t("Filtra", "Filter")) }
        }
        p .summary role="status" {
            (shown.len()) " " (t("attività", "tasks"))
            @if overdue > 0 { " · " strong .overdue-text { (overdue) " " (t("scadute", "overdue")) } }
        }
        @if shown.is_empty() {
            p #inbox-empty { (t("Nessuna attività da mostrare.", "No tasks to show.")) }
        } @else {
            div .table-wrap {
                table #inbox {
                    caption .visually-hidden { (t("Attività ordinate per scadenza", "Tasks by due date")) }
                    thead { tr {
                        th scope="col" { (t("Attività", "Task")) }
                        th scope="col" { (t("Pratica", "Case")) }
                        th scope="col" { (t("Ufficio", "Office")) }
                        th scope="col" { (t("Stato", "Status")) }
                        th scope="col" { (t("Scadenza", "Due")) }
                        th scope="col" { (t("Azioni", "Actions")) }
                    } }
                    tbody {
                        @for task in &shown {
                            @let is_overdue = task.due_at.is_some_and(|d| d < now);
                            tr data-task-id=(task.id) class=[is_overdue.then_some("overdue")] {
                                th scope="row" { a href=(format!("/console/tasks/{}", task.id)) { (task.title) } }
                                td data-label=(t("Pratica", "Case")) {
                                    @match keys.get(&task.instance_id).cloned().flatten() {
                                        Some(key) => a href=(format!("/console/cases?q={}", super::i18n::encode(&key))) { (key) },
                                        None => "—",
                                    }
                                }
                                td data-label=(t("Ufficio", "Office")) { (task.office.as_deref().unwrap_or("—")) }
                                td data-label=(t("Stato", "Status")) {
                                    (status_badge(lang, &task.status))
                                    @if let Some(who) = &task.assignee { " " span .assignee { (who) } }
                                }
                                td data-label=(t("Scadenza", "Due")) {
                                    @match task.due_at {
                                        Some(due) => {
                                            (time(due))
                                            @if is_overdue { " " span .badge.overdue { (t("Scaduta", "Overdue")) } }
                                        },
                                        None => "—",
                                    }
                                }
                                td data-label=(t("Azioni", "Actions")) {
                                    @if can_work && task.assignee.is_none() {
                                        form method="post" action=(format!("/console/tasks/{}/claim", task.id)) .inline {
                                            (super::session::csrf_field(&ctx.session))
                                            button .claim type="submit" aria-label=(format!("{} {}", t("Prendi in carico", "Claim"), task.title)) {
                                                (t("Prendi in carico", "Claim"))
                                            }
                                        }
                                    } @else {
                                        a href=(format!("/console/tasks/{}", task.id)) { (t("Apri", "Open")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    ctx.render(ctx.page(t("Attività", "Inbox"), Nav::Inbox), main)
}
