//! The trigger tables (`crate::trigger`): `schedules` (cron triggers with their next fire
//! time, claimed so that each due time fires once across processes), `trigger_names`
//! (webhook and message triggers by name) and `webhook_signatures` (accepted deliveries
//! remembered to refuse replays).

use sqlx::{AssertSqlSafe, QueryBuilder};

use super::{Store, StoreError, Tx};
use crate::clock::Millis;

/// A cron trigger of the latest version of a workflow, with its next fire time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScheduleRow {
    /// `<workflow>#<trigger index>`.
    pub id: String,
    pub workflow: String,
    pub version: i64,
    /// The trigger's position in the workflow's `triggers:`.
    pub trigger_ix: i64,
    pub schedule: String,
    pub timezone: String,
    /// UTC milliseconds.
    pub next_fire_at: Millis,
    pub created_at: Millis,
}

impl ScheduleRow {
    /// The columns of a [`ScheduleRow`], in field order.
    const COLUMNS: &'static str = "id, workflow, version, trigger_ix, schedule, timezone, next_fire_at, created_at";
}

/// A webhook or message trigger of the latest version of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TriggerName {
    /// `webhook` or `message`.
    pub kind: String,
    pub name: String,
    pub workflow: String,
    pub version: i64,
    pub trigger_ix: i64,
}

impl TriggerName {
    /// The columns of a [`TriggerName`], in field order.
    const COLUMNS: &'static str = "kind, name, workflow, version, trigger_ix";
}

/// The webhook or message triggers `(kind $1, name $2)`.
fn triggers_named_sql() -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("SELECT {} FROM trigger_names WHERE kind = $1 AND name = $2 ORDER BY workflow, trigger_ix", TriggerName::COLUMNS))
}

impl Store {
    /// Schedules whose next fire time is at or before `now`, earliest first.
    pub async fn due_schedules(&self, now: Millis, limit: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        let sql = AssertSqlSafe(format!(
            "SELECT {} FROM schedules WHERE next_fire_at <= $1 ORDER BY next_fire_at, id LIMIT $2",
            ScheduleRow::COLUMNS
        ));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, ScheduleRow>(sql).bind(now).bind(limit).fetch_all(conn).await?))
    }

    /// Every cron schedule, by workflow and trigger.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {} FROM schedules ORDER BY workflow, trigger_ix", ScheduleRow::COLUMNS));
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, ScheduleRow>(sql).fetch_all(conn).await?))
    }

    /// The webhook or message triggers (`kind`) called `name`.
    pub async fn triggers_named(&self, kind: &str, name: &str) -> Result<Vec<TriggerName>, StoreError> {
        Ok(on_pool!(self, |conn| sqlx::query_as::<_, TriggerName>(triggers_named_sql()).bind(kind).bind(name).fetch_all(conn).await?))
    }

    /// Forgets the webhook signatures whose tolerance window ended at or before `now`.
    pub async fn purge_webhook_signatures(&self, now: Millis) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM webhook_signatures WHERE expires_at <= $1";
        Ok(on_pool!(self, |conn| sqlx::query(SQL).bind(now).execute(conn).await?.rows_affected()))
    }

    /// The earliest next fire time of any schedule.
    pub async fn next_schedule_at(&self) -> Result<Option<Millis>, StoreError> {
        const SQL: &str = "SELECT MIN(next_fire_at) FROM schedules";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_one(conn).await?))
    }
}

impl Tx {
    /// Replaces the triggers of `workflow` (its latest version's).
    pub async fn replace_triggers(&mut self, workflow: &str, schedules: &[ScheduleRow], names: &[TriggerName]) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM schedules WHERE workflow = $1").bind(workflow).execute(&mut *conn).await?;
            sqlx::query("DELETE FROM trigger_names WHERE workflow = $1").bind(workflow).execute(&mut *conn).await?;
            for s in schedules {
                let mut q = QueryBuilder::new(format!("INSERT INTO schedules ({}) ", ScheduleRow::COLUMNS));
                q.push_values([s], |mut b, s| {
                    b.push_bind(s.id.clone())
                        .push_bind(s.workflow.clone())
                        .push_bind(s.version)
                        .push_bind(s.trigger_ix)
                        .push_bind(s.schedule.clone())
                        .push_bind(s.timezone.clone())
                        .push_bind(s.next_fire_at)
                        .push_bind(s.created_at);
                });
                q.build().execute(&mut *conn).await?;
            }
            for n in names {
                let mut q = QueryBuilder::new(format!("INSERT INTO trigger_names ({}) ", TriggerName::COLUMNS));
                q.push_values([n], |mut b, n| {
                    b.push_bind(n.kind.clone())
                        .push_bind(n.name.clone())
                        .push_bind(n.workflow.clone())
                        .push_bind(n.version)
                        .push_bind(n.trigger_ix);
                });
                q.build().execute(&mut *conn).await?;
            }
        });
        Ok(())
    }

    /// The webhook or message triggers (`kind`) called `name`.
    pub async fn triggers_named(&mut self, kind: &str, name: &str) -> Result<Vec<TriggerName>, StoreError> {
        Ok(on_tx!(self, |conn| sqlx::query_as::<_, TriggerName>(triggers_named_sql()).bind(kind).bind(name).fetch_all(&mut *conn).await?))
    }

    /// Moves schedule `id` from `due` to `next` if it is still due at `due`; `false` means
    /// another process fired it first.
    pub async fn claim_schedule(&mut self, id: &str, due: Millis, next: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE schedules SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2";
        Ok(on_tx!(self, |conn| sqlx::query(SQL).bind(id).bind(due).bind(next).execute(&mut *conn).await?.rows_affected() == 1))
    }

    /// Removes schedule `id` if it is still due at `due` (a schedule that never fires again).
    pub async fn delete_schedule(&mut self, id: &str, due: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM schedules WHERE id = $1 AND next_fire_at = $2";
        Ok(on_tx!(self, |conn| sqlx::query(SQL).bind(id).bind(due).execute(&mut *conn).await?.rows_affected() == 1))
    }

    /// Records the signature of an accepted webhook delivery until `expires_at`; `false` if
    /// it was recorded already (the delivery is a replay). `ON CONFLICT DO NOTHING` on the
    /// primary key: a concurrent transaction inserting the same signature waits for this one
    /// and then inserts nothing.
    pub async fn remember_webhook_signature(&mut self, webhook: &str, signature: &str, expires_at: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO webhook_signatures (webhook, signature, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (webhook, signature) DO NOTHING";
        Ok(on_tx!(self, |conn| sqlx::query(SQL).bind(webhook).bind(signature).bind(expires_at).execute(&mut *conn).await?.rows_affected()
            == 1))
    }
}
