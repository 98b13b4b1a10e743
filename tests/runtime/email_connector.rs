//! The `email` connector against a real SMTP server on loopback (`tests/tools/smtp_sink.py`,
//! aiosmtpd): what arrives (headers, UTF-8 Italian text, the idempotent Message-ID), address
//! checks, 4xx/5xx/unreachable/silent servers, authentication, and one workflow run through
//! the engine. Without aiosmtpd the server tests are skipped with a message, except in CI
//! (`CI=true`), where they fail.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pratica_engine::connector::{Connector, ConnectorError, EmailConfig, EmailConnector, Invocation, Registry, SmtpTls};
use pratica_engine::runtime::{StartRequest, output_of};
use pratica_tests::backend::{Backend, ScratchDir, test_engine};
use pratica_tests::repo_path;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const ACCOLTA: &str = "Gentile cittadino, la sua domanda è stata accolta.\nL'indennità sarà pagata dal 1° aprile.";

/// A running `smtp_sink.py`; killed on drop.
struct Sink {
    _child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: ScratchDir,
}

impl Sink {
    /// Starts the server, or `None` (outside CI) when aiosmtpd is not installed.
    async fn start(auth: Option<(&str, &str)>) -> Option<Sink> {
        let available =
            Command::new("python3").args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().await.is_ok_and(|s| s.success());
        if !available {
            if std::env::var("CI").is_ok() {
                panic!("python3 with aiosmtpd is required in CI (scripts/test and .ci/run install it)");
            }
            eprintln!("python3 -m aiosmtpd is not available; skipping the SMTP server test (pip install aiosmtpd)");
            return None;
        }
        let dir = ScratchDir::new();
        let mut command = Command::new("python3");
        command.arg(repo_path("tests/tools/smtp_sink.py")).arg(dir.0.join("mail"));
        if let Some((user, password)) = auth {
            command.args(["--user", user, "--password", password]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let port = match &line {
            Ok(Ok(Some(line))) => line.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()),
            _ => None,
        };
        let Some(port) = port else { panic!("smtp_sink.py did not start: {line:?}") };
        Some(Sink { _child: child, _stdin: stdin, port, dir })
    }

    fn config(&self) -> EmailConfig {
        EmailConfig { port: Some(self.port), tls: SmtpTls::None, ..EmailConfig::new("127.0.0.1", "INPS <noreply@inps.example>") }
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(self.dir.0.join("mail")) else { return Vec::new() };
        let mut paths: Vec<_> =
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        paths.sort();
        paths.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("read message")).expect("message json")).collect()
    }
}

fn connector(config: EmailConfig) -> EmailConnector {
    EmailConnector::new(config).expect("valid email config")
}

fn send(input: Value) -> Invocation {
    Invocation {
        connector: "email".into(),
        operation: Some("send".into()),
        input,
        idempotency_key: "inst-1:notify:1".into(),
        attempt: 1,
        deadline: None,
        instance_id: "inst-1".into(),
        step_id: "notify".into(),
        secrets: Default::default(),
        clock: Default::default(),
    }
}

async fn err(c: &EmailConnector, call: &Invocation) -> ConnectorError {
    match c.invoke(call).await {
        Ok(v) => panic!("the send should fail, got {v}"),
        Err(e) => e,
    }
}

fn code_of(e: &ConnectorError) -> (&str, bool) {
    match e {
        ConnectorError::Retryable { code, .. } => (code, true),
        ConnectorError::Fatal { code, .. } => (code, false),
    }
}

fn message_of(e: &ConnectorError) -> &str {
    match e {
        ConnectorError::Retryable { message, .. } | ConnectorError::Fatal { message, .. } => message,
    }
}

#[tokio::test]
async fn the_message_arrives_with_utf8_text_and_the_idempotent_message_id() {
    let Some(sink) = Sink::start(None).await else { return };
    let c = connector(sink.config());
    let input = json!({
        "to": ["Mario Rossi <mario.rossi@example.it>"],
        "cc": "ufficio@example.it",
        "reply_to": "sede.roma@inps.example",
        "subject": "Domanda NASpI: è stata accolta",
        "body": ACCOLTA,
    });
    let output = c.invoke(&send(input)).await.expect("sent");
    assert_eq!(
        output,
        json!({"message_id": "<inst-1=3Anotify=3A1@pratica>", "accepted": ["mario.rossi@example.it", "ufficio@example.it"]})
    );
    let got = sink.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["mail_from"], "noreply@inps.example");
    assert_eq!(m["rcpt_tos"], json!(["mario.rossi@example.it", "ufficio@example.it"]));
    assert_eq!(m["from"], "INPS <noreply@inps.example>");
    assert_eq!(m["to"], "Mario Rossi <mario.rossi@example.it>");
    assert_eq!(m["cc"], "ufficio@example.it");
    assert_eq!(m["reply_to"], "sede.roma@inps.example");
    assert_eq!(m["subject"], "Domanda NASpI: è stata accolta");
    assert_eq!(m["message_id"], "<inst-1=3Anotify=3A1@pratica>");
    assert_eq!(m["idempotency_key"], "inst-1:notify:1");
    assert_eq!(m["content_type"], "text/plain");
    assert!(m["date"].is_string(), "{m}");
    assert_eq!(m["text"].as_str().map(str::trim_end), Some(ACCOLTA));
}

#[tokio::test]
async fn html_goes_with_the_text_and_repeats_keep_the_message_id() {
    let Some(sink) = Sink::start(None).await else { return };
    let c = connector(sink.config());
    let input =
        json!({"to": "anna@example.it", "subject": "Esito", "body": ACCOLTA, "html": "<p>La sua domanda è stata <b>accolta</b>.</p>"});
    c.invoke(&send(input.clone())).await.expect("first");
    c.invoke(&Invocation { attempt: 2, ..send(input) }).await.expect("again, as after a crash");
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["content_type"], "multipart/alternative");
    assert_eq!(got[0]["html"].as_str().map(str::trim_end), Some("<p>La sua domanda è stata <b>accolta</b>.</p>"));
    assert_eq!(got[0]["text"].as_str().map(str::trim_end), Some(ACCOLTA));
    assert_eq!(got[0]["message_id"], got[1]["message_id"], "a receiver can drop the repeat");
}

#[tokio::test]
async fn invalid_addresses_are_fatal_and_nothing_is_sent() {
    let Some(sink) = Sink::start(None).await else { return };
    let c = connector(sink.config());
    for to in [json!("mario.rossi"), json!(["ok@example.it", "due@@example.it"]), Value::Null, json!([])] {
        let e = err(&c, &send(json!({"to": to, "subject": "Esito", "body": ACCOLTA}))).await;
        assert_eq!(code_of(&e), ("email.invalid_address", false), "{to}: {e}");
    }
    let e = err(&c, &send(json!({"to": "a@example.it", "cc": "not an address", "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.invalid_address", false));
    let e = err(&c, &send(json!({"to": "a@example.it", "subject": "Esito"}))).await;
    assert_eq!(code_of(&e), ("email.invalid_input", false));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_5xx_rejection_is_fatal_and_a_4xx_is_retryable() {
    let Some(sink) = Sink::start(None).await else { return };
    let c = connector(sink.config());
    let e = err(&c, &send(json!({"to": "reject.me@example.it", "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.rejected", false), "{e}");
    assert!(message_of(&e).contains("550") && message_of(&e).contains("mailbox unavailable"), "{e}");
    let e = err(&c, &send(json!({"to": ["ok@example.it", "reject@example.it"], "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.rejected", false), "one refused recipient refuses the message");
    let e = err(&c, &send(json!({"to": "busy@example.it", "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.deferred", true), "{e}");
    assert!(message_of(&e).contains("451"), "{e}");
    assert!(sink.messages().is_empty());
    // The pooled connection is still good after the refusals.
    c.invoke(&send(json!({"to": "ok@example.it", "subject": "Esito", "body": ACCOLTA}))).await.expect("sent after refusals");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn credentials_are_used_and_never_shown() {
    let Some(sink) = Sink::start(Some(("pratica", "smtp-s3cret"))).await else { return };
    let config = EmailConfig { user: Some("pratica".into()), password: Some("smtp-s3cret".into()), ..sink.config() };
    connector(config.clone()).invoke(&send(json!({"to": "a@example.it", "subject": "Esito", "body": ACCOLTA}))).await.expect("sent");
    assert_eq!(sink.messages()[0]["auth_login"], "pratica");
    let wrong = EmailConfig { password: Some("wrong-password".into()), ..config };
    let e = err(&connector(wrong.clone()), &send(json!({"to": "a@example.it", "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.rejected", false), "{e}");
    assert!(!message_of(&e).contains("wrong-password") && !format!("{wrong:?}").contains("wrong-password"), "{e}");
    let e = err(
        &connector(EmailConfig { user: None, password: None, ..wrong }),
        &send(json!({"to": "a@example.it", "subject": "Esito", "body": ACCOLTA})),
    )
    .await;
    assert_eq!(code_of(&e), ("email.rejected", false), "the server requires AUTH: {e}");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_server_that_is_down_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let config = EmailConfig { port: Some(port), tls: SmtpTls::None, ..EmailConfig::new("127.0.0.1", "noreply@inps.example") };
    let e = err(&connector(config), &send(json!({"to": "a@example.it", "subject": "Esito", "body": ACCOLTA}))).await;
    assert_eq!(code_of(&e), ("email.unavailable", true), "{e}");
}

#[tokio::test]
async fn a_silent_server_times_out_at_the_deadline() {
    // Accepts connections (the kernel does) but never greets.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let config = EmailConfig { port: Some(port), tls: SmtpTls::None, ..EmailConfig::new("127.0.0.1", "noreply@inps.example") };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;
    let started = std::time::Instant::now();
    let call = Invocation { deadline: Some(now + 400), ..send(json!({"to": "a@example.it", "subject": "Esito", "body": ACCOLTA})) };
    let e = err(&connector(config), &call).await;
    assert_eq!(code_of(&e), ("timeout", true), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_sends_with_the_step_idempotency_key() {
    let Some(sink) = Sink::start(None).await else { return };
    let registry = Registry::builtin().with("email", connector(sink.config()));
    let Some(t) = test_engine(Backend::Sqlite, registry).await else { return };
    let source = r#"workflow: email-e2e
version: 1
title: Test
steps:
  - id: notify
    call: email.send
    with:
      to: ${ .input.email }
      subject: "Domanda {{ input.application_id }}: esito"
      body: |
        Gentile {{ input.name }},

        la sua domanda è stata accolta.
    retry: { attempts: 3 }
  - id: done
    end:
      output: { message_id: "${ .steps.notify.output.message_id }", accepted: "${ .steps.notify.output.accepted }" }
"#;
    if let Err(e) = t.engine.deploy(source).await {
        panic!("deploy: {e}: {e:?}");
    }
    let input = json!({"email": "mario.rossi@example.it", "name": "Mario Rossi", "application_id": "N-42"});
    let id = t.engine.start(StartRequest { workflow: "email-e2e".into(), input, ..Default::default() }).await.expect("start").id;
    t.engine.run_until_idle().await.expect("run");
    let row = t.engine.store().instance(&id).await.expect("instance");
    let key = format!("{id}:notify:1");
    let expected_id = format!("<{}@pratica>", key.replace(':', "=3A"));
    assert_eq!(
        (row.status.as_str(), output_of(&row)),
        ("completed", json!({"message_id": expected_id, "accepted": ["mario.rossi@example.it"]}))
    );
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!((&got[0]["message_id"], &got[0]["idempotency_key"]), (&json!(expected_id), &json!(key)));
    assert_eq!(got[0]["subject"], "Domanda N-42: esito");
    assert_eq!(got[0]["text"].as_str().map(str::trim_end), Some("Gentile Mario Rossi,\n\nla sua domanda è stata accolta."));
}
