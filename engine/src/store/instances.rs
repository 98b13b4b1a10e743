//! The `instances` table: one row per workflow instance, with its state as JSON text and
//! the head of its history chain. Reads on the pool, locked loads inside a [`Tx`] (cached
//! there, so a second event for the same instance sees the first one's state), and the
//! write-back of changed instances when the transaction commits.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::tasks::push_task_visibility;
use super::{ROWS_PER_STATEMENT, Store, StoreError, TaskVisibility, Tx};
use crate::clock::Millis;

/// A workflow instance as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub workflow: String,
    pub version: i64,
    pub status: String,
    pub business_key: Option<String>,
    pub request_id: Option<String>,
    /// JSON text.
    pub input: String,
    /// JSON text of [`crate::runtime::InstanceState`].
    pub state: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub parent_id: Option<String>,
    pub parent_token: Option<i64>,
    pub parent_epoch: Option<i64>,
    pub started_at: Millis,
    pub updated_at: Millis,
    pub ended_at: Option<Millis>,
    pub history_seq: i64,
    pub history_head: String,
}

impl InstanceRow {
    /// The columns of an [`InstanceRow`], in field order.
    pub(crate) const COLUMNS: &'static str = "id, workflow, version, status, business_key, request_id, input, state, output, error, \
         parent_id, parent_token, parent_epoch, started_at, updated_at, ended_at, history_seq, history_head";
}

/// Instances by workflow, status and business key (the CLI and tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFilter {
    pub workflow: Option<String>,
    pub status: Option<String>,
    pub business_key: Option<String>,
    pub limit: Option<i64>,
}

/// A page of instances, ordered by `(started_at, id)`; `after` is the last row of the
/// previous page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceQuery {
    pub workflow: Option<String>,
    pub version: Option<i64>,
    pub status: Option<String>,
    pub business_key: Option<String>,
    pub started_after: Option<Millis>,
    pub started_before: Option<Millis>,
    pub ended_after: Option<Millis>,
    pub ended_before: Option<Millis>,
    pub after: Option<(Millis, String)>,
    pub limit: i64,
    /// `Some`: only instances with a task visible to this operator (the office scope).
    pub visible_to: Option<TaskVisibility>,
}

/// The statuses an instance can have (`instances.status`).
pub const INSTANCE_STATUSES: [&str; 5] = ["running", "compensating", "completed", "failed", "cancelled"];

impl Store {
    /// The instance `id`, or [`StoreError::NotFound`].
    pub async fn instance(&self, id: &str) -> Result<InstanceRow, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM instances WHERE id = $1", InstanceRow::COLUMNS));
        let row = on_pool!(self, |conn| sqlx::query_as::<_, InstanceRow>(sql).bind(id).fetch_optional(conn).await?);
        row.ok_or_else(|| StoreError::NotFound { entity: "instance", id: id.to_string() })
    }

    /// Several instances by id, without locking (missing ids are left out): the worker
    /// computes transitions from them before its transaction, and checks them again inside it.
    pub async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRow>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, |conn| {
                let mut q = QueryBuilder::new(format!("SELECT {} FROM instances WHERE id IN (", InstanceRow::COLUMNS));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(")");
                out.extend(q.build_query_as::<InstanceRow>().fetch_all(conn).await?);
            });
        }
        Ok(out)
    }

    /// Instances matching `f`, by start time (at most 1000 unless `f.limit` says otherwise).
    pub async fn instances(&self, f: &InstanceFilter) -> Result<Vec<InstanceRow>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q = QueryBuilder::new(format!("SELECT {} FROM instances WHERE 1 = 1", InstanceRow::COLUMNS));
            if let Some(w) = &f.workflow {
                q.push(" AND workflow = ").push_bind(w.clone());
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(k) = &f.business_key {
                q.push(" AND business_key = ").push_bind(k.clone());
            }
            q.push(" ORDER BY started_at, id LIMIT ").push_bind(f.limit.unwrap_or(1000));
            q.build_query_as::<InstanceRow>().fetch_all(conn).await?
        }))
    }

    /// The status of instance `id`, or [`StoreError::NotFound`] (a cheap poll).
    pub async fn instance_status(&self, id: &str) -> Result<String, StoreError> {
        const SQL: &str = "SELECT status FROM instances WHERE id = $1";
        let status = on_pool!(self, |conn| sqlx::query_scalar(SQL).bind(id).fetch_optional(conn).await?);
        status.ok_or_else(|| StoreError::NotFound { entity: "instance", id: id.to_string() })
    }

    /// How many instances have status `status`.
    pub async fn instance_count(&self, status: &str) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM instances WHERE status = $1";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).bind(status).fetch_one(conn).await?))
    }

    /// Every instance id, by start time.
    pub async fn instance_ids(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT id FROM instances ORDER BY started_at, id";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_all(conn).await?))
    }

    /// One page of instances in `(started_at, id)` order.
    pub async fn instances_page(&self, f: &InstanceQuery) -> Result<Vec<InstanceRow>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q = QueryBuilder::new(format!("SELECT {} FROM instances WHERE 1 = 1", InstanceRow::COLUMNS));
            if let Some(w) = &f.workflow {
                q.push(" AND workflow = ").push_bind(w.clone());
            }
            if let Some(v) = f.version {
                q.push(" AND version = ").push_bind(v);
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(k) = &f.business_key {
                q.push(" AND business_key = ").push_bind(k.clone());
            }
            if let Some(t) = f.started_after {
                q.push(" AND started_at >= ").push_bind(t);
            }
            if let Some(t) = f.started_before {
                q.push(" AND started_at < ").push_bind(t);
            }
            if let Some(t) = f.ended_after {
                q.push(" AND ended_at >= ").push_bind(t);
            }
            if let Some(t) = f.ended_before {
                q.push(" AND ended_at < ").push_bind(t);
            }
            if let Some(v) = &f.visible_to {
                push_instance_visibility(&mut q, v, "instances.");
            }
            if let Some((at, id)) = &f.after {
                q.push(" AND (started_at > ")
                    .push_bind(*at)
                    .push(" OR (started_at = ")
                    .push_bind(*at)
                    .push(" AND id > ")
                    .push_bind(id.clone())
                    .push("))");
            }
            q.push(" ORDER BY started_at, id LIMIT ").push_bind(f.limit);
            q.build_query_as::<InstanceRow>().fetch_all(conn).await?
        }))
    }

    /// Which of the instances `ids` an operator may read: those with a task (any status)
    /// visible to them by the task-visibility rule (the office scope of case data).
    pub async fn visible_instances(&self, ids: &[String], to: &TaskVisibility) -> Result<HashSet<String>, StoreError> {
        let mut visible = HashSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, |conn| {
                let mut q = QueryBuilder::new("SELECT DISTINCT instance_id FROM tasks WHERE instance_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(") AND");
                push_task_visibility(&mut q, to, "");
                visible.extend(q.build_query_scalar::<String>().fetch_all(conn).await?);
            });
        }
        Ok(visible)
    }
}

/// `AND` an instance (column `id` of `instances`, qualified by `instances`) has a task,
/// of any status, visible to `v`.
pub(super) fn push_instance_visibility<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, v: &TaskVisibility, instances: &str)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(format!(" AND EXISTS (SELECT 1 FROM tasks vt WHERE vt.instance_id = {instances}id AND"));
    push_task_visibility(q, v, "vt.");
    q.push(")");
}

impl Tx {
    /// Loads an instance for update (row-locked on PostgreSQL); within the transaction, the
    /// latest version written by [`Tx::update_instance`].
    pub async fn instance_for_update(&mut self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        if let Some(row) = self.instances.get(id) {
            return Ok(Some(row.clone()));
        }
        let row = on_tx!(self, |conn, dialect| {
            let sql = AssertSqlSafe(format!("SELECT {} FROM instances WHERE id = $1 {}", InstanceRow::COLUMNS, dialect.for_update));
            sqlx::query_as::<_, InstanceRow>(sql).bind(id).fetch_optional(&mut *conn).await?
        });
        if let Some(row) = &row {
            self.instances.insert(id.to_string(), row.clone());
        }
        Ok(row)
    }

    /// Loads and locks several instances in one statement (in id order, the lock order every
    /// worker uses), so that the transitions of a batch need no further reads.
    pub async fn prefetch_instances(&mut self, ids: &[String]) -> Result<(), StoreError> {
        let mut wanted: Vec<String> = ids.iter().filter(|id| !self.instances.contains_key(*id)).cloned().collect();
        wanted.sort();
        wanted.dedup();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
            let rows = on_tx!(self, |conn, dialect| {
                let mut q = QueryBuilder::new(format!("SELECT {} FROM instances WHERE id IN (", InstanceRow::COLUMNS));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                q.push(format!(") ORDER BY id {}", dialect.for_update));
                q.build_query_as::<InstanceRow>().fetch_all(&mut *conn).await?
            });
            for row in rows {
                self.instances.insert(row.id.clone(), row);
            }
        }
        Ok(())
    }

    /// Inserts a new instance.
    pub async fn insert_instance(&mut self, r: &InstanceRow) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            let mut q = QueryBuilder::new(format!("INSERT INTO instances ({}) ", InstanceRow::COLUMNS));
            q.push_values([r], |mut b, r| {
                b.push_bind(r.id.clone())
                    .push_bind(r.workflow.clone())
                    .push_bind(r.version)
                    .push_bind(r.status.clone())
                    .push_bind(r.business_key.clone())
                    .push_bind(r.request_id.clone())
                    .push_bind(r.input.clone())
                    .push_bind(r.state.clone())
                    .push_bind(r.output.clone())
                    .push_bind(r.error.clone())
                    .push_bind(r.parent_id.clone())
                    .push_bind(r.parent_token)
                    .push_bind(r.parent_epoch)
                    .push_bind(r.started_at)
                    .push_bind(r.updated_at)
                    .push_bind(r.ended_at)
                    .push_bind(r.history_seq)
                    .push_bind(r.history_head.clone());
            });
            q.build().execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// The instance of `workflow` started with idempotency key `request_id`, if any.
    pub async fn find_by_request_id(&mut self, workflow: &str, request_id: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT id FROM instances WHERE workflow = $1 AND request_id = $2";
        Ok(on_tx!(self, |conn| sqlx::query_scalar(SQL).bind(workflow).bind(request_id).fetch_optional(&mut *conn).await?))
    }

    /// Records a new state of an instance (written at commit).
    pub async fn update_instance(&mut self, row: &InstanceRow) -> Result<(), StoreError> {
        self.instances.insert(row.id.clone(), row.clone());
        self.dirty.insert(row.id.clone());
        Ok(())
    }

    /// Writes a changed instance (at commit, see [`Tx::update_instance`]).
    pub(super) async fn write_instance(&mut self, r: &InstanceRow) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET status = $2, state = $3, output = $4, error = $5, updated_at = $6, ended_at = $7, \
             history_seq = $8, history_head = $9 WHERE id = $1";
        on_tx!(self, |conn| {
            sqlx::query(SQL)
                .bind(&r.id)
                .bind(&r.status)
                .bind(&r.state)
                .bind(&r.output)
                .bind(&r.error)
                .bind(r.updated_at)
                .bind(r.ended_at)
                .bind(r.history_seq)
                .bind(&r.history_head)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The running (or compensating) child instances that `instance` started from `token`.
    pub(super) async fn running_children(&mut self, instance: &str, token: i64) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT id FROM instances WHERE parent_id = $1 AND parent_token = $2 AND status IN ('running', 'compensating')";
        Ok(on_tx!(self, |conn| sqlx::query_scalar(SQL).bind(instance).bind(token).fetch_all(&mut *conn).await?))
    }
}
