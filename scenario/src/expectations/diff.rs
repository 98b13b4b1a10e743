//! Comparing what a scenario expected with what happened, and showing the difference line by
//! line (`-` expected, `+` actual) the way test runners do.
//!
//! Numbers are compared by value: `900` and `900.0` are equal (jq computes `0.75 * 1200` as
//! `900.0`), and values are printed with whole floats as integers so the text diff agrees
//! with the comparison.

use serde_json::{Map, Value};

/// One line of a difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    /// In both.
    Same(String),
    /// Only in the expectation.
    Expected(String),
    /// Only in what happened.
    Actual(String),
    /// This many unchanged lines were left out.
    Skipped(usize),
}

/// Unchanged lines shown around each change.
pub const CONTEXT: usize = 3;

/// Whether two JSON values are equal, numbers compared by value.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w))),
        _ => a == b,
    }
}

fn numbers_equal(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

/// Whether `actual` contains `expected`: every field of an expected mapping is in the actual
/// one with an including value (other fields are ignored); lists have the same length and
/// include element by element; anything else is equal.
pub fn json_includes(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|w| json_includes(v, w))),
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(x, y)| json_includes(x, y)),
        _ => json_equal(expected, actual),
    }
}

/// `actual` cut down to the fields `expected` names, so that the diff of an `…_includes`
/// expectation shows only what was asked about. Missing fields stay missing.
pub fn project(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            Value::Object(e.iter().filter_map(|(k, v)| a.get(k).map(|w| (k.clone(), project(v, w)))).collect::<Map<_, _>>())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => Value::Array(e.iter().zip(a).map(|(x, y)| project(x, y)).collect()),
        _ => actual.clone(),
    }
}

/// The value with whole floats written as integers (`900.0` → `900`).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 9.0e15 { Value::from(f as i64) } else { v.clone() }
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

/// Pretty JSON of the normalized value.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(&normalize(v)).unwrap_or_else(|_| v.to_string())
}

/// The line-by-line difference of two values printed as pretty JSON.
pub fn diff_json(expected: &Value, actual: &Value) -> Vec<DiffLine> {
    diff_text(&pretty(expected), &pretty(actual))
}

/// The line-by-line difference of two texts, with [`CONTEXT`] unchanged lines around
/// each change.
pub fn diff_text(expected: &str, actual: &str) -> Vec<DiffLine> {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    trim_context(diff_lines(&e, &a), CONTEXT)
}

/// The full line-by-line difference (longest common subsequence).
pub fn diff_lines(expected: &[&str], actual: &[&str]) -> Vec<DiffLine> {
    let (n, m) = (expected.len(), actual.len());
    // Beyond this the table would be too big for a test report: show both sides whole.
    if n.saturating_mul(m) > 4_000_000 {
        return expected
            .iter()
            .map(|l| DiffLine::Expected(l.to_string()))
            .chain(actual.iter().map(|l| DiffLine::Actual(l.to_string())))
            .collect();
    }
    // lcs[i][j]: length of the longest common subsequence of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(DiffLine::Same(expected[i].to_string()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push(DiffLine::Actual(actual[j].to_string()));
            j += 1;
        } else {
            out.push(DiffLine::Expected(expected[i].to_string()));
            i += 1;
        }
    }
    out
}

/// Keeps `context` unchanged lines before and after each change; longer unchanged runs
/// become one [`DiffLine::Skipped`].
pub fn trim_context(lines: Vec<DiffLine>, context: usize) -> Vec<DiffLine> {
    let changed: Vec<bool> = lines.iter().map(|l| !matches!(l, DiffLine::Same(_))).collect();
    let near = |i: usize| {
        let lo = i.saturating_sub(context);
        let hi = (i + context).min(lines.len().saturating_sub(1));
        (lo..=hi).any(|k| changed[k])
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in lines.iter().enumerate() {
        if changed[i] || near(i) {
            if skipped > 0 {
                out.push(DiffLine::Skipped(skipped));
                skipped = 0;
            }
            out.push(line.clone());
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        out.push(DiffLine::Skipped(skipped));
    }
    out
}

/// The diff as text: `  ` unchanged, `- ` expected, `+ ` actual, `  ...` left out.
pub fn render(lines: &[DiffLine]) -> String {
    let mut out = String::new();
    for l in lines {
        match l {
            DiffLine::Same(t) => out.push_str(&format!("  {t}\n")),
            DiffLine::Expected(t) => out.push_str(&format!("- {t}\n")),
            DiffLine::Actual(t) => out.push_str(&format!("+ {t}\n")),
            DiffLine::Skipped(n) => out.push_str(&format!("  ... ({n} unchanged line{})\n", if *n == 1 { "" } else { "s" })),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!({"a": 900}), &json!({"a": 900.0})));
        assert!(!json_equal(&json!({"a": 900}), &json!({"a": 900.01})));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert_eq!(pretty(&json!(900.0)), "900");
        assert_eq!(pretty(&json!(1259.56)), "1259.56");
    }

    #[test]
    fn includes_is_a_subset_match_and_projection_keeps_only_named_fields() {
        let actual = json!({"outcome": "accepted", "monthly_amount": 1259.56, "payout": {"status": "paid", "amount": 1259.56}});
        assert!(json_includes(&json!({"payout": {"status": "paid"}}), &actual));
        assert!(!json_includes(&json!({"payout": {"status": "refused"}}), &actual));
        assert!(!json_includes(&json!({"missing": null}), &actual));
        assert!(json_includes(&json!([{"a": 1}]), &json!([{"a": 1, "b": 2}])));
        assert!(!json_includes(&json!([{"a": 1}]), &json!([{"a": 1}, {"a": 2}])));
        assert_eq!(project(&json!({"payout": {"status": "x"}}), &actual), json!({"payout": {"status": "paid"}}));
    }

    #[test]
    fn diff_marks_expected_and_actual_lines() {
        let d = diff_json(
            &json!({"outcome": "accepted", "monthly_amount": 1259.57}),
            &json!({"outcome": "accepted", "monthly_amount": 1259.56}),
        );
        assert_eq!(
            d,
            vec![
                DiffLine::Same("{".into()),
                DiffLine::Same("  \"outcome\": \"accepted\",".into()),
                DiffLine::Expected("  \"monthly_amount\": 1259.57".into()),
                DiffLine::Actual("  \"monthly_amount\": 1259.56".into()),
                DiffLine::Same("}".into()),
            ]
        );
        let text = render(&d);
        assert!(text.contains("-   \"monthly_amount\": 1259.57\n+   \"monthly_amount\": 1259.56\n"), "{text}");
    }

    #[test]
    fn diff_of_paths_shows_missing_and_extra_steps() {
        let d = diff_lines(&["received", "route", "review", "paid"], &["received", "route", "rejection", "paid"]);
        assert_eq!(
            d,
            vec![
                DiffLine::Same("received".into()),
                DiffLine::Same("route".into()),
                DiffLine::Expected("review".into()),
                DiffLine::Actual("rejection".into()),
                DiffLine::Same("paid".into()),
            ]
        );
    }

    #[test]
    fn long_unchanged_runs_are_skipped() {
        let e: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        let mut a = e.clone();
        a[10] = "changed".into();
        let d = diff_text(&e.join("\n"), &a.join("\n"));
        assert_eq!(d[0], DiffLine::Skipped(7));
        assert!(d.contains(&DiffLine::Expected("line 10".into())) && d.contains(&DiffLine::Actual("changed".into())));
        assert_eq!(d.last(), Some(&DiffLine::Skipped(6)));
    }
}
