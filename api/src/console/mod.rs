//! The operator console: server-rendered, accessible HTML pages served by `pratica serve`
//! under `/console`, in Italian and English. No JavaScript: every action is a form that
//! POSTs and redirects (post/redirect/get). See docs/CONSOLE.md.
//!
//! # Layout
//! - [`i18n`]: the console's languages and how a request picks one.
//! - [`session`]: login, logout, session cookies and CSRF tokens.
//! - [`throttle`]: durable throttling of failed sign-ins, per account and per address.
//! - [`layout`]: the frame every page shares.
//! - [`inbox`], [`task`], [`case_file`], [`instance`], [`workflows`]: the pages.
//! - [`form`]: task forms rendered from their JSON Schema and parsed back to JSON.
//! - [`dashboard`], [`charts`]: the director dashboard, wrapped in the frame here.

pub mod case_file;
pub mod charts;
pub mod dashboard;
pub mod form;
pub mod i18n;
pub mod inbox;
pub mod instance;
pub mod layout;
pub mod session;
pub mod task;
pub mod throttle;
pub mod workflows;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;

use crate::app::AppState;
use crate::http::ApiError;
use i18n::Lang;
use layout::{FlashKind, Nav, Page};
use session::Session;

/// The stylesheet, served from the binary.
const CSS: &str = include_str!("static/console.css");

/// The console's routes, to merge into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/inbox") }))
        .route("/console/", get(|| async { Redirect::to("/console/inbox") }))
        .route("/console/login", get(session::login_page).post(session::login_submit))
        .route("/console/logout", post(session::logout))
        .route("/console/static/console.css", get(css))
        .route("/console/inbox", get(inbox::page))
        .route("/console/tasks/{id}", get(task::page))
        .route("/console/tasks/{id}/{action}", post(task::action))
        .route("/console/cases", get(case_file::page))
        .route("/console/instances/{id}", get(instance::page))
        .route("/console/instances/{id}/{action}", post(instance::action))
        .route("/console/workflows", get(workflows::list))
        .route("/console/workflows/{name}/{version}", get(workflows::version))
        .route("/console/dashboard", get(dashboard_page))
        .route("/console/{*rest}", get(not_found_page))
        .layer(axum::middleware::from_fn(remember_lang))
}

/// Whether the director dashboard is linked from the navigation.
pub fn dashboard_available() -> bool {
    true
}

/// `GET /console/dashboard`: the director dashboard ([`dashboard::content`]) in the console's
/// frame. Admins, analysts and viewers see every office; operators see only their offices
/// (their first office unless they pick another of theirs).
async fn dashboard_page(
    axum::extract::State(state): axum::extract::State<AppState>,
    ctx: Ctx,
    query: Result<axum::extract::Query<dashboard::DashboardQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use crate::app::Role;
    let caller = &ctx.session.caller;
    let axum::extract::Query(mut query) = match query {
        Ok(query) => query,
        Err(e) => return ctx.error(StatusCode::UNPROCESSABLE_ENTITY, &e.body_text()),
    };
    if caller.role == Role::Operator {
        let wanted = query.office.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(str::to_string);
        match wanted {
            Some(office) if !caller.offices.contains(&office) => {
                return ctx.error(StatusCode::NOT_FOUND, ctx.t("Ufficio non visibile per il tuo profilo.", "Office not visible to you."));
            }
            Some(_) => {}
            None => match caller.offices.first() {
                Some(first) => query.office = Some(first.clone()),
                None => return ctx.error(StatusCode::FORBIDDEN, ctx.t("Nessun ufficio assegnato.", "No office assigned.")),
            },
        }
    } else if let Err(e) = caller.require(crate::app::Permission::ReadInstances) {
        return ctx.api_error(e);
    }
    match dashboard::content(&state, &query, ctx.lang).await {
        // The dashboard module escapes what it renders; its content is the page's main.
        Ok(html) => ctx.render(ctx.page(ctx.t("Cruscotto", "Dashboard"), Nav::Dashboard), maud::PreEscaped(html)),
        Err(e) => ctx.api_error(e),
    }
}

/// Unknown console pages: an HTML 404 in the request's language (the API answers JSON).
async fn not_found_page(lang: Lang) -> Response {
    layout::bare_error(lang, StatusCode::NOT_FOUND, lang.pick("Questa pagina non esiste.", "This page does not exist."))
}

async fn css() -> Response {
    let mut response = CSS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// A `?lang=` choice is remembered in the `lang` cookie.
async fn remember_lang(request: Request, next: Next) -> Response {
    let chosen = i18n::query_param(request.uri().query(), "lang").and_then(|v| Lang::parse(&v));
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        response.headers_mut().append(header::SET_COOKIE, session::set_cookie("lang", lang.tag(), 31_536_000));
    }
    response
}

/// What every logged-in page handler needs: the language, the session and the request URI.
pub struct Ctx {
    pub lang: Lang,
    pub session: Session,
    pub uri: Uri,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let lang = Lang::of_request(parts.uri.query(), &parts.headers);
        Ok(Ctx { lang, session, uri: parts.uri.clone() })
    }
}

impl Ctx {
    pub fn t<'a>(&self, it: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(it, en)
    }

    /// A page frame for this request, with the flash message named by `?ok=`.
    pub fn page(&self, title: &str, nav: Nav) -> Page {
        let page = Page::new(self.lang, title, &self.uri).nav(nav);
        match i18n::query_param(self.uri.query(), "ok").and_then(|code| success_message(self.lang, &code)) {
            Some(text) => page.flash(FlashKind::Success, text),
            None => page,
        }
    }

    pub fn render(&self, page: Page, main: Markup) -> Response {
        layout::render(&page, Some(&self.session), main)
    }

    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        layout::error_page(Page::new(self.lang, "", &self.uri), Some(&self.session), status, message)
    }

    /// An API error as an error page, in the page's language where the code is known.
    pub fn api_error(&self, error: impl Into<ApiError>) -> Response {
        let error = error.into();
        let status = error.status();
        let message = self.api_message(&error);
        self.error(status, &message)
    }

    /// The message for an API error (the detail for codes without a translation).
    pub fn api_message(&self, error: &ApiError) -> String {
        let detail = match error {
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "console request failed");
                return self.t("Errore interno: riprova più tardi.", "Internal error: please try again later.").to_string();
            }
            other => other.to_string(),
        };
        let known = match error.code() {
            "not_found" => Some(self.t("Elemento non trovato o non visibile per il tuo ufficio.", "Not found, or not visible to your office.")),
            "separation_of_duties" => Some(self.t(
                "Separazione dei compiti (quattro occhi): non puoi completare questa attività perché hai svolto un passo precedente della stessa pratica.",
                "Separation of duties (four eyes): you may not complete this task because you performed an earlier step of the same case.",
            )),
            "task_claimed" => Some(self.t("L'attività è già presa in carico da un altro operatore.", "The task is already claimed by another operator.")),
            "task_closed" => Some(self.t("L'attività è già chiusa.", "The task is already closed.")),
            "forbidden" => Some(self.t("Il tuo ruolo non consente questa operazione.", "Your role does not allow this.")),
            _ => None,
        };
        match known {
            Some(text) => format!("{text} ({detail})"),
            None => detail,
        }
    }

    /// A `403` page unless the form's `csrf` field is this session's token.
    pub fn csrf_refusal(&self, fields: &[(String, String)]) -> Option<Response> {
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        (!self.session.csrf_ok(sent)).then(|| self.error(StatusCode::FORBIDDEN, session::csrf_message(self.lang)))
    }
}

/// The flash message after a successful action (`?ok=<code>`).
fn success_message(lang: Lang, code: &str) -> Option<String> {
    let text = match code {
        "claimed" => lang.pick("Attività presa in carico.", "Task claimed."),
        "unclaimed" => lang.pick("Attività rilasciata.", "Task released."),
        "completed" => lang.pick("Attività completata: la pratica prosegue.", "Task completed: the case moves on."),
        "commented" => lang.pick("Commento aggiunto.", "Comment added."),
        "delegated" => lang.pick("Attività delegata.", "Task delegated."),
        "retried" => lang.pick("Nuovo tentativo avviato.", "Retry started."),
        "cancelled" => lang.pick("Istanza annullata.", "Instance cancelled."),
        _ => return None,
    };
    Some(text.to_string())
}

/// A redirect after a successful POST, with the flash code.
pub fn see_other(path: &str, ok: &str) -> Response {
    Redirect::to(&format!("{path}?ok={ok}")).into_response()
}

/// Decodes a urlencoded form body.
pub fn form_fields(body: &str) -> Vec<(String, String)> {
    i18n::form_urlencoded_pairs(body)
}

/// The first value of a form field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A status as a badge with text (not colour alone).
pub fn status_badge(lang: Lang, status: &str) -> Markup {
    let label = match status {
        "open" => lang.pick("da prendere in carico", "open"),
        "claimed" => lang.pick("in lavorazione", "claimed"),
        "completed" => lang.pick("completata", "completed"),
        "cancelled" => lang.pick("annullata", "cancelled"),
        "running" => lang.pick("in corso", "running"),
        "failed" => lang.pick("fallita", "failed"),
        other => other,
    };
    maud::html! { span class=(format!("badge status-{status}")) { (label) } }
}
