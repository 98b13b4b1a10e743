//! Real-browser tests of the operator console: headless Chromium (Debian's `chromium`) driven
//! through `chromedriver` over WebDriver, against the real `pratica serve` process.
//!
//! One server, one browser and one scenario, in named phases: log in as an operator, see only
//! the office's tasks, claim one, submit the form with an invalid field and see the error,
//! submit it valid and see the instance move on, be refused the four-eyes step as the same
//! operator, complete it as a second operator; another office's operator sees none of it; case
//! file search by business key, the instance page and the dashboard. Every page is checked with
//! axe-core (no serious or critical violations), at 1280×800 and 390×844 (no horizontal
//! scrolling at 390 px, key controls visible), with screenshots in target/screenshots/.
//!
//! Needs /usr/bin/chromium, /usr/bin/chromedriver and target/axe (./scripts/test installs
//! them); without them the test is skipped with a message, except in CI (`CI=true`) where it
//! fails.

mod harness;

use std::time::Duration;

use fantoccini::key::Key;
use harness::{Browser, Server, Tools, User, wait_until};
use pratica_tests::backend::ScratchDir;
use serde_json::json;

const WORKFLOW: &str = r#"workflow: console-check
version: 1
title: Console check of a benefit application
business_key: ${ .input.fiscal_code }
steps:
  - id: review
    title: Review
    human:
      title: "Review the application of {{ input.fiscal_code }}"
      description: "Check the protocol number and the documents."
      assign: { role: reviewer, office: "${ .input.office }" }
      form: console-review
      outcomes: [approve, reject]
      reason_required: [reject]
      due: 2d
  - id: first_decision
    switch:
      - when: ${ .steps.review.output.outcome == "reject" }
        goto: refused
  - id: second_review
    title: Second review (four-eyes)
    human:
      title: "Second review of {{ input.fiscal_code }}"
      description: "{{ steps.review.output.completed_by }} approved first."
      assign: { role: reviewer, office: "${ .input.office }" }
      outcomes: [approve, reject]
      reason_required: [reject]
      separate_from: [review]
  - id: second_decision
    switch:
      - when: ${ .steps.second_review.output.outcome == "reject" }
        goto: refused
  - id: approved
    end:
      output: { approved: true }
  - id: refused
    end:
      output: { approved: false }
"#;

const FORM: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Application review",
  "type": "object",
  "additionalProperties": false,
  "required": ["protocol"],
  "properties": {
    "protocol": {
      "title": "Protocol number",
      "description": "INPS- followed by six digits, e.g. INPS-123456.",
      "type": "string",
      "pattern": "^INPS-[0-9]{6}$"
    },
    "months": { "title": "Months due", "type": "integer", "minimum": 1, "maximum": 24 },
    "documents_checked": { "title": "Documents checked", "type": "boolean" }
  }
}
"#;

/// The citizens (business keys) of the two cases.
const ROMA_CF: &str = "RSSMRA80A01H501U";
const MILANO_CF: &str = "BNCLRA85M41F205X";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_console_in_a_real_browser() {
    let Some(tools) = Tools::find() else { return };
    let started = std::time::Instant::now();
    let scratch = ScratchDir::new();

    // --- Phase 0: the server, its users and two cases (one in Rome, one in Milan) ---
    let server = Server::start(
        &scratch,
        &[("workflows/console-check.yaml", WORKFLOW), ("schemas/console-review.schema.json", FORM)],
        &[
            User { name: "anna.roma", role: "operator", offices: &["roma"], task_roles: &["reviewer"] },
            User { name: "bruno.roma", role: "operator", offices: &["roma"], task_roles: &["reviewer"] },
            User { name: "carla.milano", role: "operator", offices: &["milano"], task_roles: &["reviewer"] },
            User { name: "dora.director", role: "admin", offices: &[], task_roles: &[] },
        ],
    )
    .await;
    let roma = server.start_instance("console-check", json!({ "fiscal_code": ROMA_CF, "office": "roma" })).await;
    let milano = server.start_instance("console-check", json!({ "fiscal_code": MILANO_CF, "office": "milano" })).await;
    let review = server.wait_task(&roma, "review").await;
    let milano_review = server.wait_task(&milano, "review").await;

    let browser = Browser::start(tools, &scratch).await;
    let b = &browser;

    // --- Phase 1: the checks themselves catch what they must (a page with a known fault) ---
    b.goto("data:text/html,<html><body><img src='x.png'><div style='width:1000px'>wide</div></body></html>").await;
    let ids: Vec<String> = b.axe_violations("self-check").await.iter().filter_map(|v| v["id"].as_str().map(str::to_string)).collect();
    assert!(ids.iter().any(|id| id == "image-alt"), "axe-core did not report an image without alt text: {ids:?}");
    b.resize(harness::NARROW).await;
    assert!(b.scrolls_horizontally().await.0, "a 1000 px wide page does not count as scrolling at 390 px");
    assert!(b.in_view("div").await.is_ok() && b.in_view("#absent").await.is_err(), "the visibility check");
    b.resize(harness::WIDE).await;

    // --- Phase 2: the login page ---
    b.goto(&server.url("/console/login?lang=en")).await;
    b.check_page("login", &["#username", "#password", "#login"]).await;

    // --- Phase 3: an operator of Rome sees Rome's task and not Milan's ---
    b.login(&server, "anna.roma").await;
    b.goto(&server.url("/console/inbox")).await;
    let ids = inbox_task_ids(b).await;
    assert!(ids.contains(&review), "anna.roma's inbox lacks Rome's task {review}: {ids:?}");
    assert!(!ids.contains(&milano_review), "anna.roma's inbox shows Milan's task {milano_review}: {ids:?}");
    b.check_page("inbox", &["#inbox", &format!("#inbox [data-task-id=\"{review}\"] .claim")]).await;
    // Keyboard: the first Tab reaches the skip link, which is then visible with a focus outline.
    b.goto(&server.url("/console/inbox")).await;
    b.find("body").await.send_keys(&char::from(Key::Tab).to_string()).await.expect("press Tab");
    let focused = b.client.active_element().await.expect("the focused element");
    assert_eq!(focused.attr("href").await.expect("href").as_deref(), Some("#main"), "the first Tab does not reach the skip link");
    let outline = focused.css_value("outline-style").await.expect("outline style");
    assert!(outline != "none" && b.in_view(".skip-link").await.is_ok(), "the focused skip link is not visible (outline {outline})");
    // The same page in Italian: `lang` follows the language, and it is as accessible.
    b.goto(&server.url("/console/inbox?lang=it")).await;
    let lang = b.client.execute("return document.documentElement.lang", vec![]).await.expect("lang");
    assert_eq!(lang, "it", "the Italian page does not declare lang=it");
    b.assert_accessible("inbox (it)").await;
    b.goto(&server.url("/console/inbox?lang=en")).await;

    // --- Phase 4: claim the task from the inbox ---
    let claim = b.find(&format!("#inbox [data-task-id=\"{review}\"] .claim")).await;
    b.click_and_wait(&claim).await;
    let task_page = server.url(&format!("/console/tasks/{review}"));
    if !b.path().await.ends_with(&format!("/console/tasks/{review}")) {
        b.goto(&task_page).await;
    }
    let task = server.api(reqwest::Method::GET, &format!("/api/v1/tasks/{review}"), None).await;
    assert_eq!(task["assignee"], "anna.roma", "the claim reached the server: {task}");
    b.check_page("task", &["#task-form", "#field-protocol", "button[name=\"outcome\"][value=\"approve\"]"]).await;

    // The form itself, as the operator scrolls to it.
    b.client.execute("document.getElementById('task-form').scrollIntoView({ block: 'start' })", vec![]).await.expect("scroll to the form");
    b.screenshot("task-form-1280x800").await;

    // --- Phase 5: an invalid field is refused with a message next to it and in the summary ---
    // The browser's own constraint checks are switched off so that the server's answer is what is tested.
    b.client.execute("document.getElementById('task-form').noValidate = true", vec![]).await.expect("novalidate");
    b.fill("#field-protocol", "12345").await;
    let approve = b.find("#task-form button[name=\"outcome\"][value=\"approve\"]").await;
    b.click_and_wait(&approve).await;
    assert!(b.exists("#error-summary").await, "no #error-summary after an invalid protocol number: {}", b.body_text().await);
    let field_errors = b.find_all(".field-error").await;
    assert!(!field_errors.is_empty(), "no .field-error after an invalid protocol number");
    let summary_links = b.find_all("#error-summary a[href]").await;
    assert!(!summary_links.is_empty(), "the error summary does not link to the fields");
    let described = b.find("#field-protocol").await.attr("aria-describedby").await.expect("read aria-describedby");
    assert!(described.is_some_and(|d| !d.is_empty()), "the invalid field is not described by its error (aria-describedby)");
    assert_eq!(server.instance(&roma).await["status"], "running", "the invalid form did not move the case");
    b.check_page("task-errors", &["#error-summary", ".field-error", "#field-protocol"]).await;

    // Rejecting needs a reason: without one the reason box carries the error.
    b.fill("#field-protocol", "INPS-123456").await;
    let reject = b.find("#task-form button[name=\"outcome\"][value=\"reject\"]").await;
    b.click_and_wait(&reject).await;
    assert!(b.exists("#error-summary").await, "a rejection without a reason was not refused: {}", b.body_text().await);
    let reason = b.find("#reason").await;
    assert_eq!(reason.attr("aria-invalid").await.expect("aria-invalid").as_deref(), Some("true"), "the reason box is not marked invalid");
    let described = reason.attr("aria-describedby").await.expect("aria-describedby").unwrap_or_default();
    assert!(described.contains("reason-error"), "the reason box is not described by its error: {described:?}");
    assert_eq!(server.instance(&roma).await["status"], "running", "the refused rejection did not move the case");

    // --- Phase 6: the valid form moves the case on to the four-eyes step ---
    b.client.execute("document.getElementById('task-form').noValidate = true", vec![]).await.expect("novalidate");
    b.fill("#field-protocol", "INPS-123456").await;
    if b.exists("#field-months").await {
        b.fill("#field-months", "6").await;
    }
    let approve = b.find("#task-form button[name=\"outcome\"][value=\"approve\"]").await;
    b.click_and_wait(&approve).await;
    assert!(!b.exists("#error-summary").await, "a valid form was refused: {}", b.body_text().await);
    let second = server.wait_task(&roma, "second_review").await;
    let done = server.api(reqwest::Method::GET, &format!("/api/v1/tasks/{review}"), None).await;
    assert_eq!(done["status"], "completed", "the first review is completed: {done}");
    b.goto(&server.url(&format!("/console/instances/{roma}"))).await;
    let status = b.find("#instance-status").await.attr("data-status").await.expect("data-status");
    assert_eq!(status.as_deref(), Some("running"), "instance status after the first review");
    let current = b.find("#current-steps").await.text().await.expect("current steps");
    assert!(current.contains("second_review"), "the instance page does not show the case at the four-eyes step: {current:?}");
    assert!(b.exists("svg .pratica-current").await, "the diagram does not highlight the current step");

    // --- Phase 7: the same operator is refused the four-eyes step, and releases it ---
    b.goto(&server.url(&format!("/console/tasks/{second}"))).await;
    let four_eyes = b.find("#four-eyes").await.text().await.expect("four-eyes text");
    assert!(four_eyes.contains("anna.roma"), "the task page does not say who may not complete it: {four_eyes}");
    let claim = b.find(".claim").await;
    b.click_and_wait(&claim).await;
    b.goto(&server.url(&format!("/console/tasks/{second}"))).await;
    let approve = b.find("#task-form button[name=\"outcome\"][value=\"approve\"]").await;
    b.click_and_wait(&approve).await;
    let message = message_text(b).await;
    assert!(
        message.to_lowercase().contains("separation of duties"),
        "anna.roma was not told she may not complete the four-eyes step; messages: {message:?}; page: {}",
        b.body_text().await
    );
    let still = server.api(reqwest::Method::GET, &format!("/api/v1/tasks/{second}"), None).await;
    assert_ne!(still["status"], "completed", "the four-eyes step was completed by the first reviewer: {still}");
    b.check_page("task-four-eyes", &["#flash", "#four-eyes"]).await;
    let release = b.find(".unclaim").await;
    b.click_and_wait(&release).await;
    let released = server.api(reqwest::Method::GET, &format!("/api/v1/tasks/{second}"), None).await;
    assert!(released["assignee"].is_null(), "the released task went back to the queue: {released}");

    // --- Phase 8: signing out ends the session; Milan's operator sees neither Rome's tasks nor Rome's task page ---
    let sign_out = b.find("form.logout button").await;
    b.click_and_wait(&sign_out).await;
    b.goto(&server.url("/console/inbox")).await;
    assert!(
        b.path().await.starts_with("/console/login"),
        "after signing out the inbox did not send to the login page: {}",
        b.location().await
    );
    b.login(&server, "carla.milano").await;
    b.goto(&server.url("/console/inbox")).await;
    let ids = inbox_task_ids(b).await;
    assert!(ids.contains(&milano_review), "carla.milano's inbox lacks Milan's task: {ids:?}");
    assert!(!ids.contains(&second) && !ids.contains(&review), "carla.milano sees Rome's tasks: {ids:?}");
    b.goto(&server.url(&format!("/console/tasks/{second}"))).await;
    assert!(!b.exists("#task-form").await && !b.exists(".claim").await, "carla.milano can open Rome's task page");

    // --- Phase 9: a second operator of Rome completes the four-eyes step ---
    b.login(&server, "bruno.roma").await;
    b.goto(&server.url(&format!("/console/tasks/{second}"))).await;
    if let Some(claim) = b.find_all(".claim").await.into_iter().next() {
        b.click_and_wait(&claim).await;
        b.goto(&server.url(&format!("/console/tasks/{second}"))).await;
    }
    let approve = b.find("button[name=\"outcome\"][value=\"approve\"]").await;
    b.click_and_wait(&approve).await;
    wait_until("the Rome case to complete", Duration::from_secs(20), async || server.instance(&roma).await["status"] == "completed").await;

    // --- Phase 10: the case file, found by the citizen's codice fiscale ---
    b.goto(&server.url("/console/inbox")).await;
    let case_files = b.find("a[href=\"/console/cases\"]").await;
    b.click_and_wait(&case_files).await;
    let search = b.find("#case-search input[name=\"q\"]").await;
    search.send_keys(ROMA_CF).await.expect("type the codice fiscale");
    let submit = b.find("#case-search button, #case-search [type=\"submit\"]").await;
    b.click_and_wait(&submit).await;
    assert!(b.location().await.contains(ROMA_CF), "the search did not open the case file: {}", b.location().await);
    let case_file = b.body_text().await;
    assert!(
        case_file.contains(&roma) || b.exists(&format!("a[href*=\"{roma}\"]")).await,
        "the case file does not list the instance {roma}"
    );
    assert!(!case_file.contains(&milano), "Milan's case appears in Rome's case file");
    b.check_page("case-file", &["#case-search", &format!("a[href*=\"{roma}\"]")]).await;

    // --- Phase 11: the instance page: status, diagram, timeline ---
    b.goto(&server.url(&format!("/console/instances/{roma}"))).await;
    let status = b.find("#instance-status").await.attr("data-status").await.expect("data-status");
    assert_eq!(status.as_deref(), Some("completed"), "instance status at the end");
    assert!(b.exists("svg").await, "the instance page has no diagram");
    let timeline = b.body_text().await;
    assert!(timeline.contains("anna.roma") && timeline.contains("bruno.roma"), "the timeline does not name both reviewers");
    b.check_page("instance", &["#instance-status", "svg"]).await;
    // The diagram on a phone, as an operator sees it once scrolled to.
    b.resize(harness::NARROW).await;
    b.client.execute("document.querySelector('svg').scrollIntoView({ block: 'start' })", vec![]).await.expect("scroll to the diagram");
    b.screenshot("instance-diagram-390x844").await;
    b.resize(harness::WIDE).await;

    // --- Phase 12: the workflows page lists the deployed workflow ---
    b.goto(&server.url("/console/workflows")).await;
    assert!(b.body_text().await.contains("console-check"), "the workflows page does not list console-check");
    b.check_page("workflows", &["main", "h1", "a[href*=\"/console/workflows/console-check\"]"]).await;

    // --- Phase 13: the director's dashboard ---
    b.login(&server, "dora.director").await;
    let dashboard = b.find("a[href=\"/console/dashboard\"]").await;
    b.click_and_wait(&dashboard).await;
    assert_eq!(b.path().await, "/console/dashboard", "the dashboard link led elsewhere");
    let figures = b.body_text().await;
    assert!(figures.contains("Director dashboard") || figures.contains("dashboard"), "the dashboard has no title: {figures}");
    b.check_page("dashboard", &["main", "h1", "form[action=\"/console/dashboard\"] button[type=\"submit\"]"]).await;

    browser.stop().await;
    server.process.stop().await;
    let elapsed = started.elapsed();
    eprintln!("console browser scenario took {elapsed:?}; screenshots in target/screenshots/");
    assert!(elapsed < Duration::from_secs(120), "the browser scenario took {elapsed:?} (budget: 2 minutes)");
}

/// The `data-task-id`s of the rows of the inbox table.
async fn inbox_task_ids(b: &Browser) -> Vec<String> {
    let mut ids = Vec::new();
    for row in b.find_all("#inbox [data-task-id]").await {
        if let Some(id) = row.attr("data-task-id").await.expect("read data-task-id") {
            ids.push(id);
        }
    }
    ids
}

/// The text of the page's flash message and error summary (whichever are present).
async fn message_text(b: &Browser) -> String {
    let mut text = String::new();
    for element in b.find_all("#flash, #error-summary").await {
        text.push_str(&element.text().await.unwrap_or_default());
        text.push('\n');
    }
    text
}
