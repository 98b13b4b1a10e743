//! Read-only figures for the director dashboard (the console's `/console/dashboard`),
//! computed by the database: backlog over time, throughput, time to decision, the share of
//! cases closed within a deadline, the automation rate and SLA breaches of human tasks.
//!
//! Definitions (docs/DASHBOARD.md explains them to directors):
//! - A **case** is a top-level instance (`parent_id IS NULL`); sub-workflow instances are
//!   part of their parent's case.
//! - A case is **closed** when its status is `completed` or `cancelled`; it closed at
//!   `ended_at`. A `failed` case is not closed: it waits for someone to retry it, so it stays
//!   in the backlog.
//! - The **office** of a case is the office of any of its human tasks, or the `office`
//!   field of its start input (how a case without human tasks is attributed).
//! - **Buckets** are fixed-width intervals `[from + k·bucket, from + (k+1)·bucket)`.
//!
//! The SQL is shared by both backends (times are BIGINT milliseconds); only the JSON
//! extraction of `input.office` differs ([`super::Dialect::input_office`]). The statements
//! are built by functions generic over the database and run once per backend by `on_pool!`.

use crate::clock::Millis;

use sqlx::QueryBuilder;

use super::{Store, StoreError};

/// What a dashboard looks at: a period `[from, to)` cut into buckets, optionally one
/// workflow and one office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFilter {
    pub workflow: Option<String>,
    pub office: Option<String>,
    pub from: Millis,
    pub to: Millis,
    /// Bucket width (a day for the dashboard); must be positive.
    pub bucket: Millis,
    /// A case closed within this time after its start is "within the deadline".
    pub deadline: Millis,
    /// Open tasks whose due time is before this are overdue.
    pub now: Millis,
    /// How many overdue tasks to list (oldest due first).
    pub oldest_limit: i64,
}

/// One bucket of the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFigures {
    pub start: Millis,
    pub end: Millis,
    /// Cases started in the bucket.
    pub started: i64,
    /// Cases closed in the bucket.
    pub closed: i64,
    /// Cases started before `end` and not closed before `end`.
    pub backlog: i64,
}

/// One bin of the time-to-decision histogram: `[lower, upper)`, `upper` `None` for the
/// last, open-ended bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionBin {
    pub lower: Millis,
    pub upper: Option<Millis>,
    pub cases: i64,
}

/// An open human task past its due time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OverdueTask {
    pub id: String,
    pub instance_id: String,
    pub workflow: String,
    pub title: String,
    pub office: Option<String>,
    pub due_at: Millis,
}

/// Human tasks that missed their due time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlaFigures {
    /// Tasks completed in the period after their due time.
    pub completed_late: i64,
    /// Tasks open (or claimed) now and past their due time.
    pub open_overdue: i64,
    /// The open overdue tasks, oldest due time first (at most `oldest_limit`).
    pub oldest: Vec<OverdueTask>,
}

/// Every figure of the dashboard for one filter.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardFigures {
    pub filter: ReportFilter,
    /// Cases open at `from`.
    pub backlog_at_start: i64,
    pub buckets: Vec<BucketFigures>,
    /// Cases closed in the period.
    pub closed: i64,
    /// Of those, closed within `deadline` of their start.
    pub closed_within_deadline: i64,
    /// Of those, closed without any human task.
    pub automated: i64,
    /// Mean time from start to closure of the cases closed in the period.
    pub mean_decision: Option<Millis>,
    /// Median (nearest rank) of those times.
    pub median_decision: Option<Millis>,
    /// 90th percentile (nearest rank) of those times.
    pub p90_decision: Option<Millis>,
    pub decision_bins: Vec<DecisionBin>,
    /// Cases open now by age (*giacenza per anzianità*), in [`AGE_BUCKETS`].
    pub open_by_age: Vec<AgeBucket>,
    pub sla: SlaFigures,
}

/// The age classes of open cases INPS reports use: 0–30, 31–60, 61–120 and over 120 days
/// since the start (in whole days).
pub const AGE_BUCKETS: [(i64, Option<i64>); 4] = [(0, Some(30)), (31, Some(60)), (61, Some(120)), (121, None)];

/// Open cases whose age in whole days is in `[min_days, max_days]` (`None`: no upper bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeBucket {
    pub min_days: i64,
    pub max_days: Option<i64>,
    pub cases: i64,
}

impl DashboardFigures {
    /// Share of the closed cases closed within the deadline (`None`: no case closed).
    pub fn within_deadline_share(&self) -> Option<f64> {
        share(self.closed_within_deadline, self.closed)
    }

    /// Share of the closed cases closed without a human task (`None`: no case closed).
    pub fn automation_rate(&self) -> Option<f64> {
        share(self.automated, self.closed)
    }

    /// Cases started in the period.
    pub fn started(&self) -> i64 {
        self.buckets.iter().map(|b| b.started).sum()
    }

    /// Cases closed per case started in the period (`indice di deflusso`: at least 1 means
    /// the backlog shrinks); `None` when no case started.
    pub fn outflow_ratio(&self) -> Option<f64> {
        share(self.closed, self.started())
    }

    /// The backlog at the end of the period.
    pub fn backlog_at_end(&self) -> i64 {
        self.buckets.last().map_or(self.backlog_at_start, |b| b.backlog)
    }
}

/// `a / b` rounded up, for a non-negative `a` and a positive `b`.
fn div_ceil(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The 0-based offset of the `p` percentile of `n` sorted values by nearest rank.
fn rank(n: i64, p: f64) -> Option<i64> {
    (n > 0).then(|| ((p * n as f64).ceil() as i64).clamp(1, n) - 1)
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Most buckets a report may have (a year and a bit of days).
pub const MAX_BUCKETS: i64 = 400;

/// The histogram's bins: `BINS` bins of equal width up to twice the deadline, then one
/// open-ended bin. The width is a whole number of days when the deadline is.
const BINS: i64 = 12;

/// The width of the time-to-decision bins for a deadline.
pub fn decision_bin_width(deadline: Millis) -> Millis {
    const DAY: Millis = 86_400_000;
    let raw = div_ceil(2 * deadline.max(1), BINS);
    if deadline >= DAY { div_ceil(raw, DAY) * DAY } else { raw.max(1) }
}

impl Store {
    /// Computes the dashboard's figures (ten read statements). A filter with an empty or
    /// reversed period, a non-positive bucket, a negative deadline or more than
    /// [`MAX_BUCKETS`] buckets is refused with [`ReportError::Invalid`].
    pub async fn dashboard_figures(&self, filter: &ReportFilter) -> Result<DashboardFigures, ReportError> {
        if filter.bucket <= 0 || filter.to <= filter.from || filter.deadline < 0 {
            return Err(ReportError::Invalid("the period must be non-empty, the bucket and the deadline positive".into()));
        }
        let count = div_ceil(filter.to - filter.from, filter.bucket);
        if count > MAX_BUCKETS {
            return Err(ReportError::Invalid(format!("at most {MAX_BUCKETS} buckets (asked for {count})")));
        }
        Ok(assemble(filter, count, self.raw_figures(filter).await?))
    }

    /// The offices named by human tasks, for the dashboard's filter (at most 500).
    pub async fn report_offices(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT office FROM tasks WHERE office IS NOT NULL AND office <> '' ORDER BY office LIMIT 500";
        Ok(on_pool!(self, |conn| sqlx::query_scalar(SQL).fetch_all(conn).await?))
    }

    /// Runs the report's statements.
    async fn raw_figures(&self, f: &ReportFilter) -> Result<RawFigures, StoreError> {
        Ok(on_pool!(self, |conn, dialect| {
            let office = dialect.input_office;
            // Open at `from`: started before it and not closed before it.
            let mut q = QueryBuilder::new("SELECT COUNT(*) FROM instances i WHERE");
            push_cases(&mut q, f, office);
            q.push(" AND i.started_at < ").push_bind(f.from);
            q.push(format!(" AND NOT ({CLOSED} AND i.ended_at IS NOT NULL AND i.ended_at < ")).push_bind(f.from).push(")");
            let backlog_at_start: i64 = q.build_query_scalar().fetch_one(conn).await?;

            let mut q = QueryBuilder::new("SELECT (i.started_at - ");
            q.push_bind(f.from).push(") / ").push_bind(f.bucket).push(" AS b, COUNT(*) AS n FROM instances i WHERE");
            push_cases(&mut q, f, office);
            q.push(" AND i.started_at >= ").push_bind(f.from).push(" AND i.started_at < ").push_bind(f.to).push(" GROUP BY 1");
            let started = q.build_query_as::<(i64, i64)>().fetch_all(conn).await?;

            let mut q = QueryBuilder::new("SELECT (i.ended_at - ");
            q.push_bind(f.from).push(") / ").push_bind(f.bucket).push(" AS b, COUNT(*) AS n FROM instances i WHERE");
            push_cases(&mut q, f, office);
            q.push(format!(" AND {CLOSED} AND i.ended_at >= "))
                .push_bind(f.from)
                .push(" AND i.ended_at < ")
                .push_bind(f.to)
                .push(" GROUP BY 1");
            let closed_per_bucket = q.build_query_as::<(i64, i64)>().fetch_all(conn).await?;

            // The cases closed in the period: how many, within the deadline, automated, mean.
            let mut q = QueryBuilder::new("SELECT COUNT(*), SUM(CASE WHEN i.ended_at - i.started_at <= ");
            q.push_bind(f.deadline)
                .push(" THEN 1 ELSE 0 END), SUM(CASE WHEN EXISTS (SELECT 1 FROM tasks t WHERE t.instance_id = i.id) THEN 0 ELSE 1 END), ")
                .push("CAST(AVG(i.ended_at - i.started_at) AS DOUBLE PRECISION) FROM instances i WHERE");
            push_cases(&mut q, f, office);
            q.push(format!(" AND {CLOSED} AND i.ended_at >= ")).push_bind(f.from).push(" AND i.ended_at < ").push_bind(f.to);
            let (closed, within, automated, mean): (i64, Option<i64>, Option<i64>, Option<f64>) =
                q.build_query_as().fetch_one(conn).await?;

            // Time to decision in bins of `width`, everything from `BINS * width` in the last.
            let width = decision_bin_width(f.deadline);
            let mut q = QueryBuilder::new("SELECT b, COUNT(*) FROM (SELECT CASE WHEN i.ended_at - i.started_at >= ");
            q.push_bind(BINS * width)
                .push(" THEN ")
                .push_bind(BINS)
                .push(" ELSE (i.ended_at - i.started_at) / ")
                .push_bind(width)
                .push(" END AS b FROM instances i WHERE");
            push_cases(&mut q, f, office);
            q.push(format!(" AND {CLOSED} AND i.ended_at >= "))
                .push_bind(f.from)
                .push(" AND i.ended_at < ")
                .push_bind(f.to)
                .push(") x GROUP BY b");
            let bins = q.build_query_as::<(i64, i64)>().fetch_all(conn).await?;

            // The median and the 90th percentile: the n-th shortest time to decision.
            let mut nth = [None, None];
            for (slot, p) in nth.iter_mut().zip([0.5, 0.9]) {
                let Some(offset) = rank(closed, p) else { continue };
                let mut q = QueryBuilder::new("SELECT i.ended_at - i.started_at AS d FROM instances i WHERE");
                push_cases(&mut q, f, office);
                q.push(format!(" AND {CLOSED} AND i.ended_at >= "))
                    .push_bind(f.from)
                    .push(" AND i.ended_at < ")
                    .push_bind(f.to)
                    .push(" ORDER BY 1 LIMIT 1 OFFSET ")
                    .push_bind(offset);
                *slot = q.build_query_scalar::<i64>().fetch_optional(conn).await?;
            }
            let [median, p90] = nth;

            // Open now, by age class.
            const DAY: i64 = 86_400_000;
            let mut q = QueryBuilder::new("SELECT CASE");
            for (k, (_, max)) in AGE_BUCKETS.iter().enumerate() {
                if let Some(max) = max {
                    q.push(" WHEN ")
                        .push_bind(f.now)
                        .push(" - i.started_at < ")
                        .push_bind((max + 1) * DAY)
                        .push(format!(" THEN CAST({k} AS BIGINT)"));
                }
            }
            q.push(format!(" ELSE CAST({} AS BIGINT) END AS b, COUNT(*) FROM instances i WHERE", AGE_BUCKETS.len() - 1));
            push_cases(&mut q, f, office);
            q.push(" AND i.started_at <= ").push_bind(f.now).push(format!(" AND NOT ({CLOSED}) GROUP BY 1"));
            let ages = q.build_query_as::<(i64, i64)>().fetch_all(conn).await?;

            // Human tasks that missed their due time.
            let mut q = QueryBuilder::new("SELECT COUNT(*) FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE");
            push_tasks(&mut q, f);
            q.push(" AND t.status = 'completed' AND t.completed_at > t.due_at AND t.completed_at >= ")
                .push_bind(f.from)
                .push(" AND t.completed_at < ")
                .push_bind(f.to);
            let completed_late: i64 = q.build_query_scalar().fetch_one(conn).await?;

            let mut q = QueryBuilder::new("SELECT COUNT(*) FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE");
            push_tasks(&mut q, f);
            q.push(" AND t.status IN ('open', 'claimed') AND t.due_at < ").push_bind(f.now);
            let open_overdue: i64 = q.build_query_scalar().fetch_one(conn).await?;

            let mut q = QueryBuilder::new(
                "SELECT t.id, t.instance_id, i.workflow, t.title, t.office, t.due_at FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE",
            );
            push_tasks(&mut q, f);
            q.push(" AND t.status IN ('open', 'claimed') AND t.due_at < ")
                .push_bind(f.now)
                .push(" ORDER BY t.due_at, t.id LIMIT ")
                .push_bind(f.oldest_limit.max(0));
            let oldest = q.build_query_as::<OverdueTask>().fetch_all(conn).await?;

            RawFigures {
                backlog_at_start,
                started,
                closed_per_bucket,
                closed,
                within: within.unwrap_or(0),
                automated: automated.unwrap_or(0),
                mean,
                median,
                p90,
                bins,
                ages,
                sla: SlaFigures { completed_late, open_overdue, oldest },
            }
        }))
    }
}

/// Why a report could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReportError {
    fn from(e: sqlx::Error) -> Self {
        ReportError::Store(StoreError::Database(e))
    }
}

/// What the queries return, before it is laid out per bucket.
struct RawFigures {
    backlog_at_start: i64,
    started: Vec<(i64, i64)>,
    closed_per_bucket: Vec<(i64, i64)>,
    closed: i64,
    within: i64,
    automated: i64,
    mean: Option<f64>,
    median: Option<i64>,
    p90: Option<i64>,
    bins: Vec<(i64, i64)>,
    ages: Vec<(i64, i64)>,
    sla: SlaFigures,
}

fn assemble(filter: &ReportFilter, count: i64, raw: RawFigures) -> DashboardFigures {
    let at = |list: &[(i64, i64)], k: i64| list.iter().find(|(b, _)| *b == k).map_or(0, |(_, n)| *n);
    let mut backlog = raw.backlog_at_start;
    let buckets = (0..count)
        .map(|k| {
            let (started, closed) = (at(&raw.started, k), at(&raw.closed_per_bucket, k));
            backlog += started - closed;
            let start = filter.from + k * filter.bucket;
            BucketFigures { start, end: (start + filter.bucket).min(filter.to), started, closed, backlog }
        })
        .collect();
    let width = decision_bin_width(filter.deadline);
    let decision_bins = (0..=BINS)
        .map(|k| DecisionBin { lower: k * width, upper: (k < BINS).then_some((k + 1) * width), cases: at(&raw.bins, k) })
        .collect();
    DashboardFigures {
        filter: filter.clone(),
        backlog_at_start: raw.backlog_at_start,
        buckets,
        closed: raw.closed,
        closed_within_deadline: raw.within,
        automated: raw.automated,
        mean_decision: raw.mean.map(|m| m.round() as Millis),
        median_decision: raw.median,
        p90_decision: raw.p90,
        decision_bins,
        open_by_age: AGE_BUCKETS
            .iter()
            .enumerate()
            .map(|(k, (min_days, max_days))| AgeBucket { min_days: *min_days, max_days: *max_days, cases: at(&raw.ages, k as i64) })
            .collect(),
        sla: raw.sla,
    }
}

/// The statuses of a closed case.
const CLOSED: &str = "i.status IN ('completed', 'cancelled')";

/// `AND` the conditions selecting the cases of the filter (alias `i`; `office` is the
/// dialect's SQL of `input.office`).
fn push_cases<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, f: &ReportFilter, office: &str)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(" i.parent_id IS NULL");
    if let Some(w) = &f.workflow {
        q.push(" AND i.workflow = ").push_bind(w.clone());
    }
    if let Some(o) = &f.office {
        q.push(" AND (EXISTS (SELECT 1 FROM tasks t WHERE t.instance_id = i.id AND t.office = ")
            .push_bind(o.clone())
            .push(format!(") OR {office} = "))
            .push_bind(o.clone())
            .push(")");
    }
}

/// `AND` the conditions selecting the tasks of the filter (aliases `t`, `i`).
fn push_tasks<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, f: &ReportFilter)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(" t.due_at IS NOT NULL");
    if let Some(w) = &f.workflow {
        q.push(" AND i.workflow = ").push_bind(w.clone());
    }
    if let Some(o) = &f.office {
        q.push(" AND t.office = ").push_bind(o.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(rank(0, 0.5), None);
        assert_eq!(rank(1, 0.5), Some(0));
        assert_eq!(rank(4, 0.5), Some(1));
        assert_eq!(rank(4, 0.9), Some(3));
        assert_eq!(rank(10, 0.9), Some(8));
    }

    #[test]
    fn bins_are_whole_days_up_to_twice_the_deadline() {
        assert_eq!(decision_bin_width(30 * DAY), 5 * DAY);
        assert_eq!(decision_bin_width(2 * DAY), DAY);
        assert_eq!(decision_bin_width(90 * DAY), 15 * DAY);
        assert_eq!(decision_bin_width(0), 1);
    }
}
