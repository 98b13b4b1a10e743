//! `wait`: a timer for a duration or until a date (a date already past continues at once);
//! its firing completes the step.

use serde_json::{Value, json};

use super::Machine;
use super::effects::{Effect, TimerPurpose};
use crate::clock::{Millis, to_rfc3339};
use crate::plan::{Step, Wait};
use crate::runtime::history_kind::HistoryKind;
use crate::runtime::state::{StepError, Waiting};

impl Machine<'_> {
    pub(super) fn run_wait(&mut self, token: u32, step: &Step, wait: &Wait, data: &Value) {
        let due = match wait {
            Wait::For(d) => Ok(self.now + d.as_millis() as i64),
            Wait::Until(expr) => expr.eval(data).map_err(|e| e.to_string()).and_then(|v| parse_date(&v)),
        };
        match due {
            Err(e) => self.fail(token, StepError { code: "expression".into(), message: e, step: Some(step.id.clone()) }),
            Ok(due) if due <= self.now => self.complete(token, Value::Null),
            Ok(due) => {
                let epoch = self.epoch(token);
                self.record(HistoryKind::TimerArmed, Some(&step.id), json!({"due_at": to_rfc3339(due)}));
                self.out.effects.push(Effect::Timer { token, epoch, due_at: due, purpose: TimerPurpose::Wait });
                self.wait_for(token, Waiting::Timer);
            }
        }
    }

    pub(super) fn timer_fired(&mut self, token: u32) {
        let step = self.step_id(token);
        self.record(HistoryKind::TimerFired, Some(&step), Value::Null);
        self.complete(token, Value::Null)
    }
}

/// A date from an expression: RFC 3339, or `YYYY-MM-DD` (midnight Europe/Rome).
fn parse_date(v: &Value) -> Result<Millis, String> {
    let text = v.as_str().ok_or_else(|| format!("`until` must be a date string, got {v}"))?;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not an RFC 3339 date-time or YYYY-MM-DD date"))?;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    use chrono::TimeZone;
    chrono_tz::Europe::Rome
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("`{text}` has no midnight in Europe/Rome"))
}
