//! The operator console through the router (`tower::ServiceExt::oneshot`), on both backends:
//! login (good and bad), the redirect when logged out, CSRF refusals, office visibility
//! (another office's task is a 404), an invalid form shown with field errors, a valid
//! completion that moves the instance on, the four-eyes refusal, the case-file search, the
//! instance diagram with the current step marked, admin cancel and retry, the IT/EN switch,
//! the dashboard page, session expiry and disabled users, logout.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use pratica_api::http::auth::Role;
use pratica_api::http::{AppState, router};
use pratica_engine::runtime::StartRequest;
use pratica_engine::store::TaskFilter;
use pratica_tests::app::{Account, AppOptions, TestEngine, start_engine};
use pratica_tests::backend::Backend;
use pratica_tests::both_backends;
use serde_json::json;
use tower::ServiceExt;

const REVIEW: &str = r#"workflow: console-review
version: 1
title: Console review
business_key: ${ .input.cf }
steps:
  - id: review
    human:
      title: "Review {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      form: iban-check
      outcomes: [approve, reject]
      reason_required: [reject]
      due: 1d
  - id: second
    human:
      title: "Second approval {{ input.cf }}"
      assign: { role: naspi-operator, office: "${ .input.office }" }
      separate_from: [review]
  - id: done
    end: { output: { iban: "${ .steps.review.output.form.iban }" } }
"#;

const IBAN_FORM: &str = r#"{
  "type": "object",
  "required": ["iban"],
  "properties": {
    "iban": { "title": "IBAN", "type": "string", "pattern": "^IT[0-9]{2}[A-Z][0-9]{10}[0-9A-Z]{12}$" },
    "weeks": { "title": "Weeks", "type": "integer", "minimum": 0, "maximum": 208 },
    "notes": { "type": "string", "maxLength": 2000 }
  }
}"#;

const IBAN: &str = "IT60X0542811101000000123456";
const PASSWORD: &str = "correct horse battery staple";

struct Console {
    app: Router,
    t: TestEngine,
}

/// A logged-in browser: its cookies and the session's CSRF token.
struct Browser {
    cookies: String,
    csrf: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The value of the first `name="<name>" value="..."` in a page.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The console (oneshot, no socket) of an engine with `console-review` deployed and four
/// users of the task role naspi-operator: anna and bruno (operators of RM1), carla
/// (operator of MI1) and admin.
async fn setup(backend: Backend) -> Option<Console> {
    let user = |name: &str, role: Role, offices: &[&str]| Account::new(name, role).offices(offices).task_roles(&["naspi-operator"]);
    let options = AppOptions::new(backend)
        .schema("iban-check", IBAN_FORM)
        .user(user("anna", Role::Operator, &["RM1"]), PASSWORD)
        .user(user("bruno", Role::Operator, &["RM1"]), PASSWORD)
        .user(user("carla", Role::Operator, &["MI1"]), PASSWORD)
        .user(user("admin", Role::Admin, &[]), PASSWORD)
        .deploy(REVIEW);
    let t = start_engine(options).await?;
    let app = router(AppState::new(t.engine.clone()).with_schemas(t.schemas_dir()));
    Some(Console { app, t })
}

impl Console {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, headers, body: String::from_utf8(body.to_vec()).unwrap() }
    }

    async fn get(&self, browser: Option<&Browser>, path: &str) -> Answer {
        let mut request = Request::get(path);
        if let Some(b) = browser {
            request = request.header(header::COOKIE, &b.cookies);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// POSTs a form; the session's CSRF token is added unless `fields` has its own `csrf`.
    async fn post(&self, browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            all.push(("csrf", &browser.csrf));
        }
        let request = Request::post(path)
            .header(header::COOKIE, &browser.cookies)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form_body(&all)))
            .unwrap();
        self.send(request).await
    }

    /// Fills in the login form like a browser: its token cookie and hidden field, then the
    /// credentials.
    async fn try_login(&self, user: &str, password: &str) -> Answer {
        let form = self.get(None, "/console/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = hidden_value(&form.body, "login_token");
        let cookie = form.set_cookies().iter().find(|c| c.starts_with("pratica_login=")).unwrap().split(';').next().unwrap().to_string();
        let request = Request::post("/console/login")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form_body(&[("username", user), ("password", password), ("login_token", &token)])))
            .unwrap();
        self.send(request).await
    }

    async fn login(&self, user: &str) -> Browser {
        let answer = self.try_login(user, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let session = answer.set_cookies().into_iter().find(|c| c.starts_with("pratica_session=")).expect("a session cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(session.contains(flag), "{session}");
        }
        let cookies = session.split(';').next().unwrap().to_string();
        let inbox = self.get(Some(&Browser { cookies: cookies.clone(), csrf: String::new() }), "/console/inbox").await;
        assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
        Browser { csrf: hidden_value(&inbox.body, "csrf"), cookies }
    }

    async fn start(&self, cf: &str, office: &str) -> String {
        let request =
            StartRequest { workflow: "console-review".into(), version: None, input: json!({"cf": cf, "office": office}), request_id: None };
        let id = self.t.engine.start(request).await.unwrap().id;
        self.t.engine.run_until_idle().await.unwrap();
        id
    }

    async fn open_task(&self, instance: &str, step: &str) -> String {
        let tasks = self.t.engine.store().tasks(&TaskFilter { instance_id: Some(instance.into()), ..Default::default() }).await.unwrap();
        tasks
            .into_iter()
            .find(|t| t.step_id == step && (t.status == "open" || t.status == "claimed"))
            .unwrap_or_else(|| panic!("no open {step}"))
            .id
    }
}

both_backends!(operators_work_tasks_through_the_console, |backend| async move {
    let Some(c) = setup(backend).await else { return };
    let rome = c.start("RSSMRA80A01H501U", "RM1").await;
    let milan = c.start("VRDGPP70B02F205X", "MI1").await;
    let review = c.open_task(&rome, "review").await;
    let milan_review = c.open_task(&milan, "review").await;

    // Logged out: pages redirect to the login page, which brings the browser back.
    let answer = c.get(None, "/console/inbox").await;
    assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, "/console/login?next=/console/inbox"));
    let answer = c.get(None, "/console").await;
    assert!(answer.status.is_redirection());

    // A wrong password and an unknown user get the same generic answer.
    let bad = c.try_login("anna", "wrong").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("Nome utente o password errati."), "{}", bad.body);
    let unknown = c.try_login("nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("Nome utente o password errati."));
    assert!(!bad.set_cookies().iter().any(|c| c.starts_with("pratica_session=")));

    // The inbox shows only the operator's office, with a claim button per unclaimed task.
    let anna = c.login("anna").await;
    let inbox = c.get(Some(&anna), "/console/inbox").await;
    assert!(inbox.body.contains(&format!("data-task-id=\"{review}\"")), "{}", inbox.body);
    assert!(!inbox.body.contains(&milan_review), "another office's task is not listed");
    assert!(inbox.body.contains("class=\"claim\""));
    assert!(inbox.body.contains("<html lang=\"it\">") && inbox.body.contains("Salta al contenuto principale"));
    let carla = c.login("carla").await;
    let hidden = c.get(Some(&carla), &format!("/console/tasks/{review}")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    let refused = c.post(&carla, &format!("/console/tasks/{review}/claim"), &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);

    // CSRF: a POST without the session's token is refused and changes nothing.
    let forged = c.post(&anna, &format!("/console/tasks/{review}/claim"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(c.t.engine.store().task(&review).await.unwrap().assignee.is_none());

    // Claim, then an invalid form: error summary, per-field errors, values kept.
    let claimed = c.post(&anna, &format!("/console/tasks/{review}/claim"), &[]).await;
    assert_eq!((claimed.status, claimed.location()), (StatusCode::SEE_OTHER, format!("/console/tasks/{review}?ok=claimed").as_str()));
    let comment = c.post(&anna, &format!("/console/tasks/{review}/comment"), &[("text", "IBAN <da verificare>")]).await;
    assert_eq!(comment.location(), format!("/console/tasks/{review}?ok=commented"), "{}", comment.body);
    let page = c.get(Some(&anna), &format!("/console/tasks/{review}?ok=claimed")).await;
    assert!(page.body.contains("IBAN &lt;da verificare&gt;"), "the comment is listed, escaped: {}", page.body);
    assert!(page.body.contains("id=\"flash\"") && page.body.contains("id=\"task-form\""), "{}", page.body);
    let complete = format!("/console/tasks/{review}/complete");
    let invalid = c.post(&anna, &complete, &[("f.iban", "IT00 <script>"), ("f.weeks", "many"), ("outcome", "approve")]).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid.body);
    assert!(invalid.body.contains("id=\"error-summary\""));
    assert!(invalid.body.contains("href=\"#field-iban\"") && invalid.body.contains("href=\"#field-weeks\""), "{}", invalid.body);
    assert!(invalid.body.contains("class=\"field-error\" id=\"field-iban-error\""));
    assert!(invalid.body.contains("aria-describedby=\"field-iban-error\""));
    assert!(invalid.body.contains("IT00 &lt;script&gt;") && !invalid.body.contains("<script>"), "posted values are kept, escaped");
    let no_reason = c.post(&anna, &complete, &[("f.iban", IBAN), ("outcome", "reject")]).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.body.contains("id=\"reason-error\""), "{}", no_reason.body);
    assert_eq!(c.t.engine.store().task(&review).await.unwrap().status, "claimed");

    // A valid completion moves the instance on.
    let done = c.post(&anna, &complete, &[("f.iban", IBAN), ("f.weeks", "52"), ("outcome", "approve"), ("reason", "")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/console/inbox?ok=completed"), "{}", done.body);
    c.t.engine.run_until_idle().await.unwrap();
    let result: serde_json::Value = serde_json::from_str(&c.t.engine.store().task(&review).await.unwrap().result.unwrap()).unwrap();
    assert_eq!((result["form"]["iban"].as_str(), result["form"]["weeks"].as_i64()), (Some(IBAN), Some(52)));
    let second = c.open_task(&rome, "second").await;

    // Four eyes: the operator who reviewed may not approve the second step.
    let claim = c.post(&anna, &format!("/console/tasks/{second}/claim"), &[]).await;
    let refusal = if claim.status == StatusCode::SEE_OTHER {
        c.post(&anna, &format!("/console/tasks/{second}/complete"), &[("outcome", "done")]).await
    } else {
        claim
    };
    assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{}", refusal.body);
    assert!(refusal.body.contains("Separazione dei compiti"), "{}", refusal.body);
    assert!(refusal.body.contains("id=\"flash\""));

    // The instance page: status, diagram with the current step marked, audit actors.
    let instance = c.get(Some(&anna), &format!("/console/instances/{rome}")).await;
    assert_eq!(instance.status, StatusCode::OK);
    assert!(instance.body.contains("id=\"instance-status\" data-status=\"running\""), "{}", instance.body);
    assert!(instance.body.contains("pratica-current") && instance.body.contains("pratica-done"), "{}", instance.body);
    assert!(instance.body.contains("▶ second") && instance.body.contains("✓ review"));
    assert!(instance.body.contains("<td>anna</td>"), "the timeline names the actor");
    assert!(!instance.body.contains("id=\"cancel\""), "operators have no admin actions");

    // Another operator of the office completes it; the case ends.
    let _ = c.post(&anna, &format!("/console/tasks/{second}/unclaim"), &[]).await;
    let bruno = c.login("bruno").await;
    let answer = c.post(&bruno, &format!("/console/tasks/{second}/claim"), &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let delegated = c.post(&bruno, &format!("/console/tasks/{second}/delegate"), &[("to", "anna")]).await;
    assert_eq!(delegated.status, StatusCode::FORBIDDEN, "the reviewer may not receive the second step: {}", delegated.body);
    assert!(delegated.body.contains("Separazione dei compiti"));
    let answer = c.post(&bruno, &format!("/console/tasks/{second}/complete"), &[("outcome", "done")]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    c.t.engine.run_until_idle().await.unwrap();
    assert_eq!(c.t.engine.store().instance(&rome).await.unwrap().status, "completed");

    // The case file, found by a lower-case prefix of the codice fiscale.
    let file = c.get(Some(&anna), "/console/cases?q=rssmra").await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(file.body.contains("id=\"case-search\"") && file.body.contains("id=\"case-file\""), "{}", file.body);
    assert!(file.body.contains(&format!("/console/instances/{rome}")) && file.body.contains("task.completed"));
    assert!(!file.body.contains(&milan), "only this citizen's cases");
    let none = c.get(Some(&anna), "/console/cases?q=ZZZ").await;
    assert!(none.body.contains("id=\"case-none\""));

    // Admin: cancel a running instance (a reason is required), seen in its status.
    let admin = c.login("admin").await;
    let path = format!("/console/instances/{milan}/cancel");
    let answer = c.post(&admin, &path, &[("reason", "")]).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer = c.post(&anna, &path, &[("reason", "duplicate")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "operators may not cancel");
    let answer = c.post(&admin, &path, &[("reason", "duplicate")]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let page = c.get(Some(&admin), &format!("/console/instances/{milan}")).await;
    assert!(page.body.contains("data-status=\"cancelled\""), "{}", page.body);

    // Logout ends the session for good.
    let out = c.post(&anna, "/console/logout", &[]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/console/login"));
    let after = c.get(Some(&anna), "/console/inbox").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
});

both_backends!(admins_retry_failed_instances_marked_on_the_diagram, |backend| async move {
    let Some(c) = setup(backend).await else { return };
    let source = "workflow: console-fails\nversion: 1\ntitle: Fails\nsteps:\n  - id: boom\n    fail: { error: bad.thing }\n";
    c.t.engine.deploy(source).await.unwrap();
    let request = StartRequest { workflow: "console-fails".into(), version: None, input: json!({}), request_id: None };
    let id = c.t.engine.start(request).await.unwrap().id;
    c.t.engine.run_until_idle().await.unwrap();
    let admin = c.login("admin").await;
    let page = c.get(Some(&admin), &format!("/console/instances/{id}")).await;
    assert!(page.body.contains("data-status=\"failed\"") && page.body.contains("id=\"retry\""), "{}", page.body);
    assert!(page.body.contains("pratica-failed-step") && page.body.contains("✗ boom"), "{}", page.body);
    assert!(!page.body.contains("id=\"cancel\""), "a failed instance cannot be cancelled");
    let anna = c.login("anna").await;
    assert!(!c.get(Some(&anna), &format!("/console/instances/{id}")).await.body.contains("id=\"retry\""));
    let answer = c.post(&admin, &format!("/console/instances/{id}/retry"), &[]).await;
    assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, format!("/console/instances/{id}?ok=retried").as_str()));
    let history = c.t.engine.store().history(&id).await.unwrap();
    assert!(history.iter().any(|h| h.kind == "instance.retried" && h.actor.as_deref() == Some("admin")));
    let page = c.get(Some(&admin), &format!("/console/instances/{id}?ok=retried")).await;
    assert!(page.body.contains("id=\"flash\""), "{}", page.body);
});

both_backends!(languages_workflows_dashboard_and_session_end, |backend| async move {
    let Some(c) = setup(backend).await else { return };
    let anna = c.login("anna").await;
    let it = c.get(Some(&anna), "/console/inbox").await;
    assert!(it.body.contains("<html lang=\"it\">") && it.body.contains("<h1>Attività</h1>"), "{}", it.body);
    assert!(it.body.contains("href=\"/console/inbox?lang=en\""), "a switch link to English");
    let en = c.get(Some(&anna), "/console/inbox?lang=en").await;
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains("<h1>Inbox</h1>"));
    assert!(en.set_cookies().iter().any(|c| c.starts_with("lang=en")), "the choice is remembered");
    let cookie = Browser { cookies: format!("{}; lang=en", anna.cookies), csrf: anna.csrf.clone() };
    assert!(c.get(Some(&cookie), "/console/workflows").await.body.contains("<h1>Workflows</h1>"));
    let request = Request::get("/console/login").header(header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9,it;q=0.5").body(Body::empty()).unwrap();
    assert!(c.send(request).await.body.contains("Console sign-in"));
    let workflow = c.get(Some(&anna), "/console/workflows/console-review/1").await;
    assert_eq!(workflow.status, StatusCode::OK);
    assert!(workflow.body.contains("<svg role=\"img\"") && workflow.body.contains("data-node=\"s0\""));
    // The director dashboard in the console frame: operators see only their offices.
    let dashboard = c.get(Some(&anna), "/console/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    assert!(dashboard.body.contains("href=\"/console/dashboard\" aria-current=\"page\""), "{}", dashboard.body);
    assert_eq!(c.get(Some(&anna), "/console/dashboard?office=MI1").await.status, StatusCode::NOT_FOUND);
    // Sessions end: a disabled user at once, everyone after 8 hours.
    let bruno = c.login("bruno").await;
    c.t.engine.store().execute_raw("UPDATE users SET disabled_at = 1 WHERE username = 'bruno'").await.unwrap();
    assert_eq!(c.get(Some(&bruno), "/console/inbox").await.status, StatusCode::SEE_OTHER);
    assert_eq!(c.try_login("bruno", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.get(Some(&anna), "/console/inbox").await.status, StatusCode::OK);
    c.t.clock.advance(std::time::Duration::from_secs(8 * 3600 + 1));
    assert_eq!(c.get(Some(&anna), "/console/inbox").await.status, StatusCode::SEE_OTHER);
    let missing = c.get(Some(&anna), "/console/nope?lang=en").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("This page does not exist."), "{}", missing.body);
    let css = c.get(None, "/console/static/console.css").await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.body.contains(":focus-visible"));
});
