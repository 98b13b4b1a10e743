//! The `history` table: each instance's append-only, hash-chained audit trail. New entries
//! are buffered in the [`Tx`] and written as multi-row `INSERT`s when it commits.

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{ROWS_PER_STATEMENT, Store, StoreError, Tx};
use crate::clock::Millis;

/// One history entry.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryRow {
    pub instance_id: String,
    pub seq: i64,
    pub at: Millis,
    pub kind: String,
    pub step: Option<String>,
    /// JSON text.
    pub data: String,
    pub actor: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl HistoryRow {
    /// The columns of a [`HistoryRow`], in field order.
    pub(crate) const COLUMNS: &'static str = "instance_id, seq, at, kind, step, data, actor, prev_hash, hash";
}

impl Store {
    /// The history of `instance`, in order.
    pub async fn history(&self, instance: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM history WHERE instance_id = $1 ORDER BY seq", HistoryRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, HistoryRow>(sql).bind(instance).fetch_all(conn).await?))
    }

    /// How many steps have completed, over every instance (the benchmarks' progress).
    pub async fn completed_step_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM history WHERE kind = 'step.completed'";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_one(conn).await?))
    }
}

impl Tx {
    /// Appends a history entry (written at commit).
    pub async fn insert_history(&mut self, row: &HistoryRow) -> Result<(), StoreError> {
        self.history.push(row.clone());
        Ok(())
    }

    /// Writes buffered history entries, a multi-row statement per [`ROWS_PER_STATEMENT`].
    pub(super) async fn write_history(&mut self, rows: &[HistoryRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(format!("INSERT INTO history ({}) ", HistoryRow::COLUMNS));
                q.push_values(chunk, |mut b, h| {
                    b.push_bind(h.instance_id.clone())
                        .push_bind(h.seq)
                        .push_bind(h.at)
                        .push_bind(h.kind.clone())
                        .push_bind(h.step.clone())
                        .push_bind(h.data.clone())
                        .push_bind(h.actor.clone())
                        .push_bind(h.prev_hash.clone())
                        .push_bind(h.hash.clone());
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }
}
