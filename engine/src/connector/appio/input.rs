//! Checks of a step's `with` for the App IO operations, made before any request. See the
//! contract in the parent module's documentation.

use serde_json::{Map, Value, json};

use super::super::ConnectorError;

/// App IO's limits on a message, in UTF-16 code units (what its validators count).
pub(super) const SUBJECT_CHARS: (usize, usize) = (10, 120);
pub(super) const MARKDOWN_CHARS: (usize, usize) = (80, 10_000);
const MAX_AMOUNT_CENTS: u64 = 9_999_999_999;

fn invalid(message: impl Into<String>) -> ConnectorError {
    ConnectorError::fatal("appio.invalid_input", message)
}

fn invalid_message(message: impl Into<String>) -> ConnectorError {
    ConnectorError::fatal("appio.invalid_message", message)
}

/// `with` as an object with only `allowed` fields.
pub(super) fn fields<'a>(input: &'a Value, operation: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>, ConnectorError> {
    let Value::Object(fields) = input else {
        return Err(invalid(format!("appio.{operation} needs `with` as an object with {}", allowed.join(", "))));
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!("`{unknown}` is not an appio.{operation} field (known: {})", allowed.join(", "))));
    }
    Ok(fields)
}

/// The fiscal code, trimmed and upper-cased, in App IO's format (16 characters, letters and
/// digits in their places, digits possibly replaced by letters after a homocode fix). The
/// check character is not verified: App IO does not either, and its test code has a wrong one.
pub(super) fn fiscal_code(fields: &Map<String, Value>) -> Result<String, ConnectorError> {
    let Some(Value::String(text)) = fields.get("fiscal_code") else {
        return Err(invalid("`fiscal_code` is required and must be a string"));
    };
    let code = text.trim().to_ascii_uppercase();
    let digit = |c: u8| c.is_ascii_digit() || b"LMNPQRSTUV".contains(&c);
    let letter = |c: u8| c.is_ascii_uppercase();
    let b = code.as_bytes();
    let valid = b.len() == 16
        && b[..6].iter().all(|&c| letter(c))
        && b[6..8].iter().all(|&c| digit(c))
        && b"ABCDEHLMPRST".contains(&b[8])
        && b[9..11].iter().all(|&c| digit(c))
        && letter(b[11])
        && b[12..15].iter().all(|&c| digit(c))
        && letter(b[15]);
    if !valid {
        return Err(invalid(format!("`fiscal_code` `{text}` is not an Italian fiscal code (16 characters, like RSSMRA80A01H501U)")));
    }
    Ok(code)
}

/// The id App IO gave a message (a ULID): letters, digits, `-` and `_` only, since it goes
/// into the URL path.
pub(super) fn message_id(fields: &Map<String, Value>) -> Result<String, ConnectorError> {
    match fields.get("message_id") {
        Some(Value::String(id))
            if (1..=64).contains(&id.len()) && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') =>
        {
            Ok(id.clone())
        }
        Some(Value::String(id)) => Err(invalid(format!("`message_id` `{id}` is not an App IO message id"))),
        _ => Err(invalid("`message_id` is required (the `id` that appio.send returned)")),
    }
}

/// The `content` of a new message: subject and markdown within App IO's limits, and the
/// optional due date and payment data.
pub(super) fn content(fields: &Map<String, Value>) -> Result<Value, ConnectorError> {
    let subject = sized_text(fields, "subject", SUBJECT_CHARS)?;
    let markdown = sized_text(fields, "markdown", MARKDOWN_CHARS)?;
    let mut content = json!({ "subject": subject, "markdown": markdown });
    match fields.get("due_date") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => content["due_date"] = Value::String(due_date(text)?),
        Some(_) => return Err(invalid_message("`due_date` must be a date (YYYY-MM-DD) or an RFC 3339 date-time")),
    }
    match fields.get("payment") {
        None | Some(Value::Null) => {}
        Some(payment) => content["payment_data"] = payment_data(payment)?,
    }
    Ok(content)
}

fn sized_text(fields: &Map<String, Value>, name: &str, (min, max): (usize, usize)) -> Result<String, ConnectorError> {
    let Some(Value::String(text)) = fields.get(name) else {
        return Err(invalid_message(format!("`{name}` is required and must be a string of {min} to {max} characters")));
    };
    let length = text.encode_utf16().count();
    if !(min..=max).contains(&length) {
        return Err(invalid_message(format!("`{name}` has {length} characters; App IO accepts {min} to {max}")));
    }
    Ok(text.clone())
}

/// An RFC 3339 date-time, in UTC with milliseconds; a plain date is midnight UTC of that day
/// (as in App IO's own examples).
fn due_date(text: &str) -> Result<String, ConnectorError> {
    let text = text.trim();
    if let Ok(when) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(when.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(format!("{}T00:00:00.000Z", day.format("%Y-%m-%d")));
    }
    Err(invalid_message(format!("`due_date` `{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 date-time")))
}

/// `payment: {amount, notice_number, invalid_after_due_date?, payee?: {fiscal_code}}`,
/// checked and sent as App IO's `payment_data`.
fn payment_data(payment: &Value) -> Result<Value, ConnectorError> {
    const FIELDS: [&str; 4] = ["amount", "notice_number", "invalid_after_due_date", "payee"];
    let Value::Object(p) = payment else {
        return Err(invalid_message("`payment` must be an object with `amount` (euro cents) and `notice_number`"));
    };
    if let Some(unknown) = p.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid_message(format!("`payment.{unknown}` is not known (known: {})", FIELDS.join(", "))));
    }
    let amount = p
        .get("amount")
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)))
        .filter(|a| (1..=MAX_AMOUNT_CENTS).contains(a))
        .ok_or_else(|| invalid_message(format!("`payment.amount` must be a whole number of euro cents from 1 to {MAX_AMOUNT_CENTS}")))?;
    let notice = p.get("notice_number").and_then(Value::as_str).unwrap_or_default();
    let notice_ok = notice.len() == 18 && notice.bytes().all(|c| c.is_ascii_digit()) && matches!(notice.as_bytes()[0], b'0'..=b'3');
    if !notice_ok {
        return Err(invalid_message("`payment.notice_number` must be a pagoPA notice number: 18 digits, the first 0 to 3"));
    }
    let mut data = json!({ "amount": amount, "notice_number": notice });
    match p.get("invalid_after_due_date") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => data["invalid_after_due_date"] = Value::Bool(*b),
        Some(_) => return Err(invalid_message("`payment.invalid_after_due_date` must be true or false")),
    }
    match p.get("payee") {
        None | Some(Value::Null) => {}
        Some(payee) => {
            let code = payee.get("fiscal_code").and_then(Value::as_str).unwrap_or_default();
            if payee.as_object().is_none_or(|o| o.len() != 1) || code.len() != 11 || !code.bytes().all(|c| c.is_ascii_digit()) {
                return Err(invalid_message("`payment.payee` must be `{fiscal_code}` with the organisation's 11-digit fiscal code"));
            }
            data["payee"] = json!({ "fiscal_code": code });
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn code_of(e: ConnectorError) -> String {
        match e {
            ConnectorError::Fatal { code, .. } => code,
            other => panic!("expected fatal, got {other:?}"),
        }
    }

    #[test]
    fn fiscal_codes_in_app_io_format() {
        for good in ["RSSMRA80A01H501U", " rssmra80a01h501u ", "AAAAAA00A00A000A", "RSSMRA80A01H50MU"] {
            assert!(fiscal_code(&map(json!({ "fiscal_code": good }))).is_ok(), "{good}");
        }
        for bad in ["RSSMRA80A01H501", "RSSMRA80Z01H501U", "12345678901", "RSSMRA80A01H501U/../x"] {
            assert_eq!(code_of(fiscal_code(&map(json!({ "fiscal_code": bad }))).unwrap_err()), "appio.invalid_input", "{bad}");
        }
        assert!(fiscal_code(&map(json!({}))).is_err());
    }

    #[test]
    fn limits_are_counted_in_utf16_units() {
        let md = "m".repeat(80);
        assert!(content(&map(json!({"subject": "è".repeat(10), "markdown": md}))).is_ok());
        assert!(content(&map(json!({"subject": "x".repeat(121), "markdown": md}))).is_err());
        let emoji = "😀".repeat(61); // 122 units
        let e = content(&map(json!({"subject": emoji, "markdown": md}))).unwrap_err();
        assert!(e.to_string().contains("`subject` has 122 characters; App IO accepts 10 to 120"), "{e}");
        let e = content(&map(json!({"subject": "x".repeat(10), "markdown": "short"}))).unwrap_err();
        assert!(e.to_string().contains("`markdown` has 5 characters"), "{e}");
    }

    #[test]
    fn due_dates_and_payments() {
        let base = json!({"subject": "x".repeat(10), "markdown": "m".repeat(80)});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            content(&map(b))
        };
        assert_eq!(with("due_date", json!("2025-06-07")).unwrap()["due_date"], "2025-06-07T00:00:00.000Z");
        assert_eq!(with("due_date", json!("2025-06-07T10:00:00+02:00")).unwrap()["due_date"], "2025-06-07T08:00:00.000Z");
        assert!(with("due_date", json!("07/06/2025")).is_err());
        let paid =
            with("payment", json!({"amount": 150000.0, "notice_number": "012345678901234567", "payee": {"fiscal_code": "80078750587"}}))
                .unwrap();
        assert_eq!(
            paid["payment_data"],
            json!({"amount": 150000, "notice_number": "012345678901234567", "payee": {"fiscal_code": "80078750587"}})
        );
        assert!(with("payment", json!({"amount": 0, "notice_number": "012345678901234567"})).is_err());
        assert!(with("payment", json!({"amount": 10, "notice_number": "912345678901234567"})).is_err());
        assert!(with("payment", json!({"amount": 10.5, "notice_number": "012345678901234567"})).is_err());
    }
}
