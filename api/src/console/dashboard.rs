//! The director dashboard (`GET /console/dashboard`): per workflow and office, the backlog
//! over time, throughput, the time to decision, the share closed within the deadline, the
//! automation rate and SLA breaches. Figures come from the store
//! ([`pratica_engine::store::Store::dashboard_figures`]); charts are SVG drawn here
//! ([`super::charts`]), each with a caption and the same figures as a table. Definitions:
//! docs/DASHBOARD.md.
//!
//! [`content`] renders the page's `<main>` content; the console wraps it in its layout.

use maud::{Markup, PreEscaped, html};
use pratica_engine::store::{DashboardFigures, ReportError, ReportFilter};
use serde::Deserialize;

use super::charts::{self, BLUE, ORANGE, Series, format_date, format_day, format_int, format_number, format_percent};
use super::i18n::Lang;
use crate::app::AppState;
use crate::http::ApiError;

const DAY: i64 = 86_400_000;

/// Default period: the last 30 days.
pub const DEFAULT_DAYS: u32 = 30;
/// Longest period.
pub const MAX_DAYS: u32 = 366;
/// Default deadline: NASpI's target is "paid within 30 days" of the application.
pub const DEFAULT_DEADLINE_DAYS: u32 = 30;
pub const MAX_DEADLINE_DAYS: u32 = 3650;
/// How many overdue tasks the dashboard lists.
pub const OLDEST_OVERDUE: i64 = 10;

/// The dashboard's query parameters. Empty `workflow` or `office` means all.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    pub workflow: Option<String>,
    pub office: Option<String>,
    /// The period: this many UTC days ending with today (default 30, at most 366).
    pub days: Option<u32>,
    /// A case closed within this many days of its start is within the deadline (default 30).
    pub deadline_days: Option<u32>,
}

impl DashboardQuery {
    /// The store filter at `now`: whole UTC days, the last one being today.
    pub fn filter(&self, now: i64) -> Result<ReportFilter, ApiError> {
        let days = self.days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::InvalidField {
                field: Some("days".into()),
                detail: format!("days must be between 1 and {MAX_DAYS}, not {days}"),
            });
        }
        let deadline_days = self.deadline_days.unwrap_or(DEFAULT_DEADLINE_DAYS);
        if !(1..=MAX_DEADLINE_DAYS).contains(&deadline_days) {
            return Err(ApiError::InvalidField {
                field: Some("deadline_days".into()),
                detail: format!("deadline_days must be between 1 and {MAX_DEADLINE_DAYS}, not {deadline_days}"),
            });
        }
        let to = (now.div_euclid(DAY) + 1) * DAY;
        let pick = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(ReportFilter {
            workflow: pick(&self.workflow),
            office: pick(&self.office),
            from: to - i64::from(days) * DAY,
            to,
            bucket: DAY,
            deadline: i64::from(deadline_days) * DAY,
            now,
            oldest_limit: OLDEST_OVERDUE,
        })
    }
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Invalid(m) => ApiError::Invalid(m),
        ReportError::Store(e) => ApiError::Internal(e.into()),
    }
}

/// The HTML of the dashboard's `<main>` content for `query` in `lang`.
pub async fn content(state: &AppState, query: &DashboardQuery, lang: Lang) -> Result<String, ApiError> {
    let store = state.engine().store();
    let filter = query.filter(state.engine().now())?;
    let figures = store.dashboard_figures(&filter).await.map_err(report_error)?;
    let mut workflows: Vec<String> =
        store.workflows().await.map_err(|e| ApiError::Internal(e.into()))?.into_iter().map(|w| w.name).collect();
    workflows.sort();
    workflows.dedup();
    let offices = store.report_offices().await.map_err(|e| ApiError::Internal(e.into()))?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    Ok(render(&figures, &workflows, &offices, days, lang).into_string())
}

/// Days with one decimal, with the unit.
fn days_text(ms: i64, lang: Lang) -> String {
    format!("{} {}", format_number(ms as f64 / DAY as f64, 1, lang), lang.pick("gg", "d"))
}

/// Days with one decimal, or `–`.
fn opt_days(ms: Option<i64>, lang: Lang) -> String {
    ms.map_or_else(|| "–".to_string(), |m| days_text(m, lang))
}

fn render(f: &DashboardFigures, workflows: &[String], offices: &[String], days: u32, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let filter = &f.filter;
    let deadline_days = filter.deadline / DAY;
    let selected_workflow = filter.workflow.clone().unwrap_or_default();
    let selected_office = filter.office.clone().unwrap_or_default();
    let mut period_choices = vec![7, 30, 90, 365];
    if !period_choices.contains(&days) {
        period_choices.push(days);
        period_choices.sort();
    }
    let scope = match (&filter.workflow, &filter.office) {
        (None, None) => t("tutti i procedimenti, tutti gli uffici", "all workflows, all offices").to_string(),
        (Some(w), None) => format!("{w}, {}", t("tutti gli uffici", "all offices")),
        (None, Some(o)) => format!("{}, {} {o}", t("tutti i procedimenti", "all workflows"), t("ufficio", "office")),
        (Some(w), Some(o)) => format!("{w}, {} {o}", t("ufficio", "office")),
    };
    html! {
        h1 { (t("Cruscotto direzionale", "Director dashboard")) }
        p class="lead" {
            (scope) " · " (t("periodo", "period")) " " (format_date(filter.from, lang)) " – " (format_date(filter.to - 1, lang))
            " (" (t("giorni UTC", "UTC days")) ") · " (t("termine", "deadline")) " " (deadline_days) " " (t("giorni", "days"))
        }
        form method="get" action="/console/dashboard" class="filters" aria-label=(t("Filtri del cruscotto", "Dashboard filters")) {
            div class="field" {
                label for="dash-workflow" { (t("Procedimento", "Workflow")) }
                select id="dash-workflow" name="workflow" {
                    option value="" selected[selected_workflow.is_empty()] { (t("Tutti", "All")) }
                    @for w in workflows {
                        option value=(w) selected[*w == selected_workflow] { (w) }
                    }
                    @if !selected_workflow.is_empty() && !workflows.contains(&selected_workflow) {
                        option value=(selected_workflow) selected { (selected_workflow) }
                    }
                }
            }
            div class="field" {
                label for="dash-office" { (t("Ufficio", "Office")) }
                select id="dash-office" name="office" {
                    option value="" selected[selected_office.is_empty()] { (t("Tutti", "All")) }
                    @for o in offices {
                        option value=(o) selected[*o == selected_office] { (o) }
                    }
                    @if !selected_office.is_empty() && !offices.contains(&selected_office) {
                        option value=(selected_office) selected { (selected_office) }
                    }
                }
            }
            div class="field" {
                label for="dash-days" { (t("Periodo", "Period")) }
                select id="dash-days" name="days" {
                    @for d in &period_choices {
                        option value=(d) selected[*d == days] { (t("ultimi", "last")) " " (d) " " (t("giorni", "days")) }
                    }
                }
            }
            div class="field" {
                label for="dash-deadline" { (t("Termine (giorni)", "Deadline (days)")) }
                input type="number" id="dash-deadline" name="deadline_days" min="1" max=(MAX_DEADLINE_DAYS) value=(deadline_days);
            }
            input type="hidden" name="lang" value=(lang.tag());
            button type="submit" class="primary" { (t("Aggiorna", "Update")) }
        }
        (kpis(f, lang))
        (backlog_section(f, lang))
        (age_section(f, lang))
        (throughput_section(f, lang))
        (decision_section(f, lang))
        (shares_section(f, lang))
        (sla_section(f, lang))
    }
}

fn kpis(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let deadline_days = f.filter.deadline / DAY;
    let tiles: Vec<(String, String, String)> = vec![
        (t("Giacenza attuale", "Current backlog").into(), format_int(f.backlog_at_end(), lang), t("pratiche aperte", "open cases").into()),
        (
            t("Pervenute", "Started").into(),
            format_int(f.started(), lang),
            t("pratiche avviate nel periodo", "cases started in the period").into(),
        ),
        (t("Definite", "Closed").into(), format_int(f.closed, lang), t("pratiche chiuse nel periodo", "cases closed in the period").into()),
        (
            t("Indice di deflusso", "Outflow ratio").into(),
            f.outflow_ratio().map_or_else(|| "–".to_string(), |r| format_number(r, 2, lang)),
            t("definite ÷ pervenute (da 1 in su la giacenza cala)", "closed ÷ started (1 or more: the backlog shrinks)").into(),
        ),
        (
            format!("{} {deadline_days} {}", t("Definite entro", "Closed within"), t("giorni", "days")),
            format_percent(f.within_deadline_share(), lang),
            format!("{} {} {}", format_int(f.closed_within_deadline, lang), t("su", "of"), format_int(f.closed, lang)),
        ),
        (
            t("Tasso di automazione", "Automation rate").into(),
            format_percent(f.automation_rate(), lang),
            format!(
                "{} {} {} {}",
                format_int(f.automated, lang),
                t("su", "of"),
                format_int(f.closed, lang),
                t("senza attività umane", "without human tasks")
            ),
        ),
        (
            t("Tempo medio di definizione", "Mean time to decision").into(),
            opt_days(f.mean_decision, lang),
            format!(
                "{} {} · {} {}",
                t("mediana", "median"),
                opt_days(f.median_decision, lang),
                t("90° percentile", "90th percentile"),
                opt_days(f.p90_decision, lang)
            ),
        ),
        (
            t("Violazioni SLA", "SLA breaches").into(),
            format_int(f.sla.completed_late + f.sla.open_overdue, lang),
            format!(
                "{} {} · {} {}",
                format_int(f.sla.completed_late, lang),
                t("completate in ritardo", "completed late"),
                format_int(f.sla.open_overdue, lang),
                t("aperte scadute", "open overdue")
            ),
        ),
    ];
    html! {
        section aria-labelledby="dash-kpis" {
            h2 id="dash-kpis" { (t("Indicatori", "Key figures")) }
            ul class="kpis" {
                @for (label, value, note) in &tiles {
                    li class="kpi" {
                        span class="kpi-label" { (label) }
                        " "
                        strong class="kpi-value" { (value) }
                        " "
                        span class="kpi-note" { (note) }
                    }
                }
            }
        }
    }
}

fn section(id: &str, heading: &str, body: Markup) -> Markup {
    html! {
        section aria-labelledby=(id) {
            h2 id=(id) { (heading) }
            (body)
        }
    }
}

fn backlog_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let caption = t("Giacenza a fine giornata (pratiche aperte)", "Backlog at the end of each day (open cases)");
    let labels: Vec<String> = f.buckets.iter().map(|b| format_day(b.start, lang)).collect();
    let values: Vec<f64> = f.buckets.iter().map(|b| b.backlog as f64).collect();
    let svg = charts::area_chart("fig-backlog", caption, &labels, &values, lang);
    let rows: Vec<Vec<String>> = f.buckets.iter().map(|b| vec![format_date(b.start, lang), format_int(b.backlog, lang)]).collect();
    let headers = [t("Giorno", "Day").to_string(), t("Pratiche aperte", "Open cases").to_string()];
    section(
        "dash-backlog",
        t("Giacenza nel tempo", "Backlog over time"),
        html! {
            p { (t("Pratiche aperte all'inizio del periodo:", "Cases open at the start of the period:")) " " strong { (format_int(f.backlog_at_start, lang)) } }
            (PreEscaped(charts::figure("fig-backlog", caption, &svg, &headers, &rows, lang)))
        },
    )
}

fn age_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let caption = t("Pratiche aperte ora per anzianità (giorni dall'avvio)", "Cases open now by age (days since their start)");
    let label = |b: &pratica_engine::store::AgeBucket| match b.max_days {
        Some(max) => format!("{}–{max}", b.min_days),
        None => format!(">{}", b.min_days - 1),
    };
    let labels: Vec<String> = f.open_by_age.iter().map(label).collect();
    let series = [Series { name: String::new(), values: f.open_by_age.iter().map(|b| b.cases as f64).collect(), color: BLUE }];
    let open: i64 = f.open_by_age.iter().map(|b| b.cases).sum();
    let svg = if open == 0 {
        charts::bar_chart("fig-age", caption, &[], &[], lang)
    } else {
        charts::bar_chart("fig-age", caption, &labels, &series, lang)
    };
    let unit = t("gg", "d");
    let rows: Vec<Vec<String>> = f.open_by_age.iter().map(|b| vec![format!("{} {unit}", label(b)), format_int(b.cases, lang)]).collect();
    let headers = [t("Anzianità", "Age").to_string(), t("Pratiche aperte", "Open cases").to_string()];
    section(
        "dash-age",
        t("Giacenza per anzianità", "Backlog by age"),
        html! { (PreEscaped(charts::figure("fig-age", caption, &svg, &headers, &rows, lang))) },
    )
}

fn throughput_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let caption = t("Pratiche pervenute e definite per giorno", "Cases started and closed per day");
    let labels: Vec<String> = f.buckets.iter().map(|b| format_day(b.start, lang)).collect();
    let series = [
        Series { name: t("Pervenute", "Started").into(), values: f.buckets.iter().map(|b| b.started as f64).collect(), color: BLUE },
        Series { name: t("Definite", "Closed").into(), values: f.buckets.iter().map(|b| b.closed as f64).collect(), color: ORANGE },
    ];
    let svg = charts::bar_chart("fig-throughput", caption, &labels, &series, lang);
    let rows: Vec<Vec<String>> =
        f.buckets.iter().map(|b| vec![format_date(b.start, lang), format_int(b.started, lang), format_int(b.closed, lang)]).collect();
    let headers = [t("Giorno", "Day").to_string(), t("Pervenute", "Started").to_string(), t("Definite", "Closed").to_string()];
    section(
        "dash-throughput",
        t("Produttività", "Throughput"),
        html! { (PreEscaped(charts::figure("fig-throughput", caption, &svg, &headers, &rows, lang))) },
    )
}

fn decision_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let caption =
        t("Tempo di definizione delle pratiche definite nel periodo (giorni)", "Time to decision of the cases closed in the period (days)");
    let unit = t("gg", "d");
    let label = |b: &pratica_engine::store::DecisionBin| match b.upper {
        Some(upper) => format!("{}–{}", b.lower / DAY, upper / DAY),
        None => format!("≥{}", b.lower / DAY),
    };
    let labels: Vec<String> = f.decision_bins.iter().map(label).collect();
    let counts: Vec<f64> = f.decision_bins.iter().map(|b| b.cases as f64).collect();
    let svg = if f.closed == 0 {
        charts::histogram("fig-decision", caption, &[], &[], lang)
    } else {
        charts::histogram("fig-decision", caption, &labels, &counts, lang)
    };
    let rows: Vec<Vec<String>> = f.decision_bins.iter().map(|b| vec![format!("{} {unit}", label(b)), format_int(b.cases, lang)]).collect();
    let headers = [t("Giorni dall'avvio", "Days from start").to_string(), t("Pratiche", "Cases").to_string()];
    section(
        "dash-decision",
        t("Tempo di definizione", "Time to decision"),
        html! {
            p {
                (t("Ogni barra conta le pratiche definite in quell'intervallo di giorni dall'avvio (estremo inferiore incluso).", "Each bar counts the cases closed that many days after their start (lower bound included)."))
                " " (t("Media", "Mean")) " " strong { (opt_days(f.mean_decision, lang)) }
                ", " (t("mediana", "median")) " " strong { (opt_days(f.median_decision, lang)) }
                ", " (t("90° percentile", "90th percentile")) " " strong { (opt_days(f.p90_decision, lang)) } "."
            }
            (PreEscaped(charts::figure("fig-decision", caption, &svg, &headers, &rows, lang)))
        },
    )
}

fn shares_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    let deadline_days = f.filter.deadline / DAY;
    let within_caption = format!(
        "{} {deadline_days} {}",
        t("Quota di pratiche definite entro", "Share of cases closed within"),
        t("giorni dall'avvio", "days of their start")
    );
    let auto_caption =
        t("Tasso di automazione: pratiche definite senza attività umane", "Automation rate: cases closed without a human task");
    let within = charts::share_bar("fig-within", &within_caption, f.within_deadline_share(), lang);
    let auto = charts::share_bar("fig-automation", auto_caption, f.automation_rate(), lang);
    let headers = [t("Misura", "Measure").to_string(), t("Pratiche", "Cases").to_string(), t("Quota", "Share").to_string()];
    let closed = [t("Definite nel periodo", "Closed in the period").to_string(), format_int(f.closed, lang), "100%".to_string()];
    let within_rows = vec![
        vec![
            t("Entro il termine", "Within the deadline").to_string(),
            format_int(f.closed_within_deadline, lang),
            format_percent(f.within_deadline_share(), lang),
        ],
        closed.to_vec(),
    ];
    let auto_rows = vec![
        vec![
            t("Senza attività umane", "Without human tasks").to_string(),
            format_int(f.automated, lang),
            format_percent(f.automation_rate(), lang),
        ],
        closed.to_vec(),
    ];
    section(
        "dash-shares",
        t("Termini e automazione", "Deadline and automation"),
        html! {
            (PreEscaped(charts::figure("fig-within", &within_caption, &within, &headers, &within_rows, lang)))
            (PreEscaped(charts::figure("fig-automation", auto_caption, &auto, &headers, &auto_rows, lang)))
        },
    )
}

fn sla_section(f: &DashboardFigures, lang: Lang) -> Markup {
    let t = |it, en| lang.pick(it, en);
    section(
        "dash-sla",
        t("Violazioni SLA delle attività", "SLA breaches of human tasks"),
        html! {
            ul {
                li { (t("Completate dopo la scadenza, nel periodo:", "Completed after their due time, in the period:")) " " strong { (format_int(f.sla.completed_late, lang)) } }
                li { (t("Aperte e già scadute ora:", "Open and past their due time now:")) " " strong { (format_int(f.sla.open_overdue, lang)) } }
            }
            @if !f.sla.oldest.is_empty() {
                div class="table-wrap" {
                    table {
                        caption { (t("Attività scadute più vecchie", "Oldest overdue tasks")) }
                        thead { tr {
                            th scope="col" { (t("Attività", "Task")) }
                            th scope="col" { (t("Procedimento", "Workflow")) }
                            th scope="col" { (t("Ufficio", "Office")) }
                            th scope="col" { (t("Scadenza", "Due")) }
                            th scope="col" { (t("Ritardo", "Overdue by")) }
                        } }
                        tbody {
                            @for task in &f.sla.oldest {
                                tr class="overdue" {
                                    th scope="row" { a href=(format!("/console/tasks/{}", task.id)) { (task.title) } }
                                    td { a href=(format!("/console/instances/{}", task.instance_id)) { (task.workflow) } }
                                    td { (task.office.as_deref().unwrap_or("–")) }
                                    td { (format_date(task.due_at, lang)) }
                                    td { (days_text(f.filter.now - task.due_at, lang)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_covers_whole_utc_days_ending_today() {
        // 2026-03-07T09:00:00Z
        let now = 1_772_355_600_000 + 6 * DAY;
        let q = DashboardQuery { days: Some(7), deadline_days: Some(2), workflow: Some(" ".into()), office: Some("RM1".into()) };
        let f = q.filter(now).unwrap();
        assert_eq!(f.to % DAY, 0);
        assert!(f.to > now && f.to - now <= DAY);
        assert_eq!(f.to - f.from, 7 * DAY);
        assert_eq!(f.deadline, 2 * DAY);
        assert_eq!(f.workflow, None, "blank means all");
        assert_eq!(f.office.as_deref(), Some("RM1"));
        let default = DashboardQuery::default().filter(now).unwrap();
        assert_eq!((default.to - default.from) / DAY, 30);
        assert_eq!(default.deadline, 30 * DAY);
    }

    #[test]
    fn out_of_range_parameters_are_refused_with_the_field() {
        let e = DashboardQuery { days: Some(0), ..Default::default() }.filter(0).unwrap_err();
        assert!(matches!(&e, ApiError::InvalidField { field: Some(f), .. } if f == "days"), "{e:?}");
        let e = DashboardQuery { deadline_days: Some(100_000), ..Default::default() }.filter(0).unwrap_err();
        assert!(matches!(&e, ApiError::InvalidField { field: Some(f), .. } if f == "deadline_days"), "{e:?}");
    }
}
