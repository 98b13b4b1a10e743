//! From a step's `with` to the message to send: address checks, headers, the body parts and
//! the `Message-ID` derived from the idempotency key. See the contract in the parent module.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::super::ConnectorError;

const FIELDS: [&str; 7] = ["to", "cc", "bcc", "subject", "body", "html", "reply_to"];
/// The header that carries the idempotency key verbatim.
pub(super) const KEY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Pratica-Idempotency-Key");
/// Longest encoded key kept readable in the `Message-ID`; longer ones are hashed.
const MAX_ID_LEFT: usize = 128;

/// The message, and the envelope recipients it goes to.
pub(super) struct Prepared {
    pub message: Message,
    pub message_id: String,
    pub recipients: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ConnectorError {
    ConnectorError::fatal("email.invalid_input", message)
}

fn invalid_address(message: impl Into<String>) -> ConnectorError {
    ConnectorError::fatal("email.invalid_address", message)
}

/// Builds the message for `input`, from `from`, for the call with idempotency key `key`.
pub(super) fn prepare(input: &Value, from: &Mailbox, key: &str) -> Result<Prepared, ConnectorError> {
    let Value::Object(fields) = input else {
        return Err(invalid(format!("`with` must be an object with `to`, `subject` and `body`, not {}", kind_of(input))));
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("`{unknown}` is not an email.send field (known: {})", FIELDS.join(", "))));
    }
    let to = mailboxes(fields, "to")?;
    if to.is_empty() {
        return Err(invalid_address("`to` names no recipient"));
    }
    let (cc, bcc, reply_to) = (mailboxes(fields, "cc")?, mailboxes(fields, "bcc")?, mailboxes(fields, "reply_to")?);
    let subject = one_line(text(fields, "subject")?.ok_or_else(|| invalid("`subject` is required"))?);
    let body = text(fields, "body")?.ok_or_else(|| invalid("`body` (the plain text) is required"))?;
    let html = text(fields, "html")?;

    let message_id = message_id(key);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(message_id.clone()))
        .user_agent(concat!("pratica/", env!("CARGO_PKG_VERSION")).to_string())
        .raw_header(HeaderValue::new(KEY_HEADER, key.to_string()));
    for mailbox in &to {
        builder = builder.to(mailbox.clone());
    }
    for mailbox in &cc {
        builder = builder.cc(mailbox.clone());
    }
    for mailbox in &bcc {
        builder = builder.bcc(mailbox.clone());
    }
    for mailbox in &reply_to {
        builder = builder.reply_to(mailbox.clone());
    }
    let built = match html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(body.to_string(), html.to_string())),
        None => builder.singlepart(SinglePart::plain(body.to_string())),
    };
    let message = built.map_err(|e| invalid(format!("cannot build the message: {e}")))?;
    let recipients = message.envelope().to().iter().map(ToString::to_string).collect();
    Ok(Prepared { message, message_id, recipients })
}

/// `<key@pratica>` with the key made a valid `id-left`: ASCII letters, digits, `-` and `_`
/// are kept, every other byte becomes `=XX` (so different keys give different ids); a key
/// longer than [`MAX_ID_LEFT`] once encoded is replaced by its SHA-256.
pub(super) fn message_id(key: &str) -> String {
    let mut left = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            left.push(char::from(byte));
        } else {
            left.push_str(&format!("={byte:02X}"));
        }
    }
    if left.is_empty() || left.len() > MAX_ID_LEFT {
        left = format!("sha256-{}", hex::encode(Sha256::digest(key.as_bytes())));
    }
    format!("<{left}@pratica>")
}

/// A string field, or `None` when absent or null.
fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ConnectorError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("`{name}` must be a string, not {}", kind_of(other)))),
    }
}

/// Line breaks (a template's trailing newline, say) would break the header: they become
/// single spaces, and the ends are trimmed.
fn one_line(subject: &str) -> String {
    if !subject.contains(['\r', '\n']) {
        return subject.trim().to_string();
    }
    subject.split(['\r', '\n']).map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}

/// An address field: one address (`a@b.it` or `Name <a@b.it>`), a list of them, or nothing.
fn mailboxes(fields: &Map<String, Value>, name: &str) -> Result<Vec<Mailbox>, ConnectorError> {
    let parse = |value: &Value| -> Result<Mailbox, ConnectorError> {
        let Value::String(text) = value else {
            return Err(invalid_address(format!("`{name}` must hold addresses as strings, not {}", kind_of(value))));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid_address(format!("`{name}` holds an empty address")));
        }
        text.parse::<Mailbox>().map_err(|e| invalid_address(format!("`{name}`: `{text}` is not a valid e-mail address ({e})")))
    };
    match fields.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(parse).collect(),
        Some(one) => Ok(vec![parse(one)?]),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from() -> Mailbox {
        "INPS <noreply@inps.example>".parse().expect("from")
    }

    fn code(result: Result<Prepared, ConnectorError>) -> String {
        match result {
            Err(ConnectorError::Fatal { code, .. }) => code,
            Err(other) => panic!("expected a fatal error, got {other:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn message_ids_are_valid_distinct_and_bounded() {
        assert_eq!(message_id("0190a-b:notify:1"), "<0190a-b=3Anotify=3A1@pratica>");
        assert_ne!(message_id("a:b"), message_id("a.b"));
        assert_eq!(message_id("è"), "<=C3=A8@pratica>");
        let long = message_id(&"x:".repeat(100));
        assert!(long.starts_with("<sha256-") && long.len() == "<sha256-@pratica>".len() + 64, "{long}");
        assert!(message_id("").starts_with("<sha256-"));
    }

    #[test]
    fn builds_headers_recipients_and_parts() {
        let input = json!({
            "to": ["Mario Rossi <mario@example.it>", "anna@example.it"],
            "cc": "uff@example.it",
            "subject": "Domanda accolta\n",
            "body": "Gentile cittadino, la sua domanda è stata accolta.",
            "html": "<p>accolta</p>",
            "reply_to": null,
        });
        let prepared = prepare(&input, &from(), "i-1:send:1").expect("prepared");
        assert_eq!(prepared.recipients, ["mario@example.it", "anna@example.it", "uff@example.it"]);
        assert_eq!(prepared.message_id, "<i-1=3Asend=3A1@pratica>");
        let text = String::from_utf8(prepared.message.formatted()).expect("ascii message");
        assert!(text.contains("Message-ID: <i-1=3Asend=3A1@pratica>\r\n"), "{text}");
        assert!(text.contains("X-Pratica-Idempotency-Key: i-1:send:1\r\n"), "{text}");
        assert!(text.contains("Subject: Domanda accolta\r\n"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        let plain = prepare(&json!({"to": "a@example.it", "subject": "s", "body": "è"}), &from(), "k").expect("plain");
        let text = String::from_utf8(plain.message.formatted()).expect("ascii message");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
    }

    #[test]
    fn refuses_bad_input_before_anything_is_sent() {
        let base = json!({"to": "a@example.it", "subject": "s", "body": "b"});
        let with = |k: &str, v: Value| {
            let mut input = base.clone();
            input[k] = v;
            input
        };
        assert_eq!(code(prepare(&with("to", json!("not an address")), &from(), "k")), "email.invalid_address");
        assert_eq!(code(prepare(&with("to", json!([])), &from(), "k")), "email.invalid_address");
        assert_eq!(code(prepare(&with("to", Value::Null), &from(), "k")), "email.invalid_address");
        assert_eq!(code(prepare(&with("cc", json!(["ok@example.it", "a@b@c"])), &from(), "k")), "email.invalid_address");
        assert_eq!(code(prepare(&with("to", json!("a@example.it\r\nBcc: x@evil.example")), &from(), "k")), "email.invalid_address");
        assert_eq!(code(prepare(&with("from", json!("x@example.it")), &from(), "k")), "email.invalid_input");
        assert_eq!(code(prepare(&with("body", json!(3)), &from(), "k")), "email.invalid_input");
        assert_eq!(code(prepare(&json!({"to": "a@example.it", "body": "b"}), &from(), "k")), "email.invalid_input");
        assert_eq!(code(prepare(&json!("text"), &from(), "k")), "email.invalid_input");
    }
}
