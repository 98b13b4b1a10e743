//! The `workflows` table: every deployed version of every workflow, with its source.

use sqlx::AssertSqlSafe;

use super::{Store, StoreError, Tx};
use crate::clock::Millis;

/// A deployed workflow version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkflowRow {
    pub name: String,
    pub version: i64,
    pub hash: String,
    pub source: String,
    pub deployed_at: Millis,
}

impl WorkflowRow {
    /// The columns of a [`WorkflowRow`], in field order.
    const COLUMNS: &'static str = "name, version, hash, source, deployed_at";
}

impl Store {
    /// Version `version` of workflow `name`, or its latest version.
    pub async fn workflow(&self, name: &str, version: Option<u32>) -> Result<Option<WorkflowRow>, StoreError> {
        Ok(match version {
            Some(v) => {
                let sql = AssertSqlSafe(format!("SELECT {} FROM workflows WHERE name = $1 AND version = $2", WorkflowRow::COLUMNS));
                on_pool!(self, |conn| sqlx::query_as::<_, WorkflowRow>(sql).bind(name).bind(i64::from(v)).fetch_optional(conn).await?)
            }
            None => {
                let sql =
                    AssertSqlSafe(format!("SELECT {} FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1", WorkflowRow::COLUMNS));
                on_pool!(self, |conn| sqlx::query_as::<_, WorkflowRow>(sql).bind(name).fetch_optional(conn).await?)
            }
        })
    }

    /// Every version of every workflow, by name and version.
    pub async fn workflows(&self) -> Result<Vec<WorkflowRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM workflows ORDER BY name, version", WorkflowRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, WorkflowRow>(sql).fetch_all(conn).await?))
    }
}

impl Tx {
    /// Stores a new workflow version.
    pub async fn insert_workflow(&mut self, w: &WorkflowRow) -> Result<(), StoreError> {
        let sql = AssertSqlSafe(format!("INSERT INTO workflows ({}) VALUES ($1, $2, $3, $4, $5)", WorkflowRow::COLUMNS));
        on_tx!(self, |conn| {
            sqlx::query(sql)
                .bind(&w.name)
                .bind(w.version)
                .bind(&w.hash)
                .bind(&w.source)
                .bind(w.deployed_at)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Every version of workflow `name`, oldest first.
    pub async fn workflow_versions(&mut self, name: &str) -> Result<Vec<WorkflowRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM workflows WHERE name = $1 ORDER BY version", WorkflowRow::COLUMNS));
        Ok(on_tx!(self, |conn| sqlx::query_as::<_, WorkflowRow>(sql).bind(name).fetch_all(&mut *conn).await?))
    }
}
