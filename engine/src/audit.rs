//! The audit history: an append-only, per-instance, hash-chained log.
//!
//! Each entry's hash covers the previous entry's hash and the entry's own content, so
//! changing, removing or reordering any entry breaks every hash after it.
//! [`verify_chain`] recomputes the chain.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::HistoryRow;

/// The hash of an entry: SHA-256 over the previous entry's hash and the canonical JSON of
/// the entry's content (its own `hash` field is not part of it).
pub fn hash_of(row: &HistoryRow) -> String {
    let canonical = json!([row.instance_id, row.seq, row.at, row.kind, row.step, row.data, row.actor]).to_string();
    let mut h = Sha256::new();
    h.update(row.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Where a history chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq}: sequence gap (expected {expected})")]
    Gap { seq: i64, expected: i64 },
    #[error("entry {seq}: does not link to the previous entry")]
    Link { seq: i64 },
    #[error("entry {seq}: content does not match its hash (altered)")]
    Altered { seq: i64 },
    #[error("the instance's recorded head ({recorded_seq}) does not match the last entry ({last_seq})")]
    Head { recorded_seq: i64, last_seq: i64 },
}

/// Recomputes the chain of one instance's history; `head` is what the instance row recorded
/// as its last sequence number and hash.
pub fn verify_chain(rows: &[HistoryRow], head: (i64, &str)) -> Result<(), ChainBreak> {
    let mut prev = String::new();
    for (i, r) in rows.iter().enumerate() {
        let expected = i as i64 + 1;
        if r.seq != expected {
            return Err(ChainBreak::Gap { seq: r.seq, expected });
        }
        if r.prev_hash != prev {
            return Err(ChainBreak::Link { seq: r.seq });
        }
        if hash_of(r) != r.hash {
            return Err(ChainBreak::Altered { seq: r.seq });
        }
        prev = r.hash.clone();
    }
    let last_seq = rows.last().map_or(0, |r| r.seq);
    if head.0 != last_seq || head.1 != prev {
        return Err(ChainBreak::Head { recorded_seq: head.0, last_seq });
    }
    Ok(())
}

/// Recomputes the chain of one stored instance.
pub async fn verify_instance(store: &crate::store::Store, id: &str) -> Result<Result<(), ChainBreak>, crate::store::StoreError> {
    let row = store.instance(id).await?;
    let history = store.history(id).await?;
    Ok(verify_chain(&history, (row.history_seq, &row.history_head)))
}
