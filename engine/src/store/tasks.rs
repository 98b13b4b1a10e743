//! The `tasks` table: human tasks (open, claimed, completed, cancelled), their listings, and
//! the task-visibility rule that the API's task list, the console inbox and the office scope
//! of case data share ([`push_task_visibility`]).

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{Store, StoreError, Tx};
use crate::clock::Millis;

/// A human task as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub instance_id: String,
    pub token: i64,
    pub epoch: i64,
    pub step_id: String,
    pub status: String,
    pub title: String,
    pub description: Option<String>,
    pub assignee: Option<String>,
    pub role: Option<String>,
    pub office: Option<String>,
    pub form: Option<String>,
    /// JSON arrays as text.
    pub outcomes: String,
    pub reason_required: String,
    pub excluded_actors: String,
    pub due_at: Option<Millis>,
    pub created_at: Millis,
    pub completed_by: Option<String>,
    pub completed_at: Option<Millis>,
    pub result: Option<String>,
    /// Who handed the task to its assignee last (`delegate`).
    pub delegated_by: Option<String>,
    /// When its escalation reassigned it.
    pub escalated_at: Option<Millis>,
}

impl TaskRow {
    /// The columns of a [`TaskRow`], in field order.
    pub(crate) const COLUMNS: &'static str = "id, instance_id, token, epoch, step_id, status, title, description, assignee, role, office, \
         form, outcomes, reason_required, excluded_actors, due_at, created_at, completed_by, completed_at, result, delegated_by, escalated_at";
}

/// Tasks by status, office, role and instance (the CLI and tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<String>,
    pub office: Option<String>,
    pub role: Option<String>,
    pub instance_id: Option<String>,
    pub limit: Option<i64>,
}

/// Tasks by status, offices (any of), role and assignee.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    pub status: Option<String>,
    /// `Some(list)`: only tasks of one of these offices (an empty list matches nothing).
    pub offices: Option<Vec<String>>,
    pub role: Option<String>,
    pub assignee: Option<String>,
    pub limit: i64,
}

/// The statuses a human task can have (`tasks.status`).
pub const TASK_STATUSES: [&str; 4] = ["open", "claimed", "completed", "cancelled"];

/// Who an operator is, for [`Store::tasks_visible`] and the office scope of instances
/// ([`Store::visible_instances`], [`super::InstanceQuery::visible_to`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskVisibility {
    pub user: String,
    pub offices: Vec<String>,
    pub task_roles: Vec<String>,
}

/// The task-visibility rule of an operator, as one parenthesised condition on the columns
/// of `tasks` (qualified by `table`, e.g. `"t."`, or `""`): a task assigned to them, or of
/// one of their offices whose role is one of their task roles or that names no role.
pub(super) fn push_task_visibility<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, v: &TaskVisibility, table: &str)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(format!(" ({table}assignee = ")).push_bind(v.user.clone());
    if !v.offices.is_empty() {
        q.push(format!(" OR ({table}office IN ("));
        let mut list = q.separated(", ");
        for o in &v.offices {
            list.push_bind(o.clone());
        }
        q.push(format!(") AND ({table}role IS NULL"));
        if !v.task_roles.is_empty() {
            q.push(format!(" OR {table}role IN ("));
            let mut list = q.separated(", ");
            for r in &v.task_roles {
                list.push_bind(r.clone());
            }
            q.push(")");
        }
        q.push("))");
    }
    q.push(")");
}

impl Store {
    /// The task `id`, or [`StoreError::NotFound`].
    pub async fn task(&self, id: &str) -> Result<TaskRow, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM tasks WHERE id = $1", TaskRow::COLUMNS));
        let row = on_pool!(self, |conn| sqlx::query_as::<_, TaskRow>(sql).bind(id).fetch_optional(conn).await?);
        row.ok_or_else(|| StoreError::NotFound { entity: "task", id: id.to_string() })
    }

    /// Tasks matching `f`, by due time (at most 1000 unless `f.limit` says otherwise).
    pub async fn tasks(&self, f: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q = QueryBuilder::new(format!("SELECT {} FROM tasks WHERE 1 = 1", TaskRow::COLUMNS));
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(o) = &f.office {
                q.push(" AND office = ").push_bind(o.clone());
            }
            if let Some(r) = &f.role {
                q.push(" AND role = ").push_bind(r.clone());
            }
            if let Some(i) = &f.instance_id {
                q.push(" AND instance_id = ").push_bind(i.clone());
            }
            q.push(" ORDER BY due_at, created_at, id LIMIT ").push_bind(f.limit.unwrap_or(1000));
            q.build_query_as::<TaskRow>().fetch_all(conn).await?
        }))
    }

    /// Tasks matching `query` (offices: any of a list).
    pub async fn tasks_matching(&self, query: &TaskQuery) -> Result<Vec<TaskRow>, StoreError> {
        self.query_tasks(query, None).await
    }

    /// Tasks matching `query` that an operator may see: assigned to them, or of one of their
    /// offices with one of their task roles (or no role).
    pub async fn tasks_visible(&self, query: &TaskQuery, to: &TaskVisibility) -> Result<Vec<TaskRow>, StoreError> {
        self.query_tasks(query, Some(to)).await
    }

    async fn query_tasks(&self, f: &TaskQuery, to: Option<&TaskVisibility>) -> Result<Vec<TaskRow>, StoreError> {
        Ok(on_pool!(self, |conn| {
            let mut q = QueryBuilder::new(format!("SELECT {} FROM tasks WHERE 1 = 1", TaskRow::COLUMNS));
            if let Some(v) = to {
                q.push(" AND");
                push_task_visibility(&mut q, v, "");
            }
            if let Some(s) = &f.status {
                q.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(offices) = &f.offices {
                if offices.is_empty() {
                    q.push(" AND 1 = 0");
                } else {
                    q.push(" AND office IN (");
                    let mut list = q.separated(", ");
                    for o in offices {
                        list.push_bind(o.clone());
                    }
                    q.push(")");
                }
            }
            if let Some(r) = &f.role {
                q.push(" AND role = ").push_bind(r.clone());
            }
            if let Some(a) = &f.assignee {
                q.push(" AND assignee = ").push_bind(a.clone());
            }
            q.push(" ORDER BY due_at, created_at, id LIMIT ").push_bind(f.limit);
            q.build_query_as::<TaskRow>().fetch_all(conn).await?
        }))
    }

    /// Open or claimed human tasks per office (`""` for tasks without an office).
    pub async fn open_tasks_by_office(&self) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT COALESCE(office, '') AS office, COUNT(*) AS n FROM tasks \
             WHERE status IN ('open', 'claimed') GROUP BY COALESCE(office, '') ORDER BY 1";
        Ok(on_pool!(self, |conn| sqlx::query_as(SQL).fetch_all(conn).await?))
    }
}

impl Tx {
    /// Inserts a new task.
    pub async fn insert_task(&mut self, t: &TaskRow) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            let mut q = QueryBuilder::new(format!("INSERT INTO tasks ({}) ", TaskRow::COLUMNS));
            q.push_values([t], |mut b, t| {
                b.push_bind(t.id.clone())
                    .push_bind(t.instance_id.clone())
                    .push_bind(t.token)
                    .push_bind(t.epoch)
                    .push_bind(t.step_id.clone())
                    .push_bind(t.status.clone())
                    .push_bind(t.title.clone())
                    .push_bind(t.description.clone())
                    .push_bind(t.assignee.clone())
                    .push_bind(t.role.clone())
                    .push_bind(t.office.clone())
                    .push_bind(t.form.clone())
                    .push_bind(t.outcomes.clone())
                    .push_bind(t.reason_required.clone())
                    .push_bind(t.excluded_actors.clone())
                    .push_bind(t.due_at)
                    .push_bind(t.created_at)
                    .push_bind(t.completed_by.clone())
                    .push_bind(t.completed_at)
                    .push_bind(t.result.clone())
                    .push_bind(t.delegated_by.clone())
                    .push_bind(t.escalated_at);
            });
            q.build().execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Loads a task for update (row-locked on PostgreSQL).
    pub async fn task_for_update(&mut self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        Ok(on_tx!(self, |conn, dialect| {
            let sql = AssertSqlSafe(format!("SELECT {} FROM tasks WHERE id = $1 {}", TaskRow::COLUMNS, dialect.for_update));
            sqlx::query_as::<_, TaskRow>(sql).bind(id).fetch_optional(&mut *conn).await?
        }))
    }

    /// Writes the columns of a task that change after it is created.
    pub async fn update_task(&mut self, t: &TaskRow) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE tasks SET status = $2, assignee = $3, completed_by = $4, completed_at = $5, result = $6, role = $7, \
             office = $8, delegated_by = $9, escalated_at = $10 WHERE id = $1";
        on_tx!(self, |conn| {
            sqlx::query(SQL)
                .bind(&t.id)
                .bind(&t.status)
                .bind(&t.assignee)
                .bind(&t.completed_by)
                .bind(t.completed_at)
                .bind(&t.result)
                .bind(&t.role)
                .bind(&t.office)
                .bind(&t.delegated_by)
                .bind(t.escalated_at)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
