//! What can be seen, at load time, never to terminate: refused with a position before a
//! case runs, so the budget is the second line of defence, not the first.

/// The first construct of jq `source` that never terminates, with its byte offset:
/// `until(false; …)`, `while(true; …)`, `repeat(…)` not bounded by `limit`/`first`/`nth`,
/// `recurse(.)`, and a definition whose body begins with a call of itself (`def f: f;`,
/// `def f: 1 + f;` is not caught — the budget stops it).
pub fn never_terminates(source: &str) -> Option<(String, usize)> {
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    // Offsets are reported in `source`; map a compact offset back.
    let offset_in_source = |compact_at: usize| {
        let mut seen = 0;
        for (i, c) in source.char_indices() {
            if !c.is_whitespace() {
                if seen == compact_at {
                    return i;
                }
                seen += c.len_utf8();
            }
        }
        source.len()
    };
    for (pattern, why) in [
        ("until(false;", "`until(false; …)` never stops"),
        ("until(null;", "`until(null; …)` never stops"),
        ("while(true;", "`while(true; …)` never stops"),
        ("recurse(.)", "`recurse(.)` yields its input forever"),
        ("repeat(.)", "`repeat(.)` yields its input forever; bound it with limit(n; …)"),
    ] {
        if let Some(at) = find_call(&compact, pattern)
            && !(pattern.starts_with("repeat") && bounded(&compact[..at]))
        {
            return Some((why.to_string(), offset_in_source(at)));
        }
    }
    let mut rest = 0;
    while let Some(found) = compact[rest..].find("def") {
        let at = rest + found;
        rest = at + 3;
        let after = &compact[at + 3..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() || !after[name_len..].starts_with(':') {
            continue;
        }
        let body = &after[name_len + 1..];
        let calls_itself_first = body.starts_with(name)
            && body[name.len()..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '('));
        if calls_itself_first {
            return Some((format!("`def {name}: {name} …` calls itself before doing anything: it never stops"), offset_in_source(at)));
        }
    }
    None
}

/// Where `pattern` occurs in `compact` as a call (not as the tail of a longer name).
fn find_call(compact: &str, pattern: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = compact[from..].find(pattern) {
        let at = from + found;
        let before = compact[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')) {
            return Some(at);
        }
        from = at + pattern.len();
    }
    None
}

/// Whether the text before a generator opens a bounding call (`limit(n;`, `first(`, `nth(n;`).
fn bounded(before: &str) -> bool {
    ["limit(", "first(", "nth(", "isempty("].iter().any(|b| before.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_never_terminates_with_its_position() {
        assert_eq!(never_terminates("def f: f; f").map(|(_, at)| at), Some(0));
        assert_eq!(never_terminates(".a | until( false ; .)").map(|(_, at)| at), Some(5));
        assert!(never_terminates("while(true; . + 1)").is_some());
        assert!(never_terminates("[repeat(.)]").is_some());
        assert!(never_terminates("[limit(3; repeat(.))]").is_none());
        assert!(never_terminates("def fact: if . <= 1 then 1 else . * (. - 1 | fact) end; 5 | fact").is_none());
        assert!(never_terminates("def f(x): x; f(.)").is_none());
        assert!(never_terminates(".until(false; 1)").is_none() || never_terminates(".x").is_none());
    }
}
