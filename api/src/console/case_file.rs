//! `GET /console/cases?q=`: the case file ("fascicolo") of a business key — usually a
//! citizen's codice fiscale — across every workflow: the instances with their timelines,
//! their tasks, and the messages correlated with the key. The search matches keys that
//! start with the text typed (case-insensitive); one match opens its file directly.
//!
//! The reads are [`crate::app::cases`]. Operators see the API's office scope: only keys, instances and tasks visible to them (an
//! instance is visible when one of its tasks is), and only the messages consumed by those
//! instances. Another office's citizen is "not found", as a key that does not exist.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::i18n::{encode, query_param};
use super::layout::{Nav, time};
use super::{Ctx, status_badge};
use crate::app::AppState;
use crate::app::cases::{self, CaseFile, CaseInstance};
use crate::http::ApiError;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    match render(&state, &ctx).await {
        Ok(response) => response,
        Err(e) => ctx.api_error(e),
    }
}

async fn render(state: &AppState, ctx: &Ctx) -> Result<Response, ApiError> {
    let caller = &ctx.session.caller;
    let q = query_param(ctx.uri.query(), "q").unwrap_or_default().trim().to_string();
    let keys = cases::search(state, caller, &q).await?;
    // An exact match (any case) or a single match opens the file.
    let open = keys.iter().find(|k| k.eq_ignore_ascii_case(&q)).cloned().or_else(|| (keys.len() == 1).then(|| keys[0].clone()));
    let lang = ctx.lang;
    let t = |it, en| lang.pick(it, en);
    let mut file = html! {};
    if let Some(key) = &open {
        let CaseFile { instances, messages } = cases::case_file(state, caller, key).await?;
        let mut sections = Vec::new();
        for CaseInstance { instance, tasks, history } in &instances {
            sections.push(html! {
                article .instance-card aria-labelledby=(format!("inst-{}", instance.id)) {
                    h3 id=(format!("inst-{}", instance.id)) {
                        a href=(format!("/console/instances/{}", instance.id)) { (instance.workflow) " v" (instance.version) }
                        " " (status_badge(lang, &instance.status))
                    }
                    p { (t("Avviata ", "Started ")) (time(instance.started_at))
                        @if let Some(end) = instance.ended_at { " · " (t("conclusa ", "ended ")) (time(end)) } }
                    @if !tasks.is_empty() {
                        h4 { (t("Attività", "Tasks")) }
                        ul .tasks {
                            @for task in tasks {
                                li { a href=(format!("/console/tasks/{}", task.id)) { (task.title) } " " (status_badge(lang, &task.status))
                                    @if let Some(by) = &task.completed_by { " — " (by) } }
                            }
                        }
                    }
                    details {
                        summary { (t("Cronologia", "Timeline")) " (" (history.len()) ")" }
                        ol .timeline {
                            @for entry in history {
                                li { (time(entry.at)) " — " code { (entry.kind) }
                                    @if let Some(step) = &entry.step { " · " (step) }
                                    @if let Some(actor) = &entry.actor { " · " span .actor { (actor) } } }
                            }
                        }
                    }
                }
            });
        }
        file = html! {
            section #case-file aria-labelledby="case-file-title" {
                h2 #case-file-title { (t("Fascicolo ", "Case file ")) span .key { (key) } }
                p { (instances.len()) " " (t("istanze di processo", "workflow instances")) ", " (messages.len()) " " (t("messaggi", "messages")) }
                @for section in sections { (section) }
                @if !messages.is_empty() {
                    h3 { (t("Messaggi", "Messages")) }
                    div .table-wrap { table #case-messages {
                        thead { tr { th scope="col" { (t("Messaggio", "Message")) } th scope="col" { (t("Pubblicato", "Published")) } th scope="col" { (t("Consumato da", "Consumed by")) } } }
                        tbody { @for m in &messages {
                            tr { th scope="row" { (m.name) } td { (time(m.published_at)) }
                                td { @match &m.consumed_by { Some(id) => a href=(format!("/console/instances/{id}")) { (id) }, None => (t("in attesa", "waiting")) } } }
                        } }
                    } }
                }
            }
        };
    }
    let main = html! {
        h1 { (t("Fascicoli", "Case files")) }
        form #case-search method="get" action="/console/cases" role="search" {
            div .field {
                label for="case-q" { (t("Codice fiscale o chiave della pratica", "Tax code or case key")) }
                input #case-q type="search" name="q" value=(q) autocomplete="off" spellcheck="false";
            }
            button .primary type="submit" { (t("Cerca", "Search")) }
        }
        @if !q.is_empty() && keys.is_empty() {
            p #case-none role="status" { (t("Nessuna pratica trovata per ", "No case found for ")) strong { (q) } "." }
        }
        @if open.is_none() && keys.len() > 1 {
            h2 { (t("Pratiche trovate", "Matching cases")) }
            ul #case-results { @for key in &keys { li { a href=(format!("/console/cases?q={}", encode(key))) { (key) } } } }
        }
        (file)
    };
    Ok(ctx.render(ctx.page(t("Fascicoli", "Case files"), Nav::Cases), main))
}
