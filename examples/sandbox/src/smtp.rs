//! A minimal SMTP sink (RFC 5321 subset, no TLS, no authentication): accepts every message
//! and keeps it for the `/sandbox/mail` page. For the sandbox only.

use std::net::SocketAddr;

use base64::Engine as _;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::Shared;

/// One message received by the SMTP sink.
#[derive(Debug, Clone, Serialize)]
pub struct Mail {
    pub seq: u64,
    pub received_at: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub message_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub subject: String,
    pub body: String,
    /// Another message with the same `Message-ID` arrived before (a repeat after a crash).
    pub duplicate: bool,
}

/// Largest message accepted.
const MAX_MESSAGE: usize = 1024 * 1024;

pub(crate) async fn serve(listener: TcpListener, state: Shared) {
    while let Ok((stream, peer)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, peer, state).await {
                tracing::debug!(%peer, error = %e, "SMTP session ended");
            }
        });
    }
}

async fn session(stream: TcpStream, _peer: SocketAddr, state: Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sandbox.pratica ESMTP SANDBOX - not a real mail server\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sandbox.pratica\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sandbox.pratica\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command[8..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if to.is_empty() {
                write.write_all(b"503 RCPT first\r\n").await?;
                continue;
            }
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                if data.len() < MAX_MESSAGE {
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
            }
            store(&state, std::mem::take(&mut from), std::mem::take(&mut to), &data);
            b"250 OK: queued in the sandbox\r\n"
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_string(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_string(),
    }
}

fn store(state: &Shared, mail_from: String, rcpt_to: Vec<String>, data: &str) {
    let (head, body) = data.split_once("\r\n\r\n").or_else(|| data.split_once("\n\n")).unwrap_or((data, ""));
    let headers = unfold(head);
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let subject = get("Subject").map(|s| decode_words(&s)).unwrap_or_default();
    let encoding = get("Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
    let body = if get("Content-Type").is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/")) {
        body.to_string()
    } else {
        decode_body(body, &encoding)
    };
    let message_id = get("Message-ID");
    let mut s = state.lock();
    let duplicate = message_id.as_ref().is_some_and(|id| s.mail.iter().any(|m| m.message_id.as_ref() == Some(id)));
    let seq = s.mail.len() as u64 + 1;
    s.mail.push(Mail {
        seq,
        received_at: crate::now_rfc3339(),
        mail_from,
        rcpt_to,
        message_id,
        idempotency_key: get("X-Pratica-Idempotency-Key"),
        subject,
        body,
        duplicate,
    });
}

fn unfold(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn decode_body(body: &str, encoding: &str) -> String {
    match encoding {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_string())
        }
        "quoted-printable" => String::from_utf8_lossy(&quoted_printable(body, false)).into_owned(),
        _ => body.to_string(),
    }
}

fn quoted_printable(text: &str, underscore_space: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if i + 1 < bytes.len() && (bytes[i + 1] == b'\r' || bytes[i + 1] == b'\n') => {
                // Soft line break.
                i += if bytes[i + 1] == b'\r' { 3 } else { 2 };
            }
            b'=' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b'_' if underscore_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`).
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("=?") {
        // `=?charset?enc?text?=`: the end is the first `?=` after the third `?`.
        let third = rest[start + 2..].match_indices('?').nth(1).map(|(i, _)| start + 2 + i + 1);
        let Some(end) = third.and_then(|t| rest[t..].find("?=").map(|e| t + e)) else { break };
        let word = &rest[start + 2..end];
        let mut parts = word.splitn(3, '?');
        let (_charset, enc, text) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let decoded = match enc.to_ascii_lowercase().as_str() {
            "b" => base64::engine::general_purpose::STANDARD.decode(text).ok(),
            "q" => Some(quoted_printable(text, true)),
            _ => None,
        };
        let before = &rest[..start];
        if !before.trim().is_empty() {
            out.push_str(before);
        }
        match decoded {
            Some(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
            None => out.push_str(&rest[start..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_and_bodies_are_decoded() {
        assert_eq!(decode_words("=?utf-8?b?w6ggdW4=?= =?utf-8?q?_test?="), "è un test");
        assert_eq!(decode_words("plain"), "plain");
        assert_eq!(decode_words("Prova =?utf-8?q?=C3=A8?="), "Prova è");
        assert_eq!(decode_body("caff=C3=A8 =\r\nlungo", "quoted-printable"), "caffè lungo");
    }
}
