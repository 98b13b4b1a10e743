//! The console's languages: Italian (the default for INPS offices) and English.
//!
//! A request's language is, in order: the `?lang=` query parameter (which the console also
//! remembers in a `lang` cookie), the `lang` cookie, the first supported language of
//! `Accept-Language`, else Italian. Every page links to the other language.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// A console language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    /// `it` or `en` (anything else: `None`).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The text for this language.
    pub fn pick<'a>(self, it: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::It => it,
            Lang::En => en,
        }
    }

    /// The other language (for the switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::It => Lang::En,
            Lang::En => Lang::It,
        }
    }

    /// The language's own name, for the switch link.
    pub fn name(self) -> &'static str {
        match self {
            Lang::It => "Italiano",
            Lang::En => "English",
        }
    }

    /// The language of a request: `?lang=`, then the `lang` cookie, then `Accept-Language`.
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query_param(query, "lang")
            .and_then(|v| Lang::parse(&v))
            .or_else(|| super::session::cookie(headers, "lang").and_then(|v| Lang::parse(&v)))
            .or_else(|| headers.get("accept-language").and_then(|v| v.to_str().ok()).and_then(from_accept_language))
            .unwrap_or_default()
    }
}

/// The supported language with the highest weight in an `Accept-Language` header.
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::parse(primary) else { continue };
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    form_urlencoded_pairs(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Decodes `application/x-www-form-urlencoded` text into pairs (`+` is a space).
pub fn form_urlencoded_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of_request(parts.uri.query(), &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_weights_and_query_decoding() {
        assert_eq!(from_accept_language("en-GB,en;q=0.9,it;q=0.8"), Some(Lang::En));
        assert_eq!(from_accept_language("fr, it;q=0.5, en;q=0.4"), Some(Lang::It));
        assert_eq!(from_accept_language("de, fr"), None);
        assert_eq!(from_accept_language("en;q=0, it;q=0.1"), Some(Lang::It));
        assert_eq!(query_param(Some("q=RSS%20MRA&lang=en"), "q").as_deref(), Some("RSS MRA"));
        assert_eq!(query_param(Some("a=1+2%"), "a").as_deref(), Some("1 2%"));
        assert_eq!(encode("/console/tasks/a b"), "/console/tasks/a%20b");
    }
}
