//! An idempotency-aware HTTP sink for W3: a minimal HTTP/1.1 server on 127.0.0.1 that
//! spends a fixed time on every request, then records it with its `Idempotency-Key`.
//! A request is recorded once its work is done, whether or not the client is still there
//! to read the answer: that is the side effect a crash may repeat.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    requests: u64,
    without_key: u64,
    /// Idempotency key → how many requests carried it.
    keys: BTreeMap<String, u32>,
    /// When each request was recorded.
    times: Vec<Instant>,
}

/// What the sink has seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkStats {
    pub requests: u64,
    pub without_key: u64,
    pub distinct_keys: u64,
    /// Distinct keys for the same (instance, step): each one beyond the first is a
    /// duplicate side effect an idempotency-aware service could not have recognised.
    pub duplicate_keys: u64,
    /// (instance, step) pairs seen.
    pub pairs: u64,
}

pub(crate) struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Listens on an ephemeral loopback port.
    pub(crate) async fn start(work: Duration) -> std::io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state, work).await;
                });
            }
        });
        Ok(Sink { addr, state, server })
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let s = self.state.lock().expect("sink lock");
        let mut per_pair: BTreeMap<&str, u64> = BTreeMap::new();
        for key in s.keys.keys() {
            // Keys are `instance:step:visit`; the step part may itself hold `:`-free paths.
            let pair = key.rsplit_once(':').map_or(key.as_str(), |(pair, _)| pair);
            *per_pair.entry(pair).or_default() += 1;
        }
        SinkStats {
            requests: s.requests,
            without_key: s.without_key,
            distinct_keys: s.keys.len() as u64,
            duplicate_keys: per_pair.values().map(|n| n - 1).sum(),
            pairs: per_pair.len() as u64,
        }
    }

    /// When the first request recorded after `t` was recorded.
    pub(crate) fn first_after(&self, t: Instant) -> Option<Instant> {
        self.state.lock().expect("sink lock").times.iter().copied().filter(|x| *x > t).min()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>, work: Duration) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        if request_line.trim().is_empty() {
            continue;
        }
        let (mut length, mut chunked, mut close, mut key) = (0usize, false, false, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    "idempotency-key" => key = Some(value.to_string()),
                    _ => {}
                }
            }
        }
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).await?;
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
        }
        tokio::time::sleep(work).await;
        {
            let mut s = state.lock().expect("sink lock");
            s.requests += 1;
            s.times.push(Instant::now());
            match key {
                Some(k) => *s.keys.entry(k).or_default() += 1,
                None => s.without_key += 1,
            }
        }
        let body = b"{\"ok\":true}";
        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
        write.write_all(head.as_bytes()).await?;
        write.write_all(body).await?;
        if close {
            return Ok(());
        }
    }
}
