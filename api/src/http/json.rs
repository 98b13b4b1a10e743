//! [`Json`]: axum's JSON extractor and response, with rejections that are [`ApiError`]
//! problems naming the offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body (or response). A body that is not JSON is a 400 `malformed_json`; a
/// missing, unknown or mistyped field is a 422 `invalid_field` with the field's path; a body
/// over the router's limit is a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(from_bytes_rejection)?;
        decode(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn from_bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: super::MAX_BODY_BYTES }
    } else {
        ApiError::UnreadableBody { detail: rejection.body_text() }
    }
}

/// Deserialises `bytes`, keeping the path of the value that failed.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(from_serde)?;
    // Trailing characters after the value.
    deserializer.end().map_err(|e| ApiError::MalformedJson { detail: format!("the body is not valid JSON: {e}") })?;
    Ok(value)
}

fn from_serde(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson { detail: format!("the body is not valid JSON: {inner}") }
        }
        Category::Data => {
            let message = inner.to_string();
            // A missing field is reported at its parent's path (an unknown one at its own):
            // name the field.
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|prefix| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()));
            let field = match (named, path.as_str()) {
                (Some(name), ".") => name.to_string(),
                (Some(name), at) if at == name || at.ends_with(&format!(".{name}")) => at.to_string(),
                (Some(name), parent) => format!("{parent}.{name}"),
                (None, ".") => String::new(),
                (None, at) => at.to_string(),
            };
            if field.is_empty() {
                ApiError::InvalidField { field: None, detail: format!("the body has the wrong shape: {message}") }
            } else {
                let detail = if named.is_some() { message.clone() } else { format!("`{field}`: {message}") };
                ApiError::InvalidField { field: Some(field), detail }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        worker: String,
        #[serde(default)]
        max_tasks: Option<u32>,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    fn field_of(body: &str) -> (&'static str, Option<String>, String) {
        match decode::<Body>(body.as_bytes()) {
            Ok(b) => panic!("{body} should be refused, got {b:?}"),
            Err(e @ ApiError::InvalidField { .. }) => {
                let ApiError::InvalidField { field, detail } = &e else { unreachable!() };
                (e.code(), field.clone(), detail.clone())
            }
            Err(e) => (e.code(), None, e.to_string()),
        }
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_are_named() {
        assert_eq!(field_of(r#"{}"#).1.as_deref(), Some("worker"));
        assert_eq!(field_of(r#"{"worker": "w", "max_task": 1}"#).1.as_deref(), Some("max_task"));
        let (code, field, detail) = field_of(r#"{"worker": "w", "max_tasks": "ten"}"#);
        assert_eq!((code, field.as_deref()), ("invalid_field", Some("max_tasks")));
        assert!(detail.contains("max_tasks"), "{detail}");
        assert_eq!(field_of(r#"{"worker": "w", "nested": {}}"#).1.as_deref(), Some("nested.count"));
        assert_eq!(field_of(r#"{"worker": "w", "nested": {"count": -1}}"#).1.as_deref(), Some("nested.count"));
        assert_eq!(field_of(r#"[]"#).1, None);
    }

    #[test]
    fn syntax_errors_and_trailing_text_are_malformed_json() {
        assert_eq!(field_of(r#"{"worker": "#).0, "malformed_json");
        assert_eq!(field_of(r#"{"worker": "w"} x"#).0, "malformed_json");
        assert_eq!(field_of("").0, "malformed_json");
    }

    #[test]
    fn json_content_types() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            h
        };
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
