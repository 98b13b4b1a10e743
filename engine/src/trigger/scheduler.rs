//! The cron scheduler: fires due schedules, once per due time across processes.
//!
//! A process reads the due rows, then for each one, in one transaction, moves
//! `next_fire_at` from the due time it read to the next one (`UPDATE ... WHERE id = ? AND
//! next_fire_at = <due>`) and, only if that update changed the row, starts the instance.
//! Two processes racing for the same row: on PostgreSQL the second update waits for the
//! first transaction and then finds `next_fire_at` changed (0 rows); on SQLite write
//! transactions are exclusive. The loser rolls back and starts nothing. The instance's
//! request id (`cron:<workflow>:<trigger index>:<due time>`) makes a repeat harmless too.
//!
//! Missed fires (every process was down across several due times) are coalesced: one
//! instance for the most recent due time, with `missed` (how many earlier ones were
//! skipped) in its `instance.triggered` history event and in `.trigger.missed` for the
//! trigger's `input`; the schedule then continues from now.

use serde_json::json;

use super::cron::CronSchedule;
use super::{prepare, start_in_tx, template_of};
use crate::clock::{Millis, to_rfc3339};
use crate::runtime::{Engine, EngineError};
use crate::store::ScheduleRow;

/// Due schedules handled in one call.
const BATCH: i64 = 100;

/// What one [`Engine::fire_due_schedules`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fired {
    /// Due times this process claimed (each started one instance, unless its input or start
    /// failed, which is logged).
    pub fired: usize,
    /// Due rows another process fired first.
    pub lost: usize,
}

impl Engine {
    /// Fires every schedule due at the engine clock's now: one instance per due time (the
    /// most recent, when several were missed), exactly once across processes.
    pub async fn fire_due_schedules(&self) -> Result<Fired, EngineError> {
        let now = self.now();
        let mut out = Fired::default();
        for schedule in self.store().due_schedules(now, BATCH).await? {
            if self.fire_schedule(&schedule, now).await? {
                out.fired += 1;
            } else {
                out.lost += 1;
            }
        }
        if out.fired > 0 {
            self.wake();
        }
        Ok(out)
    }

    /// Claims one due schedule and starts its instance; `false` if another process won.
    async fn fire_schedule(&self, s: &ScheduleRow, now: Millis) -> Result<bool, EngineError> {
        let catch_up = match CronSchedule::parse(&s.schedule, &s.timezone) {
            Ok(cron) => cron.catch_up(s.next_fire_at, now),
            Err(e) => {
                tracing::error!(schedule = %s.id, error = %e, "stored schedule is not valid; removed");
                let mut tx = self.store().begin().await?;
                tx.delete_schedule(&s.id, s.next_fire_at).await?;
                tx.commit().await?;
                return Ok(false);
            }
        };
        let scheduled_for = to_rfc3339(catch_up.fire_for);
        let trigger = json!({ "fired_at": to_rfc3339(now), "scheduled_for": scheduled_for, "missed": catch_up.missed });
        // Compiled (and cached), and the input mapping and business key evaluated, before the
        // transaction.
        let prepared = match self.plan(&s.workflow, Some(s.version as u32)).await {
            Ok(plan) => {
                prepare(self, &plan, template_of(&plan, s.trigger_ix), json!({ "trigger": trigger }), json!({})).await.map(|p| (plan, p))
            }
            Err(e) => Err(e),
        };
        let mut tx = self.store().begin().await?;
        let claimed = match catch_up.next {
            Some(next) => tx.claim_schedule(&s.id, s.next_fire_at, next).await?,
            None => tx.delete_schedule(&s.id, s.next_fire_at).await?,
        };
        if !claimed {
            return Ok(false);
        }
        let started = match prepared {
            Ok((plan, prepared)) => {
                let record = json!({
                    "trigger": "cron",
                    "schedule": s.schedule,
                    "timezone": s.timezone,
                    "scheduled_for": scheduled_for,
                    "fired_at": to_rfc3339(now),
                    "missed": catch_up.missed,
                });
                let request_id = format!("cron:{}:{}:{scheduled_for}", s.workflow, s.trigger_ix);
                start_in_tx(self, &mut tx, &plan, prepared, request_id, record).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            // The due time is spent either way: a schedule that cannot start must not retry
            // every second.
            tracing::error!(schedule = %s.id, scheduled_for, error = %e, "cron trigger could not start an instance");
            if matches!(e, EngineError::Store(_)) {
                return Err(e);
            }
        }
        tx.commit().await?;
        if catch_up.missed > 0 {
            tracing::warn!(schedule = %s.id, missed = catch_up.missed, scheduled_for, "missed cron fires coalesced into one");
        }
        Ok(true)
    }
}
