//! From a step's `with` (and the called operation) to the request to send. See the
//! contract in the parent module's documentation.

use reqwest::header::{ACCEPT, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING};
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use super::super::{ConnectorError, Invocation};

const FIELDS: [&str; 7] = ["url", "method", "query", "headers", "json", "body", "form"];
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// What the call returns: the whole response, or (operation form) just its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Envelope,
    Body,
}

#[derive(Debug, Clone)]
pub(super) struct Payload {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Payload>,
    pub shape: Shape,
}

fn invalid(message: impl Into<String>) -> ConnectorError {
    ConnectorError::fatal("http.invalid_input", message)
}

fn is_method(m: &str) -> bool {
    METHODS.iter().any(|known| known.eq_ignore_ascii_case(m))
}

/// Whether `with` describes a request itself (a string `url`, or an HTTP-method `method`)
/// rather than being the JSON body of an operation.
fn is_request_form(input: &Value) -> bool {
    input
        .as_object()
        .is_some_and(|m| m.get("url").is_some_and(Value::is_string) || m.get("method").and_then(Value::as_str).is_some_and(is_method))
}

pub(super) fn plan(call: &Invocation, base: Option<&Url>) -> Result<Planned, ConnectorError> {
    if let Some(operation) = &call.operation
        && !is_request_form(&call.input)
    {
        let body = match &call.input {
            Value::Null => None,
            other => Some(json_payload(other)?),
        };
        let url = join(base, operation)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        return Ok(Planned { method: Method::POST, url, headers, body, shape: Shape::Body });
    }
    let Value::Object(fields) = &call.input else {
        return Err(invalid("`with` must be an object with at least a `url`"));
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("unknown field `{unknown}` in `with`; expected {}", FIELDS.join(", "))));
    }
    let field = |name: &str| fields.get(name).filter(|v| !v.is_null());
    let mut url = match (field("url"), &call.operation) {
        (Some(Value::String(u)), _) => resolve(base, u)?,
        (Some(_), _) => return Err(invalid("`url` must be a string")),
        (None, Some(operation)) => join(base, operation)?,
        (None, None) => return Err(invalid("`url` is required")),
    };
    if ["json", "body", "form"].iter().filter(|f| field(f).is_some()).count() > 1 {
        return Err(invalid("give at most one of `json`, `body` and `form`"));
    }
    let body = match (field("json"), field("body"), field("form")) {
        (Some(v), _, _) | (None, Some(v @ (Value::Object(_) | Value::Array(_) | Value::Number(_) | Value::Bool(_))), _) => {
            Some(json_payload(v)?)
        }
        (None, Some(Value::String(text)), _) => {
            Some(Payload { bytes: text.clone().into_bytes(), content_type: "text/plain; charset=utf-8" })
        }
        (None, None, Some(Value::Object(form))) => {
            Some(Payload { bytes: form_encode(&pairs(form, "form")?).into_bytes(), content_type: "application/x-www-form-urlencoded" })
        }
        (None, None, Some(_)) => return Err(invalid("`form` must be an object")),
        _ => None,
    };
    let method = match field("method") {
        Some(Value::String(m)) if is_method(m) => {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|e| invalid(e.to_string()))?
        }
        Some(other) => return Err(invalid(format!("unsupported `method` {other}; use one of {}", METHODS.join(", ")))),
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    match field("query") {
        Some(Value::Object(query)) => {
            let pairs = pairs(query, "query")?;
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
        }
        Some(_) => return Err(invalid("`query` must be an object")),
        None => {}
    }
    let headers = match field("headers") {
        Some(Value::Object(h)) => headers(h)?,
        Some(_) => return Err(invalid("`headers` must be an object")),
        None => HeaderMap::new(),
    };
    Ok(Planned { method, url, headers, body, shape: Shape::Envelope })
}

fn json_payload(value: &Value) -> Result<Payload, ConnectorError> {
    let bytes = serde_json::to_vec(value).map_err(|e| invalid(format!("the body cannot be written as JSON: {e}")))?;
    Ok(Payload { bytes, content_type: "application/json" })
}

/// An absolute http(s) URL as it is; anything else relative to the base URL.
fn resolve(base: Option<&Url>, url: &str) -> Result<Url, ConnectorError> {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Url::parse(url.trim()).map_err(|e| invalid(format!("invalid `url` `{url}`: {e}")))
    } else if lower.contains("://") {
        Err(invalid(format!("only http and https URLs are supported, not `{url}`")))
    } else {
        join(base, url)
    }
}

/// `{base_url}/{path}`, with exactly one slash between them.
pub(super) fn join(base: Option<&Url>, path: &str) -> Result<Url, ConnectorError> {
    let Some(base) = base else {
        return Err(invalid(format!("`{path}` is not an absolute URL, and this connector has no base_url")));
    };
    let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), path.trim_start_matches('/'));
    Url::parse(&joined).map_err(|e| invalid(format!("invalid URL `{joined}`: {e}")))
}

/// Name/value pairs from an object of scalars (arrays repeat the name; null is left out).
fn pairs(object: &Map<String, Value>, what: &str) -> Result<Vec<(String, String)>, ConnectorError> {
    let mut out = Vec::new();
    for (name, value) in object {
        let values = match value {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        for v in values {
            match scalar(v) {
                Some(text) => out.push((name.clone(), text)),
                None if v.is_null() => {}
                None => return Err(invalid(format!("`{what}.{name}` must be a string, number, boolean or a list of them"))),
            }
        }
    }
    Ok(out)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded`, by the same serializer URLs use for queries.
pub(super) fn form_encode(pairs: &[(impl AsRef<str>, impl AsRef<str>)]) -> String {
    match Url::parse("http://form.invalid/") {
        Ok(mut scratch) => {
            scratch.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
            scratch.query().unwrap_or_default().to_string()
        }
        Err(_) => String::new(),
    }
}

fn headers(object: &Map<String, Value>) -> Result<HeaderMap, ConnectorError> {
    let mut map = HeaderMap::new();
    for (name, value) in object {
        let Some(text) = scalar(value) else {
            if value.is_null() {
                continue;
            }
            return Err(invalid(format!("header `{name}` must be a string, number or boolean")));
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(format!("`{name}` is not a valid header name")))?;
        if header == CONTENT_LENGTH || header == TRANSFER_ENCODING {
            return Err(invalid(format!("`{name}` is set by the connector")));
        }
        let value = HeaderValue::from_str(&text).map_err(|_| invalid(format!("the value of header `{name}` is not valid")))?;
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(operation: Option<&str>, input: Value) -> Invocation {
        Invocation {
            connector: "c".into(),
            operation: operation.map(String::from),
            input,
            idempotency_key: "i:s:1".into(),
            attempt: 1,
            deadline: None,
            instance_id: "i".into(),
            step_id: "s".into(),
            secrets: Default::default(),
            clock: Default::default(),
        }
    }

    fn base() -> Url {
        Url::parse("http://api.example.it/v1/").expect("base")
    }

    #[test]
    fn operation_form_posts_with_as_json() {
        let p = plan(&call(Some("contributions"), json!({"fiscal_code": "X", "method": "sepa"})), Some(&base())).expect("plan");
        assert_eq!((p.method, p.url.as_str(), p.shape), (Method::POST, "http://api.example.it/v1/contributions", Shape::Body));
        assert_eq!(p.body.expect("body").bytes, br#"{"fiscal_code":"X","method":"sepa"}"#);
        let err = plan(&call(Some("x"), json!({})), None).expect_err("needs a base");
        assert!(matches!(err, ConnectorError::Fatal { ref code, .. } if code == "http.invalid_input"), "{err:?}");
    }

    #[test]
    fn request_form_on_an_instance_uses_the_operation_path() {
        let p =
            plan(&call(Some("persons"), json!({"method": "get", "query": {"q": ["a b", 2], "skip": null}})), Some(&base())).expect("plan");
        assert_eq!((p.method, p.url.as_str(), p.shape), (Method::GET, "http://api.example.it/v1/persons?q=a+b&q=2", Shape::Envelope));
    }

    #[test]
    fn request_form_defaults_and_bodies() {
        let p = plan(&call(None, json!({"url": "/cases/1", "form": {"a": "x&y", "n": 1}})), Some(&base())).expect("plan");
        assert_eq!((p.method, p.url.as_str()), (Method::POST, "http://api.example.it/v1/cases/1"));
        let body = p.body.expect("form");
        assert_eq!((body.bytes.as_slice(), body.content_type), (&b"a=x%26y&n=1"[..], "application/x-www-form-urlencoded"));
        let p = plan(&call(None, json!({"url": "https://other.example/x", "body": "<a/>", "method": "PUT"})), Some(&base())).expect("plan");
        assert_eq!(
            (p.method, p.url.as_str(), p.body.expect("text").content_type),
            (Method::PUT, "https://other.example/x", "text/plain; charset=utf-8")
        );
        let p = plan(&call(None, json!({"url": "http://h/"})), None).expect("plan");
        assert_eq!((p.method, p.body.is_none()), (Method::GET, true));
    }

    #[test]
    fn rejects_bad_input() {
        for input in [
            json!("http://h/"),
            json!({}),
            json!({"url": "http://h/", "json": {}, "form": {}}),
            json!({"url": "http://h/", "method": "BREW"}),
            json!({"url": "ftp://h/"}),
            json!({"url": "http://h/", "header": {}}),
            json!({"url": "http://h/", "headers": {"Content-Length": "3"}}),
            json!({"url": "http://h/", "headers": {"bad name": "x"}}),
            json!({"url": "http://h/", "query": {"nested": {"a": 1}}}),
            json!({"url": "relative/path"}),
        ] {
            let err = plan(&call(None, input.clone()), None).expect_err("invalid");
            assert!(matches!(err, ConnectorError::Fatal { ref code, .. } if code == "http.invalid_input"), "{input}: {err:?}");
        }
    }
}
