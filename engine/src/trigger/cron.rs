//! Cron schedules in a time zone: the next fire time after an instant, and the catch-up
//! after missed fires.
//!
//! Times are computed by croner on wall-clock time in the trigger's IANA zone and returned
//! as UTC milliseconds. Daylight-saving changes follow croner (OCPS / Vixie cron):
//! - **spring forward** (Europe/Rome 02:00 → 03:00): a fixed-time schedule whose time falls
//!   in the missing hour (`30 2 * * *`) fires at the first valid time after the gap, 03:00
//!   local; interval schedules (`0 * * * *`, `*/15 * * * *`) skip the times in the gap.
//! - **fall back** (03:00 → 02:00, the hour 02:00–03:00 happens twice): a fixed-time
//!   schedule fires once, at the first occurrence; interval schedules fire at every real
//!   occurrence (an hourly schedule fires at 02:00 CEST and again at 02:00 CET).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::clock::Millis;

/// At most this many missed fire times are counted one by one after a pause; beyond it
/// the catch-up jumps straight to the latest one.
const MAX_COUNTED_MISSES: u64 = 100_000;

/// A parsed schedule in its zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

/// What a due schedule does now: fire once for `fire_for`, then wait for `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// The due time this firing stands for (the most recent one not after now).
    pub fire_for: Millis,
    /// Earlier due times that were missed and are coalesced into this firing.
    pub missed: u64,
    /// The next fire time, strictly after now (`None`: the schedule never fires again).
    pub next: Option<Millis>,
}

impl CronSchedule {
    /// Parses a 5-field schedule (or an `@daily`-style nickname) in the IANA zone `timezone`.
    pub fn parse(schedule: &str, timezone: &str) -> Result<Self, String> {
        let cron = Cron::from_str(schedule).map_err(|e| format!("invalid cron schedule `{schedule}`: {e}"))?;
        let tz = Tz::from_str(timezone).map_err(|_| format!("unknown time zone `{timezone}`"))?;
        Ok(Self { cron, tz })
    }

    fn local(&self, at: Millis) -> Option<DateTime<Tz>> {
        DateTime::<Utc>::from_timestamp_millis(at).map(|t| self.tz.from_utc_datetime(&t.naive_utc()))
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let start = self.local(after)?;
        self.cron.find_next_occurrence(&start, false).ok().map(|t| t.timestamp_millis())
    }

    /// For a schedule due at `due` (≤ `now`): the most recent due time not after `now`
    /// (fired once, coalescing the ones missed before it) and the next one after `now`.
    pub fn catch_up(&self, due: Millis, now: Millis) -> CatchUp {
        let mut fire_for = due;
        let mut missed = 0;
        loop {
            match self.next_after(fire_for) {
                Some(n) if n <= now => {
                    missed += 1;
                    fire_for = n;
                    if missed >= MAX_COUNTED_MISSES {
                        // A very long pause: go straight to the latest due time.
                        if let Some(latest) = self.local(now).and_then(|t| self.cron.find_previous_occurrence(&t, true).ok()) {
                            fire_for = fire_for.max(latest.timestamp_millis());
                        }
                        return CatchUp { fire_for, missed, next: self.next_after(now.max(fire_for)) };
                    }
                }
                next => return CatchUp { fire_for, missed, next },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> Millis {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn fires(schedule: &str, from: &str, n: usize) -> Vec<String> {
        let s = CronSchedule::parse(schedule, "Europe/Rome").unwrap();
        let mut at = ms(from);
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                crate::clock::to_rfc3339(at)
            })
            .collect()
    }

    #[test]
    fn daily_at_0230_across_both_dst_changes_in_rome() {
        assert_eq!(
            fires("30 2 * * *", "2026-03-27T12:00:00Z", 4),
            ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"]
        );
        assert_eq!(
            fires("30 2 * * *", "2026-10-23T12:00:00Z", 4),
            ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"]
        );
    }

    #[test]
    fn hourly_across_both_dst_changes_in_rome() {
        assert_eq!(
            fires("0 * * * *", "2026-03-28T23:30:00Z", 4),
            ["2026-03-29T00:00:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z", "2026-03-29T03:00:00.000Z"]
        );
        assert_eq!(
            fires("0 * * * *", "2026-10-24T23:30:00Z", 4),
            ["2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"]
        );
    }

    #[test]
    fn missed_fires_are_coalesced_into_the_latest() {
        let s = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        let c = s.catch_up(ms("2026-05-01T10:00:00Z"), ms("2026-05-01T15:30:00Z"));
        assert_eq!(c, CatchUp { fire_for: ms("2026-05-01T15:00:00Z"), missed: 5, next: Some(ms("2026-05-01T16:00:00Z")) });
        let c = s.catch_up(ms("2026-05-01T10:00:00Z"), ms("2026-05-01T10:00:00Z"));
        assert_eq!(c, CatchUp { fire_for: ms("2026-05-01T10:00:00Z"), missed: 0, next: Some(ms("2026-05-01T11:00:00Z")) });
    }
}
