//! An idempotency-aware HTTP sink on loopback: a tiny HTTP/1.1 server that records every
//! request's `Idempotency-Key`, performs each key's "effect" once, notices the same key
//! being worked on twice at the same time, and can be slowed down to simulate work.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct SinkLog {
    /// Requests per idempotency key.
    pub requests: BTreeMap<String, u32>,
    /// Keys being handled right now.
    active: BTreeSet<String>,
    /// Times a key arrived while the same key was still being handled.
    pub overlaps: u32,
    pub total: u32,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<SinkLog>>,
}

impl Sink {
    /// Starts the sink; each request takes `work` before it is answered.
    pub async fn start(work: Duration) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the sink");
        let addr = listener.local_addr().expect("sink address");
        let log = Arc::new(Mutex::new(SinkLog::default()));
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(stream, log, work).await;
                });
            }
        });
        Sink { addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn total(&self) -> u32 {
        self.log.lock().unwrap().total
    }

    /// (total requests, distinct keys, overlaps)
    pub fn summary(&self) -> (u32, usize, u32) {
        let log = self.log.lock().unwrap();
        (log.total, log.requests.len(), log.overlaps)
    }

    pub fn keys(&self) -> Vec<String> {
        self.log.lock().unwrap().requests.keys().cloned().collect()
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, log: Arc<Mutex<SinkLog>>, work: Duration) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut key = None;
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "idempotency-key" => key = Some(value.trim().to_string()),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let key = key.unwrap_or_else(|| "<none>".into());
        {
            let mut l = log.lock().unwrap();
            l.total += 1;
            *l.requests.entry(key.clone()).or_default() += 1;
            if !l.active.insert(key.clone()) {
                l.overlaps += 1;
            }
        }
        // Real time: the sink is a slow real service, so overlapping requests can be seen.
        tokio::time::sleep(work).await;
        log.lock().unwrap().active.remove(&key);
        let answer = format!("{{\"done\":true,\"key\":\"{key}\"}}");
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
}
