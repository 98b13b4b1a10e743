//! Redaction: secret values, and the common encodings of them, replaced by `***` in text
//! that may reach history, logs or error messages.
//!
//! For each secret (4 bytes or longer; shorter ones would blank out ordinary words) these
//! forms are found:
//!
//! - the value itself, in any ASCII letter case (`S3cret`, `s3cret`, `S3CRET`);
//! - its hexadecimal encoding, upper, lower or mixed case;
//! - URL percent-encoding, of any or all of its bytes, with upper or lower hex digits (and
//!   `+` for a space, as in forms);
//! - base64, standard or URL-safe, with or without padding, alone or inside a longer encoded
//!   text at any alignment — so `Authorization: Basic base64(user:secret)` is redacted too.
//!   Every run of base64 characters is decoded (from each of its four possible alignments)
//!   and replaced whole when what it decodes to contains a secret.
//!
//! Double encodings (base64 of hex, percent-encoded base64 …) are not searched.

/// Shorter values are not redacted.
pub const MIN_SECRET_LEN: usize = 4;

/// The replacement text.
pub const MASK: &str = "***";

/// Shortest base64 run worth decoding: the encoding of [`MIN_SECRET_LEN`] bytes.
const MIN_BASE64_RUN: usize = 6;

/// `text` with every secret of `secrets` (and its encodings) replaced by [`MASK`].
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let secrets: Vec<&[u8]> = secrets.into_iter().map(str::as_bytes).filter(|s| s.len() >= MIN_SECRET_LEN).collect();
    if secrets.is_empty() || text.len() < MIN_SECRET_LEN {
        return text.to_string();
    }
    let mut out = text.to_string();
    for secret in &secrets {
        out = replace_ignoring_case(&out, secret);
        out = replace_ignoring_case(&out, hex::encode(secret).as_bytes());
    }
    if out.contains('%') {
        out = redact_percent_encoded(&out, &secrets, false);
    }
    if out.contains('+') && secrets.iter().any(|s| s.contains(&b' ')) {
        out = redact_percent_encoded(&out, &secrets, true);
    }
    redact_base64(&out, &secrets)
}

/// Whether `haystack[at..]` starts with `needle`, ignoring ASCII case.
fn starts_with_ignoring_case(haystack: &[u8], at: usize, needle: &[u8]) -> bool {
    haystack.len() - at >= needle.len() && haystack[at..at + needle.len()].eq_ignore_ascii_case(needle)
}

/// Every occurrence of `needle` (ASCII case-insensitively) replaced by [`MASK`].
fn replace_ignoring_case(text: &str, needle: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if starts_with_ignoring_case(bytes, i, needle) {
            out.extend_from_slice(MASK.as_bytes());
            i += needle.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    into_text(out, text)
}

/// Back to a string; the cuts are at ASCII bytes or whole matches of valid UTF-8, so this
/// only falls back to `original` if something went very wrong.
fn into_text(bytes: Vec<u8>, original: &str) -> String {
    String::from_utf8(bytes).unwrap_or_else(|_| original.to_string())
}

/// Replaces byte ranges of `text` with [`MASK`] (ranges sorted by start, may overlap).
fn mask_ranges(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort_unstable();
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for (start, end) in ranges {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(MASK.as_bytes());
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    into_text(out, text)
}

/// Percent-encoded (and, with `plus_is_space`, form-encoded) secrets: the text is decoded
/// with a map back to the original positions, and the original span of each secret found is
/// masked.
fn redact_percent_encoded(text: &str, secrets: &[&[u8]], plus_is_space: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let (mut decoded, mut origin) = (Vec::with_capacity(bytes.len()), Vec::with_capacity(bytes.len() + 1));
    let mut i = 0;
    while i < bytes.len() {
        origin.push(i);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            decoded.push(h << 4 | l);
            i += 3;
        } else {
            decoded.push(if plus_is_space && bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    origin.push(bytes.len());
    let mut ranges = Vec::new();
    for secret in secrets {
        let mut at = 0;
        while at + secret.len() <= decoded.len() {
            if starts_with_ignoring_case(&decoded, at, secret) {
                ranges.push((origin[at], origin[at + secret.len()]));
                at += secret.len();
            } else {
                at += 1;
            }
        }
    }
    mask_ranges(text, ranges)
}

/// The 6-bit value of a base64 character of either alphabet.
fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decodes base64 leniently: both alphabets, no padding needed, trailing bits ignored.
fn base64_decode(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for value in run.iter().filter_map(|c| base64_value(*c)) {
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && (0..=haystack.len() - needle.len()).any(|at| starts_with_ignoring_case(haystack, at, needle))
}

/// Base64 runs that decode to something containing a secret, masked whole (with their
/// padding).
fn redact_base64(text: &str, secrets: &[&[u8]]) -> String {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if base64_value(bytes[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && base64_value(bytes[i]).is_some() {
            i += 1;
        }
        let end = i;
        while i < bytes.len() && bytes[i] == b'=' && i - end < 2 {
            i += 1;
        }
        let run = &bytes[start..end];
        if run.len() < MIN_BASE64_RUN {
            continue;
        }
        // Text before the encoded part (`xBasic`, `token`) shifts the alignment: decoding
        // from each of the four offsets finds the encoded part behind any prefix.
        let found = (0..4.min(run.len())).any(|offset| {
            let decoded = base64_decode(&run[offset..]);
            secrets.iter().any(|s| contains_ignoring_case(&decoded, s))
        });
        if found {
            ranges.push((start, i));
        }
    }
    mask_ranges(text, ranges)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;

    const SECRET: &str = "s3cr3t/Value+?ü";

    fn clean(text: &str) -> String {
        let out = redact(text, [SECRET]);
        assert!(!out.contains(SECRET), "{out}");
        out
    }

    #[test]
    fn the_value_in_any_case() {
        assert_eq!(clean(&format!("token {SECRET} refused")), "token *** refused");
        assert_eq!(clean(&format!("token {} refused", SECRET.to_ascii_uppercase())), "token *** refused");
        assert_eq!(clean("token S3CR3T/value+?ü refused"), "token *** refused");
        assert_eq!(redact("short abc", ["abc"]), "short abc", "values under 4 bytes are left alone");
        assert_eq!(redact("nothing here", [SECRET]), "nothing here");
    }

    #[test]
    fn hex_upper_lower_and_mixed() {
        let lower = hex::encode(SECRET);
        assert_eq!(clean(&format!("key={lower};")), "key=***;");
        assert_eq!(clean(&format!("key={};", lower.to_uppercase())), "key=***;");
        let mixed: String = lower.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
        assert_eq!(clean(&format!("key={mixed};")), "key=***;");
    }

    #[test]
    fn percent_encoded_fully_partly_and_in_forms() {
        let partly = "s3cr3t%2FValue%2B%3F%C3%BC"; // what URL query serializers produce
        assert_eq!(clean(&format!("GET /x?token={partly}&a=1")), "GET /x?token=***&a=1");
        let lower = "s3cr3t%2fValue%2b%3f%c3%bc";
        assert_eq!(clean(&format!("token={lower}")), "token=***");
        let all: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(clean(&format!("[{all}]")), "[***]");
        let spaced = redact("password=correct+horse%20battery", ["correct horse battery"]);
        assert_eq!(spaced, "password=***");
    }

    #[test]
    fn base64_standard_and_url_safe_with_and_without_padding() {
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(SECRET);
            assert_eq!(clean(&format!("got \"{encoded}\" back")), "got \"***\" back", "{encoded}");
            // Inside longer encoded data, at each alignment.
            for prefix in ["", "a", "ab", "abc", "{\"key\": \""] {
                let encoded = engine.encode(format!("{prefix}{SECRET}\"}}"));
                let out = clean(&format!("body: {encoded}."));
                assert_eq!(out, "body: ***.", "{prefix}: {encoded}");
            }
        }
        // Text glued in front of the encoding does not hide it.
        let glued = format!("xyz{}", STANDARD.encode(SECRET));
        assert_eq!(clean(&glued), "***");
    }

    #[test]
    fn basic_authorization_headers() {
        for user in ["u", "pratica", "mario.rossi@inps.it"] {
            let header = format!("Basic {}", STANDARD.encode(format!("{user}:{SECRET}")));
            assert_eq!(clean(&format!("sent {{authorization: {header}}}")), "sent {authorization: Basic ***}", "{user}");
        }
        let out = redact("Authorization: Basic dTpiYXNpYy1zZWNyZXQtMQ==", ["basic-secret-1"]);
        assert_eq!(out, "Authorization: Basic ***");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "GET https://api.example.it/v1/persons answered 404: no such person (RSSMRA80A01H501U)";
        assert_eq!(redact(text, [SECRET, "another-secret"]), text);
        assert_eq!(redact("100% sure, 50%% off", [SECRET]), "100% sure, 50%% off");
    }
}
