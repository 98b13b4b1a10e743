//! `GET /console/tasks/{id}`: one task — the case summary, the form rendered from its JSON
//! Schema, the outcome buttons and the reason — and its actions
//! (`POST /console/tasks/{id}/claim|unclaim|complete|delegate|comment`).
//!
//! Every action goes through the same use-cases as the REST API ([`crate::app::tasks`]), so
//! the console has the same visibility (another office's task is a 404), claim and
//! four-eyes rules. An invalid form is shown again with the values typed, an error summary
//! at the top linking to each field, and the error next to the field.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use pratica_engine::clock::to_rfc3339;
use pratica_engine::runtime::TaskCompletion;
use pratica_engine::schemas::SchemaError;
use pratica_engine::store::TaskRow;
use serde_json::Value;

use super::form::{self, Errors, Field};
use super::layout::{FlashKind, Nav, time, when};
use super::session::csrf_field;
use super::{Ctx, field, form_fields, see_other, status_badge};
use crate::app::tasks;
use crate::app::{AppState, Permission, Role};
use crate::http::ApiError;

/// What the page shows after a refused completion.
#[derive(Default)]
struct Attempt {
    values: Value,
    /// The fields as posted, shown again after a refusal.
    posted: Vec<(String, String)>,
    reason: String,
    errors: Errors,
    message: Option<String>,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    match render(&state, &ctx, &id, Attempt::default()).await {
        Ok(response) => response,
        Err(e) => ctx.api_error(e),
    }
}

/// The form's schema (the JSON document), read from the schemas directory.
fn form_schema(state: &AppState, name: &str) -> Option<Value> {
    let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let path = state.schemas().dir()?.join(format!("{name}.schema.json"));
    if !safe {
        return None;
    }
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn form_fields_of(state: &AppState, task: &TaskRow) -> Vec<Field> {
    task.form.as_deref().and_then(|name| form_schema(state, name)).map(|s| form::fields(&s)).unwrap_or_default()
}

fn strings(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

async fn render(state: &AppState, ctx: &Ctx, id: &str, attempt: Attempt) -> Result<Response, ApiError> {
    let caller = &ctx.session.caller;
    let task = tasks::get(state, caller, id).await?;
    let instance = state.engine().store().instance(&task.instance_id).await.map_err(|e| ApiError::Internal(e.into()))?;
    let fields = form_fields_of(state, &task);
    let comments = tasks::comments(state, caller, id).await?;
    let now = state.engine().now();
    let lang = ctx.lang;
    let t = |it, en| lang.pick(it, en);
    let workable = matches!(task.status.as_str(), "open" | "claimed");
    let can_work = caller.require(Permission::WorkTasks).is_ok() && workable;
    let mine = task.assignee.as_deref() == Some(caller.name.as_str());
    let may_complete = can_work && (mine || caller.role == Role::Admin);
    let outcomes = strings(&task.outcomes);
    let reason_required = strings(&task.reason_required);
    let excluded = strings(&task.excluded_actors);
    let input: Value = serde_json::from_str(&instance.input).unwrap_or(Value::Null);
    let values = if attempt.values.is_null() { Value::Object(Default::default()) } else { attempt.values.clone() };
    let summary = error_summary(ctx, &fields, &attempt);
    let main = html! {
        p .breadcrumb { a href="/console/inbox" { (t("Attività", "Inbox")) } " › " (task.title) }
        h1 { (task.title) }
        (summary)
        @if let Some(d) = &task.description { p .lead { (d) } }
        section aria-labelledby="task-facts" {
            h2 #task-facts { (t("Dati dell'attività", "Task details")) }
            dl .facts {
                dt { (t("Stato", "Status")) } dd #task-status { (status_badge(lang, &task.status)) @if let Some(who) = &task.assignee { " — " (who) } }
                dt { (t("Pratica", "Case")) } dd {
                    @match &instance.business_key {
                        Some(key) => a href=(format!("/console/cases?q={}", super::i18n::encode(key))) { (key) },
                        None => "—",
                    }
                }
                dt { (t("Processo", "Workflow")) } dd { a href=(format!("/console/instances/{}", instance.id)) { (instance.workflow) " v" (instance.version) } }
                dt { (t("Ufficio", "Office")) } dd { (task.office.as_deref().unwrap_or("—")) }
                dt { (t("Ruolo", "Role")) } dd { (task.role.as_deref().unwrap_or("—")) }
                dt { (t("Creata", "Created")) } dd { (time(task.created_at)) }
                dt { (t("Scadenza", "Due")) } dd {
                    @match task.due_at {
                        Some(due) => { (time(due)) @if due < now && workable { " " span .badge.overdue { (t("Scaduta", "Overdue")) } } },
                        None => "—",
                    }
                }
                @if !excluded.is_empty() {
                    dt { (t("Quattro occhi", "Four eyes")) }
                    dd #four-eyes { (t("Non può completarla: ", "May not complete it: ")) (excluded.join(", ")) }
                }
            }
        }
        section aria-labelledby="case-summary" {
            h2 #case-summary { (t("Riepilogo della pratica", "Case summary")) }
            (value_list(&input))
        }
        @if can_work {
            div .actions {
                @if task.assignee.is_none() {
                    form method="post" action=(format!("/console/tasks/{}/claim", task.id)) .inline {
                        (csrf_field(&ctx.session))
                        button .claim.primary type="submit" { (t("Prendi in carico", "Claim")) }
                    }
                } @else if mine || caller.role == Role::Admin {
                    form method="post" action=(format!("/console/tasks/{}/unclaim", task.id)) .inline {
                        (csrf_field(&ctx.session))
                        button .unclaim type="submit" { (t("Rilascia", "Release")) }
                    }
                }
            }
        }
        @if may_complete {
            section aria-labelledby="complete-heading" {
                h2 #complete-heading { (t("Completa l'attività", "Complete the task")) }
                form #task-form method="post" action=(format!("/console/tasks/{}/complete", task.id)) novalidate {
                    (csrf_field(&ctx.session))
                    @if fields.is_empty() && task.form.is_some() {
                        p .hint { (t("Questa attività non ha campi da compilare.", "This task has no fields to fill in.")) }
                    }
                    (form::render(&fields, &values, &attempt.posted, &attempt.errors, lang))
                    @let reason_error = attempt.errors.get("reason");
                    div class=(if reason_error.is_some() { "field invalid" } else { "field" }) {
                        label for="reason" { (t("Motivazione", "Reason")) }
                        @if !reason_required.is_empty() {
                            p .hint #reason-hint { (t("Obbligatoria per: ", "Required for: ")) (reason_required.join(", ")) }
                        }
                        @if let Some(errors) = reason_error {
                            p .field-error #reason-error { span .visually-hidden { (t("Errore: ", "Error: ")) } (errors.join(" ")) }
                        }
                        textarea #reason name="reason" rows="3" aria-describedby=[describe_reason(!reason_required.is_empty(), reason_error.is_some())] aria-invalid=[reason_error.map(|_| "true")] { (attempt.reason) }
                    }
                    div .outcomes {
                        @if outcomes.is_empty() {
                            button .primary type="submit" name="outcome" value="done" { (t("Completa", "Complete")) }
                        }
                        @for outcome in &outcomes {
                            @let class = if outcome.starts_with("reject") || outcome.starts_with("deny") { "danger" } else { "primary" };
                            button class=(class) type="submit" name="outcome" value=(outcome) { (outcome_label(lang, outcome)) }
                        }
                    }
                }
            }
        } @else if can_work && task.assignee.is_none() {
            p .hint { (t("Prendi in carico l'attività per completarla.", "Claim the task to complete it.")) }
        }
        @if can_work && (mine || caller.role == Role::Admin) && task.assignee.is_some() {
            section aria-labelledby="delegate-heading" {
                h2 #delegate-heading { (t("Delega", "Delegate")) }
                form #delegate-form method="post" action=(format!("/console/tasks/{}/delegate", task.id)) {
                    (csrf_field(&ctx.session))
                    div .field {
                        label for="delegate-to" { (t("Utente a cui delegare", "User to delegate to")) }
                        p .hint #delegate-hint { (t("Un operatore dello stesso ufficio.", "An operator of the same office.")) }
                        input #delegate-to type="text" name="to" required aria-describedby="delegate-hint";
                    }
                    button type="submit" { (t("Delega", "Delegate")) }
                }
            }
        }
        section aria-labelledby="comments-heading" {
            h2 #comments-heading { (t("Commenti", "Comments")) }
            @if comments.is_empty() {
                p { (t("Nessun commento.", "No comments.")) }
            } @else {
                ol #comments .comments {
                    @for c in &comments {
                        @let at = to_rfc3339(c.at);
                        li { strong { (c.actor.as_deref().unwrap_or("—")) } " · " time datetime=(at) { (at) } p { (c.text) } }
                    }
                }
            }
            @if caller.require(Permission::WorkTasks).is_ok() {
                form #comment-form method="post" action=(format!("/console/tasks/{}/comment", task.id)) {
                    (csrf_field(&ctx.session))
                    div .field {
                        label for="comment-text" { (t("Nuovo commento", "New comment")) }
                        textarea #comment-text name="text" rows="3" maxlength="4000" required {}
                    }
                    button type="submit" { (t("Aggiungi commento", "Add comment")) }
                }
            }
        }
        @if let Some(result) = task.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()) {
            section aria-labelledby="result-heading" {
                h2 #result-heading { (t("Esito", "Result")) }
                p { (t("Completata da ", "Completed by ")) (task.completed_by.as_deref().unwrap_or("—"))
                    @if let Some(at) = task.completed_at { " — " (when(at)) } }
                (value_list(&result))
            }
        }
    };
    let mut page = ctx.page(&task.title, Nav::Inbox);
    if let Some(message) = attempt.message {
        page = page.flash(FlashKind::Error, message);
    }
    Ok(ctx.render(page, main))
}

fn describe_reason(hint: bool, error: bool) -> Option<String> {
    let ids: Vec<&str> = [(hint, "reason-hint"), (error, "reason-error")].into_iter().filter(|(on, _)| *on).map(|(_, id)| id).collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A readable label for common outcomes; others are shown as they are.
fn outcome_label(lang: super::i18n::Lang, outcome: &str) -> String {
    match outcome {
        "approve" | "approved" => lang.pick("Approva", "Approve").to_string(),
        "reject" | "rejected" => lang.pick("Respingi", "Reject").to_string(),
        "done" => lang.pick("Completa", "Complete").to_string(),
        other => other.replace('_', " "),
    }
}

/// The error summary at the top of the page, linking to each field with an error.
fn error_summary(ctx: &Ctx, fields: &[Field], attempt: &Attempt) -> Markup {
    if attempt.errors.is_empty() {
        return html! {};
    }
    let t = |it, en| ctx.lang.pick(it, en);
    html! {
        div #error-summary .error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
            h2 #error-summary-title { (t("Correggi questi errori", "Please correct these errors")) }
            ul {
                @for (pointer, messages) in &attempt.errors {
                    @let (label, target) = if pointer == "reason" {
                        (t("Motivazione", "Reason").to_string(), "reason".to_string())
                    } else {
                        form::label_of(fields, pointer).unwrap_or_else(|| (t("Modulo", "Form").to_string(), "task-form".to_string()))
                    };
                    li { a href=(format!("#{target}")) { (label) ": " (messages.join(" ")) } }
                }
            }
        }
    }
}

/// A JSON object as a definition list (nested values as compact JSON).
pub fn value_list(value: &Value) -> Markup {
    match value {
        Value::Object(map) if !map.is_empty() => html! {
            dl .facts {
                @for (k, v) in map {
                    dt { (k) }
                    dd { @match v {
                        Value::String(s) => (s),
                        Value::Null => "—",
                        other => code { (other.to_string()) },
                    } }
                }
            }
        },
        Value::Object(_) | Value::Null => html! { p { "—" } },
        other => html! { pre { (serde_json::to_string_pretty(other).unwrap_or_default()) } },
    }
}

/// `POST /console/tasks/{id}/{action}`.
pub async fn action(State(state): State<AppState>, ctx: Ctx, Path((id, action)): Path<(String, String)>, body: String) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = ctx.csrf_refusal(&fields) {
        return refused;
    }
    let caller = ctx.session.caller.clone();
    let back = format!("/console/tasks/{}", super::i18n::encode(&id));
    let done = match action.as_str() {
        "claim" => tasks::claim(&state, &caller, &id).await.map(|_| "claimed"),
        "unclaim" => tasks::unclaim(&state, &caller, &id).await.map(|_| "unclaimed"),
        "complete" => return complete(&state, &ctx, &id, &fields).await,
        "delegate" => tasks::delegate(&state, &caller, &id, field(&fields, "to").unwrap_or("")).await.map(|_| "delegated"),
        "comment" => tasks::comment(&state, &caller, &id, field(&fields, "text").unwrap_or("")).await.map(|_| "commented"),
        _ => return ctx.error(StatusCode::NOT_FOUND, ctx.t("Azione sconosciuta.", "Unknown action.")),
    };
    match done {
        // After claiming from the inbox, the task page is where the work happens.
        Ok(code) => see_other(&back, code),
        Err(e) => page_with_message(&state, &ctx, &id, e.into()).await,
    }
}

/// The task page again with the refusal at the top (or an error page if the task cannot be
/// shown at all).
async fn page_with_message(state: &AppState, ctx: &Ctx, id: &str, error: ApiError) -> Response {
    let status = error.status();
    let message = ctx.api_message(&error);
    match render(state, ctx, id, Attempt { message: Some(message.clone()), ..Default::default() }).await {
        Ok(mut response) => {
            *response.status_mut() = status;
            response
        }
        Err(_) => ctx.error(status, &message),
    }
}

async fn complete(state: &AppState, ctx: &Ctx, id: &str, posted: &[(String, String)]) -> Response {
    let caller = &ctx.session.caller;
    let task = match tasks::visible(state, caller, id).await {
        Ok(task) => task,
        Err(e) => return ctx.api_error(e),
    };
    let fields = form_fields_of(state, &task);
    let (values, mut errors) = form::parse(&fields, posted, ctx.lang);
    let outcome = field(posted, "outcome").map(str::to_string).filter(|o| !o.is_empty());
    let reason = field(posted, "reason").unwrap_or("").to_string();
    if outcome.as_deref().is_some_and(|o| strings(&task.reason_required).iter().any(|r| r == o)) && reason.trim().is_empty() {
        errors
            .entry("reason".into())
            .or_default()
            .push(ctx.t("Indica la motivazione per questo esito.", "Give a reason for this outcome.").into());
    }
    if let Some(name) = task.form.as_deref() {
        match state.schemas().validate(name, &values) {
            Ok(()) | Err(SchemaError::Unknown(_)) => {}
            Err(SchemaError::Invalid { errors: found, .. }) => form::assign_errors(&fields, &found, &mut errors, ctx.lang),
            Err(e @ SchemaError::Broken { .. }) => return ctx.api_error(ApiError::Internal(e.into())),
        }
    }
    let attempt = |errors: Errors, message: Option<String>| Attempt {
        values: values.clone(),
        posted: posted.to_vec(),
        reason: reason.clone(),
        errors,
        message,
    };
    if !errors.is_empty() {
        let message =
            ctx.t("Il modulo contiene errori: correggili e riprova.", "The form has errors: correct them and try again.").to_string();
        return match render(state, ctx, id, attempt(errors, Some(message))).await {
            Ok(mut response) => {
                *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                response
            }
            Err(e) => ctx.api_error(e),
        };
    }
    let completion =
        TaskCompletion { outcome: outcome.clone(), reason: Some(reason.clone()).filter(|r| !r.trim().is_empty()), form: values.clone() };
    match tasks::complete(state, caller, id, completion).await {
        Ok(()) => see_other("/console/inbox", "completed"),
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status();
            let message = ctx.api_message(&e);
            match render(state, ctx, id, attempt(Errors::new(), Some(message.clone()))).await {
                Ok(mut response) => {
                    *response.status_mut() = status;
                    response
                }
                Err(_) => ctx.error(status, &message),
            }
        }
    }
}
