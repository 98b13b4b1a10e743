//! Query-string parameters with a closed set of values (`?status=` of the instance and task
//! lists): a value outside the set is refused with `400 invalid_parameter`, naming the
//! parameter and the values it accepts, instead of silently matching nothing.
//!
//! ```json
//! {"type": "urn:pratica:problem:invalid_parameter", "title": "Invalid parameter", "status": 400,
//!  "code": "invalid_parameter", "parameter": "status", "allowed": ["open", "claimed", "completed", "cancelled"],
//!  "detail": "`status` must be one of open, claimed, completed, cancelled; got `bogus`"}
//! ```

use axum::http::StatusCode;
use serde_json::json;

use super::error::ApiError;

/// `value` if it is one of `allowed` (absent stays absent), else `400 invalid_parameter`.
pub fn one_of(parameter: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            // Quoted with escapes: the value is the client's text.
            let shown: String = v.chars().take(100).collect();
            let detail = format!("`{parameter}` must be one of {}; got {shown:?}", allowed.join(", "));
            Err(ApiError::problem(StatusCode::BAD_REQUEST, "invalid_parameter", "Invalid parameter", detail)
                .with("parameter", json!(parameter))
                .with("allowed", json!(allowed)))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_name_the_parameter_and_the_allowed_values() {
        assert_eq!(one_of("status", None, &["a", "b"]).unwrap(), None);
        assert_eq!(one_of("status", Some("b".into()), &["a", "b"]).unwrap().as_deref(), Some("b"));
        let e = one_of("status", Some("bogus\n".into()), &["a", "b"]).unwrap_err();
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "invalid_parameter"));
        assert!(e.to_string().contains("one of a, b") && e.to_string().contains("\"bogus\\n\""), "{e}");
    }
}
