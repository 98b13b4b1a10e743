//! The page frame every console page shares: `<html lang>`, a skip link, the header with the
//! navigation, the language switch and the user's logout button, `<main id="main">`, and
//! flash messages (`#flash`). Security headers go on every page.

use axum::http::header::{self, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::i18n::{Lang, encode, form_urlencoded_pairs};
use super::session::{Session, csrf_field};

/// The sections in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Inbox,
    Cases,
    Workflows,
    Dashboard,
}

/// What the frame needs to know about a page.
pub struct Page {
    pub lang: Lang,
    pub title: String,
    pub nav: Nav,
    /// The request's path and query, for the language switch link.
    path: String,
    query: Vec<(String, String)>,
    /// A message shown at the top (`#flash`), e.g. after a redirect.
    pub flash: Option<(FlashKind, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    Success,
    Error,
}

impl Page {
    pub fn new(lang: Lang, title: &str, uri: &Uri) -> Self {
        let query = uri.query().map(form_urlencoded_pairs).unwrap_or_default();
        Page { lang, title: title.to_string(), nav: Nav::None, path: uri.path().to_string(), query, flash: None }
    }

    pub fn nav(mut self, nav: Nav) -> Self {
        self.nav = nav;
        self
    }

    pub fn flash(mut self, kind: FlashKind, text: impl Into<String>) -> Self {
        self.flash = Some((kind, text.into()));
        self
    }

    /// This page in the other language.
    fn switch_href(&self) -> String {
        let mut parts: Vec<String> =
            self.query.iter().filter(|(k, _)| k != "lang" && k != "ok").map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        parts.push(format!("lang={}", self.lang.other().tag()));
        format!("{}?{}", self.path, parts.join("&"))
    }
}

/// The whole page around `main`, as a `200 text/html` response.
pub fn render(page: &Page, session: Option<&Session>, main: Markup) -> Response {
    let lang = page.lang;
    let link = |nav: Nav, href: &str, it: &str, en: &str| {
        html! {
            li { a href=(href) aria-current=[(page.nav == nav).then_some("page")] { (lang.pick(it, en)) } }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · Pratica" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                a .skip-link href="#main" { (lang.pick("Salta al contenuto principale", "Skip to main content")) }
                header .site-header {
                    div .brand { a href="/console/inbox" { "Pratica" } span .brand-sub { (lang.pick(" · console operatori", " · operator console")) } }
                    @if session.is_some() {
                        nav aria-label=(lang.pick("Navigazione principale", "Main navigation")) {
                            ul {
                                (link(Nav::Inbox, "/console/inbox", "Attività", "Inbox"))
                                (link(Nav::Cases, "/console/cases", "Fascicoli", "Case files"))
                                (link(Nav::Workflows, "/console/workflows", "Processi", "Workflows"))
                                @if super::dashboard_available() {
                                    (link(Nav::Dashboard, "/console/dashboard", "Cruscotto", "Dashboard"))
                                }
                            }
                        }
                    }
                    div .header-tools {
                        a href=(page.switch_href()) hreflang=(lang.other().tag()) lang=(lang.other().tag()) .lang-switch {
                            (lang.other().name())
                        }
                        @if let Some(session) = session {
                            span .user { (session.caller.name) " (" (session.caller.role.as_str()) ")" }
                            form .logout method="post" action="/console/logout" {
                                (csrf_field(session))
                                button type="submit" { (lang.pick("Esci", "Sign out")) }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some((kind, text)) = &page.flash {
                        @let class = if *kind == FlashKind::Success { "flash success" } else { "flash error" };
                        div #flash class=(class) role=(if *kind == FlashKind::Success { "status" } else { "alert" }) { (text) }
                    }
                    (main)
                }
                footer .site-footer {
                    p { (lang.pick("Pratica — motore di processi per pratiche amministrative", "Pratica — a workflow engine for administrative cases")) }
                }
            }
        }
    };
    html_response(StatusCode::OK, markup.into_string())
}

/// An HTML response with the console's security headers: no scripts at all, no framing,
/// no caching of pages that show personal data.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error page inside the frame.
pub fn error_page(page: Page, session: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let lang = page.lang;
    let heading = match status {
        StatusCode::NOT_FOUND => lang.pick("Pagina non trovata", "Not found"),
        StatusCode::FORBIDDEN => lang.pick("Operazione non consentita", "Not allowed"),
        StatusCode::CONFLICT => lang.pick("Operazione non possibile", "Not possible now"),
        s if s.is_server_error() => lang.pick("Errore interno", "Internal error"),
        _ => lang.pick("Richiesta non valida", "Invalid request"),
    };
    let main = html! {
        h1 { (heading) }
        div #flash .flash.error role="alert" { (message) }
        p { a href="/console/inbox" { (lang.pick("Torna alle attività", "Back to the inbox")) } }
    };
    let page = Page { title: heading.to_string(), ..page };
    let mut response = render(&page, session, main);
    *response.status_mut() = status;
    response
}

/// An error page without the navigation (no session at hand).
pub fn bare_error(lang: Lang, status: StatusCode, message: &str) -> Response {
    error_page(Page::new(lang, "", &Uri::from_static("/console")), None, status, message)
}

/// A date and time for people: `2026-03-01 09:00 UTC`.
pub fn when(ms: pratica_engine::clock::Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| ms.to_string())
}

/// A `<time>` element for `ms`.
pub fn time(ms: pratica_engine::clock::Millis) -> Markup {
    let iso = pratica_engine::clock::to_rfc3339(ms);
    html! { time datetime=(iso) { (when(ms)) } }
}
