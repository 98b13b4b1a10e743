//! Console sessions: login, logout, the session cookie and CSRF tokens.
//!
//! A session id is 32 random bytes (base64url) sent only in the `pratica_session` cookie
//! (`HttpOnly; SameSite=Strict; Path=/console`, plus `Secure` when
//! `PRATICA_CONSOLE_SECURE_COOKIES=1`). The store keeps only its SHA-256, the username and
//! the expiry ([`SESSION_HOURS`] after login). The CSRF token of a session is derived from
//! its id (SHA-256 of a label and the id), so it is never stored and a database copy cannot
//! forge it; every POST form carries it in a hidden `csrf` field. The login form itself is
//! protected by a double-submit cookie.
//!
//! A failed login says only "wrong username or password", and always runs argon2 (against
//! a fixed dummy hash for unknown users), so timing does not reveal which usernames exist.
//! Failures are logged (`warn`, with the username as typed and the client address) and
//! throttled per account and per address ([`super::throttle`]): past the limit, sign-ins
//! are refused with `429` for a while, for unknown usernames exactly as for real ones.
//!
//! The `next` parameter of the login page (where to go after signing in) must be a console
//! page of this server: printable ASCII, a path under `/console/` (not the login page), no
//! `//` or `\` tricks, no dot segments. Anything else — a control character such as CR,
//! LF or NUL, another site, another path — is answered `400`.

use std::sync::OnceLock;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use maud::html;
use pratica_engine::clock::Millis;
use pratica_engine::store::{ConsoleSession, UserRow};
use sha2::{Digest, Sha256};

use super::i18n::{Lang, encode, form_urlencoded_pairs, query_param};
use super::layout::{self, Page};
use super::throttle::{self, ClientAddr, Keys};
use crate::app::credentials::{hash_password, hash_token, verify_password};
use crate::app::{AppState, Caller, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pratica_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "pratica_login";
/// How long a session lasts after login.
pub const SESSION_HOURS: i64 = 8;

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// The token every POST form of this session must carry.
    pub csrf: String,
    id_hash: String,
}

impl Session {
    /// Whether `provided` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, provided: Option<&str>) -> bool {
        provided.is_some_and(|p| constant_time_eq(p.as_bytes(), self.csrf.as_bytes()))
    }

    pub fn role(&self) -> Role {
        self.caller.role
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

fn secure_suffix() -> &'static str {
    static SECURE: OnceLock<bool> = OnceLock::new();
    let secure =
        *SECURE.get_or_init(|| std::env::var("PRATICA_CONSOLE_SECURE_COOKIES").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes")));
    if secure { "; Secure" } else { "" }
}

/// A `Set-Cookie` value for the console (`Path=/console`, `HttpOnly`, `SameSite=Strict`).
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{}", secure_suffix());
    HeaderValue::from_str(&text).expect("cookie values are base64url or hex")
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn csrf_for(session_id: &str) -> String {
    hex::encode(Sha256::digest(format!("pratica-console-csrf\0{session_id}").as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller a console user acts as, or `None` for a disabled user or a role that has no
/// console (workers).
pub fn caller_for(user: &UserRow) -> Option<Caller> {
    if user.disabled_at.is_some() {
        return None;
    }
    let role = Role::parse(&user.role).filter(|r| *r != Role::Worker)?;
    let offices = serde_json::from_str(&user.offices).unwrap_or_default();
    let task_roles = serde_json::from_str(&user.task_roles).unwrap_or_default();
    Some(Caller { name: user.username.clone(), role, offices, task_roles })
}

/// The session of a request, if its cookie names an unexpired session of an enabled user.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, pratica_engine::store::StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 100) else { return Ok(None) };
    let store = state.engine().store();
    let id_hash = hash_token(&id);
    let Some(row) = store.console_session(&id_hash, state.engine().now()).await? else { return Ok(None) };
    let Some(user) = store.user(&row.username).await? else { return Ok(None) };
    Ok(caller_for(&user).map(|caller| Session { caller, csrf: csrf_for(&id), id_hash }))
}

/// Pages need a session: without one, the browser is sent to the login page, which brings
/// it back here afterwards.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone());
        }
        match current(state, &parts.headers).await {
            Ok(Some(session)) => {
                parts.extensions.insert(session.clone());
                Ok(session)
            }
            Ok(None) => {
                let next = if parts.method == axum::http::Method::GET { parts.uri.path_and_query().map(|p| p.as_str()) } else { None };
                let target = match next.filter(|n| safe_next(n)) {
                    Some(next) => format!("/console/login?next={}", encode(next)),
                    None => "/console/login".to_string(),
                };
                Err(Redirect::to(&target).into_response())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the console session");
                let lang = Lang::of_request(parts.uri.query(), &parts.headers);
                Err(layout::bare_error(lang, StatusCode::INTERNAL_SERVER_ERROR, lang.pick("Errore interno.", "Internal error.")))
            }
        }
    }
}

/// Longest `next` accepted.
const MAX_NEXT: usize = 2000;

/// Where a login may send the browser afterwards: a console page of this server, as
/// printable ASCII (so it is always a valid `Location` header), never the login page.
fn safe_next(next: &str) -> bool {
    if next.is_empty() || next.len() > MAX_NEXT || !next.bytes().all(|b| b.is_ascii_graphic()) || next.contains('\\') {
        return false;
    }
    let path = next.split(['?', '#']).next().unwrap_or("");
    let under_console = (path == "/console" || path.starts_with("/console/")) && !path.starts_with("/console/login");
    // A dot segment (also percent-encoded, which browsers resolve too) could climb out of
    // /console.
    let dot_segment = path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    under_console && !dot_segment && !path.contains("//")
}

/// The `next` of a login request: absent or empty is `None`; one that is not a console page
/// is refused with `400`.
fn next_param(lang: Lang, next: Option<&str>) -> Result<Option<String>, Box<Response>> {
    match next {
        None | Some("") => Ok(None),
        Some(n) if safe_next(n) => Ok(Some(n.to_string())),
        Some(_) => Err(Box::new(layout::bare_error(
            lang,
            StatusCode::BAD_REQUEST,
            lang.pick(
                "Indirizzo di ritorno (next) non valido: deve essere una pagina della console.",
                "Invalid return address (next): it must be a console page.",
            ),
        ))),
    }
}

/// `GET /console/login`.
pub async fn login_page(State(state): State<AppState>, lang: Lang, uri: Uri, headers: HeaderMap) -> Response {
    let next = match next_param(lang, query_param(uri.query(), "next").as_deref()) {
        Ok(next) => next,
        Err(refused) => return *refused,
    };
    if let Ok(Some(_)) = current(&state, &headers).await {
        return Redirect::to(next.as_deref().unwrap_or("/console/inbox")).into_response();
    }
    login_form(lang, &uri, next.as_deref(), "", None, StatusCode::OK)
}

fn login_form(lang: Lang, uri: &Uri, next: Option<&str>, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_id();
    let main = html! {
        h1 { (lang.pick("Accesso alla console", "Console sign-in")) }
        @if let Some(error) = error {
            div #error-summary .error-summary role="alert" tabindex="-1" {
                h2 { (lang.pick("Accesso non riuscito", "Sign-in failed")) }
                p { (error) }
            }
        }
        form #login-form method="post" action="/console/login" {
            input type="hidden" name="login_token" value=(token);
            @if let Some(next) = next { input type="hidden" name="next" value=(next); }
            div .field {
                label for="username" { (lang.pick("Nome utente", "Username")) }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
            }
            div .field {
                label for="password" { (lang.pick("Password", "Password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
            }
            button #login .primary type="submit" { (lang.pick("Accedi", "Sign in")) }
        }
    };
    let page = Page::new(lang, lang.pick("Accesso", "Sign in"), uri);
    let mut response = layout::render(&page, None, main);
    *response.status_mut() = status;
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 3600));
    response
}

/// A fixed hash that unknown usernames are checked against, so that they take as long as
/// known ones.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("pratica-console-no-such-user").unwrap_or_default())
}

/// A `500` login page after a store error.
fn internal(lang: Lang, what: &str, e: &pratica_engine::store::StoreError) -> Response {
    tracing::error!(error = %e, "{what}");
    layout::bare_error(lang, StatusCode::INTERNAL_SERVER_ERROR, lang.pick("Errore interno.", "Internal error."))
}

/// `429`: the account or the address is locked until `until`.
fn locked_form(lang: Lang, uri: &Uri, next: Option<&str>, username: &str, now: Millis, until: Millis) -> Response {
    let minutes = ((until - now).max(0) + 59_999) / 60_000;
    let message = match lang {
        Lang::It => format!("Troppi tentativi di accesso non riusciti: riprova tra {minutes} minuti."),
        Lang::En => format!("Too many failed sign-in attempts: try again in {minutes} minutes."),
    };
    let mut response = login_form(lang, uri, next, username, Some(&message), StatusCode::TOO_MANY_REQUESTS);
    let seconds = ((until - now).max(0) + 999) / 1000;
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// `POST /console/login` (`username`, `password`, `login_token`, `next`).
pub async fn login_submit(
    State(state): State<AppState>,
    lang: Lang,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = form_urlencoded_pairs(&body);
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let username = field("username").unwrap_or("").trim().to_string();
    let password = field("password").unwrap_or("");
    let next = match next_param(lang, field("next")) {
        Ok(next) => next,
        Err(refused) => return *refused,
    };
    let token_ok = match (field("login_token"), cookie(&headers, LOGIN_COOKIE)) {
        (Some(sent), Some(kept)) => constant_time_eq(sent.as_bytes(), kept.as_bytes()),
        _ => false,
    };
    if !token_ok {
        let message = lang.pick("Il modulo di accesso è scaduto: riprova.", "The sign-in form expired: please try again.");
        return login_form(lang, &uri, next.as_deref(), &username, Some(message), StatusCode::FORBIDDEN);
    }
    let store = state.engine().store();
    let now = state.engine().now();
    let keys = Keys::new(&username, client);
    // A locked account or address is refused before the password is looked at, whether or
    // not the account exists.
    match throttle::locked_until(store, &keys, now).await {
        Ok(Some(until)) => {
            tracing::warn!(user = ?username, client = %client, locked_until = %pratica_engine::clock::to_rfc3339(until), "console login refused: too many failures");
            return locked_form(lang, &uri, next.as_deref(), &username, now, until);
        }
        Ok(None) => {}
        Err(e) => return internal(lang, "cannot read the login throttle", &e),
    }
    let user = match store.user(&username).await {
        Ok(user) => user,
        Err(e) => return internal(lang, "cannot read console users", &e),
    };
    // argon2 runs on every path (a dummy hash for unknown users), off the async threads.
    let known = user.is_some();
    let password = password.to_string();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref().unwrap_or_else(|| dummy_hash())))
        .await
        .unwrap_or(false);
    let caller = user.as_ref().filter(|_| matches).and_then(caller_for);
    let Some(caller) = caller else {
        let failure = match throttle::record_failure(store, &keys, now).await {
            Ok(failure) => failure,
            Err(e) => return internal(lang, "cannot record a failed console login", &e),
        };
        // `?username` quotes and escapes what was typed, so it cannot forge log lines.
        tracing::warn!(
            user = ?username,
            client = %client,
            reason = if !known { "unknown user" } else if matches { "disabled user" } else { "wrong password" },
            failures = failure.account_failures,
            locked = failure.locked_until.is_some(),
            "console login failed"
        );
        if let Some(until) = failure.locked_until {
            return locked_form(lang, &uri, next.as_deref(), &username, now, until);
        }
        let message = lang.pick("Nome utente o password errati.", "Wrong username or password.");
        return login_form(lang, &uri, next.as_deref(), &username, Some(message), StatusCode::UNAUTHORIZED);
    };
    if let Err(e) = throttle::record_success(store, &keys).await {
        return internal(lang, "cannot clear the login throttle", &e);
    }
    let id = random_id();
    let row = ConsoleSession {
        id_hash: hash_token(&id),
        username: caller.name.clone(),
        created_at: now,
        expires_at: now + SESSION_HOURS * 3_600_000,
    };
    let stored = async {
        store.delete_expired_console_sessions(now).await?;
        store.insert_console_session(&row).await
    };
    if let Err(e) = stored.await {
        return internal(lang, "cannot store a console session", &e);
    }
    tracing::info!(user = %caller.name, client = %client, "console login");
    let mut response = Redirect::to(next.as_deref().unwrap_or("/console/inbox")).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, SESSION_HOURS * 3600));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    response
}

/// `POST /console/logout`: ends the session (CSRF-checked) and clears the cookie.
pub async fn logout(State(state): State<AppState>, session: Session, lang: Lang, body: String) -> Response {
    let fields = form_urlencoded_pairs(&body);
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if !session.csrf_ok(csrf) {
        return layout::bare_error(lang, StatusCode::FORBIDDEN, csrf_message(lang));
    }
    if let Err(e) = state.engine().store().delete_console_session(&session.id_hash).await {
        tracing::error!(error = %e, "cannot delete a console session");
        return layout::bare_error(lang, StatusCode::INTERNAL_SERVER_ERROR, lang.pick("Errore interno.", "Internal error."));
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    response
}

/// The message for a refused CSRF token.
pub fn csrf_message(lang: Lang) -> &'static str {
    lang.pick(
        "Richiesta rifiutata: il modulo non è valido o è scaduto. Ricarica la pagina e riprova.",
        "Request refused: the form is not valid or has expired. Reload the page and try again.",
    )
}

/// A hidden field with the session's CSRF token, for every POST form.
pub fn csrf_field(session: &Session) -> maud::Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_next_paths_and_csrf() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; pratica_session=abc; lang=en"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "nope"), None);
        assert!(
            safe_next("/console/tasks/1")
                && safe_next("/console/cases?q=RSS%20MRA&lang=en")
                && safe_next("/console/inbox")
                && safe_next("/console")
        );
        for bad in [
            "//evil.example/console/",
            "https://evil.example",
            "/console/x\r\nSet-Cookie: a=b",
            "/console/x\0",
            "/console/x\ty",
            "/console/x y",
            "/console/caf\u{e9}",
            "/console/../api/v1/instances",
            "/console/%2e%2E/api",
            "/console/.%2e/api",
            "/console//evil.example",
            "/console/\\evil.example",
            "/console/login?next=/console/inbox",
            "/consoles/inbox",
            "/console/%2E",
            "/api/v1/tasks",
        ] {
            assert!(!safe_next(bad), "{bad:?}");
        }
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"ab", b"abc"));
    }
}
